package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/certsweep/certsweep/store"
)

func TestUnwritableDatabaseDirectory(t *testing.T) {
	// /proc refuses new files even to root, unlike a chmod'ed directory.
	_, errOut, code := run(t, context.Background(), "sweep", "--db", "/proc/certsweep-test.db", "--ports", "1", "127.0.0.1")
	if code != exitFailure || !strings.Contains(errOut, "open database /proc/certsweep-test.db") || !strings.Contains(errOut, "hint: check that its directory exists and is writable") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestTwoSweepsAtOnce(t *testing.T) {
	lab := newLab(t, 13)
	db := filepath.Join(t.TempDir(), "certs.db")
	if _, errOut, code := run(t, context.Background(), "sweeps", "--db", db); code != exitUsage {
		t.Fatalf("sweeps on a missing db: exit %d %s", code, errOut)
	}
	// Two processes, as in production (and urfave/cli keeps global flag
	// state, so two apps in one process would race).
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "sweep", "--db", db, "--quiet", "--rate", "0",
				"--timeout", "2s", "--ports", fmt.Sprint(lab.Port), lab.Prefix.String())
			cmd.Env = append(os.Environ(), "CERTSWEEP_TEST_RUN_MAIN=1")
			out, err := cmd.CombinedOutput()
			codes[i] = cmd.ProcessState.ExitCode()
			if err != nil {
				t.Logf("sweep %d: %v\n%s", i, err, out)
			}
		}()
	}
	// Read while they write.
	for range 5 {
		if _, errOut, code := run(t, context.Background(), "certs", "--db", db, "--format", "json"); code != 0 && code != exitUsage {
			t.Errorf("certs during the sweeps: exit %d %s", code, errOut)
		}
	}
	wg.Wait()
	if codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("concurrent sweeps exited %v, want both 0", codes)
	}
	d, err := store.OpenExisting(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for id := int64(1); id <= 2; id++ {
		s, err := d.FindSweep(context.Background(), id)
		if err != nil || s.State != store.StateComplete || s.Done() != 256 {
			t.Errorf("sweep %d: %+v, %v", id, s, err)
		}
	}
}

func TestLockedDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "certs.db")
	if _, errOut, code := run(t, context.Background(), "track", "add", "--db", db, "--owner", "x", strings.Repeat("a", 64)); code != 0 {
		t.Fatalf("setup: %s", errOut)
	}
	// Another program holds the write lock for longer than the busy timeout.
	other, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	_, errOut, code := run(t, context.Background(), "track", "add", "--db", db, "--owner", "y", strings.Repeat("b", 64))
	if code != exitFailure || !strings.Contains(errOut, "database is locked") {
		t.Errorf("write to a locked database: exit %d, stderr %q; want 1 and 'database is locked'", code, errOut)
	}
	// Readers are not blocked by a writer (WAL).
	if out, errOut, code := run(t, context.Background(), "track", "list", "--db", db, "--format", "csv"); code != 0 || !strings.Contains(out, strings.Repeat("a", 64)) {
		t.Errorf("read during the lock: exit %d %q %q", code, out, errOut)
	}
}

func TestDatabaseFromNewerCertsweep(t *testing.T) {
	db := filepath.Join(t.TempDir(), "certs.db")
	if _, errOut, code := run(t, context.Background(), "track", "add", "--db", db, "--owner", "x", strings.Repeat("a", 64)); code != 0 {
		t.Fatalf("setup: %s", errOut)
	}
	raw, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	for _, args := range [][]string{{"certs", "--db", db}, {"sweep", "--db", db, "--ports", "1", "127.0.0.1"}} {
		_, errOut, code := run(t, context.Background(), args...)
		if code != exitFailure || !strings.Contains(errOut, "written by a newer certsweep") || !strings.Contains(errOut, "hint: upgrade certsweep") {
			t.Errorf("%v on a newer database: exit %d, %q", args, code, errOut)
		}
	}
}
