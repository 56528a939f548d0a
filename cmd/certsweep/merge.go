package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "import the sweeps of other certsweep databases (shards, sites) into one inventory",
		ArgsUsage: "DATABASE...",
		Description: `Imports every complete sweep of each DATABASE, with its observations and
certificates, into --db (created if missing). Certificates are stored once, by
fingerprint, with their first and last sighting combined. Each sweep keeps its
site; the shards of one sweep (the same name and seed, started within a day,
each (site, shard) once) become one sweep, whose statistics are their sum, so
findings, report and diff read it as a sweep made by one host. Running and
interrupted sweeps are skipped with a line saying so: merge again once they
are complete.

Merging a database again imports nothing twice, so a scheduled merge may list
the same files every week. A file that is not a certsweep database, a database
of a newer certsweep and --db itself are refused (exit 2) before anything is
written. A database of an older certsweep is upgraded in place first, as any
certsweep command would. Each sweep is imported in one transaction: an
interruption leaves whole sweeps only.

Examples:
   certsweep merge --db certs.db shard-0.db shard-1.db
   certsweep merge --db /var/lib/certsweep/certs.db frankfurt.db dallas.db`,
		Flags: []cli.Flag{dbFlag(),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the total"}},
		Action: func(c *cli.Context) error {
			if !c.Args().Present() {
				return usageError(errors.New("merge needs the databases to import"), "e.g. certsweep merge --db certs.db shard-0.db shard-1.db")
			}
			return runMerge(c, c.String("db"), c.Args().Slice())
		},
	}
}

func runMerge(c *cli.Context, central string, sources []string) error {
	ctx, w := c.Context, c.App.Writer
	centralInfo, err := store.Inspect(ctx, central)
	switch {
	case errors.Is(err, store.ErrNoDatabase): // a new inventory
	case err != nil:
		return mergeRefusal("--db "+central, err)
	}
	centralStat, _ := os.Stat(central)
	infos := make([]store.SourceInfo, len(sources))
	// Every source is checked before anything is written anywhere.
	for i, src := range sources {
		if st, err := os.Stat(src); err == nil && centralStat != nil && os.SameFile(st, centralStat) {
			return usageError(fmt.Errorf("%s is --db itself: a database cannot be merged into itself", src), "list the other databases")
		}
		if infos[i], err = store.Inspect(ctx, src); err != nil {
			return mergeRefusal(src, err)
		}
		if infos[i].Identity != "" && infos[i].Identity == centralInfo.Identity {
			return usageError(fmt.Errorf("%s is a copy of --db %s (the same database identity): merging it would import the inventory into itself", src, central),
				"list the shard and site databases only")
		}
	}
	for i, src := range sources {
		if infos[i].Current {
			continue
		}
		db, err := openDB(ctx, src, false) // migrates it, as any command would
		if err != nil {
			return err
		}
		db.Close()
		fmt.Fprintf(c.App.ErrWriter, "certsweep: upgraded %s from schema %d\n", src, infos[i].Version)
		if infos[i], err = store.Inspect(ctx, src); err != nil {
			return mergeRefusal(src, err)
		}
	}

	db, err := openDB(ctx, central, true)
	if err != nil {
		return err
	}
	defer db.Close()
	var t mergeTally
	for _, src := range sources {
		err := db.Merge(ctx, src, func(r store.MergeResult) { t.add(w, c.Bool("quiet"), src, r) })
		if err != nil {
			hint := "the sweeps merged before the failure are kept, each whole; fix the cause and merge again (nothing is imported twice)"
			if store.IsLocked(err) {
				hint = "another certsweep is writing to " + central + "; merge again when it is done (nothing is imported twice)"
			}
			return failure(err, hint)
		}
	}
	t.print(w, central)
	return nil
}

// mergeRefusal words why a database cannot be merged: exit 2, nothing
// written.
func mergeRefusal(what string, err error) error {
	switch {
	case errors.Is(err, store.ErrNoDatabase):
		return usageError(fmt.Errorf("no database at %s", strings.TrimPrefix(what, "--db ")), "")
	case errors.Is(err, store.ErrNotCertsweep):
		return usageError(err, "only certsweep databases can be merged; nothing was written")
	case errors.Is(err, store.ErrSchemaTooNew):
		return usageError(err, "upgrade this certsweep to merge it; nothing was written")
	}
	return failure(fmt.Errorf("read %s: %w", what, err), "")
}

// mergeTally counts what a merge did, for its last line.
type mergeTally struct {
	imported, before, skipped int
	observations, newCerts    int64
	into                      map[int64]bool
}

func (t *mergeTally) add(w io.Writer, quiet bool, src string, r store.MergeResult) {
	what := fmt.Sprintf("%s sweep %d (%s", src, r.SourceSweep, report.Terminal(r.Name))
	if r.Site != "" {
		what += ", site " + r.Site
	}
	if r.Shard != "" {
		what += ", shard " + r.Shard
	}
	what += ")"
	var line string
	switch r.Skipped {
	case "":
		t.imported++
		t.observations += r.Observations
		t.newCerts += r.NewCerts
		if t.into == nil {
			t.into = map[int64]bool{}
		}
		t.into[r.SweepID] = true
		how := "new sweep"
		if r.Joined {
			how = "joined sweep"
		}
		line = fmt.Sprintf("merged %s: %d observations, %d new certificates in %s → %s %d", what, r.Observations, r.NewCerts,
			r.Took.Round(1e6), how, r.SweepID)
	case store.StateRunning, store.StateInterrupted:
		t.skipped++
		line = fmt.Sprintf("skipped %s: %s; merge again once it is complete", what, r.Skipped)
	default:
		t.before++
		line = fmt.Sprintf("skipped %s: %s", what, r.Skipped)
		if r.SweepID != 0 {
			line += fmt.Sprintf(" (sweep %d)", r.SweepID)
		}
	}
	if !quiet {
		fmt.Fprintln(w, line)
	}
}

func (t *mergeTally) print(w io.Writer, central string) {
	fmt.Fprintf(w, "merge into %s: %d sweeps imported into %d (%d observations, %d new certificates); %d merged before; %d not complete\n",
		central, t.imported, len(t.into), t.observations, t.newCerts, t.before, t.skipped)
}
