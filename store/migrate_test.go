package store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
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
