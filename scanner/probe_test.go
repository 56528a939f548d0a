package scanner_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

// loopback returns a random 127.x.y.z address so parallel tests never collide.
func loopback(t *testing.T) string {
	t.Helper()
	return netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))}).String() + ":0"
}

func startTLS(t *testing.T, cfg *tls.Config) *scannertest.Server {
	t.Helper()
	s, err := scannertest.NewTLSServer(loopback(t), cfg)
	if err != nil {
		t.Fatalf("start TLS server: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func newCA(t *testing.T) *scannertest.CA {
	t.Helper()
	ca, err := scannertest.NewCA("test")
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func leaf(t *testing.T, ca *scannertest.CA, o scannertest.CertOptions) tls.Certificate {
	t.Helper()
	c, err := ca.Leaf(o)
	if err != nil {
		t.Fatalf("issue leaf: %v", err)
	}
	return c
}

func fingerprints(chain []scanner.Cert) [][32]byte {
	var out [][32]byte
	for _, c := range chain {
		out = append(out, c.SHA256)
	}
	return out
}

func derFingerprints(ders [][]byte) [][32]byte {
	var out [][32]byte
	for _, d := range ders {
		out = append(out, sha256.Sum256(d))
	}
	return out
}

func TestProbe(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "web.test", DNSNames: []string{"web.test"}})
	fullChain := cert
	fullChain.Certificate = append(slices.Clone(cert.Certificate), ca.Root.DER)

	tests := []struct {
		name        string
		cfg         *tls.Config
		sni         string
		wantStatus  scanner.Status
		wantVersion uint16
		wantChain   int
	}{
		{"tls12", scannertest.TLSConfig(cert, tls.VersionTLS12, tls.VersionTLS12), "", scanner.StatusOK, tls.VersionTLS12, 2},
		{"tls10-only", scannertest.TLSConfig(cert, tls.VersionTLS10, tls.VersionTLS10), "", scanner.StatusOK, tls.VersionTLS10, 2},
		{"tls13-only", scannertest.TLSConfig(cert, tls.VersionTLS13, tls.VersionTLS13), "", scanner.StatusOK, tls.VersionTLS13, 2},
		{"three-cert-chain", scannertest.TLSConfig(fullChain, 0, 0), "", scanner.StatusOK, tls.VersionTLS13, 3},
		{"sni-only/right-name", scannertest.SNIOnlyConfig(cert, "web.test"), "web.test", scanner.StatusOK, tls.VersionTLS13, 2},
		{"sni-only/no-name", scannertest.SNIOnlyConfig(cert, "web.test"), "", scanner.StatusHandshake, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startTLS(t, tc.cfg)
			r := scanner.NewProber().Probe(context.Background(), scanner.Target{Addr: s.Addr, SNI: tc.sni})
			if r.Status != tc.wantStatus {
				t.Fatalf("Probe(%v).Status = %q (%s), want %q", s.Addr, r.Status, r.Err, tc.wantStatus)
			}
			if r.End.Before(r.Start) || r.Start.IsZero() {
				t.Errorf("Probe(%v) Start %v, End %v: want Start <= End, both set", s.Addr, r.Start, r.End)
			}
			if tc.wantStatus != scanner.StatusOK {
				return
			}
			if r.TLSVersion != tc.wantVersion {
				t.Errorf("Probe(%v).TLSVersion = %#x, want %#x", s.Addr, r.TLSVersion, tc.wantVersion)
			}
			if r.CipherSuite == 0 {
				t.Errorf("Probe(%v).CipherSuite = 0, want the negotiated suite", s.Addr)
			}
			want := derFingerprints(cert.Certificate) // what SNIOnlyConfig serves
			if len(tc.cfg.Certificates) > 0 {
				want = derFingerprints(tc.cfg.Certificates[0].Certificate)
			}
			if got := fingerprints(r.Chain); !slices.Equal(got, want) || len(got) != tc.wantChain {
				t.Errorf("Probe(%v) chain = %x, want %x (%d certificates)", s.Addr, got, want, tc.wantChain)
			}
			if r.Chain[0].Subject != "CN=web.test" || r.Chain[0].KeyType != "ECDSA" || r.Chain[0].KeyBits != 256 {
				t.Errorf("leaf summary = %q %s-%d, want CN=web.test ECDSA-256", r.Chain[0].Subject, r.Chain[0].KeyType, r.Chain[0].KeyBits)
			}
		})
	}
}

func TestProbeFailures(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		// Bind then close to get a port that is certainly closed.
		ln, err := net.Listen("tcp", loopback(t))
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().(*net.TCPAddr).AddrPort()
		ln.Close()
		r := scanner.NewProber().Probe(context.Background(), scanner.Target{Addr: addr})
		if r.Status != scanner.StatusRefused || r.Connected {
			t.Errorf("Probe(closed port).Status = %q connected=%v, want refused, not connected", r.Status, r.Connected)
		}
	})
	t.Run("stall", func(t *testing.T) {
		s, err := scannertest.NewServer(loopback(t), scannertest.Stall)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		p := scanner.NewProber()
		p.HandshakeTimeout = 300 * time.Millisecond
		start := time.Now()
		r := p.Probe(context.Background(), scanner.Target{Addr: s.Addr})
		if r.Status != scanner.StatusTimeout || !r.Connected {
			t.Errorf("Probe(stalling peer).Status = %q connected=%v, want timeout after connecting", r.Status, r.Connected)
		}
		// Generous slack: this bounds the cost, it does not time the machine.
		if el := time.Since(start); el > p.HandshakeTimeout+2*time.Second {
			t.Errorf("Probe(stalling peer) took %v, want about %v", el, p.HandshakeTimeout)
		}
	})
	t.Run("not-tls", func(t *testing.T) {
		s, err := scannertest.NewServer(loopback(t), func(c net.Conn) {
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
			_, _ = c.Read(make([]byte, 1024))
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		r := scanner.NewProber().Probe(context.Background(), scanner.Target{Addr: s.Addr})
		if r.Status != scanner.StatusNotTLS {
			t.Errorf("Probe(HTTP server).Status = %q (%s), want not-tls", r.Status, r.Err)
		}
	})
	t.Run("byte-cap", func(t *testing.T) {
		ca := newCA(t)
		s := startTLS(t, scannertest.TLSConfig(leaf(t, ca, scannertest.CertOptions{CommonName: "x"}), 0, tls.VersionTLS12))
		p := scanner.NewProber()
		p.MaxBytes = 100 // less than any ServerHello flight
		r := p.Probe(context.Background(), scanner.Target{Addr: s.Addr})
		if r.Status != scanner.StatusTooLarge {
			t.Errorf("Probe(with 100-byte cap).Status = %q (%s), want too-large", r.Status, r.Err)
		}
	})
}
