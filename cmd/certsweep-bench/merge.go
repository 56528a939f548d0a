package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// mergeBench measures certsweep merge and prune on synthetic databases:
// synth writes a source of n observations (2-certificate chains); merge
// imports it into a new inventory (wall time, observations/s, peak RSS of
// the certsweep child); then synth adds a second sweep to the source and
// prune --keep-sweeps 1 deletes the first, in batches, reporting the
// longest batch and the file size before and after.
func mergeBench(args []string) error {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	bin := fs.String("certsweep", "bin/certsweep", "the certsweep binary to measure")
	n := fs.Int("n", 1_000_000, "observations in the source database")
	certs := fs.Int("certs", 10_000, "distinct leaf certificates")
	dir := fs.String("dir", "", "directory for the databases (default: a temporary one, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "certsweep-bench-merge-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, central := filepath.Join(*dir, "shard.db"), filepath.Join(*dir, "certs.db")
	synthArgs := []string{"synth", "-db", src, "-n", fmt.Sprint(*n), "-certs", fmt.Sprint(*certs)}
	if _, err := measure(self, synthArgs...); err != nil {
		return err
	}
	m, err := measure(*bin, "merge", "--db", central, src)
	if err != nil {
		return err
	}
	fmt.Printf("merge: %d observations in %.1f s: %.0f observations/s; CPU %.1f s; peak RSS %d MB\n",
		*n, m.wall.Seconds(), float64(*n)/m.wall.Seconds(), m.cpu.Seconds(), m.rssKB/1024)
	fmt.Print(m.stdout)

	if _, err := measure(self, synthArgs...); err != nil { // a second sweep, so that the first can go
		return err
	}
	m, err = measure(*bin, "prune", "--db", src, "--keep-sweeps", "1", "--drop-unseen-certs")
	if err != nil {
		return err
	}
	longest := regexp.MustCompile(`longest [^)]*`).FindString(m.stdout)
	fmt.Printf("prune: %d observations in %.1f s (VACUUM included); %s; peak RSS %d MB\n", *n, m.wall.Seconds(), longest, m.rssKB/1024)
	fmt.Print(m.stdout)
	return nil
}
