package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete old sweeps and their observations, and give the space back",
		Description: `Deletes the sweeps that --keep-sweeps or --older-than select (a sweep goes when
any rule given selects it), with their observations and statistics. A running
sweep is never touched. --keep-sweeps N keeps the latest N complete sweeps of
each name, and the interrupted sweeps newer than the N-th of them (they may
still be resumed). --older-than deletes the sweeps started before that long
ago: 365d (days) or a Go duration such as 720h.

Every certificate keeps its first_seen and last_seen. --drop-unseen-certs also
deletes the certificates that no observation left presents, except CA
certificates (they keep judging the chains of the sweeps kept) and tracked
ones. Alerts already sent are kept, so pruned findings are not sent again.

Observations go in batches of 5,000 rows, one short transaction each, with a
pause between them, so a sweep running meanwhile waits for one batch at most
(the longest batch is printed). Then VACUUM gives the space back to the file
system; while a sweep is running it is skipped, and SQLite reuses the free
space instead. VACUUM needs about the database's size in free disk for a while.
--dry-run prints what would go and changes nothing.

Examples:
   certsweep prune --older-than 365d
   certsweep prune --keep-sweeps 52 --drop-unseen-certs
   certsweep prune --keep-sweeps 1 --dry-run`,
		Flags: []cli.Flag{dbFlag(),
			&cli.IntFlag{Name: "keep-sweeps", Usage: "keep the latest `N` complete sweeps of each name; delete the older ones"},
			&cli.StringFlag{Name: "older-than", Usage: "delete the sweeps started more than `AGE` ago: days (365d) or a Go duration (720h)"},
			&cli.BoolFlag{Name: "drop-unseen-certs", Usage: "also delete the certificates no remaining observation presents (not CAs, not tracked ones)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be deleted; change nothing"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			opts := store.PruneOptions{KeepSweeps: c.Int("keep-sweeps"), Now: time.Now(),
				DropUnseenCerts: c.Bool("drop-unseen-certs"), DryRun: c.Bool("dry-run")}
			if c.IsSet("keep-sweeps") && opts.KeepSweeps < 1 {
				return usagef("--keep-sweeps %d: keep at least 1 (to delete everything, delete the file)", opts.KeepSweeps)
			}
			if c.IsSet("older-than") {
				d, err := parseWindow(c.String("older-than"))
				if err != nil || d <= 0 {
					return usageError(fmt.Errorf("--older-than %q: want an age such as 365d or 720h", c.String("older-than")), "")
				}
				opts.OlderThan = d
			}
			if opts.KeepSweeps == 0 && opts.OlderThan == 0 && !opts.DropUnseenCerts {
				return usageError(errors.New("prune needs --keep-sweeps, --older-than or --drop-unseen-certs"), "e.g. certsweep prune --older-than 365d")
			}
			return withDB(c, false, func(db *store.DB) error { return runPrune(c, db, opts) })
		},
	}
}

func runPrune(c *cli.Context, db *store.DB, opts store.PruneOptions) error {
	w := c.App.Writer
	verb := "deleted"
	if opts.DryRun {
		verb = "would delete"
	}
	res, err := db.Prune(c.Context, opts, func(s store.PrunedSweep) {
		fmt.Fprintf(w, "%s sweep %d (%s, %s, started %s): %d observations; %s\n", verb, s.ID, report.Terminal(s.Name),
			s.State, s.StartedAt.UTC().Format("2006-01-02"), s.Observations, s.Why)
	})
	if err != nil {
		hint := "what was deleted before the failure stays deleted; run prune again"
		if store.IsLocked(err) {
			hint = "another process held the database's write lock for over 5 s (a merge, or a long transaction); run prune again"
		}
		return failure(fmt.Errorf("prune %s: %w", db.Path(), err), hint)
	}
	if opts.DryRun {
		for _, s := range res.Sweeps {
			fmt.Fprintf(w, "%s sweep %d (%s, %s, started %s): %d observations; %s\n", verb, s.ID, report.Terminal(s.Name),
				s.State, s.StartedAt.UTC().Format("2006-01-02"), s.Observations, s.Why)
		}
	}
	certs := ""
	if opts.DropUnseenCerts {
		certs = fmt.Sprintf(", %d unseen certificates", res.Certificates)
	}
	fmt.Fprintf(w, "prune %s: %s %d sweeps, %d observations%s", db.Path(), verb, len(res.Sweeps), res.Observations, certs)
	if opts.DryRun {
		fmt.Fprintf(w, "; nothing changed (%s)\n", sizeText(res.SizeBefore))
		return nil
	}
	fmt.Fprintf(w, " in %d batches (longest %s); %s → %s\n", res.Batches, res.LongestBatch.Round(time.Millisecond),
		sizeText(res.SizeBefore), sizeText(res.SizeAfter))
	if res.VacuumSkipped != "" {
		fmt.Fprintf(c.App.ErrWriter, "certsweep: not compacted: %s\n", res.VacuumSkipped)
	}
	return nil
}

// sizeText is a file size for people: "12.3 MB".
func sizeText(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1f kB", float64(n)/1e3)
}
