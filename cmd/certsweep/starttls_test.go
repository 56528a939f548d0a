package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// starttlsPeer is one endpoint of TestStartTLSSweep's lab.
type starttlsPeer struct {
	proto     string // the peer's protocol; "tls" for implicit TLS
	behaviour scannertest.Behaviour
	named     bool // the port spec names the protocol (else the default or sniffing decides)

	// What the sweep must record.
	outcome, protocol string
	addr              netip.AddrPort
	leaf              string // fingerprint; "" if none is presented
}

// TestStartTLSSweep sweeps a lab of protocol peers through the CLI: named
// ports, a plaintext greeting on an unnamed port (sniffed), implicit TLS and
// a mail server without TLS, then checks every command that shows them.
func TestStartTLSSweep(t *testing.T) {
	ctx := context.Background()
	peers := []*starttlsPeer{
		{proto: "smtp", named: true, outcome: "ok", protocol: "smtp"},
		{proto: "ldap", named: true, outcome: "ok", protocol: "ldap"},
		{proto: "postgres", named: true, outcome: "ok", protocol: "postgres"},
		{proto: "smtp", named: true, behaviour: scannertest.NoUpgrade, outcome: "no-starttls", protocol: "smtp"},
		{proto: "imap", outcome: "ok", protocol: "imap"}, // on an unnamed port: sniffed
		{proto: "tls", outcome: "ok", protocol: "tls"},
	}
	ca, err := scannertest.NewCA("starttls test")
	if err != nil {
		t.Fatal(err)
	}
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(rand.IntN(254) + 1), byte(rand.IntN(256)), 0}), 28)
	addr := prefix.Addr()
	var spec []string
	for _, p := range peers {
		addr = addr.Next()
		cert, err := ca.Leaf(scannertest.CertOptions{CommonName: p.proto + ".test", IPs: []net.IP{addr.AsSlice()}})
		if err != nil {
			t.Fatal(err)
		}
		listen := netip.AddrPortFrom(addr, 0).String()
		var s *scannertest.Server
		if p.proto == "tls" {
			s, err = scannertest.NewTLSServer(listen, scannertest.TLSConfig(cert, 0, 0))
		} else {
			s, err = scannertest.NewPeer(listen, p.proto, scannertest.TLSConfig(cert, 0, 0), p.behaviour)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		p.addr = s.Addr
		if p.behaviour == scannertest.Normal {
			sum := sha256.Sum256(cert.Certificate[0])
			p.leaf = hex.EncodeToString(sum[:])
		}
		if p.named {
			spec = append(spec, fmt.Sprintf("%d/%s", s.Addr.Port(), p.proto))
		} else {
			spec = append(spec, fmt.Sprint(s.Addr.Port()))
		}
	}
	db := filepath.Join(t.TempDir(), "certs.db")
	stdout, stderr, code := run(t, ctx, "sweep", "--db", db, "--rate", "0", "--timeout", "3s",
		"--ports", strings.Join(spec, ","), prefix.String())
	if code != 0 {
		t.Fatalf("sweep exit %d:\n%s%s", code, stdout, stderr)
	}
	if want := "TLS endpoints: 5 (tls 1, smtp 1, imap 1, ldap 1, postgres 1)"; !strings.Contains(stdout, want) {
		t.Errorf("summary lacks %q:\n%s", want, stdout)
	}
	if !strings.Contains(stdout, "no-starttls 1") {
		t.Errorf("summary does not count the no-starttls outcome:\n%s", stdout)
	}

	// endpoints: every peer, with its outcome, protocol and exact leaf.
	stdout, stderr, code = run(t, ctx, "endpoints", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("endpoints exit %d: %s", code, stderr)
	}
	rows := jsonLines(t, stdout)
	got := map[string]map[string]any{}
	for _, r := range rows {
		got[fmt.Sprintf("%v:%v", r["ip"], r["port"])] = r
	}
	for _, p := range peers {
		r, ok := got[p.addr.String()]
		if !ok {
			t.Errorf("%s peer %s not listed by endpoints", p.proto, p.addr)
			continue
		}
		if r["outcome"] != p.outcome || r["protocol"] != p.protocol || r["sha256"] != p.leaf {
			t.Errorf("%s peer %s: outcome %v protocol %v sha256 %v; want %s %s %s (error %v)",
				p.proto, p.addr, r["outcome"], r["protocol"], r["sha256"], p.outcome, p.protocol, p.leaf, r["error"])
		}
	}
	if len(rows) != len(peers) {
		t.Errorf("endpoints lists %d rows, want %d:\n%s", len(rows), len(peers), stdout)
	}

	// findings: the mail server without TLS is plaintext-only, medium.
	plain := peers[3]
	stdout, stderr, code = run(t, ctx, "findings", "--db", db, "--kind", "plaintext-only", "--format", "csv")
	if code != 0 {
		t.Fatalf("findings exit %d: %s", code, stderr)
	}
	found := csvRows(t, stdout)
	if len(found) != 1 {
		t.Fatalf("findings --kind plaintext-only: %d rows, want one:\n%s", len(found), stdout)
	}
	f := found[0]
	if f["severity"] != "medium" || f["ip"] != plain.addr.Addr().String() || f["port"] != fmt.Sprint(plain.addr.Port()) ||
		f["protocol"] != "smtp" || f["sha256"] != "" || !strings.Contains(f["detail"], "STARTTLS") {
		t.Errorf("plaintext-only finding = %v", f)
	}

	// report: a protocol column; the plaintext-only row has no certificate.
	stdout, stderr, code = run(t, ctx, "report", "--db", db, "--format", "csv")
	if code != 0 {
		t.Fatalf("report exit %d: %s", code, stderr)
	}
	byEndpoint := map[string]map[string]string{}
	for _, r := range csvRows(t, stdout) {
		byEndpoint[r["ip"]+":"+r["port"]] = r
	}
	for _, p := range peers {
		r := byEndpoint[p.addr.String()]
		if r == nil || r["protocol"] != p.protocol || r["sha256"] != p.leaf {
			t.Errorf("report row of %s peer %s = %v; want protocol %s, sha256 %q", p.proto, p.addr, r, p.protocol, p.leaf)
		}
	}
	if r := byEndpoint[plain.addr.String()]; r == nil || r["findings"] != "plaintext-only" || r["severity"] != "medium" {
		t.Errorf("report row of the plaintext-only peer = %v", r)
	}

	// show: where the certificate was seen, with the protocol.
	smtp := peers[0]
	stdout, stderr, code = run(t, ctx, "show", "--db", db, smtp.leaf[:16])
	if want := fmt.Sprintf("%s/smtp", smtp.addr); code != 0 || !strings.Contains(stdout, want) {
		t.Errorf("show %s: exit %d, want %q in:\n%s%s", smtp.leaf[:16], code, want, stdout, stderr)
	}

	// A week later the same ports with --starttls off: the sniffed IMAP
	// endpoint is then implicit TLS (not-tls), a different endpoint.
	stdout, stderr, code = run(t, ctx, "sweep", "--db", db, "--rate", "0", "--timeout", "3s", "--quiet",
		"--starttls", "off", "--ports", strings.Join(spec, ","), prefix.String())
	if code != 0 {
		t.Fatalf("second sweep exit %d:\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, ctx, "diff", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("diff exit %d: %s", code, stderr)
	}
	imap := peers[4]
	var gone bool
	for _, r := range jsonLines(t, stdout) {
		if r["ip"] == imap.addr.Addr().String() && r["port"] == float64(imap.addr.Port()) && r["protocol"] == "imap" {
			gone = r["change"] == "endpoint-gone" && r["old_sha256"] == imap.leaf
		}
		if r["ip"] != imap.addr.Addr().String() {
			t.Errorf("diff lists an endpoint that did not change: %v", r)
		}
	}
	if !gone {
		t.Errorf("diff does not list the IMAP endpoint as gone:\n%s", stdout)
	}
}

// TestResumeKeepsProtocols: an interrupted sweep resumes with the protocols
// of its own port spec and its own --starttls mode, not today's defaults.
func TestResumeKeepsProtocols(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("resume test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(scannertest.CertOptions{CommonName: "mail.test"})
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrFrom4([4]byte{127, byte(rand.IntN(254) + 1), byte(rand.IntN(256)), byte(rand.IntN(254) + 1)})
	var ports [2]uint16
	for i, proto := range []string{"smtp", "imap"} {
		s, err := scannertest.NewPeer(netip.AddrPortFrom(addr, 0).String(), proto, scannertest.TLSConfig(cert, 0, 0), scannertest.Normal)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		ports[i] = s.Addr.Port()
	}
	path := filepath.Join(t.TempDir(), "certs.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// Interrupted before its first probe: SMTP named on one port, the IMAP
	// port unnamed, and sniffing off.
	id, err := db.CreateSweep(ctx, store.Sweep{Name: "resume", Targets: []string{addr.String()},
		Ports: fmt.Sprintf("%d/smtp,%d", ports[0], ports[1]), ProbesTotal: 2, Seed: 7,
		Options: map[string]any{"starttls": "off", "timeout": "3s"}})
	if err == nil {
		err = db.FinishSweep(ctx, id, store.StateInterrupted, time.Now())
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run(t, ctx, "sweep", "--db", path, "--resume", fmt.Sprint(id), "--starttls", "auto"); code != 2 ||
		!strings.Contains(stderr, "--starttls cannot change it") {
		t.Errorf("--resume with --starttls: exit %d, %s; want a usage error", code, stderr)
	}
	if stdout, stderr, code := run(t, ctx, "sweep", "--db", path, "--resume", fmt.Sprint(id), "--quiet"); code != 0 {
		t.Fatalf("resume exit %d:\n%s%s", code, stdout, stderr)
	}
	stdout, _, _ := run(t, ctx, "endpoints", "--db", path, "--format", "json")
	got := map[float64]string{}
	for _, r := range jsonLines(t, stdout) {
		got[r["port"].(float64)] = fmt.Sprint(r["outcome"], " ", r["protocol"])
	}
	if got[float64(ports[0])] != "ok smtp" || got[float64(ports[1])] != "not-tls tls" {
		t.Errorf("resumed sweep: %v; want the named SMTP port ok over smtp and the unnamed IMAP port not-tls over tls (no sniffing)", got)
	}
}
