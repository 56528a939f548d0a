package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

func trackCommand() *cli.Command {
	ownerFlags := func(extra ...cli.Flag) []cli.Flag {
		return append([]cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "owner", Usage: "who owns and renews it (team, person or mailbox); required"},
			&cli.StringFlag{Name: "note", Usage: "free text, e.g. the service or ticket"},
		}, extra...)
	}
	return &cli.Command{
		Name:  "track",
		Usage: "manage owners: tracked certificates and owner rules (the rest are shadow certificates)",
		Description: `A certificate has an owner when an entry names it (by SHA-256, or by serial and
issuer), when it inherited one (it replaced a tracked certificate: at the same
endpoint, or with the same subject and DNS names; a renewal), or when an owner
rule matches it (by address range, port, DNS-name suffix, subject organization
or issuer; the most specific rule wins). Findings and reports flag every other
certificate as untracked.

Examples:
   certsweep track import owners.csv
   certsweep track add 3f2a9c --owner web-team --note "www load balancer"
   certsweep track rule --owner dc-team --cidr 10.20.0.0/16 --port 636
   certsweep track rule --owner web-team --name-suffix shop.corp.example
   certsweep track issuer "CN=Corp Issuing CA 2,O=Corp" --owner pki-team
   certsweep track list --format csv
   certsweep track rm 3f2a9c`,
		Subcommands: []*cli.Command{
			{
				Name:      "import",
				Usage:     "add entries from a CSV file (all or none)",
				ArgsUsage: "FILE.csv",
				Description: `The CSV needs a header row. Columns (any order, case-insensitive): sha256 (or
fingerprint), serial, issuer, owner, note. Each row with an owner needs a
sha256, or both serial and issuer; rows without an owner are skipped, so
certsweep's own certs, report and findings CSV can be filled in and imported.
Rows of one fingerprint are merged; different owners for one certificate are
refused, naming the lines. The CSV of track list (with its rules) re-imports.
"-" reads stdin.

Examples:
   certsweep track import owners.csv
   certsweep report --format csv -o inventory.csv   # fill in the owner column, then:
   certsweep track import inventory.csv
   certsweep track import --replace owners.csv       # update owners of existing entries`,
				Flags: []cli.Flag{dbFlag(), &cli.BoolFlag{Name: "replace", Usage: "give existing entries the file's owner instead of failing"}},
				Action: func(c *cli.Context) error {
					file, err := oneArg(c, "FILE.csv")
					if err != nil {
						return err
					}
					in, err := readTrackedCSV(file, c.App.Reader)
					if err != nil {
						return err
					}
					return withDB(c, true, func(db *store.DB) error {
						ctx := c.Context
						if err := sameIssuerSpelling(ctx, db, in.entries); err != nil {
							return err
						}
						if err := db.AddTracked(ctx, in.entries, c.Bool("replace")); err != nil {
							if errors.Is(err, store.ErrDuplicate) {
								return usageError(err, "nothing was imported; pass --replace to give existing entries the file's owner")
							}
							return failure(err, "nothing was imported")
						}
						for _, r := range in.rules {
							if _, _, err := db.AddOwnerRule(ctx, r); err != nil {
								return failure(err, "the certificate entries were imported; rules up to this one too")
							}
						}
						w := c.App.Writer
						fmt.Fprintf(w, "imported %d tracked certificates", len(in.entries))
						if len(in.rules) > 0 {
							fmt.Fprintf(w, " and %d owner rules", len(in.rules))
						}
						if in.skipped > 0 {
							fmt.Fprintf(w, " (%d rows without an owner, or owned by a rule, skipped)", in.skipped)
						}
						fmt.Fprintln(w)
						if err := warnUnmatched(ctx, c.App.ErrWriter, db, in.entries); err != nil {
							return err
						}
						for _, r := range in.rules {
							if err := warnRuleUnmatched(ctx, c.App.ErrWriter, db, r); err != nil {
								return err
							}
						}
						return inheritAfterTracking(ctx, c.App.Writer, db)
					})
				},
			},
			{
				Name:      "add",
				Usage:     "give one certificate an owner, by fingerprint",
				ArgsUsage: "FINGERPRINT",
				Description: `FINGERPRINT is a full SHA-256, or a unique prefix of a certificate in the database.
The owner carries over to the certificate that replaces it (a renewal).

Examples:
   certsweep track add 3f2a9c --owner web-team --note "www load balancer"`,
				Flags: ownerFlags(),
				Action: func(c *cli.Context) error {
					arg, err := oneArg(c, "FINGERPRINT")
					if err != nil {
						return err
					}
					owner, err := requireOwner(c)
					if err != nil {
						return err
					}
					return withDB(c, true, func(db *store.DB) error {
						fp, err := resolveFingerprint(c.Context, db, arg)
						if err != nil {
							return err
						}
						entry := store.Tracked{SHA256: fp, Owner: owner, Note: c.String("note")}
						if err := db.AddTracked(c.Context, []store.Tracked{entry}, true); err != nil {
							return failure(err, "")
						}
						fmt.Fprintf(c.App.Writer, "tracked %s (owner %s)\n", fp, report.Terminal(owner))
						if err := warnUnmatched(c.Context, c.App.ErrWriter, db, []store.Tracked{entry}); err != nil {
							return err
						}
						return inheritAfterTracking(c.Context, c.App.Writer, db)
					})
				},
			},
			{
				Name:  "rule",
				Usage: "give an owner to every certificate a rule selects",
				Description: `Every selector given must match. A certificate's own entry (track add, import,
or inherited) beats any rule; among rules, the one with the most selectors
wins, then the narrower --cidr, then the longer --name-suffix, then the older
rule. A rule with the same selectors as an existing one replaces its owner.

Examples:
   certsweep track rule --owner dc-team --cidr 10.20.0.0/16 --port 636
   certsweep track rule --owner web-team --name-suffix shop.corp.example
   certsweep track rule --owner vendor-x --subject-o "Example Appliances Ltd"
   certsweep track rule --owner pki-team --issuer "CN=Corp Issuing CA 2,O=Corp"`,
				Flags: ownerFlags(
					&cli.StringFlag{Name: "cidr", Usage: "endpoints whose address is in `CIDR` (or is that address)"},
					&cli.IntFlag{Name: "port", Usage: "endpoints on `PORT`"},
					&cli.StringFlag{Name: "name-suffix", Usage: "certificates with a DNS name (SAN, or CN without SANs) in `DOMAIN`"},
					&cli.StringFlag{Name: "subject-o", Usage: "certificates whose subject organization (O) is `ORG`"},
					&cli.StringFlag{Name: "issuer", Usage: "certificates issued by `DN` (any spelling: RFC 4514, openssl's) or by the CA with that fingerprint"},
				),
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					return addRule(c, c.String("issuer"))
				},
			},
			{
				Name:      "issuer",
				Usage:     "give an owner to every certificate a CA issued (track rule --issuer)",
				ArgsUsage: "ISSUER-DN|CA-FINGERPRINT",
				Description: `ISSUER-DN in any spelling: RFC 4514 (CN=Corp Issuing CA 2,O=Corp), openssl's
default print (O = Corp, CN = Corp Issuing CA 2) or its legacy form
(/O=Corp/CN=Corp Issuing CA 2); case and spacing do not matter. Or give the
fingerprint (or unique prefix) of the CA certificate itself.

Examples:
   certsweep track issuer "CN=Corp Issuing CA 2,O=Corp" --owner pki-team
   certsweep track issuer 9d41e0 --owner pki-team`,
				Flags: ownerFlags(),
				Action: func(c *cli.Context) error {
					issuer, err := oneArg(c, "ISSUER-DN or CA fingerprint")
					if err != nil {
						return err
					}
					return addRule(c, issuer)
				},
			},
			{
				Name:      "rm",
				Usage:     "remove an owner: a certificate's entry (inherited ones too) or a rule",
				ArgsUsage: "FINGERPRINT|ISSUER-DN",
				Description: `Removing an inherited owner also keeps it from being inherited again.

Examples:
   certsweep track rm 3f2a9c                            # a tracked certificate (unique prefix)
   certsweep track rm "CN=Corp Issuing CA 2,O=Corp"     # an issuer rule
   certsweep track rm --rule 3                          # any rule, by the id track list shows`,
				Flags: []cli.Flag{dbFlag(), &cli.Int64Flag{Name: "rule", Usage: "remove owner rule `ID`"}},
				Action: func(c *cli.Context) error {
					if c.IsSet("rule") {
						if err := noArgs(c); err != nil {
							return err
						}
						return withDB(c, false, func(db *store.DB) error {
							if err := db.RemoveOwnerRule(c.Context, c.Int64("rule")); err != nil {
								return notTracked(err)
							}
							fmt.Fprintf(c.App.Writer, "removed owner rule %d\n", c.Int64("rule"))
							return nil
						})
					}
					key, err := oneArg(c, "FINGERPRINT or ISSUER-DN")
					if err != nil {
						return err
					}
					return withDB(c, false, func(db *store.DB) error { return removeTracked(c, db, key) })
				},
			},
			{
				Name:  "list",
				Usage: "list tracked certificates, inherited owners and owner rules",
				Description: `Columns: ` + strings.Join(trackColumns, ", ") + `. type is certificate, serial+issuer,
inherited (with the certificate it inherited from) or rule (with its id and
selectors); the table shows what each selects in one column.

Examples:
   certsweep track list
   certsweep track list --format csv > owners.csv   # re-importable with track import`,
				Flags:  []cli.Flag{dbFlag(), formatFlag()},
				Action: listing(listTracked),
			},
		},
	}
}

var trackColumns = []string{"type", "id", "sha256", "serial", "issuer", "cidr", "port", "name_suffix",
	"subject_o", "owner", "note", "inherited_from", "added_at"}

func listTracked(c *cli.Context, db *store.DB, f string) error {
	cols := trackColumns
	if f == "table" {
		cols = []string{"type", "id", "selects", "owner", "note", "added_at"}
	}
	enc, err := report.NewEncoder(c.App.Writer, f, cols)
	if err != nil {
		return err
	}
	for t, err := range db.TrackedEntries(c.Context) {
		if err != nil {
			return failure(err, "")
		}
		typ, selects := "certificate", t.SHA256
		switch {
		case t.InheritedFrom != "":
			typ, selects = "inherited", fmt.Sprintf("%.12s (from %.12s, %s)", t.SHA256, t.InheritedFrom, t.InheritedVia)
		case t.SHA256 == "":
			typ, selects = "serial+issuer", fmt.Sprintf("serial %s, issuer %s", t.Serial, t.Issuer)
		}
		if f == "table" {
			err = enc.Encode(typ, t.ID, selects, t.Owner, t.Note, t.AddedAt)
		} else {
			err = enc.Encode(typ, t.ID, t.SHA256, t.Serial, t.Issuer, "", nil, "", "", t.Owner, t.Note, t.InheritedFrom, t.AddedAt)
		}
		if err != nil {
			return err
		}
	}
	for r, err := range db.OwnerRules(c.Context) {
		if err != nil {
			return failure(err, "")
		}
		var port any
		if r.Port != 0 {
			port = r.Port
		}
		if f == "table" {
			err = enc.Encode("rule", r.ID, report.DescribeRule(r), r.Owner, r.Note, r.AddedAt)
		} else {
			err = enc.Encode("rule", r.ID, "", "", r.Issuer, r.CIDR, port, r.NameSuffix, r.SubjectO, r.Owner, r.Note, "", r.AddedAt)
		}
		if err != nil {
			return err
		}
	}
	return enc.Close()
}

func requireOwner(c *cli.Context) (string, error) {
	owner := strings.TrimSpace(c.String("owner"))
	if owner == "" {
		return "", usagef("%s needs --owner", strings.TrimPrefix(commandPath(c), c.App.Name+" "))
	}
	return owner, nil
}

// addRule validates and stores an owner rule from track rule / track issuer.
func addRule(c *cli.Context, issuer string) error {
	owner, err := requireOwner(c)
	if err != nil {
		return err
	}
	r := store.OwnerRule{Owner: owner, Note: c.String("note"), CIDR: strings.TrimSpace(c.String("cidr")),
		Port: c.Int("port"), NameSuffix: strings.ToLower(strings.Trim(strings.TrimSpace(c.String("name-suffix")), ".")),
		SubjectO: strings.TrimSpace(c.String("subject-o"))}
	if r.CIDR != "" {
		p, err := report.ParseCIDR(r.CIDR)
		if err != nil {
			return usageError(fmt.Errorf("--cidr: %w", err), "")
		}
		r.CIDR = p.String()
	}
	if c.IsSet("port") && (r.Port < 1 || r.Port > 65535) {
		return usagef("--port %d: ports are 1-65535", r.Port)
	}
	if c.IsSet("name-suffix") && r.NameSuffix == "" {
		return usagef("--name-suffix is empty: give a DNS domain such as corp.example")
	}
	return withDB(c, true, func(db *store.DB) error {
		if issuer = strings.TrimSpace(issuer); issuer != "" {
			if ca, err := db.FindCertificate(c.Context, issuer); err == nil {
				issuer = ca.Subject // a CA certificate: its subject is its certificates' issuer
			} else if _, err := scanner.ParseDN(issuer); err != nil {
				return usageError(fmt.Errorf("issuer: %w", err), `write it as CN=Corp Issuing CA 2,O=Corp (or as openssl prints it), or give the CA certificate's fingerprint`)
			}
			r.Issuer = issuer
		}
		if !r.Selects() {
			return usagef("a rule needs at least one of --cidr, --port, --name-suffix, --subject-o, --issuer")
		}
		// The same issuer in another spelling is the same rule.
		for old, err := range db.OwnerRules(c.Context) {
			if err != nil {
				return failure(err, "")
			}
			if old.Issuer != "" && r.Issuer != "" && old.Issuer != r.Issuer && report.DNKey(old.Issuer) == report.DNKey(r.Issuer) {
				r.Issuer = old.Issuer
			}
		}
		id, replaced, err := db.AddOwnerRule(c.Context, r)
		if err != nil {
			return failure(err, "")
		}
		verb := "added"
		if replaced {
			verb = "updated"
		}
		fmt.Fprintf(c.App.Writer, "%s owner rule %d: %s → %s\n", verb, id, report.Terminal(report.DescribeRule(r)), report.Terminal(owner))
		return warnRuleUnmatched(c.Context, c.App.ErrWriter, db, r)
	})
}

// removeTracked removes a certificate's entry, given by (a prefix of) its
// fingerprint, or an issuer-only rule given by its DN in any spelling.
func removeTracked(c *cli.Context, db *store.DB, key string) error {
	ctx := c.Context
	if fp := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(key), ":", "")); fp != "" && strings.Trim(fp, "0123456789abcdef") == "" {
		full := fp
		if len(fp) < 64 {
			cert, err := db.FindCertificate(ctx, fp)
			if err != nil {
				return notTracked(err)
			}
			full = cert.Fingerprint()
		}
		t, err := db.RemoveTracked(ctx, full)
		if err != nil {
			return notTracked(err)
		}
		if t.InheritedFrom != "" {
			fmt.Fprintf(c.App.Writer, "removed the owner %s inherited from %s; it will not be inherited again\n", full, t.InheritedFrom)
		} else {
			fmt.Fprintf(c.App.Writer, "removed %s (owner %s)\n", full, report.Terminal(t.Owner))
		}
		return nil
	}
	want := report.DNKey(key)
	for r, err := range db.OwnerRules(ctx) {
		if err != nil {
			return failure(err, "")
		}
		if r.IssuerOnly() && report.DNKey(r.Issuer) == want {
			if err := db.RemoveOwnerRule(ctx, r.ID); err != nil {
				return notTracked(err)
			}
			fmt.Fprintf(c.App.Writer, "removed owner rule %d (issuer %s)\n", r.ID, report.Terminal(r.Issuer))
			return nil
		}
	}
	return notTracked(fmt.Errorf("no tracked certificate or issuer rule %q: %w", key, store.ErrNotFound))
}

func notTracked(err error) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAmbiguous) {
		return &cliError{code: exitFailure, err: err, hint: "certsweep track list shows what is tracked"}
	}
	return failure(err, "")
}

// sameIssuerSpelling rewrites the issuer of each serial+issuer entry to the
// spelling an existing entry for the same serial and DN uses, so that one
// certificate cannot be tracked twice under two spellings of its issuer.
func sameIssuerSpelling(ctx context.Context, db *store.DB, entries []store.Tracked) error {
	known := map[string]string{} // serial + DN key → stored spelling
	for t, err := range db.TrackedEntries(ctx) {
		if err != nil {
			return failure(err, "")
		}
		if t.SHA256 == "" {
			known[t.Serial+"\x00"+report.DNKey(t.Issuer)] = t.Issuer
		}
	}
	for i, e := range entries {
		if spelled, ok := known[e.Serial+"\x00"+report.DNKey(e.Issuer)]; ok && e.SHA256 == "" {
			entries[i].Issuer = spelled
		}
	}
	return nil
}

// warnUnmatched warns about entries that name no stored certificate: a typo,
// or a certificate no sweep has found yet. Not an error: owners may be
// imported ahead of the sweep that finds them.
func warnUnmatched(ctx context.Context, stderr io.Writer, db *store.DB, entries []store.Tracked) error {
	var missing []string
	for _, e := range entries {
		found := false
		if e.SHA256 != "" {
			_, err := db.FindCertificate(ctx, e.SHA256)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return failure(err, "")
			}
			found = err == nil
		} else {
			key := report.DNKey(e.Issuer)
			for c, err := range db.CertificatesBySerial(ctx, e.Serial) {
				if err != nil {
					return failure(err, "")
				}
				found = found || report.DNKey(c.Issuer) == key
			}
		}
		if !found {
			missing = append(missing, describeEntry(e))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	const show = 5
	list := strings.Join(missing[:min(show, len(missing))], "; ")
	if len(missing) > show {
		list += fmt.Sprintf("; and %d more", len(missing)-show)
	}
	fmt.Fprintf(stderr, "certsweep: warning: %d of %d entries match no certificate in the database yet: %s\n",
		len(missing), len(entries), report.Terminal(list))
	return nil
}

func describeEntry(e store.Tracked) string {
	if e.SHA256 != "" {
		return e.SHA256
	}
	return fmt.Sprintf("serial %s issued by %s", e.Serial, e.Issuer)
}

// warnRuleUnmatched warns when a rule selects no endpoint of the latest
// complete sweep (a typo in a DN or domain is the usual cause).
func warnRuleUnmatched(ctx context.Context, stderr io.Writer, db *store.DB, r store.OwnerRule) error {
	ids, err := db.LatestSweeps(ctx, 1)
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(stderr, "certsweep: warning: no complete sweep yet to check the rule (%s) against\n", report.Terminal(report.DescribeRule(r)))
		return nil
	} else if err != nil {
		return failure(err, "")
	}
	for ep, err := range db.Endpoints(ctx, ids[0]) {
		if err != nil {
			return failure(err, "")
		}
		if ok, err := report.RuleMatches(r, ep); err != nil {
			return usageError(err, "")
		} else if ok {
			return nil
		}
	}
	fmt.Fprintf(stderr, "certsweep: warning: the rule (%s) matches no endpoint of sweep %d, the latest complete sweep\n",
		report.Terminal(report.DescribeRule(r)), ids[0])
	return nil
}

// inheritOwners gives the certificates of a sweep that replace a tracked
// certificate (renewals) its owner, and returns what it recorded.
func inheritOwners(ctx context.Context, db *store.DB, sweepID int64) ([]store.Inheritance, error) {
	owners, err := report.LoadOwners(db.TrackedEntries(ctx), db.OwnerRules(ctx))
	if err != nil {
		return nil, err
	}
	hs, err := owners.Inherit(ctx, db, sweepID)
	if err != nil {
		return nil, err
	}
	return db.AddInherited(ctx, hs)
}

// inheritAfterTracking carries a newly tracked certificate's owner to what
// replaced it in the latest complete sweep, so that the owner applies now,
// not only after the next sweep.
func inheritAfterTracking(ctx context.Context, stdout io.Writer, db *store.DB) error {
	ids, err := db.LatestSweeps(ctx, 1)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return failure(err, "")
	}
	hs, err := inheritOwners(ctx, db, ids[0])
	if err != nil {
		return failure(err, "")
	}
	for _, h := range hs {
		fmt.Fprintf(stdout, "owner %s carried over to %s (it replaced %s: %s)\n", report.Terminal(h.Owner), h.SHA256, h.From, report.Terminal(h.Via))
	}
	return nil
}

// resolveFingerprint accepts a full SHA-256, or a unique prefix of a stored
// certificate's.
func resolveFingerprint(ctx context.Context, db *store.DB, s string) (string, error) {
	fp := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	c, err := db.FindCertificate(ctx, fp)
	switch {
	case err == nil:
		return c.Fingerprint(), nil
	case len(fp) == 64 && errors.Is(err, store.ErrNotFound):
		return fp, nil // not seen yet; tracking it ahead of a sweep is fine
	case errors.Is(err, store.ErrAmbiguous):
		return "", usageError(err, "give more hex digits")
	case errors.Is(err, store.ErrNotFound):
		return "", usageError(err, "give the full 64-digit SHA-256 for a certificate not yet seen")
	}
	return "", usageError(err, "")
}

// trackedFile is what an import file holds.
type trackedFile struct {
	entries []store.Tracked
	rules   []store.OwnerRule
	skipped int // rows without an owner, or whose owner came from a rule
}

// readTrackedCSV parses an import file: an owners file, certsweep's own
// certs/report/findings CSV with owners filled in, or track list's CSV.
// Errors name the line.
func readTrackedCSV(path string, stdin io.Reader) (trackedFile, error) {
	var out trackedFile
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return out, usageError(fmt.Errorf("cannot read %s: %w", path, err), "")
		}
		defer f.Close()
		r = f
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return out, usageError(fmt.Errorf("%s: no header row: %w", path, err), "the first row names the columns: sha256, serial, issuer, owner, note")
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) // a BOM from spreadsheets
		if h == "fingerprint" {
			h = "sha256"
		}
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	if _, ok := col["owner"]; !ok {
		return out, usagef("%s: the header has no owner column", path)
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(strings.TrimPrefix(rec[i], "'")) // undo our CSV formula guard
		}
		return ""
	}
	type seen struct {
		owner string
		line  int
	}
	firstLine := map[string]seen{} // entry key → first owner and line
	index := map[string]int{}      // entry key → place in out.entries
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return out, usageError(fmt.Errorf("%s: %w", path, err), "")
		}
		owner := get(rec, "owner")
		if owner == "" || strings.HasPrefix(get(rec, "owner_source"), "rule ") {
			out.skipped++
			continue
		}
		note := get(rec, "note")
		if get(rec, "type") == "rule" {
			rule, err := ruleFromCSV(get, rec)
			if err != nil {
				return out, usagef("%s line %d: %v", path, line, err)
			}
			rule.Owner, rule.Note = owner, note
			out.rules = append(out.rules, rule)
			continue
		}
		t := store.Tracked{Owner: owner, Note: note}
		if fp := strings.ToLower(strings.ReplaceAll(get(rec, "sha256"), ":", "")); fp != "" {
			if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
				return out, usagef("%s line %d: %q is not a SHA-256 fingerprint (64 hex digits)", path, line, fp)
			}
			t.SHA256 = fp
		} else {
			serial, ok := store.NormalizeSerial(get(rec, "serial"))
			t.Issuer = get(rec, "issuer")
			if !ok || t.Issuer == "" {
				return out, usagef("%s line %d: give a sha256, or a hex serial and an issuer", path, line)
			}
			t.Serial = serial
		}
		key := t.SHA256
		if key == "" {
			key = t.Serial + "\x00" + report.DNKey(t.Issuer)
		}
		if first, ok := firstLine[key]; ok {
			if first.owner != owner {
				return out, usagef("%s: %s has owner %q on line %d and %q on line %d", path, describeEntry(t), first.owner, first.line, owner, line)
			}
			if e := &out.entries[index[key]]; e.Note == "" {
				e.Note = note
			}
			continue // a report lists a certificate once per endpoint
		}
		firstLine[key] = seen{owner, line}
		index[key] = len(out.entries)
		out.entries = append(out.entries, t)
	}
	if len(out.entries) == 0 && len(out.rules) == 0 {
		return out, usagef("%s has no rows with an owner to import", path)
	}
	return out, nil
}

// ruleFromCSV reads a rule row of track list's CSV.
func ruleFromCSV(get func([]string, string) string, rec []string) (store.OwnerRule, error) {
	r := store.OwnerRule{CIDR: get(rec, "cidr"), NameSuffix: get(rec, "name_suffix"), SubjectO: get(rec, "subject_o"), Issuer: get(rec, "issuer")}
	if p := get(rec, "port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return r, fmt.Errorf("port %q: ports are 1-65535", p)
		}
		r.Port = n
	}
	if r.CIDR != "" {
		p, err := report.ParseCIDR(r.CIDR)
		if err != nil {
			return r, err
		}
		r.CIDR = p.String()
	}
	if !r.Selects() {
		return r, errors.New("a rule row needs a cidr, port, name_suffix, subject_o or issuer")
	}
	return r, nil
}
