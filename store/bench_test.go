package store_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// BenchmarkWriterBatch measures ingest through the single writer: each
// result is one observation with a two-certificate chain whose intermediate
// repeats and whose leaf is new one time in ten.
func BenchmarkWriterBatch(b *testing.B) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("bench")
	if err != nil {
		b.Fatal(err)
	}
	var leaves []scanner.Cert
	for range 64 {
		tc, err := ca.Leaf(scannertest.CertOptions{CommonName: "bench.test"})
		if err != nil {
			b.Fatal(err)
		}
		leaves = append(leaves, scanner.ParseCert(tc.Certificate[0]))
	}
	inter := scanner.ParseCert(ca.Intermediate.DER)
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	id, err := db.CreateSweep(ctx, store.Sweep{Ports: "443"})
	if err != nil {
		b.Fatal(err)
	}
	w := db.NewWriter(id, store.DefaultWriterOptions())
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		leaf := leaves[i%len(leaves)]
		if i%10 == 0 {
			leaf.SHA256[0], leaf.SHA256[1], leaf.SHA256[2] = byte(i), byte(i>>8), byte(i>>16)
		}
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		r := scanner.Result{Target: scanner.Target{Addr: netip.AddrPortFrom(a, 443)}, Start: now, End: now,
			Status: scanner.StatusOK, Connected: true, TLSVersion: 0x0304, CipherSuite: 0x1301,
			Chain: []scanner.Cert{leaf, inter}}
		if err := w.Write(ctx, uint64(i), r); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "observations/s")
}
