package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/certsweep/certsweep/store"
)

// printVersion prints certsweep's version and those of the two engines
// whose behaviour a bug report needs: zcrypto (TLS, x509) and SQLite.
func printVersion(w io.Writer) error {
	version, zcrypto, sqliteDriver := "(devel)", "unknown", "unknown"
	var revision, modified string
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" {
			version = v
		}
		for _, dep := range bi.Deps {
			switch dep.Path {
			case "github.com/zmap/zcrypto":
				zcrypto = dep.Version
			case "github.com/mattn/go-sqlite3":
				sqliteDriver = dep.Version
			}
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = ", modified"
				}
			}
		}
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if revision != "" {
		version += " (commit " + revision + modified + ")"
	}
	_, err := fmt.Fprintf(w, "certsweep %s\nzcrypto %s\nSQLite %s (github.com/mattn/go-sqlite3 %s)\n%s %s/%s\n",
		version, zcrypto, store.SQLiteVersion(), sqliteDriver, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
