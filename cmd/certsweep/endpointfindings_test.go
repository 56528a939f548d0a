package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner/scannertest"
)

// TestEndpointAndKeyFindings sweeps endpoints whose defects are not in
// any one certificate: a key in two certificates on two addresses, one
// certificate on two addresses, TLS 1.0, a 3DES suite, and a certificate
// past 80% of its lifetime with more than 30 days left.
func TestEndpointAndKeyFindings(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("endpoint findings")
	if err != nil {
		t.Fatal(err)
	}
	shared, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(o scannertest.CertOptions) tls.Certificate {
		c, err := ca.Leaf(o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	now := time.Now()
	sharedCert := issue(scannertest.CertOptions{CommonName: "shared.test"})
	rsaCert := issue(scannertest.CertOptions{CommonName: "3des.test", RSABits: 2048})
	servers := []struct {
		name string
		cfg  *tls.Config
	}{
		{"key-a", scannertest.TLSConfig(issue(scannertest.CertOptions{CommonName: "a.test", Key: shared}), 0, 0)},
		{"key-b", scannertest.TLSConfig(issue(scannertest.CertOptions{CommonName: "b.test", Key: shared}), 0, 0)},
		{"cert-1", scannertest.TLSConfig(sharedCert, 0, 0)},
		{"cert-2", scannertest.TLSConfig(sharedCert, 0, 0)},
		{"tls10", scannertest.TLSConfig(issue(scannertest.CertOptions{CommonName: "old.test"}), tls.VersionTLS10, tls.VersionTLS10)},
		{"3des", &tls.Config{Certificates: []tls.Certificate{rsaCert}, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}}},
		{"lifetime", scannertest.TLSConfig(issue(scannertest.CertOptions{CommonName: "stale.test",
			NotBefore: now.Add(-170 * 24 * time.Hour), NotAfter: now.Add(35 * 24 * time.Hour)}), 0, 0)},
	}
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(mrand.IntN(254) + 1), byte(mrand.IntN(256)), 0}), 28)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for every address
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	addrOf := map[string]string{}
	addr := prefix.Addr()
	for _, s := range servers {
		addr = addr.Next()
		srv, err := scannertest.NewTLSServer(netip.AddrPortFrom(addr, port).String(), s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		addrOf[s.name] = addr.String()
	}
	db := filepath.Join(t.TempDir(), "certs.db")
	if out, errOut, code := run(t, ctx, "sweep", "--db", db, "--quiet", "--rate", "0", "--ports", fmt.Sprint(port), prefix.String()); code != 0 {
		t.Fatalf("sweep exit %d: %s%s", code, out, errOut)
	}
	kinds := func(args ...string) map[string][]string { // address → finding kinds
		out, errOut, code := run(t, ctx, append([]string{"findings", "--db", db, "--format", "csv", "--no-system-roots"}, args...)...)
		if code != 0 {
			t.Fatalf("findings exit %d: %s", code, errOut)
		}
		got := map[string][]string{}
		for _, r := range csvRows(t, out) {
			got[r["ip"]] = append(got[r["ip"]], r["kind"]+": "+r["detail"])
		}
		return got
	}
	has := func(got map[string][]string, server, kind, detail string) bool {
		return slices.ContainsFunc(got[addrOf[server]], func(f string) bool {
			return strings.HasPrefix(f, kind+": ") && strings.Contains(f, detail)
		})
	}
	got := kinds()
	for _, c := range []struct{ server, kind, detail string }{
		{"key-a", "key-reuse", addrOf["key-b"]},
		{"key-b", "key-reuse", addrOf["key-a"]},
		{"tls10", "legacy-protocol", "TLS 1.0"},
		{"3des", "weak-cipher", "3DES"},
		{"lifetime", "expiring", "of its 205-day lifetime used"},
	} {
		if !has(got, c.server, c.kind, c.detail) {
			t.Errorf("%s (%s): no %s finding with %q; has %q", c.server, addrOf[c.server], c.kind, c.detail, got[addrOf[c.server]])
		}
	}
	for _, s := range []string{"cert-1", "cert-2", "tls10", "lifetime"} {
		if has(got, s, "key-reuse", "") || has(got, s, "shared-certificate", "") {
			t.Errorf("%s: key-reuse or shared-certificate without reason: %q", s, got[addrOf[s]])
		}
	}
	// Opt-in judgements: a certificate on more than one address; and the
	// lifetime rule off.
	got = kinds("--max-addresses-per-cert", "1", "--expiring-fraction", "0")
	for _, s := range []string{"cert-1", "cert-2"} {
		if !has(got, s, "shared-certificate", "presented on 2 addresses") {
			t.Errorf("%s: no shared-certificate finding: %q", s, got[addrOf[s]])
		}
	}
	if has(got, "lifetime", "expiring", "") {
		t.Errorf("--expiring-fraction 0 still finds the 83%%-used certificate expiring: %q", got[addrOf["lifetime"]])
	}
	if _, errOut, code := run(t, ctx, "findings", "--db", db, "--expiring-fraction", "1.5"); code != exitUsage || !strings.Contains(errOut, "--expiring-fraction 1.5") {
		t.Errorf("--expiring-fraction 1.5: exit %d, %s", code, errOut)
	}
}
