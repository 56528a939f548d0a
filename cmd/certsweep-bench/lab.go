package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

// serveLab starts a lab of n endpoints (ECDSA P-256 and RSA-2048 leaves,
// distinct per address), prints "FIRST-LAST PORT" and serves until stdin
// closes.
func serveLab(args []string) error {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	n := fs.Int("n", 2000, "endpoints")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lab, err := scannertest.NewLabOf(*n, scannertest.BenchKinds)
	if err != nil {
		return err
	}
	defer lab.Close()
	first := lab.Endpoints[0].Server.Addr.Addr()
	last := lab.Endpoints[len(lab.Endpoints)-1].Server.Addr.Addr()
	fmt.Printf("%s-%s %d\n", first, last, lab.Port)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes our stdin
	return nil
}

// baseline is the minimal dialer certsweep is compared with: plain
// crypto/tls handshakes, the same concurrency, no rate limit, no parsing
// beyond the handshake's own, no storage.
func baseline(args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	rng := fs.String("range", "", "address range a-b")
	port := fs.Int("port", 0, "port")
	conc := fs.Int("concurrency", 64, "handshakes in flight")
	timeout := fs.Duration("timeout", 5*time.Second, "per handshake")
	classical := fs.Bool("classical", false, "offer the key-exchange groups certsweep offers (no ML-KEM) instead of crypto/tls's defaults")
	if err := fs.Parse(args); err != nil {
		return err
	}
	in, err := scanner.ParseInput(*rng, false)
	if err != nil {
		return err
	}
	addrs := make(chan netip.Addr, *conc)
	go func() {
		defer close(addrs)
		for a := in.Lo; a.Compare(in.Hi) <= 0; a = a.Next() {
			addrs <- a
		}
	}()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	cfg := &tls.Config{InsecureSkipVerify: true}
	if *classical {
		cfg.CurvePreferences = []tls.CurveID{tls.CurveP256, tls.X25519, tls.CurveP384, tls.CurveP521}
	}
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range addrs {
				d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: *timeout}, Config: cfg}
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(*port)).String())
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				c.Close()
			}
		}()
	}
	wg.Wait()
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "ok %d failed %d\n", ok.Load(), failed.Load())
	return w.Flush()
}
