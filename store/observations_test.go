package store_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// TestObservations writes a sweep through the Writer, resumes it, and reads
// back its endpoints: only connected probes, each endpoint once with its
// latest observation, the leaf when one was presented, in endpoint order.
func TestObservations(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("observations test")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := ca.Leaf(scannertest.CertOptions{CommonName: "obs.test"})
	if err != nil {
		t.Fatal(err)
	}
	chain := []scanner.Cert{scanner.ParseCert(tc.Certificate[0]), scanner.ParseCert(tc.Certificate[1])}
	leaf := chain[0]
	now := time.Now().UTC().Truncate(time.Millisecond)
	result := func(ip string, port uint16, sni string, status scanner.Status, connected bool, errText string, chain []scanner.Cert) scanner.Result {
		r := scanner.Result{
			Target: scanner.Target{Addr: netip.AddrPortFrom(netip.MustParseAddr(ip), port), SNI: sni},
			Start:  now, End: now.Add(42 * time.Millisecond),
			Status: status, Connected: connected, Err: errText, Chain: chain,
		}
		if status == scanner.StatusOK {
			r.TLSVersion, r.CipherSuite = 0x0303, 0xc02f
		}
		return r
	}
	write := func(t *testing.T, db *store.DB, id int64, opts store.WriterOptions, first uint64, rs ...scanner.Result) {
		t.Helper()
		w := db.NewWriter(id, opts)
		for i, r := range rs {
			if err := w.Write(ctx, first+uint64(i), r); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	read := func(t *testing.T, db *store.DB, id int64, f store.ObservationFilter) []store.Observation {
		t.Helper()
		var out []store.Observation
		for o, err := range db.Observations(ctx, id, f) {
			if err != nil {
				t.Fatalf("Observations: %v", err)
			}
			out = append(out, o)
		}
		return out
	}
	endpoints := func(obs []store.Observation) []string {
		var out []string
		for _, o := range obs {
			out = append(out, fmt.Sprintf("%s:%d/%s %s", o.IP, o.Port, o.SNI, o.Status))
		}
		return out
	}

	db := openTemp(t)
	id, err := db.CreateSweep(ctx, store.Sweep{Targets: []string{"127.9.0.0/24"}, Ports: "443,8443", ProbesTotal: 9})
	if err != nil {
		t.Fatal(err)
	}
	opts := store.WriterOptions{BatchSize: 3, FlushEvery: time.Hour}
	write(t, db, id, opts, 0,
		result("127.9.0.10", 443, "", scanner.StatusOK, true, "", chain),
		result("127.9.0.2", 443, "", scanner.StatusHandshake, true, "remote error: tls: bad certificate", chain[:1]),
		result("127.9.0.3", 443, "", scanner.StatusReset, true, "read: connection reset by peer", nil),
		result("127.9.0.4", 443, "", scanner.StatusRefused, false, "connect: connection refused", nil),
		result("127.9.0.5", 443, "", scanner.StatusTimeout, false, "dial tcp: i/o timeout", nil),
		result("127.9.0.6", 8443, "", scanner.StatusTimeout, true, "read: i/o timeout", nil),
	)
	// Resumed: the sweep probes 127.9.0.3 again, and it answers differently
	// this time; two more names on 127.9.0.10 are their own endpoints.
	p, err := db.SweepProgress(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	opts.Resume = p
	write(t, db, id, opts, 6,
		result("127.9.0.3", 443, "", scanner.StatusNotTLS, true, "tls: first record does not look like a TLS handshake", nil),
		result("127.9.0.10", 443, "b.obs.test", scanner.StatusOK, true, "", chain),
		result("127.9.0.10", 443, "a.obs.test", scanner.StatusOK, true, "", chain),
		result("::1", 443, "", scanner.StatusReset, true, "EOF", nil),
		result("9.9.9.9", 443, "", scanner.StatusReset, true, "EOF", nil),
	)
	// Another sweep's endpoints stay out of this one's listing.
	other, err := db.CreateSweep(ctx, store.Sweep{Ports: "443", ProbesTotal: 1})
	if err != nil {
		t.Fatal(err)
	}
	write(t, db, other, store.WriterOptions{BatchSize: 1, FlushEvery: time.Hour}, 0,
		result("127.9.0.2", 443, "", scanner.StatusOK, true, "", chain))

	t.Run("All", func(t *testing.T) {
		got := read(t, db, id, store.ObservationFilter{})
		// Ordered by address numerically (9.x before 127.x, .2 before .10,
		// IPv4 before IPv6), port and sni.
		want := []string{
			"9.9.9.9:443/ reset", "127.9.0.2:443/ handshake-error", "127.9.0.3:443/ not-tls", "127.9.0.6:8443/ timeout",
			"127.9.0.10:443/ ok", "127.9.0.10:443/a.obs.test ok", "127.9.0.10:443/b.obs.test ok",
			"::1:443/ reset",
		}
		if !slices.Equal(endpoints(got), want) {
			t.Fatalf("Observations = %q\nwant %q", endpoints(got), want)
		}
		failed, notTLS, timeout, ok := got[1], got[2], got[3], got[4]
		if ok.SweepID != id || ok.TLSVersion != "TLS 1.2" || ok.CipherSuite == "" || ok.Error != "" ||
			ok.LeafSHA256 != leaf.Fingerprint() || ok.LeafSubject != "CN=obs.test" {
			t.Errorf("ok endpoint = %+v, want TLS 1.2, a cipher, no error and the leaf %s", ok, leaf.Fingerprint())
		}
		if ok.Handshake != 42*time.Millisecond || !ok.ObservedAt.Equal(now.Add(42*time.Millisecond)) {
			t.Errorf("ok endpoint handshake %v at %v, want 42ms at %v", ok.Handshake, ok.ObservedAt, now.Add(42*time.Millisecond))
		}
		// A failed handshake that presented a chain carries its leaf.
		if failed.Error != "remote error: tls: bad certificate" || failed.LeafSHA256 != leaf.Fingerprint() || failed.TLSVersion != "" {
			t.Errorf("handshake-error endpoint = %+v, want its error and the leaf it presented", failed)
		}
		// The resumed probe replaced the first one.
		if notTLS.Error != "tls: first record does not look like a TLS handshake" || notTLS.LeafSHA256 != "" || notTLS.LeafSubject != "" {
			t.Errorf("not-tls endpoint = %+v, want the latest probe's error and no leaf", notTLS)
		}
		if timeout.Error != "read: i/o timeout" {
			t.Errorf("connected timeout = %+v, want its error", timeout)
		}
	})

	t.Run("Filter", func(t *testing.T) {
		got := read(t, db, id, store.ObservationFilter{Statuses: []string{"not-tls", "handshake-error"}})
		want := []string{"127.9.0.2:443/ handshake-error", "127.9.0.3:443/ not-tls"}
		if !slices.Equal(endpoints(got), want) {
			t.Errorf("Observations(not-tls, handshake-error) = %q, want %q", endpoints(got), want)
		}
		// The filter judges the latest observation: the earlier reset is gone.
		got = read(t, db, id, store.ObservationFilter{Statuses: []string{"reset"}})
		if want := []string{"9.9.9.9:443/ reset", "::1:443/ reset"}; !slices.Equal(endpoints(got), want) {
			t.Errorf("Observations(reset) = %q, want %q (127.9.0.3 was re-probed as not-tls)", endpoints(got), want)
		}
		if got := read(t, db, id, store.ObservationFilter{Statuses: []string{"refused"}}); len(got) != 0 {
			t.Errorf("Observations(refused) = %q, want none: refused ports are not observations", endpoints(got))
		}
	})

	t.Run("OtherSweep", func(t *testing.T) {
		got := read(t, db, other, store.ObservationFilter{})
		if want := []string{"127.9.0.2:443/ ok"}; !slices.Equal(endpoints(got), want) {
			t.Errorf("Observations(other sweep) = %q, want %q", endpoints(got), want)
		}
		if got := read(t, db, 99, store.ObservationFilter{}); len(got) != 0 {
			t.Errorf("Observations(unknown sweep) = %q, want none", endpoints(got))
		}
	})

	t.Run("Break", func(t *testing.T) {
		// Stopping early closes the rows: the database stays usable.
		for range db.Observations(ctx, id, store.ObservationFilter{}) {
			break
		}
		if _, err := db.FindSweep(ctx, id); err != nil {
			t.Errorf("FindSweep after breaking out of Observations: %v", err)
		}
	})
}
