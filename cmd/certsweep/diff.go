package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:  "diff",
		Usage: "what changed between two sweeps of the same name: endpoints, rotations, new and gone certificates",
		Description: `Compares two complete sweeps of the same name, like with like: by default the
latest complete sweep and the complete sweep of its name before it, so an ad-hoc
sweep under another name in between changes nothing. --name picks the name;
--to ID compares sweep ID with the complete sweep of its name before it; --from ID
compares sweep ID with the latest complete sweep of its name after it; both pick
any two sweeps. "certsweep sweeps" lists sweeps with their names.

Only endpoints that both sweeps probed are compared. When the sweeps' targets,
excludes or ports differ, a warning says so, and an endpoint outside the other
sweep's targets or ports counts as not probed: never gone, never new.

One row per change, endpoint rows first (by address, numerically, then port and
SNI), then certificate rows:
   certificate-changed  the endpoint presents another leaf: a rotation, old -> new
   endpoint-gone        answered before, not now; old_* is its last certificate
   endpoint-new         answers now, did not before
   certificate-new      a certificate presented now, not before, that no endpoint
                        row already shows (e.g. a new intermediate)
   certificate-gone     a certificate presented before, nowhere now, that no
                        endpoint row already shows (e.g. a retired intermediate)
A certificate row names the first endpoint (by address) that presents it.
A summary line on stderr counts each kind of change.

Columns (csv, json): ` + strings.Join(report.DiffColumns, ", ") + `
Fingerprints are full SHA-256; times are UTC. The table shows 12-hex fingerprints,
the endpoint as ip:port and SNI, the expiry date of the row's certificate (the new
one, or the old one when gone), and shortens the subject to fit 120 columns.

--fail-on CHANGE[,CHANGE] exits 3 when any change of those kinds occurred, after
writing everything.

Examples:
   certsweep diff
   certsweep diff --name weekly
   certsweep diff --to 12
   certsweep diff --from 11 --to 12 --format csv > changes.csv
   certsweep diff --format json | jq 'select(.change == "certificate-changed")'
   certsweep diff --name weekly --fail-on endpoint-gone,certificate-changed`,
		Flags: []cli.Flag{
			dbFlag(), formatFlag(),
			&cli.Int64Flag{Name: "from", Usage: "older sweep `ID` (default: the complete sweep of --to's name before it)"},
			&cli.Int64Flag{Name: "to", Usage: "newer sweep `ID` (default: the latest complete sweep; with --from, the latest of its name after it)"},
			&cli.StringFlag{Name: "name", Usage: "compare the latest two complete sweeps named `NAME` (default: the latest complete sweep's name)"},
			&cli.StringFlag{Name: "fail-on", Usage: "exit 3 if a change of any of these `KINDS` occurs, comma-separated: " + kindList()},
		},
		Action: listing(func(c *cli.Context, db *store.DB, f string) error {
			var failOn []report.ChangeKind
			if c.IsSet("fail-on") {
				var err error
				if failOn, err = report.ParseChangeKinds(c.String("fail-on")); err != nil {
					return usageError(fmt.Errorf("--fail-on: %w", err), "")
				}
			}
			from, to, err := pickDiffSweeps(c, db)
			if err != nil {
				return err
			}
			return runDiff(c, db, f, from, to, failOn)
		}),
	}
}

func kindList() string {
	s := make([]string, len(report.ChangeKinds))
	for i, k := range report.ChangeKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// named describes a sweep name in messages.
func named(name string) string {
	if name == "" {
		return "without a name (written by an older certsweep)"
	}
	return fmt.Sprintf("named %q", name)
}

const sweepsHint = "certsweep sweeps lists the sweeps and their names; --from ID --to ID compares any two"

// pickDiffSweeps applies --from, --to and --name: by default the latest
// complete sweep and the complete sweep of its name before it.
func pickDiffSweeps(c *cli.Context, db *store.DB) (from, to store.Sweep, err error) {
	ctx := c.Context
	fromID, toID, name := c.Int64("from"), c.Int64("to"), c.String("name")
	if c.IsSet("name") && (fromID != 0 || toID != 0) {
		return from, to, usagef("--name picks both sweeps; give it without --from and --to")
	}
	find := func(flag string, id int64) (store.Sweep, error) {
		s, err := db.FindSweep(ctx, id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return s, usageError(fmt.Errorf("--%s: %w", flag, err), sweepsHint)
			}
			return s, failure(err, "")
		}
		return s, nil
	}
	notFound := func(err error, format string, args ...any) error {
		if errors.Is(err, store.ErrNotFound) {
			return usageError(fmt.Errorf(format, args...), sweepsHint)
		}
		return failure(err, "")
	}
	switch {
	case fromID != 0 && toID != 0:
		if fromID == toID {
			return from, to, usagef("--from and --to are both sweep %d; give two sweeps", fromID)
		}
		if from, err = find("from", fromID); err != nil {
			return
		}
		to, err = find("to", toID)
		return
	case fromID != 0:
		if from, err = find("from", fromID); err != nil {
			return
		}
		if to, err = db.LatestComplete(ctx, from.Name, from.ID); err != nil {
			return from, to, notFound(err, "no complete sweep %s after sweep %d to compare it with", named(from.Name), from.ID)
		}
		return
	case toID != 0:
		if to, err = find("to", toID); err != nil {
			return
		}
	case c.IsSet("name"):
		if to, err = db.LatestComplete(ctx, name, 0); err != nil {
			return from, to, notFound(err, "diff needs two complete sweeps %s; there is none", named(name))
		}
	default:
		ids, err := db.LatestSweeps(ctx, 1)
		if err != nil {
			return from, to, notFound(err, "diff needs two complete sweeps of the same name; there is no complete sweep")
		}
		if to, err = db.FindSweep(ctx, ids[0]); err != nil {
			return from, to, failure(err, "")
		}
	}
	if from, err = db.PreviousComplete(ctx, to.ID); err != nil {
		return from, to, notFound(err, "diff needs two complete sweeps %s; sweep %d has no complete one before it", named(to.Name), to.ID)
	}
	return from, to, nil
}

// scopeOf rebuilds what a sweep probed from what it stored.
func scopeOf(s store.Sweep) (*scanner.Scope, error) {
	sni, _ := s.Options["sni"].(string)
	sc, err := scanner.NewScope(s.Targets, s.Excludes, s.Ports, sni)
	if err != nil {
		return nil, failure(fmt.Errorf("sweep %d: %w", s.ID, err), "")
	}
	return sc, nil
}

func runDiff(c *cli.Context, db *store.DB, format string, from, to store.Sweep, failOn []report.ChangeKind) error {
	ctx, stderr := c.Context, c.App.ErrWriter
	for _, s := range []store.Sweep{from, to} {
		if s.State != store.StateComplete {
			fmt.Fprintf(stderr, "certsweep: warning: sweep %d is %s: endpoints it did not reach show as endpoint-gone or endpoint-new\n", s.ID, s.State)
		}
	}
	// A sweep that lost its network would list every endpoint as gone.
	if warning, err := coverage(ctx, db, to.ID); err != nil {
		return err
	} else if warning != "" {
		fmt.Fprintf(stderr, "certsweep: warning: %s\n", warning)
	}
	fromScope, err := scopeOf(from)
	if err != nil {
		return err
	}
	toScope, err := scopeOf(to)
	if err != nil {
		return err
	}
	sameScope := fromScope.Equal(toScope)
	if sameScope {
		fromScope, toScope = nil, nil // nothing to leave out: skip the lookups
	}
	enc, err := report.NewDiffEncoder(c.App.Writer, format)
	if err != nil {
		return usageError(err, "")
	}
	owners, err := loadOwners(ctx, db)
	if err != nil {
		return err
	}
	// The owner of a row's certificate at its endpoint (rules may select by
	// address); one lookup per changed row, nothing per unchanged endpoint.
	owner := func(ip string, port int, sni, leafSHA256 string) string {
		cert, err := db.FindCertificate(ctx, leafSHA256)
		if err != nil || leafSHA256 == "" {
			return ""
		}
		return owners.Of(store.Endpoint{IP: ip, Port: port, SNI: sni, Leaf: cert}).Name
	}
	sum, err := report.Diff(
		report.DiffSource{Endpoints: db.EndpointStates(ctx, from.ID), Chains: db.ChainCerts(ctx, from.ID), Scope: fromScope},
		report.DiffSource{Endpoints: db.EndpointStates(ctx, to.ID), Chains: db.ChainCerts(ctx, to.ID), Scope: toScope},
		owner, enc.Encode)
	if err != nil {
		return failure(fmt.Errorf("diff sweeps %d and %d: %w", from.ID, to.ID, err), "")
	}
	if err := enc.Close(); err != nil {
		return failure(err, "")
	}
	if !sameScope {
		fmt.Fprintf(stderr, "certsweep: warning: sweeps %d and %d probed different targets or ports; endpoints outside the scope both probed are not compared (%d not probed)\n",
			from.ID, to.ID, sum.NotProbed)
	}
	printDiffSummary(stderr, from, to, sum)
	if sum.Any(failOn) {
		var hit []string
		for _, k := range failOn {
			if n := sum.Counts[k]; n > 0 {
				hit = append(hit, fmt.Sprintf("%d %s", n, k))
			}
		}
		return &cliError{code: exitFindings, err: fmt.Errorf("--fail-on: %s", strings.Join(hit, ", "))}
	}
	return nil
}

func printDiffSummary(w io.Writer, from, to store.Sweep, sum report.DiffSummary) {
	label := func(name string) string {
		if name == "" {
			return "unnamed"
		}
		return report.Terminal(name)
	}
	names := label(to.Name)
	if from.Name != to.Name {
		names = label(from.Name) + " → " + names
	}
	fmt.Fprintf(w, "certsweep: diff sweep %d → %d (%s): %s\n", from.ID, to.ID, names, sum)
}
