package store_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
	ztls "github.com/zmap/zcrypto/tls"
)

// TestPostureStored writes endpoints with and without a measured posture
// and reads them back through Endpoints, Observations and Sightings:
// "measured, nothing weak accepted" stays apart from "not measured".
func TestPostureStored(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("posture store test")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := ca.Leaf(scannertest.CertOptions{CommonName: "posture.test"})
	if err != nil {
		t.Fatal(err)
	}
	chain := []scanner.Cert{scanner.ParseCert(tc.Certificate[0])}
	now := time.Now()
	result := func(ip string, p *scanner.Posture) scanner.Result {
		return scanner.Result{
			Target: scanner.Target{Addr: netip.AddrPortFrom(netip.MustParseAddr(ip), 443)},
			Start:  now, End: now.Add(time.Millisecond), Status: scanner.StatusOK, Connected: true,
			TLSVersion: ztls.VersionTLS12, CipherSuite: ztls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			Chain: chain, Posture: p,
		}
	}
	db := openTemp(t)
	id, err := db.CreateSweep(ctx, store.Sweep{Ports: "443", ProbesTotal: 3})
	if err != nil {
		t.Fatal(err)
	}
	w := db.NewWriter(id, store.WriterOptions{BatchSize: 10, FlushEvery: time.Hour})
	for i, r := range []scanner.Result{
		result("127.9.1.1", &scanner.Posture{
			Versions:    []uint16{ztls.VersionSSL30, ztls.VersionTLS10, ztls.VersionTLS12},
			WeakCiphers: []uint16{ztls.TLS_RSA_WITH_RC4_128_SHA, ztls.TLS_RSA_WITH_3DES_EDE_CBC_SHA},
		}),
		result("127.9.1.2", &scanner.Posture{Versions: []uint16{ztls.VersionTLS12, ztls.VersionTLS13}}),
		result("127.9.1.3", nil),
	} {
		if err := w.Write(ctx, uint64(i), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	type posture struct {
		measured       bool
		versions, weak []string
	}
	want := map[string]posture{
		"127.9.1.1": {true, []string{"SSLv3", "TLS 1.0", "TLS 1.2"}, []string{"TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"}},
		"127.9.1.2": {true, []string{"TLS 1.2", "TLS 1.3"}, nil},
		"127.9.1.3": {false, nil, nil},
	}
	check := func(what, ip string, got posture) {
		t.Helper()
		w := want[ip]
		if got.measured != w.measured || !slices.Equal(got.versions, w.versions) || !slices.Equal(got.weak, w.weak) {
			t.Errorf("%s %s: posture %v, versions %q, weak %q; want %v, %q, %q", what, ip, got.measured, got.versions, got.weak, w.measured, w.versions, w.weak)
		}
	}
	n := 0
	for ep, err := range db.Endpoints(ctx, id) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		check("Endpoints", ep.IP, posture{ep.Posture, ep.Versions, ep.WeakCiphers})
	}
	for o, err := range db.Observations(ctx, id, store.ObservationFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		check("Observations", o.IP, posture{o.Posture, o.Versions, o.WeakCiphers})
	}
	for s, err := range db.Sightings(ctx, chain[0].SHA256) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		check("Sightings", s.IP, posture{s.Posture, s.Versions, s.WeakCiphers})
	}
	if n != 9 {
		t.Errorf("read %d rows, want 3 endpoints, 3 observations and 3 sightings", n)
	}
}
