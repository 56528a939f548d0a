package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

func trackCommand() *cli.Command {
	ownerFlags := func() []cli.Flag {
		return []cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "owner", Usage: "who owns and renews it (team, person or mailbox); required"},
			&cli.StringFlag{Name: "note", Usage: "free text, e.g. the service or ticket"},
		}
	}
	return &cli.Command{
		Name:  "track",
		Usage: "manage the tracked inventory: certificates with an owner (the rest are shadow certificates)",
		Description: `A certificate is tracked when an entry names it by SHA-256, or by serial and
issuer, or when an issuer rule covers its issuing CA. Findings and reports flag
every other certificate as untracked.

Examples:
   certsweep track import owners.csv
   certsweep track add 3f2a9c --owner web-team --note "www load balancer"
   certsweep track issuer "CN=Corp Issuing CA 2,O=Corp" --owner pki-team
   certsweep track list --format csv
   certsweep track rm 3f2a9c...`,
		Subcommands: []*cli.Command{
			{
				Name:      "import",
				Usage:     "add entries from a CSV file (all or none)",
				ArgsUsage: "FILE.csv",
				Description: `The CSV needs a header row. Columns (any order, case-insensitive): sha256 (or
fingerprint), serial, issuer, owner, note. Each row needs an owner, and a sha256
or both serial and issuer. "-" reads stdin.

Examples:
   certsweep track import owners.csv
   certsweep track import --replace owners.csv   # update owners of existing entries`,
				Flags: []cli.Flag{dbFlag(), &cli.BoolFlag{Name: "replace", Usage: "update entries that already exist instead of failing"}},
				Action: func(c *cli.Context) error {
					file, err := oneArg(c, "FILE.csv")
					if err != nil {
						return err
					}
					entries, err := readTrackedCSV(file, c.App.Reader)
					if err != nil {
						return err
					}
					db, err := openDB(c.Context, c.String("db"), true)
					if err != nil {
						return err
					}
					defer db.Close()
					if err := db.AddTracked(c.Context, entries, c.Bool("replace")); err != nil {
						if errors.Is(err, store.ErrDuplicate) {
							return usageError(err, "nothing was imported; pass --replace to update existing entries")
						}
						return failure(err, "nothing was imported")
					}
					fmt.Fprintf(c.App.Writer, "imported %d tracked certificates\n", len(entries))
					return nil
				},
			},
			{
				Name:      "add",
				Usage:     "track one certificate by fingerprint",
				ArgsUsage: "FINGERPRINT",
				Description: `FINGERPRINT is a full SHA-256, or a unique prefix of a certificate in the database.

Examples:
   certsweep track add 3f2a9c --owner web-team --note "www load balancer"`,
				Flags: ownerFlags(),
				Action: func(c *cli.Context) error {
					arg, err := oneArg(c, "FINGERPRINT")
					if err != nil {
						return err
					}
					if c.String("owner") == "" {
						return usagef("track add needs --owner")
					}
					db, err := openDB(c.Context, c.String("db"), true)
					if err != nil {
						return err
					}
					defer db.Close()
					fp, err := resolveFingerprint(c.Context, db, arg)
					if err != nil {
						return err
					}
					err = db.AddTracked(c.Context, []store.Tracked{{SHA256: fp, Owner: c.String("owner"), Note: c.String("note")}}, true)
					if err != nil {
						return failure(err, "")
					}
					fmt.Fprintf(c.App.Writer, "tracked %s (owner %s)\n", fp, report.Terminal(c.String("owner")))
					return nil
				},
			},
			{
				Name:      "issuer",
				Usage:     "track every certificate issued by a managed CA",
				ArgsUsage: "ISSUER-DN|CA-FINGERPRINT",
				Description: `ISSUER-DN is the issuer as certsweep prints it (see certsweep certs); or give
the fingerprint (or unique prefix) of the CA certificate itself.

Examples:
   certsweep track issuer "CN=Corp Issuing CA 2,O=Corp" --owner pki-team
   certsweep track issuer 9d41e0 --owner pki-team`,
				Flags: ownerFlags(),
				Action: func(c *cli.Context) error {
					issuer, err := oneArg(c, "ISSUER-DN or CA fingerprint")
					if err != nil {
						return err
					}
					if c.String("owner") == "" {
						return usagef("track issuer needs --owner")
					}
					db, err := openDB(c.Context, c.String("db"), true)
					if err != nil {
						return err
					}
					defer db.Close()
					if ca, err := db.FindCertificate(c.Context, issuer); err == nil {
						issuer = ca.Subject // a CA certificate: its subject is its certificates' issuer
					}
					err = db.AddTrackedIssuer(c.Context, store.TrackedIssuer{Issuer: issuer, Owner: c.String("owner"), Note: c.String("note")})
					if err != nil {
						return failure(err, "")
					}
					fmt.Fprintf(c.App.Writer, "tracking every certificate issued by %q (owner %s)\n", report.Terminal(issuer), report.Terminal(c.String("owner")))
					return nil
				},
			},
			{
				Name:      "rm",
				Usage:     "remove a tracked certificate or issuer rule",
				ArgsUsage: "FINGERPRINT|ISSUER-DN",
				Description: `Examples:
   certsweep track rm 3f2a9c0d...   # the full fingerprint
   certsweep track rm "CN=Corp Issuing CA 2,O=Corp"`,
				Flags: []cli.Flag{dbFlag()},
				Action: func(c *cli.Context) error {
					key, err := oneArg(c, "FINGERPRINT or ISSUER-DN")
					if err != nil {
						return err
					}
					db, err := openDB(c.Context, c.String("db"), false)
					if err != nil {
						return err
					}
					defer db.Close()
					if err := db.RemoveTracked(c.Context, key); err != nil {
						if errors.Is(err, store.ErrNotFound) {
							return &cliError{code: exitFailure, err: err, hint: "certsweep track list shows what is tracked"}
						}
						return failure(err, "")
					}
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list tracked certificates and issuer rules",
				Description: `Examples:
   certsweep track list
   certsweep track list --format csv > owners.csv   # re-importable with track import`,
				Flags: []cli.Flag{dbFlag(), formatFlag()},
				Action: listing(func(c *cli.Context, db *store.DB, f string) error {
					enc, err := report.NewEncoder(c.App.Writer, f, []string{"sha256", "serial", "issuer", "owner", "note", "rule", "added_at"})
					if err != nil {
						return err
					}
					for t, err := range db.TrackedEntries(c.Context) {
						if err != nil {
							return failure(err, "")
						}
						rule := "certificate"
						if t.SHA256 == "" {
							rule = "serial+issuer"
						}
						if err := enc.Encode(t.SHA256, t.Serial, t.Issuer, t.Owner, t.Note, rule, t.AddedAt); err != nil {
							return err
						}
					}
					for r, err := range db.TrackedIssuers(c.Context) {
						if err != nil {
							return failure(err, "")
						}
						if err := enc.Encode("", "", r.Issuer, r.Owner, r.Note, "issuer", r.AddedAt); err != nil {
							return err
						}
					}
					return enc.Close()
				}),
			},
		},
	}
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

// readTrackedCSV parses an import file. Errors name the line.
func readTrackedCSV(path string, stdin io.Reader) ([]store.Tracked, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError(fmt.Errorf("cannot read %s: %w", path, err), "")
		}
		defer f.Close()
		r = f
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: no header row: %w", path, err), "the first row names the columns: sha256, serial, issuer, owner, note")
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) // a BOM from spreadsheets
		if h == "fingerprint" {
			h = "sha256"
		}
		col[h] = i
	}
	if _, ok := col["owner"]; !ok {
		return nil, usagef("%s: the header has no owner column", path)
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(strings.TrimPrefix(rec[i], "'")) // undo our CSV formula guard
		}
		return ""
	}
	var out []store.Tracked
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, usageError(fmt.Errorf("%s: %w", path, err), "")
		}
		t := store.Tracked{Owner: get(rec, "owner"), Note: get(rec, "note"), Issuer: get(rec, "issuer")}
		if t.Owner == "" {
			return nil, usagef("%s line %d: no owner", path, line)
		}
		if fp := strings.ToLower(strings.ReplaceAll(get(rec, "sha256"), ":", "")); fp != "" {
			if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
				return nil, usagef("%s line %d: %q is not a SHA-256 fingerprint (64 hex digits)", path, line, fp)
			}
			t.SHA256, t.Issuer = fp, ""
		} else {
			serial, ok := store.NormalizeSerial(get(rec, "serial"))
			if !ok || t.Issuer == "" {
				return nil, usagef("%s line %d: give a sha256, or a hex serial and an issuer", path, line)
			}
			t.Serial = serial
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, usagef("%s has no rows to import", path)
	}
	return out, nil
}
