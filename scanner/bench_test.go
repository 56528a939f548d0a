package scanner_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

// BenchmarkPlanTargets measures target iteration over a /8 × 10 ports: the
// permutation and address arithmetic per probe.
func BenchmarkPlanTargets(b *testing.B) {
	in, err := scanner.ParseInput("10.0.0.0/8", false)
	if err != nil {
		b.Fatal(err)
	}
	p, _, err := scanner.NewPlan(context.Background(), []scanner.Input{in}, nil, scanner.DefaultPorts[:10], nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for range p.Targets(1) {
		if n++; n >= b.N {
			break
		}
	}
}

// BenchmarkParseCert measures summarising and fingerprinting one certificate.
func BenchmarkParseCert(b *testing.B) {
	ca, err := scannertest.NewCA("bench")
	if err != nil {
		b.Fatal(err)
	}
	for _, rsaBits := range []int{0, 2048} {
		cert, err := ca.Leaf(scannertest.CertOptions{CommonName: "bench.test", DNSNames: []string{"bench.test"}, RSABits: rsaBits})
		if err != nil {
			b.Fatal(err)
		}
		name := "ECDSA-P256"
		if rsaBits > 0 {
			name = fmt.Sprintf("RSA-%d", rsaBits)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c := scanner.ParseCert(cert.Certificate[0]); c.ParseError != "" {
					b.Fatal(c.ParseError)
				}
			}
		})
	}
}

// BenchmarkSweepLoopback sweeps a lab of 200 TLS endpoints (ECDSA P-256)
// without storage: handshakes per second through the whole sweep pipeline.
// The lab's servers run in the same process, so this measures both ends.
func BenchmarkSweepLoopback(b *testing.B) {
	lab, err := scannertest.NewLab(200)
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Close()
	in, err := scanner.ParseInput(lab.Prefix.String(), false)
	if err != nil {
		b.Fatal(err)
	}
	// Leave out the stalling peer: it would measure the timeout, not the sweep.
	var excl []scanner.Input
	for _, ep := range lab.Endpoints {
		if ep.Kind == "stall" {
			x, err := scanner.ParseInput(ep.Server.Addr.Addr().String(), false)
			if err != nil {
				b.Fatal(err)
			}
			excl = append(excl, x)
		}
	}
	p, _, err := scanner.NewPlan(context.Background(), []scanner.Input{in}, excl, []uint16{lab.Port}, nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := scanner.DefaultConfig()
	cfg.Rate, cfg.Concurrency = 0, 64
	ok := 0
	for b.Loop() {
		err := scanner.Sweep(context.Background(), p, cfg, func(_ context.Context, _ uint64, r scanner.Result) error {
			if r.Status == scanner.StatusOK {
				ok++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ok)/b.Elapsed().Seconds(), "handshakes/s")
}

// BenchmarkProbeProtocol measures one probe, connect to certificate, over
// implicit TLS and through each protocol's upgrade, against in-process
// peers (both ends in this process): what a protocol's preamble adds to a
// handshake.
func BenchmarkProbeProtocol(b *testing.B) {
	ca, err := scannertest.NewCA("bench")
	if err != nil {
		b.Fatal(err)
	}
	cert, err := ca.Leaf(scannertest.CertOptions{CommonName: "bench.test"})
	if err != nil {
		b.Fatal(err)
	}
	cfg := scannertest.TLSConfig(cert, 0, 0)
	for _, proto := range append([]string{"tls"}, scannertest.PeerProtocols()...) {
		b.Run(proto, func(b *testing.B) {
			var s *scannertest.Server
			if proto == "tls" {
				s, err = scannertest.NewTLSServer("127.0.0.1:0", cfg)
			} else {
				s, err = scannertest.NewPeer("127.0.0.1:0", proto, cfg, scannertest.Normal)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			p := scanner.NewProber()
			p.Protocols = map[uint16]scanner.Protocol{s.Addr.Port(): scanner.Protocol(proto)}
			for b.Loop() {
				if r := p.Probe(context.Background(), scanner.Target{Addr: s.Addr}); r.Status != scanner.StatusOK {
					b.Fatalf("%s probe: %s %s", proto, r.Status, r.Err)
				}
			}
		})
	}
}
