package store_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

func TestZZIngest(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	ctx := context.Background()
	ca, _ := scannertest.NewCA("x")
	var leaves []scanner.Cert
	for i := range 10000 {
		tc, _ := ca.Leaf(scannertest.CertOptions{CommonName: fmt.Sprint(i)})
		leaves = append(leaves, scanner.ParseCert(tc.Certificate[0]))
	}
	inter := scanner.ParseCert(ca.Intermediate.DER)
	db, _ := store.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	id, _ := db.CreateSweep(ctx, store.Sweep{Ports: "443"})
	w := db.NewWriter(id, store.DefaultWriterOptions())
	start := time.Now()
	for i := range 200000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		w.Write(ctx, uint64(i), scanner.Result{Target: scanner.Target{Addr: netip.AddrPortFrom(a, 443)}, Start: start, End: time.Now(), Status: "ok", Connected: true, Chain: []scanner.Cert{leaves[i%10000], inter}})
	}
	w.Close()
	t.Logf("%.0f obs/s", 200000/time.Since(start).Seconds())
}
