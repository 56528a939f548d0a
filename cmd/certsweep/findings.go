package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

const exitFindings = 3 // --fail-on: a finding at or above the threshold

// findingFlags are shared by `report` and `findings`.
func findingFlags() []cli.Flag {
	return []cli.Flag{
		dbFlag(), formatFlag(),
		&cli.Int64Flag{Name: "sweep", Usage: "judge sweep `ID` (default: the latest complete sweep)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o", "O"}, Usage: "write to `FILE` (atomically, on success) instead of stdout"},
		&cli.StringFlag{Name: "expiring-within", Value: "30d", Usage: "`WINDOW` for expiring: days (30d or 30) or a Go duration (72h)"},
		&cli.Float64Flag{Name: "expiring-fraction", Value: 0.8, Usage: "also expiring once this `FRACTION` of a certificate's lifetime is used, for lifetimes up to 398 days (0 = off)"},
		&cli.IntFlag{Name: "max-addresses-per-cert", Usage: "a leaf presented on more than `N` addresses is a shared-certificate finding (0 = off)"},
		&cli.IntFlag{Name: "min-rsa-bits", Value: 2048, Usage: "RSA and DSA keys below this are weak-key"},
		&cli.IntFlag{Name: "min-ec-bits", Value: 256, Usage: "EC keys below this are weak-key"},
		&cli.IntFlag{Name: "max-validity-days", Value: 398, Usage: "publicly trusted leaves valid longer than this are long-validity"},
		&cli.StringSliceFlag{Name: "ca-bundle", Usage: "PEM `FILE` of the organisation's own CAs, trusted besides the system roots"},
		&cli.BoolFlag{Name: "no-system-roots", Usage: "trust only --ca-bundle, not the system's public roots"},
		&cli.BoolFlag{Name: "lint", Usage: "also run zlint and report its error and fatal results as lint findings"},
		&cli.StringFlag{Name: "fail-on", Usage: "exit 3 if any finding is at or above `SEVERITY` (info, low, medium, high, critical)"},
	}
}

// judgeSettings is what `report` and `findings` read from their flags.
type judgeSettings struct {
	format  string
	output  string
	sweepID int64
	policy  report.Policy
	failOn  report.Severity // -1: never
}

func judgeSettingsFrom(c *cli.Context) (judgeSettings, error) {
	s := judgeSettings{output: c.String("output"), failOn: -1, sweepID: c.Int64("sweep")}
	var err error
	// serve, metrics and alert judge without writing a listing: no --format.
	if slices.ContainsFunc(c.Command.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "format") }) {
		if s.format, err = format(c); err != nil {
			return s, err
		}
	}
	p := report.DefaultPolicy(time.Now().UTC())
	if p.ExpiringWithin, err = parseWindow(c.String("expiring-within")); err != nil {
		return s, usageError(fmt.Errorf("--expiring-within: %w", err), "write it as 30d, 30 (days) or 72h")
	}
	p.MinRSABits, p.MinECBits = c.Int("min-rsa-bits"), c.Int("min-ec-bits")
	p.ExpiringFraction, p.MaxAddressesPerCert = c.Float64("expiring-fraction"), c.Int("max-addresses-per-cert")
	if p.ExpiringFraction < 0 || p.ExpiringFraction > 1 {
		return s, usagef("--expiring-fraction %v: want a fraction from 0 (off) to 1, such as 0.8", p.ExpiringFraction)
	}
	if p.MaxAddressesPerCert < 0 {
		return s, usagef("--max-addresses-per-cert %d: want 0 (off) or more", p.MaxAddressesPerCert)
	}
	p.MaxPublicValidity = time.Duration(c.Int("max-validity-days")) * 24 * time.Hour
	p.Lint = c.Bool("lint")
	if !c.Bool("no-system-roots") {
		if p.Roots, err = x509.SystemCertPool(); err != nil {
			return s, failure(fmt.Errorf("load the system's root certificates: %w", err), "pass --no-system-roots with --ca-bundle")
		}
	}
	for _, f := range c.StringSlice("ca-bundle") {
		if p.OrgRoots == nil {
			p.OrgRoots = x509.NewCertPool()
		}
		if err := addBundle(p.OrgRoots, f); err != nil {
			return s, usageError(fmt.Errorf("--ca-bundle: %w", err), "give a PEM file of CA certificates")
		}
	}
	if f := c.String("fail-on"); f != "" {
		if s.failOn, err = report.ParseSeverity(f); err != nil {
			return s, usageError(fmt.Errorf("--fail-on: %w", err), "")
		}
	}
	s.policy = p
	return s, nil
}

// parseWindow reads "30d", "30" (days) or a Go duration such as "72h".
func parseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil && n >= 0 {
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a window", s)
	}
	return d, nil
}

func addBundle(pool *x509.CertPool, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("%s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s holds no PEM certificates", path)
	}
	return nil
}

// pickSweep returns the sweep to judge: the one asked for, or the latest
// complete one.
func pickSweep(ctx context.Context, db *store.DB, id int64) (int64, error) {
	if id != 0 {
		if _, err := db.FindSweep(ctx, id); err != nil {
			return 0, usageError(err, "certsweep sweeps lists the sweep IDs")
		}
		return id, nil
	}
	ids, err := db.LatestSweeps(ctx, 1)
	if err != nil {
		return 0, usageError(err, "run a sweep to completion first, or pass --sweep ID")
	}
	return ids[0], nil
}

// judge streams the endpoints of a sweep through the evaluator and calls
// each with the endpoint and its findings.
func judge(ctx context.Context, db *store.DB, s judgeSettings, each func(store.Endpoint, []report.Finding) error) error {
	var known [][]byte
	for c, err := range db.CACertificates(ctx) {
		if err != nil {
			return failure(fmt.Errorf("read CA certificates: %w", err), "")
		}
		known = append(known, c.DER)
	}
	certs := func(ctx context.Context, fp string) (store.Certificate, error) {
		return db.FindCertificate(ctx, fp)
	}
	owners, err := loadOwners(ctx, db)
	if err != nil {
		return err
	}
	ev := report.NewEvaluator(s.policy, certs, known)
	var facts report.SweepFacts
	if facts.KeyAddresses, err = db.ReusedKeys(ctx, s.sweepID, report.KeyReuseShown+1); err != nil {
		return failure(err, "")
	}
	if n := s.policy.MaxAddressesPerCert; n > 0 {
		if facts.CertAddresses, err = db.SharedCertificates(ctx, s.sweepID, n); err != nil {
			return failure(err, "")
		}
	}
	ev.SetFacts(facts)
	one := func(ep store.Endpoint) error {
		ow := owners.Of(ep)
		ep.Owner, ep.OwnerNote, ep.OwnerVia = ow.Name, ow.Note, ow.Via
		fs, err := ev.Evaluate(ctx, ep)
		if err != nil {
			return failure(err, "")
		}
		return each(ep, fs)
	}
	for ep, err := range db.Endpoints(ctx, s.sweepID) {
		if err != nil {
			return failure(fmt.Errorf("read sweep %d: %w", s.sweepID, err), "")
		}
		if err := one(ep); err != nil {
			return err
		}
	}
	// Endpoints that refused TLS presented no certificate but are a finding.
	plain := store.ObservationFilter{Statuses: []string{string(scanner.StatusNoStartTLS)}}
	for o, err := range db.Observations(ctx, s.sweepID, plain) {
		if err != nil {
			return failure(fmt.Errorf("read sweep %d: %w", s.sweepID, err), "")
		}
		err := one(store.Endpoint{SweepID: o.SweepID, IP: o.IP, Port: o.Port, SNI: o.SNI, Protocol: o.Protocol, Offer: o.Offer, Source: o.Source,
			ObservedAt: o.ObservedAt, Status: o.Status, Error: o.Error})
		if err != nil {
			return err
		}
	}
	return nil
}

// loadOwners reads the tracked inventory and owner rules.
func loadOwners(ctx context.Context, db *store.DB) (*report.Owners, error) {
	owners, err := report.LoadOwners(db.TrackedEntries(ctx), db.OwnerRules(ctx))
	if err != nil {
		return nil, failure(err, "")
	}
	return owners, nil
}

// coverage checks whether a sweep reached enough endpoints to be judged:
// none at all, or fewer than half of the previous complete sweep of the
// same name, means the scanner lost its network (or a firewall changed),
// not that the certificates went away. It returns a warning, or "".
func coverage(ctx context.Context, db *store.DB, sweepID int64) (string, error) {
	n, err := db.EndpointsReached(ctx, sweepID)
	if err != nil {
		return "", failure(err, "")
	}
	prev, err := db.PreviousComplete(ctx, sweepID)
	var before int64
	switch {
	case err == nil:
		if before, err = db.EndpointsReached(ctx, prev.ID); err != nil {
			return "", failure(err, "")
		}
	case !errors.Is(err, store.ErrNotFound):
		return "", failure(err, "")
	}
	switch {
	case n == 0:
		return fmt.Sprintf("sweep %d reached no TLS endpoint; check routing, firewalls and the port list before trusting this report", sweepID), nil
	case before > 0 && n*2 < before:
		return fmt.Sprintf("sweep %d reached %d TLS endpoints, fewer than half of the %d that sweep %d of the same name reached; check routing, firewalls and the port list before trusting this report",
			sweepID, n, before, prev.ID), nil
	}
	return "", nil
}

// withOutput runs write against stdout, or against a temporary file renamed
// to path once write succeeds, so a failed report never leaves half a file.
func withOutput(stdout io.Writer, path string, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		return write(stdout)
	}
	f, err := createBeside(path)
	if err != nil {
		return failure(fmt.Errorf("create %s: %w", path, err), "")
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return failure(fmt.Errorf("write %s: %w", path, err), "")
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return failure(fmt.Errorf("write %s: %w", path, err), "")
	}
	return nil
}

// createBeside creates a new temporary file in path's directory with the
// mode a plain create of path would give: the existing file's mode, or
// 0666 less the umask (os.CreateTemp's 0600 would hide a report from the
// people it is for).
func createBeside(path string) (*os.File, error) {
	mode := os.FileMode(0o666)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	for range 100 {
		name := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", base, rand.Uint32()))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil && mode != 0o666 {
			err = f.Chmod(mode) // keep the old file's mode exactly, umask aside
		}
		return f, err
	}
	return nil, fmt.Errorf("no free temporary name in %s", dir)
}

// writeJudged streams every endpoint of the chosen sweep through the
// evaluator into an encoder with the given columns; rows encodes one
// endpoint and returns the highest severity it listed, which --fail-on then
// judges.
//
// A sweep that reached too little (see coverage) is warned about on stderr
// and counts as a critical coverage-drop finding for --fail-on, whatever
// the filters; sweepRow, if not nil, also lists it.
func writeJudged(c *cli.Context, s judgeSettings, columns []string,
	rows func(enc report.Encoder, ep store.Endpoint, fs []report.Finding) (report.Severity, error),
	sweepRow func(enc report.Encoder, f report.Finding) error) error {
	return withDB(c, false, func(db *store.DB) error {
		var err error
		if s.sweepID, err = pickSweep(c.Context, db, s.sweepID); err != nil {
			return err
		}
		warning, err := coverage(c.Context, db, s.sweepID)
		if err != nil {
			return err
		}
		listed := report.Severity(-1)
		if warning != "" {
			fmt.Fprintf(c.App.ErrWriter, "certsweep: warning: %s\n", warning)
			listed = report.KindSeverity(report.KindCoverageDrop)
		}
		err = withOutput(c.App.Writer, s.output, func(w io.Writer) error {
			enc, err := report.NewEncoder(w, s.format, columns)
			if err != nil {
				return err
			}
			if warning != "" && sweepRow != nil {
				f := report.Finding{Kind: report.KindCoverageDrop, Severity: report.KindSeverity(report.KindCoverageDrop), Detail: warning}
				if err := sweepRow(enc, f); err != nil {
					return err
				}
			}
			err = judge(c.Context, db, s, func(ep store.Endpoint, fs []report.Finding) error {
				h, err := rows(enc, ep, fs)
				listed = max(listed, h)
				return err
			})
			if err != nil {
				return err
			}
			return enc.Close()
		})
		if err != nil {
			return err
		}
		return failOn(s, listed)
	})
}

func failOn(s judgeSettings, highest report.Severity) error {
	if s.failOn >= 0 && highest >= s.failOn {
		return &cliError{code: exitFindings, err: fmt.Errorf("findings at or above %s (highest: %s)", s.failOn, highest)}
	}
	return nil
}

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "one row per endpoint and certificate, with findings, severity and owner",
		Description: `Judges every endpoint of a sweep (default: the latest complete one) and writes
one row per (endpoint, certificate): ` + strings.Join(report.ReportColumns, ", ") + `.
findings is the ;-separated list of finding kinds, severity the highest of them.
CSV is RFC 4180 with a header row; text cells cannot start a spreadsheet formula.
--format html writes one self-contained page (no external fetches): counts by
severity, an expiry timeline, findings by kind and by subnet, and the endpoint
table, sortable and filterable; certsweep serve shows the same page live.

Examples:
   certsweep report --format csv -o certs.csv
   certsweep report --format html -o report.html
   certsweep report --sweep 12 --ca-bundle corp-roots.pem --format json
   certsweep report --format csv --fail-on high -o weekly.csv || mail -s "certificates need work" pki@corp.example < weekly.csv`,
		Flags: findingFlags(),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			s, err := judgeSettingsFrom(c)
			if err != nil {
				return err
			}
			return writeJudged(c, s, report.ReportColumns, func(enc report.Encoder, ep store.Endpoint, fs []report.Finding) (report.Severity, error) {
				return report.Highest(fs), enc.Encode(report.ReportRow(ep, fs, s.policy.Now)...)
			}, nil)
		},
	}
}

func findingsCommand() *cli.Command {
	flags := append(findingFlags(),
		&cli.StringSliceFlag{Name: "kind", Usage: "only findings of this `KIND` (repeatable, or comma-separated)"},
		&cli.StringFlag{Name: "min-severity", Value: "info", Usage: "only findings at or above `SEVERITY`"},
	)
	var kinds strings.Builder
	for _, k := range report.Kinds {
		fmt.Fprintf(&kinds, "   %-19s %-8s %s\n", k.Kind, k.Severity, k.Why)
	}
	return &cli.Command{
		Name:  "findings",
		Usage: "list findings, one per line: expired, weak, untrusted, shadow certificates...",
		Description: `Judges every endpoint of a sweep (default: the latest complete one) and lists
each finding on its own line: ` + strings.Join(report.FindingColumns, ", ") + `.

Finding kinds and severities:
` + kinds.String() + `
Examples:
   certsweep findings --min-severity high
   certsweep findings --kind expired,expiring --format csv
   certsweep findings --kind untracked --format json | jq -r .sha256 | sort -u
   certsweep findings --fail-on critical   # in CI: exit 3 on any critical finding`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			s, err := judgeSettingsFrom(c)
			if err != nil {
				return err
			}
			var want []report.Kind
			for _, v := range c.StringSlice("kind") {
				for _, k := range splitList(v) {
					kind, err := report.ParseKind(k)
					if err != nil {
						return usageError(fmt.Errorf("--kind: %w", err), "")
					}
					want = append(want, kind)
				}
			}
			minSev, err := report.ParseSeverity(c.String("min-severity"))
			if err != nil {
				return usageError(fmt.Errorf("--min-severity: %w", err), "")
			}
			// --fail-on looks at the findings listed, after the filters.
			return writeJudged(c, s, report.FindingColumns, func(enc report.Encoder, ep store.Endpoint, fs []report.Finding) (report.Severity, error) {
				listed := report.Severity(-1)
				for _, f := range fs {
					if f.Severity < minSev || (len(want) > 0 && !slices.Contains(want, f.Kind)) {
						continue
					}
					listed = max(listed, f.Severity)
					if err := enc.Encode(report.FindingRow(ep, f)...); err != nil {
						return listed, err
					}
				}
				return listed, nil
			}, func(enc report.Encoder, f report.Finding) error {
				return enc.Encode(report.FindingRow(store.Endpoint{}, f)...)
			})
		},
	}
}
