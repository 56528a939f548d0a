package store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certsweep/certsweep/store"
)

// A database written by a certsweep of schema 4 (before observations had a
// protocol) upgrades in place: its observations read as implicit TLS.
func TestUpgradeFromSchema4(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"0001_init.sql", "0002_tracking.sql", "0003_resume.sql", "0004_owners.sql"} {
		body, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(body) + "\nPRAGMA user_version = " + strconv.Itoa(i+1)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, q := range []string{
		`PRAGMA application_id = ` + strconv.Itoa(0x43535750), // "CSWP", as store writes it
		`INSERT INTO sweeps (id, started_at, finished_at, state, targets, ports, probes_total, seed)
			VALUES (1, '2026-11-01T00:00:00Z', '2026-11-01T00:01:00Z', 'complete', '["10.0.0.1"]', '443', 1, 7)`,
		`INSERT INTO observations (sweep_id, position, ip, port, observed_at, status)
			VALUES (1, 0, '10.0.0.1', 443, '2026-11-01T00:00:30Z', 'handshake-error')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open(schema 4) = %v", err)
	}
	defer db.Close()
	n := 0
	for o, err := range db.Observations(ctx, 1, store.ObservationFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if o.Protocol != "tls" || o.IP != "10.0.0.1" || o.Status != "handshake-error" {
			t.Errorf("upgraded observation = %+v, want protocol tls", o)
		}
		if o.Posture || o.Versions != nil || o.WeakCiphers != nil {
			t.Errorf("upgraded observation = %+v, want its posture not measured", o)
		}
	}
	if n != 1 {
		t.Errorf("%d observations after the upgrade, want 1", n)
	}
}

// A database of schema 8 (before sites) upgrades to schema 9: its sweeps
// have the empty site and the shard their options recorded ("" for a whole
// sweep, which schema 8 wrote as 0/1), its observations the empty site,
// and it gets an identity of its own. Its endpoints read as before.
func TestUpgradeFromSchema8(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(names) < 9 {
		t.Fatalf("migrations: %v %v", names, err)
	}
	for i, name := range names[:8] {
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(body) + "\nPRAGMA user_version = " + strconv.Itoa(i+1)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, q := range []string{
		`PRAGMA application_id = ` + strconv.Itoa(0x43535750),
		`INSERT INTO sweeps (id, started_at, finished_at, state, targets, ports, probes_total, seed, options) VALUES
			(1, '2026-11-01T00:00:00Z', '2026-11-01T00:01:00Z', 'complete', '["10.0.0.0/30"]', '443', 4, 7, '{"shard":"2/4"}'),
			(2, '2026-11-02T00:00:00Z', '2026-11-02T00:01:00Z', 'complete', '["10.0.0.0/30"]', '443', 4, 7, '{"shard":"0/1"}'),
			(3, '2026-11-03T00:00:00Z', '2026-11-03T00:01:00Z', 'complete', '["10.0.0.0/30"]', '443', 4, 7, '{}')`,
		`INSERT INTO observations (sweep_id, position, ip, port, observed_at, status, protocol) VALUES
			(3, 0, '10.0.0.1', 443, '2026-11-03T00:00:30Z', 'handshake-error', 'tls'),
			(3, 1, '10.0.0.2', 443, '2026-11-03T00:00:31Z', 'timeout', 'tls')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open(schema 8) = %v", err)
	}
	defer db.Close()
	for id, want := range map[int64]string{1: "2/4", 2: "", 3: ""} {
		sw, err := db.FindSweep(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if sw.Shard != want || sw.Site != "" {
			t.Errorf("upgraded sweep %d: shard %q, site %q; want shard %q, no site", id, sw.Shard, sw.Site, want)
		}
	}
	var ips []string
	for o, err := range db.Observations(ctx, 3, store.ObservationFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if o.Site != "" {
			t.Errorf("upgraded observation %s has site %q", o.IP, o.Site)
		}
		ips = append(ips, o.IP)
	}
	if strings.Join(ips, ",") != "10.0.0.1,10.0.0.2" {
		t.Errorf("upgraded sweep 3 lists %v, want 10.0.0.1 and 10.0.0.2", ips)
	}
	id, err := db.Identity(ctx)
	if err != nil || len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("identity %q (%v): want 32 hex digits", id, err)
	}
	info, err := store.Inspect(ctx, path)
	if err != nil || !info.Current || info.Identity != id {
		t.Errorf("Inspect = %+v, %v; want current, identity %s", info, err, id)
	}
}
