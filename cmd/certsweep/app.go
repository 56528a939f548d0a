package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

const defaultDB = "certsweep.db"

// newApp builds the command-line application. Output goes to stdout and
// stderr only, so tests can run it in-process.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "certsweep",
		Usage: "find every TLS certificate on your network and keep an inventory of them",
		Description: `certsweep sweeps address ranges and ports with TLS handshakes, records every
certificate each endpoint presents (the whole chain) in a SQLite database keyed by
SHA-256 fingerprint, and lists what it found.

Examples:
   certsweep demo                                    # try it on a built-in loopback lab
   certsweep sweep --ports 443,8443,636 10.20.0.0/16 10.30.0.0/20
   certsweep sweeps
   certsweep endpoints --outcome not-tls,handshake-error
   certsweep certs --format csv > certs.csv
   certsweep show 3f2a9c
   certsweep findings --min-severity high
   certsweep report --format csv -o weekly.csv --fail-on critical
   certsweep diff
   certsweep track import owners.csv

Flags may come before or after a command's arguments.

Exit status: 0 success, 1 runtime failure, 2 usage error (nothing written),
3 findings at or above --fail-on (report, findings) or a listed change (diff),
4 a sweep that reached no TLS endpoint (see --allow-empty), 130 interrupted
(what was observed is kept).`,
		Writer:               stdout,
		ErrWriter:            stderr,
		HideVersion:          true,
		EnableBashCompletion: false,
		// main alone decides exit codes; urfave/cli's default handler would
		// call os.Exit from inside Run and skip deferred flushes.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Commands: []*cli.Command{
			sweepCommand(),
			sweepsCommand(),
			certsCommand(),
			endpointsCommand(),
			showCommand(),
			findingsCommand(),
			reportCommand(),
			diffCommand(),
			trackCommand(),
			demoCommand(),
			alertCommand(),
			serveCommand(),
			metricsCommand(),
			mergeCommand(),
			pruneCommand(),
		},
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "version", Aliases: []string{"V"}, Usage: "print the version of certsweep, zcrypto and SQLite"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("version") {
				return printVersion(c.App.Writer)
			}
			if c.Args().Present() {
				return usageError(fmt.Errorf("unknown command %q", c.Args().First()), "run certsweep --help for the commands")
			}
			return cli.ShowAppHelp(c)
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
		for _, sub := range cmd.Subcommands {
			sub.OnUsageError = onUsageError
		}
	}
	return app
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	return usageError(err, "see "+commandPath(c)+" --help")
}

// commandPath is the command being run as the user typed it, e.g.
// "certsweep track rule" (urfave/cli's FullName omits the parents).
func commandPath(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			names = append([]string{ctx.Command.Name}, names...)
		}
	}
	return strings.Join(append([]string{c.App.Name}, names...), " ")
}

func dbFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "db",
		Usage:   "SQLite database `PATH`",
		EnvVars: []string{"CERTSWEEP_DB"},
		Value:   defaultDB,
	}
}

func formatFlag() cli.Flag {
	return &cli.StringFlag{
		Name:  "format",
		Usage: "output `FORMAT`: table, csv (RFC 4180), json (JSON Lines) or html (one self-contained page)",
		Value: "table",
	}
}

func format(c *cli.Context) (string, error) {
	f := c.String("format")
	if !slices.Contains(report.Formats, f) {
		return "", usagef("unknown --format %q: use %s", f, strings.Join(report.Formats, ", "))
	}
	return f, nil
}

// openDB opens the database for a command. Reading commands never create
// one; a file that is not a certsweep database is a usage error, never
// modified.
func openDB(ctx context.Context, path string, create bool) (*store.DB, error) {
	open := store.OpenExisting
	if create {
		open = store.Open
	}
	db, err := open(ctx, path)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, store.ErrNoDatabase):
		return nil, usageError(fmt.Errorf("no database at %s", path), "run certsweep sweep first, or pass --db / set CERTSWEEP_DB")
	case errors.Is(err, store.ErrNotCertsweep):
		return nil, usageError(fmt.Errorf("--db %s: %w", path, err), "it was left untouched; choose another --db path")
	case errors.Is(err, store.ErrSchemaTooNew):
		return nil, failure(err, "upgrade certsweep to read this database")
	}
	return nil, failure(fmt.Errorf("open database %s: %w", path, err), "check that its directory exists and is writable, and that the disk is not full")
}

// oneArg returns the single positional argument of a command. Flags may
// come before or after it (normalizeArgs).
func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", usagef("%s needs exactly one %s", c.Command.FullName(), what)
	}
	return c.Args().First(), nil
}

// listing wraps the action of a command that takes no arguments, a
// --format and a --db to read: it validates the first two and opens the
// third before calling fn, and closes the database after.
func listing(fn func(c *cli.Context, db *store.DB, format string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := noArgs(c); err != nil {
			return err
		}
		f, err := format(c)
		if err != nil {
			return err
		}
		return withDB(c, false, func(db *store.DB) error { return fn(c, db, f) })
	}
}

// withDB opens --db (creating it only if create is set), calls fn with it
// and closes it.
func withDB(c *cli.Context, create bool, fn func(db *store.DB) error) error {
	db, err := openDB(c.Context, c.String("db"), create)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// noArgs rejects stray positional arguments, which usually mean a flag was
// mistyped.
func noArgs(c *cli.Context) error {
	if c.Args().Present() {
		return usagef("unexpected argument %q", c.Args().First())
	}
	return nil
}
