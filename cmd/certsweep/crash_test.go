package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
)

// TestMain lets a test run this package's main() in a child process (the
// test binary re-executed), so that it can be killed like the real binary.
func TestMain(m *testing.M) {
	if os.Getenv("CERTSWEEP_TEST_RUN_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// TestSweepSurvivesSIGKILL kills a running sweep, then resumes it, with
// each discovery mode: a resumed SYN sweep sends SYNs to what was not
// answered before the kill.
func TestSweepSurvivesSIGKILL(t *testing.T) {
	for _, mode := range []string{"connect", "syn"} {
		t.Run(mode, func(t *testing.T) {
			if err := scanner.CheckSYN(); mode == "syn" && err != nil {
				t.Skipf("SYN discovery unavailable here: %v", err)
			}
			sweepSurvivesSIGKILL(t, mode)
		})
	}
}

func sweepSurvivesSIGKILL(t *testing.T, mode string) {
	ctx := context.Background()
	lab := newLab(t, 20)
	db := filepath.Join(t.TempDir(), "certs.db")
	port := fmt.Sprint(lab.Port)
	// An earlier, complete sweep that the crash must not disturb.
	if out, errOut, code := run(t, ctx, "sweep", "--db", db, "--quiet", "--rate", "0", "--timeout", "2s", "--ports", port, lab.Prefix.String()); code != 0 {
		t.Fatalf("first sweep exit %d: %s %s", code, out, errOut)
	}
	d, err := store.OpenExisting(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	before, err := d.FindSweep(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}

	// The second sweep runs in a child at 20 probes/s: about 13 s for 256.
	cmd := exec.Command(os.Args[0], "sweep", "--db", db, "--quiet", "--rate", "20", "--discovery", mode, "--ports", port, lab.Prefix.String())
	cmd.Env = append(os.Environ(), "CERTSWEEP_TEST_RUN_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Killed once 40 results and at least one observation are committed:
	// the probe order is random, so the first 40 probes of the /24 can all
	// miss the lab's 20 endpoints (about 4% of runs).
	var committed, reached int64
	deadline := time.Now().Add(20 * time.Second)
	for (committed < 40 || reached == 0) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if s, err := d.FindSweep(ctx, 2); err == nil {
			if s.State != store.StateRunning {
				t.Fatalf("sweep 2 is %s while its process runs", s.State)
			}
			committed = s.Done()
			reached, _ = d.EndpointsReached(ctx, 2)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if committed < 40 || reached == 0 {
		t.Fatalf("only %d results (%d endpoints) were committed before the deadline", committed, reached)
	}

	raw := openIntact(t, db, "SIGKILL")
	after, err := d.FindSweep(ctx, 1)
	if err != nil || after.State != store.StateComplete || after.Done() != before.Done() || after.NewCerts != before.NewCerts {
		t.Errorf("earlier sweep changed by the crash: %+v (was %+v), %v", after, before, err)
	}
	killed, err := d.FindSweep(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if killed.State != store.StateInterrupted || killed.Done() < committed || killed.Done() >= 256 {
		t.Errorf("killed sweep: state %s, %d results committed (saw %d before the kill); want interrupted, >= %d",
			killed.State, killed.Done(), committed, committed)
	}
	var obs int
	if err := raw.QueryRow("SELECT count(*) FROM observations WHERE sweep_id = 2").Scan(&obs); err != nil || obs == 0 {
		t.Errorf("observations of the killed sweep: %d, %v", obs, err)
	}
	out, _, code := run(t, ctx, "sweeps", "--db", db, "--format", "csv")
	if code != 0 || !strings.Contains(out, "\r\n2,"+lab.Prefix.String()+" ports "+port+",interrupted,") {
		t.Errorf("sweeps after the kill:\n%s", out)
	}

	// --resume finishes the sweep without probing anything twice.
	out, errOut, code := run(t, ctx, "sweep", "--db", db, "--resume", "2", "--rate", "0", "--timeout", "2s")
	if code != 0 {
		t.Fatalf("resume exit %d:\n%s%s", code, out, errOut)
	}
	done, err := d.FindSweep(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != store.StateComplete || done.Done() != 256 || done.ProbesTotal != 256 {
		t.Errorf("resumed sweep: state %s, %d of %d probes; want complete, exactly 256", done.State, done.Done(), done.ProbesTotal)
	}
	if done.Options["discovery"] != mode {
		t.Errorf("sweep 2 recorded discovery %v, want %s", done.Options["discovery"], mode)
	}
	var rows, endpoints int
	if err := raw.QueryRow(`SELECT count(*), count(DISTINCT ip || ':' || port) FROM observations WHERE sweep_id = 2`).Scan(&rows, &endpoints); err != nil {
		t.Fatal(err)
	}
	if rows != len(lab.Endpoints) || endpoints != len(lab.Endpoints) {
		t.Errorf("resumed sweep has %d observations of %d endpoints, want each of the %d endpoints once", rows, endpoints, len(lab.Endpoints))
	}
	if _, errOut, code := run(t, ctx, "sweep", "--db", db, "--resume", "2"); code != exitUsage || !strings.Contains(errOut, "sweep 2 is complete") {
		t.Errorf("resuming a complete sweep: exit %d %q", code, errOut)
	}
	if _, errOut, code := run(t, ctx, "sweep", "--db", db, "--resume", "1", "--ports", "443"); code != exitUsage || !strings.Contains(errOut, "--ports cannot change it") {
		t.Errorf("resume with --ports: exit %d %q", code, errOut)
	}
}

// TestDiskFull runs a sweep whose files may not grow past a limit
// (RLIMIT_FSIZE, as on a full disk: writes fail with EFBIG). The sweep must
// fail with a message and exit 1, and the database must stay intact.
func TestDiskFull(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to set the file-size limit")
	}
	ctx := context.Background()
	small := newLab(t, 13)
	db := filepath.Join(t.TempDir(), "certs.db")
	if out, errOut, code := run(t, ctx, "sweep", "--db", db, "--quiet", "--rate", "0", "--timeout", "1s", "--ports", fmt.Sprint(small.Port), small.Prefix.String()); code != 0 {
		t.Fatalf("first sweep exit %d: %s %s", code, out, errOut)
	}
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	big := newLab(t, 250)
	limitKB := fi.Size()/1024 + 64 // room for a few batches, not for 250 new certificates
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -f %d && exec "$0" "$@"`, limitKB),
		os.Args[0], "sweep", "--db", db, "--quiet", "--rate", "0", "--timeout", "1s", "--ports", fmt.Sprint(big.Port), big.Prefix.String())
	cmd.Env = append(os.Environ(), "CERTSWEEP_TEST_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("sweep on a full disk: %v, want exit 1\n%s", err, out)
	}
	t.Logf("%s", out)
	if !strings.Contains(string(out), "certsweep: sweep 2 stopped: recording results failed") {
		t.Errorf("stderr does not say what failed:\n%s", out)
	}

	d, err := store.OpenExisting(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	openIntact(t, db, "a full disk")
	first, err := d.FindSweep(ctx, 1)
	if err != nil || first.State != store.StateComplete || first.Done() != 256 {
		t.Errorf("earlier sweep after a full disk: %+v, %v", first, err)
	}
	failed, err := d.FindSweep(ctx, 2)
	if err != nil || failed.State != store.StateInterrupted {
		t.Errorf("failed sweep: %+v, %v; want interrupted", failed, err)
	}
}

// openIntact opens db read-only, beside certsweep's own store, and fails the
// test unless SQLite's integrity check passes after the named event.
func openIntact(t *testing.T, db, after string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	var check string
	if err := raw.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check after %s = %q, %v", after, check, err)
	}
	return raw
}
