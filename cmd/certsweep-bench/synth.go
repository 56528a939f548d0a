package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"flag"
	"fmt"
	"net/netip"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// synth writes a synthetic sweep through the store's own API: n
// observations, each a leaf from a pool of `certs` distinct certificates
// plus a shared intermediate, and prints the ingest rate.
func synth(args []string) error {
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	path := fs.String("db", "", "database file to create")
	n := fs.Int("n", 1_000_000, "observations")
	certs := fs.Int("certs", 10_000, "distinct leaf certificates")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	ca, err := scannertest.NewCA("synthetic")
	if err != nil {
		return err
	}
	// Distinct real certificates (one shared key keeps generation fast).
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaves := make([]scanner.Cert, *certs)
	for i := range leaves {
		name := fmt.Sprintf("host-%d.synthetic.test", i)
		tc, err := ca.Leaf(scannertest.CertOptions{CommonName: name, DNSNames: []string{name}, Key: key})
		if err != nil {
			return err
		}
		leaves[i] = scanner.ParseCert(tc.Certificate[0])
	}
	inter := scanner.ParseCert(ca.Intermediate.DER)

	db, err := store.Open(ctx, *path)
	if err != nil {
		return err
	}
	defer db.Close()
	id, err := db.CreateSweep(ctx, store.Sweep{Name: "synthetic", Targets: []string{"10.0.0.0/8"}, Ports: "443", ProbesTotal: uint64(*n)})
	if err != nil {
		return err
	}
	w := db.NewWriter(id, store.DefaultWriterOptions())
	start := time.Now()
	for i := range *n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		r := scanner.Result{Target: scanner.Target{Addr: netip.AddrPortFrom(a, 443)}, Start: start, End: start,
			Status: scanner.StatusOK, Connected: true, TLSVersion: 0x0304, CipherSuite: 0x1301,
			Chain: []scanner.Cert{leaves[i%len(leaves)], inter}}
		if err := w.Write(ctx, uint64(i), r); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	if err := db.FinishSweep(ctx, id, store.StateComplete, time.Now()); err != nil {
		return err
	}
	fmt.Printf("observations %d seconds %.3f rate %.0f\n", *n, elapsed.Seconds(), float64(*n)/elapsed.Seconds())
	return nil
}
