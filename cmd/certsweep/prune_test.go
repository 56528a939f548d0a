package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner/scannertest"
)

// pruneFixture sweeps a loopback lab three times under one name: sweep 1
// sees the first lab, sweeps 2 and 3 a second lab on the same addresses
// (every certificate renewed, the CA too). The first lab's valid leaf is
// tracked. It returns the database and that leaf's fingerprint.
func pruneFixture(t *testing.T) (db, tracked string) {
	t.Helper()
	ctx := context.Background()
	first := newLab(t, 12)
	db = filepath.Join(t.TempDir(), "certs.db")
	sweep := func() {
		t.Helper()
		out, stderr, code := run(t, ctx, "sweep", "--db", db, "--name", "weekly", "--ports", fmt.Sprint(first.Port),
			"--rate", "0", "--timeout", "3s", "--quiet", first.Prefix.String())
		if code != 0 {
			t.Fatalf("sweep: exit %d\n%s%s", code, out, stderr)
		}
	}
	sweep()
	sum := sha256.Sum256(first.Endpoints[0].Presents[0])
	tracked = hex.EncodeToString(sum[:])
	if out, stderr, code := run(t, ctx, "track", "add", "--db", db, "--owner", "web-team", tracked); code != 0 {
		t.Fatalf("track add: exit %d\n%s%s", code, out, stderr)
	}
	first.Close()
	second, err := scannertest.NewLabAt(first.Prefix, first.Port, 12)
	if err != nil {
		t.Fatalf("a second lab on the same addresses: %v", err)
	}
	t.Cleanup(second.Close)
	sweep()
	sweep()
	return db, tracked
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestPruneKeepsLatest prunes to the latest 2 sweeps: the findings of the
// sweeps kept are the same before and after, every certificate keeps its
// first and last sighting, and a dry run changes nothing. Then
// --drop-unseen-certs deletes exactly the certificates only the pruned
// sweep presented, except its CA and the tracked leaf, and the file is
// smaller than before.
func TestPruneKeepsLatest(t *testing.T) {
	ctx := context.Background()
	db, tracked := pruneFixture(t)
	findings := func(id string) []string {
		return listRows(t, []string{"findings", "--db", db, "--sweep", id, "--no-system-roots"})
	}
	f2, f3 := findings("2"), findings("3")
	certs := listRows(t, []string{"certs", "--db", db}, "sha256", "is_ca", "first_seen", "last_seen")
	only1 := listRows(t, []string{"certs", "--db", db, "--sweep", "1"}, "sha256", "is_ca", "first_seen", "last_seen")
	sizeBefore := fileSize(t, db)
	if len(f2) == 0 || len(only1) < 10 {
		t.Fatalf("fixture: %d findings in sweep 2, %d certificates in sweep 1", len(f2), len(only1))
	}

	counts := tableCounts(t, db)
	out, stderr, code := run(t, ctx, "prune", "--db", db, "--keep-sweeps", "2", "--drop-unseen-certs", "--dry-run")
	if code != 0 || !strings.Contains(out, "would delete sweep 1 ") || !strings.Contains(out, "nothing changed") {
		t.Errorf("dry run: exit %d\n%s%s", code, out, stderr)
	}
	if tableCounts(t, db) != counts {
		t.Errorf("a dry run changed the database")
	}

	out, stderr, code = run(t, ctx, "prune", "--db", db, "--keep-sweeps", "2")
	if code != 0 || !strings.Contains(out, "deleted sweep 1 ") || !strings.Contains(out, "deleted 1 sweeps") {
		t.Fatalf("prune --keep-sweeps 2: exit %d\n%s%s", code, out, stderr)
	}
	if ids := listRows(t, []string{"sweeps", "--db", db}, "id"); !slices.Equal(ids, []string{"2", "3"}) {
		t.Errorf("sweeps after the prune: %v, want 2 and 3", ids)
	}
	if !slices.Equal(findings("2"), f2) || !slices.Equal(findings("3"), f3) {
		t.Errorf("the findings of the sweeps kept changed:\nbefore %q\nafter  %q", f2, findings("2"))
	}
	if got := listRows(t, []string{"certs", "--db", db}, "sha256", "is_ca", "first_seen", "last_seen"); !slices.Equal(got, certs) {
		t.Errorf("certificates or their first/last sighting changed without --drop-unseen-certs:\n%s", firstDiff(got, certs))
	}

	// Drop the certificates nothing presents any more.
	var wantDropped []string
	for _, r := range only1 {
		f := strings.Split(r, "|")
		if f[1] == "false" && f[0] != tracked {
			wantDropped = append(wantDropped, r)
		}
	}
	out, stderr, code = run(t, ctx, "prune", "--db", db, "--keep-sweeps", "2", "--drop-unseen-certs")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d unseen certificates", len(wantDropped))) {
		t.Fatalf("prune --drop-unseen-certs: exit %d, want %d certificates dropped\n%s%s", code, len(wantDropped), out, stderr)
	}
	var wantLeft []string
	for _, r := range certs {
		if !slices.Contains(wantDropped, r) {
			wantLeft = append(wantLeft, r)
		}
	}
	if got := listRows(t, []string{"certs", "--db", db}, "sha256", "is_ca", "first_seen", "last_seen"); !slices.Equal(got, wantLeft) {
		t.Errorf("after --drop-unseen-certs:\n%s", firstDiff(got, wantLeft))
	}
	if !slices.Equal(findings("2"), f2) || !slices.Equal(findings("3"), f3) {
		t.Errorf("--drop-unseen-certs changed the findings of the sweeps kept")
	}
	if after := fileSize(t, db); after >= sizeBefore {
		t.Errorf("the file is %d bytes after pruning, %d before: VACUUM gave nothing back", after, sizeBefore)
	}
}

// TestPruneWaitsForWriter: prune waits for a write transaction another
// process holds, and fails clearly, deleting nothing, when it is held past
// the busy timeout.
func TestPruneWaitsForWriter(t *testing.T) {
	ctx := context.Background()
	db, _ := pruneFixture(t)
	raw, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	hold := func() *sql.Conn {
		t.Helper()
		conn, err := raw.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		return conn
	}

	// Held past the busy timeout: a clear failure, nothing deleted.
	conn := hold()
	counts := tableCounts(t, db)
	_, stderr, code := run(t, ctx, "prune", "--db", db, "--keep-sweeps", "2")
	if code != exitFailure || !strings.Contains(stderr, "write lock") {
		t.Errorf("prune while another process holds the write lock: exit %d, %q; want exit 1 naming the lock", code, stderr)
	}
	conn.ExecContext(ctx, "ROLLBACK")
	conn.Close()
	if tableCounts(t, db) != counts {
		t.Errorf("the failed prune changed the database")
	}

	// Held a moment: prune waits for it, then prunes.
	conn = hold()
	done := make(chan struct{})
	var out string
	go func() {
		defer close(done)
		out, stderr, code = run(t, ctx, "prune", "--db", db, "--keep-sweeps", "2")
	}()
	time.Sleep(300 * time.Millisecond)
	conn.ExecContext(ctx, "COMMIT")
	conn.Close()
	<-done
	if code != 0 || !strings.Contains(out, "deleted 1 sweeps") {
		t.Errorf("prune after the writer committed: exit %d\n%s%s", code, out, stderr)
	}
}

// TestPruneUsage: prune needs a rule, and refuses nonsense ones.
func TestPruneUsage(t *testing.T) {
	db := filepath.Join(t.TempDir(), "certs.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "prune needs --keep-sweeps, --older-than or --drop-unseen-certs"},
		{[]string{"--keep-sweeps", "0"}, "keep at least 1"},
		{[]string{"--older-than", "soon"}, `--older-than "soon"`},
		{[]string{"--older-than", "0d"}, `--older-than "0d"`},
	} {
		_, stderr, code := run(t, context.Background(), append([]string{"prune", "--db", db}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("prune %v: exit %d, %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("a prune usage error created %s", db)
	}
}
