package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

func openTemp(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "certs.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new.db")
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open(new file) = %v", err)
		}
		db.Close()
		// Reopening an up-to-date database works and migrates nothing.
		db, err = store.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open(existing) = %v", err)
		}
		db.Close()
	})
	t.Run("ErrNoDatabase", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.db")
		if _, err := store.OpenExisting(ctx, path); !errors.Is(err, store.ErrNoDatabase) {
			t.Errorf("OpenExisting(missing) = %v, want ErrNoDatabase", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("OpenExisting created %s", path)
		}
	})
	t.Run("NotSQLiteIsUntouched", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "notes.txt")
		content := bytes.Repeat([]byte("my precious notes\n"), 300)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Open(ctx, path); !errors.Is(err, store.ErrNotCertsweep) {
			t.Errorf("Open(text file) = %v, want ErrNotCertsweep", err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
			t.Errorf("Open(text file) modified the file")
		}
	})
	t.Run("OtherSQLiteIsUntouched", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		other, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Exec(`CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)`); err != nil {
			t.Fatal(err)
		}
		other.Close()
		before, _ := os.ReadFile(path)
		if _, err := store.Open(ctx, path); !errors.Is(err, store.ErrNotCertsweep) {
			t.Errorf("Open(other app's database) = %v, want ErrNotCertsweep", err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("Open(other app's database) modified the file")
		}
		if _, err := os.Stat(path + "-wal"); err == nil {
			t.Errorf("Open(other app's database) left a WAL file")
		}
	})
	t.Run("ErrSchemaTooNew", func(t *testing.T) {
		db := openTemp(t)
		path := db.Path()
		db.Close()
		raw, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`PRAGMA user_version = 999`); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		if _, err := store.Open(ctx, path); !errors.Is(err, store.ErrSchemaTooNew) {
			t.Errorf("Open(schema 999) = %v, want ErrSchemaTooNew", err)
		}
	})
	t.Run("ConcurrentCreate", func(t *testing.T) {
		// Several certsweeps creating one database at once (cron jobs that
		// start together) must all succeed: none may see the others'
		// half-made file as another application's.
		for round := range 20 {
			path := filepath.Join(t.TempDir(), "shared.db")
			errs := make(chan error, 6)
			for range cap(errs) {
				go func() {
					db, err := store.Open(ctx, path)
					if err == nil {
						err = db.Close()
					}
					errs <- err
				}()
			}
			for range cap(errs) {
				if err := <-errs; err != nil {
					t.Fatalf("round %d: concurrent Open = %v", round, err)
				}
			}
		}
	})
}

func TestWriter_Batch(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("store test")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := ca.Leaf(scannertest.CertOptions{CommonName: "db.test", DNSNames: []string{"db.test", "alt.test"}})
	if err != nil {
		t.Fatal(err)
	}
	chain := []scanner.Cert{scanner.ParseCert(tc.Certificate[0]), scanner.ParseCert(tc.Certificate[1])}
	garbage := scanner.ParseCert([]byte("\x30\x03\x02\x01\x05 not a certificate"))
	if garbage.ParseError == "" {
		t.Fatal("ParseCert(garbage) recorded no parse error")
	}
	now := time.Now()
	result := func(i int, status scanner.Status, connected bool, chain []scanner.Cert) scanner.Result {
		return scanner.Result{
			Target: scanner.Target{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 9, 0, byte(i)}), 443)},
			Start:  now, End: now.Add(time.Duration(i) * time.Millisecond),
			Status: status, Connected: connected, Chain: chain,
			TLSVersion: 0x0303, CipherSuite: 0xc02f,
		}
	}

	t.Run("OK", func(t *testing.T) {
		db := openTemp(t)
		id, err := db.CreateSweep(ctx, store.Sweep{Targets: []string{"127.9.0.0/24"}, Ports: "443", ProbesTotal: 5})
		if err != nil {
			t.Fatal(err)
		}
		w := db.NewWriter(id, store.WriterOptions{BatchSize: 2, FlushEvery: time.Hour})
		results := []scanner.Result{
			result(1, scanner.StatusOK, true, chain),
			result(2, scanner.StatusOK, true, chain[:1]),
			result(3, scanner.StatusRefused, false, nil),
			result(4, scanner.StatusTimeout, false, nil),
			result(5, scanner.StatusHandshake, true, []scanner.Cert{garbage}),
		}
		for i, r := range results {
			if err := w.Write(ctx, uint64(i), r); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got := w.NewCerts(); got != 3 {
			t.Errorf("NewCerts() = %d, want 3", got)
		}
		if err := db.FinishSweep(ctx, id, store.StateComplete, time.Now()); err != nil {
			t.Fatal(err)
		}
		s, err := db.FindSweep(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{"ok": 2, "refused": 1, "timeout": 1, "handshake-error": 1}
		for k, v := range want {
			if s.Stats[k] != v {
				t.Errorf("sweep stats[%s] = %d, want %d (all: %v)", k, s.Stats[k], v, s.Stats)
			}
		}
		if s.State != store.StateComplete || s.NewCerts != 3 || s.Done() != 5 {
			t.Errorf("sweep = state %s, new %d, done %d; want complete, 3, 5", s.State, s.NewCerts, s.Done())
		}

		var got []store.Certificate
		for c, err := range db.Certificates(ctx, store.CertFilter{SweepID: id}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, c)
		}
		if len(got) != 3 {
			t.Fatalf("Certificates(sweep) = %d certificates, want 3", len(got))
		}
		leaf, err := db.FindCertificate(ctx, chain[0].Fingerprint()[:10])
		if err != nil {
			t.Fatalf("FindCertificate(prefix): %v", err)
		}
		if !bytes.Equal(leaf.DER, chain[0].DER) || leaf.Subject != "CN=db.test" || len(leaf.SANs) != 2 {
			t.Errorf("stored leaf = %q SANs %v, want CN=db.test with 2 SANs and the same DER", leaf.Subject, leaf.SANs)
		}
		if !leaf.NotAfter.Equal(chain[0].NotAfter.Truncate(time.Second)) {
			t.Errorf("stored not_after = %v, want %v", leaf.NotAfter, chain[0].NotAfter)
		}
		bad, err := db.FindCertificate(ctx, garbage.Fingerprint())
		if err != nil {
			t.Fatalf("FindCertificate(unparsable): %v", err)
		}
		if bad.ParseError == "" || !bytes.Equal(bad.DER, garbage.DER) {
			t.Errorf("unparsable certificate stored without its DER or parse error: %+v", bad)
		}
		var sightings int
		for _, err := range db.Sightings(ctx, chain[0].SHA256) {
			if err != nil {
				t.Fatal(err)
			}
			sightings++
		}
		if sightings != 2 {
			t.Errorf("Sightings(leaf) = %d, want 2", sightings)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		db := openTemp(t)
		if _, err := db.FindCertificate(ctx, "abcdef"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FindCertificate(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := db.FindSweep(ctx, 42); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FindSweep(42) = %v, want ErrNotFound", err)
		}
	})

	t.Run("CancelledSweepStillCommits", func(t *testing.T) {
		db := openTemp(t)
		id, err := db.CreateSweep(ctx, store.Sweep{Ports: "443"})
		if err != nil {
			t.Fatal(err)
		}
		sweepCtx, cancel := context.WithCancel(ctx)
		w := db.NewWriter(id, store.WriterOptions{BatchSize: 100, FlushEvery: time.Hour})
		if err := w.Write(sweepCtx, 0, result(1, scanner.StatusOK, true, chain)); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := w.Close(); err != nil {
			t.Fatalf("Close after cancel: %v", err)
		}
		s, err := db.FindSweep(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Stats["ok"] != 1 {
			t.Errorf("after cancel, committed ok = %d, want 1", s.Stats["ok"])
		}
	})
}

func TestWriter_Progress(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	id, err := db.CreateSweep(ctx, store.Sweep{Ports: "443", ProbesTotal: 10})
	if err != nil {
		t.Fatal(err)
	}
	refused := scanner.Result{Status: scanner.StatusRefused, Target: scanner.Target{Addr: netip.MustParseAddrPort("127.0.0.1:1")}}
	w := db.NewWriter(id, store.WriterOptions{BatchSize: 3, FlushEvery: time.Hour})
	for _, pos := range []uint64{1, 0, 4, 2, 7, 9} { // 3, 5, 6 and 8 are still in flight
		if err := w.Write(ctx, pos, refused); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := db.SweepProgress(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Below != 3 || len(p.Done) != 3 || !p.Done[4] || !p.Done[7] || !p.Done[9] {
		t.Fatalf("progress = below %d, done %v; want below 3, done {4 7 9}", p.Below, p.Done)
	}
	for pos, want := range map[uint64]bool{0: true, 2: true, 3: false, 4: true, 5: false, 8: false, 9: true} {
		if p.Skip(pos) != want {
			t.Errorf("Skip(%d) = %v, want %v", pos, !want, want)
		}
	}
	// A resumed writer fills the gaps and the watermark passes everything.
	w = db.NewWriter(id, store.WriterOptions{BatchSize: 2, FlushEvery: time.Hour, Resume: p})
	for _, pos := range []uint64{5, 3, 8, 6} {
		if err := w.Write(ctx, pos, refused); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if p, err = db.SweepProgress(ctx, id); err != nil || p.Below != 10 || len(p.Done) != 0 {
		t.Errorf("after resume: below %d, done %v, %v; want 10 and none", p.Below, p.Done, err)
	}
}

// TestWriter_LongChains writes a batch in which the chain rows fill their
// multi-row INSERT before the observation rows fill theirs (three
// certificates a chain over 100 observations): every chain row must still
// find its observation.
func TestWriter_LongChains(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("long chains")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := ca.Leaf(scannertest.CertOptions{CommonName: "chain.test"})
	if err != nil {
		t.Fatal(err)
	}
	chain := []scanner.Cert{scanner.ParseCert(tc.Certificate[0]), scanner.ParseCert(tc.Certificate[1]), scanner.ParseCert(ca.Root.DER)}
	db := openTemp(t)
	id, err := db.CreateSweep(ctx, store.Sweep{Targets: []string{"127.9.0.0/24"}, Ports: "443", ProbesTotal: 100})
	if err != nil {
		t.Fatal(err)
	}
	w := db.NewWriter(id, store.WriterOptions{BatchSize: 100, FlushEvery: time.Hour})
	now := time.Now()
	for i := range 100 {
		r := scanner.Result{Target: scanner.Target{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 9, 1, byte(i)}), 443)},
			Start: now, End: now, Status: scanner.StatusOK, Connected: true, Chain: chain}
		if err := w.Write(ctx, uint64(i), r); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	n := 0
	for ep, err := range db.Endpoints(ctx, id) {
		if err != nil {
			t.Fatal(err)
		}
		if len(ep.Chain) != 3 {
			t.Errorf("%s: chain of %d, want 3", ep.IP, len(ep.Chain))
		}
		n++
	}
	if n != 100 {
		t.Errorf("%d endpoints stored, want 100", n)
	}
}
