package scanner_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	ztls "github.com/zmap/zcrypto/tls"
)

// countingTLS serves TLS with cfg and counts the connections it accepts.
func countingTLS(t *testing.T, cfg *tls.Config) (*scannertest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s, err := scannertest.NewServer(loopback(t), func(c net.Conn) {
		n.Add(1)
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if tc.Handshake() == nil {
			_, _ = tc.Read(make([]byte, 1))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, &n
}

// wantConns waits briefly for the server to have accepted want connections
// (its handler may trail the client by a moment) and fails if it accepted
// another number.
func wantConns(t *testing.T, n *atomic.Int64, want int64) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); n.Load() < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // any extra connection shows too
	if got := n.Load(); got != want {
		t.Errorf("server accepted %d connections, want %d", got, want)
	}
}

func postureProber() *scanner.Prober {
	p := scanner.NewProber()
	p.ConnectTimeout, p.HandshakeTimeout = time.Second, 3*time.Second
	p.Posture = true
	return p
}

func versionNames(vs []uint16) []string {
	var out []string
	for _, v := range vs {
		out = append(out, ztls.VersionName(v))
	}
	return out
}

func suiteNames(ss []uint16) []string {
	var out []string
	for _, s := range ss {
		out = append(out, ztls.CipherSuiteID(s).String())
	}
	return out
}

// TestPostureVersions probes servers that accept exactly known version
// sets: the posture holds exactly those, and no server with Go's default
// suites accepts a weak one. The connections each costs are counted: the
// probe, one per version but the negotiated one, and one weak-suite
// handshake when a version up to TLS 1.2 is accepted.
func TestPostureVersions(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "posture.test"})
	for _, tc := range []struct {
		name     string
		min, max uint16
		want     []uint16
		conns    int64
	}{
		{"tls12-only", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.VersionTLS12}, 6},
		{"tls10-to-12", tls.VersionTLS10, tls.VersionTLS12, []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12}, 6},
		{"tls13-only", tls.VersionTLS13, tls.VersionTLS13, []uint16{tls.VersionTLS13}, 5},
		{"tls11-to-13", tls.VersionTLS11, tls.VersionTLS13, []uint16{tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, n := countingTLS(t, scannertest.TLSConfig(cert, tc.min, tc.max))
			r := postureProber().Probe(context.Background(), scanner.Target{Addr: s.Addr})
			if r.Status != scanner.StatusOK || r.Posture == nil {
				t.Fatalf("Probe = %s (%s), posture %v; want ok with a posture", r.Status, r.Err, r.Posture)
			}
			if !slices.Equal(r.Posture.Versions, tc.want) {
				t.Errorf("Versions = %q, want %q", versionNames(r.Posture.Versions), versionNames(tc.want))
			}
			if len(r.Posture.WeakCiphers) != 0 {
				t.Errorf("WeakCiphers = %q, want none", suiteNames(r.Posture.WeakCiphers))
			}
			if len(r.Chain) != 2 {
				t.Errorf("chain of %d certificates, want the probe's 2", len(r.Chain))
			}
			wantConns(t, n, tc.conns)
		})
	}
}

// TestPostureWeakCiphers: servers whose suites include weak ones besides a
// strong one (which the probe negotiates) are found to accept them, up to
// the handshake budget: 4 versions, then 2 weak-suite handshakes.
func TestPostureWeakCiphers(t *testing.T) {
	ca := newCA(t)
	rsa := leaf(t, ca, scannertest.CertOptions{CommonName: "weak.test", RSABits: 2048})
	for _, tc := range []struct {
		name     string
		minVer   uint16
		suites   []uint16
		want     []uint16
		versions []uint16
	}{
		{"3des", 0, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA},
			[]uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}, []uint16{tls.VersionTLS12}},
		{"rc4-and-3des", 0, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_RC4_128_SHA, tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA},
			[]uint16{tls.TLS_RSA_WITH_RC4_128_SHA, tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA}, []uint16{tls.VersionTLS12}},
		// Below TLS 1.2 this server has RC4 only, which zcrypto's default
		// offer lacks: the version handshakes offer it, so TLS 1.0 and
		// 1.1 count as accepted.
		{"rc4-below-tls12", tls.VersionTLS10, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_RC4_128_SHA},
			[]uint16{tls.TLS_RSA_WITH_RC4_128_SHA}, []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, n := countingTLS(t, &tls.Config{Certificates: []tls.Certificate{rsa}, MinVersion: tc.minVer, MaxVersion: tls.VersionTLS12, CipherSuites: tc.suites})
			r := postureProber().Probe(context.Background(), scanner.Target{Addr: s.Addr})
			if r.Status != scanner.StatusOK || r.Posture == nil {
				t.Fatalf("Probe = %s (%s), posture %v; want ok with a posture", r.Status, r.Err, r.Posture)
			}
			if r.CipherSuite != tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 {
				t.Errorf("the probe negotiated %s, want the strong suite", ztls.CipherSuiteID(r.CipherSuite))
			}
			if !slices.Equal(r.Posture.WeakCiphers, tc.want) {
				t.Errorf("WeakCiphers = %q, want %q", suiteNames(r.Posture.WeakCiphers), suiteNames(tc.want))
			}
			if !slices.Equal(r.Posture.Versions, tc.versions) {
				t.Errorf("Versions = %q, want %q", versionNames(r.Posture.Versions), versionNames(tc.versions))
			}
			wantConns(t, n, 1+scanner.MaxPostureHandshakes)
		})
	}
}

// TestPostureThroughUpgrade: a STARTTLS endpoint's posture handshakes speak
// its protocol first, like its probe (else none would be accepted).
func TestPostureThroughUpgrade(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "mail.test"})
	for _, proto := range []scanner.Protocol{scanner.ProtoSMTP, scanner.ProtoLDAP, scanner.ProtoPostgres} {
		t.Run(string(proto), func(t *testing.T) {
			t.Parallel()
			s, err := scannertest.NewPeer(loopback(t), string(proto), scannertest.TLSConfig(cert, tls.VersionTLS11, tls.VersionTLS12), scannertest.Normal)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			p := textProber(s, proto)
			p.Posture = true
			r := p.Probe(context.Background(), scanner.Target{Addr: s.Addr})
			if r.Status != scanner.StatusOK || r.Protocol != proto || r.Posture == nil {
				t.Fatalf("Probe = %s/%s (%s), posture %v; want ok over %s with a posture", r.Status, r.Protocol, r.Err, r.Posture, proto)
			}
			if want := []uint16{tls.VersionTLS11, tls.VersionTLS12}; !slices.Equal(r.Posture.Versions, want) {
				t.Errorf("Versions = %q, want %q", versionNames(r.Posture.Versions), versionNames(want))
			}
		})
	}
	// An SMTP server on an implicit-TLS port is sniffed: its posture
	// handshakes use the sniffed upgrade too.
	s, err := scannertest.NewPeer(loopback(t), "smtp", scannertest.TLSConfig(cert, tls.VersionTLS12, tls.VersionTLS13), scannertest.Normal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	r := postureProber().Probe(context.Background(), scanner.Target{Addr: s.Addr})
	if r.Status != scanner.StatusOK || r.Protocol != scanner.ProtoSMTP || r.Posture == nil {
		t.Fatalf("sniffed Probe = %s/%s (%s), posture %v; want ok over smtp with a posture", r.Status, r.Protocol, r.Err, r.Posture)
	}
	if want := []uint16{tls.VersionTLS12, tls.VersionTLS13}; !slices.Equal(r.Posture.Versions, want) {
		t.Errorf("sniffed: Versions = %q, want %q", versionNames(r.Posture.Versions), versionNames(want))
	}
}

// TestPostureSNI: posture handshakes send the probe's server name; a
// virtual-host-only server refuses any other.
func TestPostureSNI(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "vhost.test", DNSNames: []string{"vhost.test"}})
	cfg := scannertest.SNIOnlyConfig(cert, "vhost.test")
	cfg.MinVersion = tls.VersionTLS12
	for _, viaProber := range []bool{false, true} {
		t.Run(fmt.Sprintf("prober-sni=%v", viaProber), func(t *testing.T) {
			s := startTLS(t, cfg)
			p := postureProber()
			target := scanner.Target{Addr: s.Addr, SNI: "vhost.test"}
			if viaProber {
				p.SNI, target.SNI = "vhost.test", ""
			}
			r := p.Probe(context.Background(), target)
			if r.Status != scanner.StatusOK || r.Posture == nil {
				t.Fatalf("Probe = %s (%s), posture %v; want ok with a posture", r.Status, r.Err, r.Posture)
			}
			if want := []uint16{tls.VersionTLS12, tls.VersionTLS13}; !slices.Equal(r.Posture.Versions, want) {
				t.Errorf("Versions = %q, want %q", versionNames(r.Posture.Versions), versionNames(want))
			}
		})
	}
}

// TestPostureOnlyAfterHandshake: without Posture, or when the handshake
// fails, a probe makes its one connection and measures nothing.
func TestPostureOnlyAfterHandshake(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "plain.test"})
	t.Run("off", func(t *testing.T) {
		s, n := countingTLS(t, scannertest.TLSConfig(cert, 0, 0))
		p := postureProber()
		p.Posture = false
		r := p.Probe(context.Background(), scanner.Target{Addr: s.Addr})
		if r.Status != scanner.StatusOK || r.Posture != nil {
			t.Fatalf("Probe = %s (%s), posture %v; want ok without a posture", r.Status, r.Err, r.Posture)
		}
		wantConns(t, n, 1)
	})
	t.Run("handshake-failed", func(t *testing.T) {
		s, n := countingTLS(t, scannertest.SNIOnlyConfig(cert, "other.test"))
		r := postureProber().Probe(context.Background(), scanner.Target{Addr: s.Addr})
		if r.Status != scanner.StatusHandshake || r.Posture != nil {
			t.Fatalf("Probe = %s (%s), posture %v; want handshake-error without a posture", r.Status, r.Err, r.Posture)
		}
		wantConns(t, n, 1)
	})
	t.Run("cancelled", func(t *testing.T) {
		// A posture cut short is no posture: its missing handshakes
		// would read as versions not accepted. The server completes the
		// probe's handshake and stalls every posture handshake.
		var n atomic.Int64
		cfg := scannertest.TLSConfig(cert, 0, 0)
		s, err := scannertest.NewServer(loopback(t), func(c net.Conn) {
			if n.Add(1) > 1 {
				scannertest.Stall(c)
				return
			}
			tc := tls.Server(c, cfg)
			if tc.Handshake() == nil {
				_, _ = tc.Read(make([]byte, 1))
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		r := postureProber().Probe(ctx, scanner.Target{Addr: s.Addr})
		if r.Status != scanner.StatusOK || r.Posture != nil {
			t.Errorf("Probe = %s (%s), posture %+v; want ok without a posture", r.Status, r.Err, r.Posture)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("the cancelled posture took %s: cancelling must cut its handshakes short", took)
		}
	})
}

// TestPostureStalled: an endpoint that completes the probe's handshake and
// stalls every posture handshake costs at most MaxPostureHandshakes more
// connections, each ending at the probe's timeout, and accepts only what
// the probe negotiated.
func TestPostureStalled(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "tarpit.test"})
	var n atomic.Int64
	cfg := scannertest.TLSConfig(cert, 0, 0)
	s, err := scannertest.NewServer(loopback(t), func(c net.Conn) {
		if n.Add(1) > 1 {
			scannertest.Stall(c)
			return
		}
		tc := tls.Server(c, cfg)
		if tc.Handshake() == nil {
			_, _ = tc.Read(make([]byte, 1))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	p := postureProber()
	p.HandshakeTimeout = 200 * time.Millisecond
	start := time.Now()
	r := p.Probe(context.Background(), scanner.Target{Addr: s.Addr})
	took := time.Since(start)
	if r.Status != scanner.StatusOK || r.Posture == nil {
		t.Fatalf("Probe = %s (%s), posture %v; want ok with a posture", r.Status, r.Err, r.Posture)
	}
	if want := []uint16{tls.VersionTLS13}; !slices.Equal(r.Posture.Versions, want) || len(r.Posture.WeakCiphers) != 0 {
		t.Errorf("posture %q %q, want only the negotiated TLS 1.3", versionNames(r.Posture.Versions), suiteNames(r.Posture.WeakCiphers))
	}
	// TLS 1.3 negotiated and nothing older accepted: 4 version handshakes,
	// no weak-suite one.
	if took < 4*p.HandshakeTimeout || took > 4*p.HandshakeTimeout+2*time.Second {
		t.Errorf("the stalled posture took %s, want about 4 × %s", took, p.HandshakeTimeout)
	}
	wantConns(t, &n, 5)
}

// TestPostureSSL30Hello checks the SSL 3.0 handshake on the wire, since no
// SSL 3.0 server may be at hand (see TestPostureSSL30): a crypto/tls server
// (TLS 1.2 and 1.3) in front of which a ClientHello of version SSL 3.0 is
// answered with an SSL 3.0 ServerHello, choosing RC4, as an old server
// would. The hello must be SSL 3.0, offer the legacy suites and carry the
// SNI.
func TestPostureSSL30Hello(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "ssl3.test"})
	cfg := scannertest.TLSConfig(cert, tls.VersionTLS12, 0)
	var ssl3Hellos atomic.Int64
	helloOK := make(chan error, 8)
	s, err := scannertest.NewServer(loopback(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		// body: type 1, 3-byte length, client_version, ...
		if len(body) < 6 || body[0] != 1 || body[4] != 3 || body[5] != 0 {
			tc := tls.Server(&replayConn{Conn: c, head: append(hdr, body...)}, cfg)
			if tc.Handshake() == nil {
				_, _ = tc.Read(make([]byte, 1))
			}
			return
		}
		ssl3Hellos.Add(1)
		var problem error
		rc4 := []byte{0x00, 0x05} // TLS_RSA_WITH_RC4_128_SHA, as SSL 3.0 servers chose
		switch {
		case !bytes.Contains(body[38:], rc4):
			problem = fmt.Errorf("the SSL 3.0 hello does not offer RC4")
		case !bytes.Contains(body, []byte("ssl3.test")):
			problem = fmt.Errorf("the SSL 3.0 hello has no SNI")
		}
		helloOK <- problem
		hello := append([]byte{2, 0, 0, 38, 3, 0}, make([]byte, 32)...) // ServerHello, SSL 3.0, random
		hello = append(hello, 0)                                        // no session ID
		hello = append(hello, rc4...)
		hello = append(hello, 0) // no compression
		hello[3] = byte(len(hello) - 4)
		_, _ = c.Write(append([]byte{22, 3, 0, 0, byte(len(hello))}, hello...))
		_, _ = c.Read(make([]byte, 1))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	r := postureProber().Probe(context.Background(), scanner.Target{Addr: s.Addr, SNI: "ssl3.test"})
	if r.Status != scanner.StatusOK || r.Posture == nil {
		t.Fatalf("Probe = %s (%s), posture %v; want ok with a posture", r.Status, r.Err, r.Posture)
	}
	if want := []uint16{ztls.VersionSSL30, tls.VersionTLS12, tls.VersionTLS13}; !slices.Equal(r.Posture.Versions, want) {
		t.Errorf("Versions = %q, want %q", versionNames(r.Posture.Versions), versionNames(want))
	}
	if n := ssl3Hellos.Load(); n != 1 {
		t.Fatalf("%d SSL 3.0 hellos, want 1", n)
	}
	if err := <-helloOK; err != nil {
		t.Error(err)
	}
}

// replayConn reads head before the rest of Conn: the bytes a server peeked.
type replayConn struct {
	net.Conn
	head []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(b, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// TestPostureSSL30 checks SSL 3.0 against openssl s_server -ssl3, where the
// installed openssl still has it (most builds since OpenSSL 1.1.0 do not).
func TestPostureSSL30(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	help, _ := exec.Command(bin, "s_server", "-help").CombinedOutput()
	if !bytes.Contains(help, []byte("-ssl3 ")) {
		t.Skip("the installed openssl was built without SSL 3.0 (s_server has no -ssl3): TestPostureSSL30Hello checks the SSL 3.0 hello against a scripted ServerHello instead")
	}
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "ssl3.test", RSABits: 2048})
	dir := t.TempDir()
	certPEM, keyPEM := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := os.WriteFile(certPEM, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	srv := exec.Command(bin, "s_server", "-quiet", "-ssl3", "-cipher", "ALL:@SECLEVEL=0", "-accept", fmt.Sprint(port), "-cert", certPEM, "-key", keyPEM)
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	target := scanner.Target{Addr: netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", port))}
	var r scanner.Result
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r = postureProber().Probe(context.Background(), target); r.Status != scanner.StatusRefused {
			break
		}
	}
	if r.Status != scanner.StatusOK || r.Posture == nil {
		t.Fatalf("Probe = %s (%s); want ok with a posture", r.Status, r.Err)
	}
	if want := []uint16{ztls.VersionSSL30}; !slices.Equal(r.Posture.Versions, want) {
		t.Errorf("Versions = %q, want SSLv3 only", versionNames(r.Posture.Versions))
	}
}
