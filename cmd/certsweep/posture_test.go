package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// posturePeer is one endpoint of TestPostureSweep's lab and what a posture
// sweep must record for it.
type posturePeer struct {
	name     string
	cfg      *tls.Config
	smtp     bool   // an SMTP peer (STARTTLS) on the second port, else implicit TLS
	versions string // the report's versions and weak_ciphers cells
	weak     string
	conns    int64 // connections the posture makes (implicit TLS peers), the probe's included
	findings []string

	addr  netip.AddrPort
	leaf  string
	count atomic.Int64
}

// TestPostureSweep sweeps servers that accept known versions and suites
// with --posture, with every discovery mode this host allows, and checks
// report, findings and show; then sweeps them without it: nothing is
// measured, and each endpoint gets exactly one connection. Last, a resumed
// sweep keeps the posture it was started with.
func TestPostureSweep(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("posture sweep")
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
	cert := issue(scannertest.CertOptions{CommonName: "posture.test"})
	rsa := issue(scannertest.CertOptions{CommonName: "3des.test", RSABits: 2048})
	peers := []*posturePeer{
		{name: "tls12", cfg: scannertest.TLSConfig(cert, tls.VersionTLS12, tls.VersionTLS12),
			versions: "TLS 1.2", weak: "none", conns: 6},
		{name: "tls10-12", cfg: scannertest.TLSConfig(cert, tls.VersionTLS10, tls.VersionTLS12),
			versions: "TLS 1.0;TLS 1.1;TLS 1.2", weak: "none", conns: 6,
			findings: []string{"legacy-protocol: accepts TLS 1.0, TLS 1.1"}},
		{name: "tls13", cfg: scannertest.TLSConfig(cert, tls.VersionTLS13, tls.VersionTLS13),
			versions: "TLS 1.3", weak: "none", conns: 5},
		{name: "3des", cfg: &tls.Config{Certificates: []tls.Certificate{rsa}, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}},
			versions: "TLS 1.2", weak: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", conns: 7,
			findings: []string{"weak-cipher: accepts TLS_RSA_WITH_3DES_EDE_CBC_SHA"}},
		{name: "smtp", smtp: true, cfg: scannertest.TLSConfig(cert, tls.VersionTLS11, tls.VersionTLS13),
			versions: "TLS 1.1;TLS 1.2;TLS 1.3", weak: "none",
			findings: []string{"legacy-protocol: accepts TLS 1.1"}},
	}
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(mrand.IntN(254) + 1), byte(mrand.IntN(256)), 0}), 28)
	var ports [2]uint16 // implicit TLS, SMTP: free on 127.0.0.1, so very likely on the /28 too
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // held until both are picked, so they differ
		ports[i] = uint16(ln.Addr().(*net.TCPAddr).Port)
	}
	addr := prefix.Addr()
	for _, p := range peers {
		addr = addr.Next()
		var s *scannertest.Server
		if p.smtp {
			s, err = scannertest.NewPeer(netip.AddrPortFrom(addr, ports[1]).String(), "smtp", p.cfg, scannertest.Normal)
		} else {
			cfg, count := p.cfg, &p.count
			s, err = scannertest.NewServer(netip.AddrPortFrom(addr, ports[0]).String(), func(c net.Conn) {
				count.Add(1)
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if tc.Handshake() == nil {
					_, _ = tc.Read(make([]byte, 1))
				}
			})
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		p.addr = s.Addr
		sum := sha256.Sum256(p.cfg.Certificates[0].Certificate[0])
		p.leaf = hex.EncodeToString(sum[:])
	}
	portSpec := fmt.Sprintf("%d,%d/smtp", ports[0], ports[1])
	sweep := func(db string, args ...string) {
		t.Helper()
		for _, p := range peers {
			p.count.Store(0)
		}
		args = append([]string{"sweep", "--db", db, "--quiet", "--rate", "0", "--timeout", "3s", "--ports", portSpec}, args...)
		if out, errOut, code := run(t, ctx, append(args, prefix.String())...); code != 0 {
			t.Fatalf("%q: exit %d: %s%s", args, code, out, errOut)
		}
	}
	reportRows := func(db string, args ...string) map[netip.AddrPort]map[string]string {
		t.Helper()
		out, errOut, code := run(t, ctx, append([]string{"report", "--db", db, "--format", "csv", "--no-system-roots"}, args...)...)
		if code != 0 {
			t.Fatalf("report: exit %d: %s", code, errOut)
		}
		rows := map[netip.AddrPort]map[string]string{}
		for _, r := range csvRows(t, out) {
			rows[netip.MustParseAddrPort(net.JoinHostPort(r["ip"], r["port"]))] = r
		}
		return rows
	}
	judged := func(db string) map[netip.AddrPort][]string {
		t.Helper()
		out, errOut, code := run(t, ctx, "findings", "--db", db, "--format", "csv", "--no-system-roots", "--kind", "legacy-protocol,weak-cipher")
		if code != 0 {
			t.Fatalf("findings: exit %d: %s", code, errOut)
		}
		got := map[netip.AddrPort][]string{}
		for _, r := range csvRows(t, out) {
			ap := netip.MustParseAddrPort(net.JoinHostPort(r["ip"], r["port"]))
			got[ap] = append(got[ap], r["kind"]+": "+r["detail"])
		}
		return got
	}
	// connsSettle waits for the servers' handlers to catch up with the
	// sweep's last connections.
	connsSettle := func(want func(*posturePeer) int64) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if !slices.ContainsFunc(peers, func(p *posturePeer) bool { return !p.smtp && p.count.Load() < want(p) }) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		for _, p := range peers {
			if !p.smtp && p.count.Load() != want(p) {
				t.Errorf("%s: the sweep made %d connections, want %d", p.name, p.count.Load(), want(p))
			}
		}
	}

	modes := []string{"connect"}
	if scanner.CheckSYN() == nil {
		modes = append(modes, "syn")
	} else {
		t.Log("SYN discovery is not available here: the posture is checked with connect discovery only")
	}
	dir := t.TempDir()
	for _, mode := range modes {
		db := filepath.Join(dir, mode+".db")
		start := time.Now()
		sweep(db, "--posture", "--discovery", mode)
		t.Logf("%s discovery: posture sweep of %d endpoints in %s", mode, len(peers), time.Since(start).Round(time.Millisecond))
		// --posture includes --all-keys: one more probe, offering the other key family.
		connsSettle(func(p *posturePeer) int64 { return p.conns + 1 })
		rows := reportRows(db)
		got := judged(db)
		for _, p := range peers {
			r := rows[p.addr]
			if r == nil {
				t.Errorf("%s %s: no report row", mode, p.name)
				continue
			}
			if r["versions"] != p.versions || r["weak_ciphers"] != p.weak {
				t.Errorf("%s %s: versions %q, weak_ciphers %q; want %q, %q", mode, p.name, r["versions"], r["weak_ciphers"], p.versions, p.weak)
			}
			if want := map[bool]string{true: "smtp", false: "tls"}[p.smtp]; r["protocol"] != want {
				t.Errorf("%s %s: protocol %q, want %q", mode, p.name, r["protocol"], want)
			}
			if !slices.Equal(got[p.addr], p.findings) {
				t.Errorf("%s %s: findings %q, want %q", mode, p.name, got[p.addr], p.findings)
			}
		}
		d, err := store.OpenExisting(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		sw, err := d.FindSweep(ctx, 1)
		d.Close()
		if err != nil || sw.Options["posture"] != true {
			t.Errorf("%s: sweep options %v (%v), want posture true", mode, sw.Options, err)
		}
	}

	db := filepath.Join(dir, modes[0]+".db")
	// show lists each sighting's posture.
	out, errOut, code := run(t, ctx, "show", "--db", db, peers[3].leaf)
	if code != 0 || !strings.Contains(out, "versions accepted: TLS 1.2; weak ciphers accepted: TLS_RSA_WITH_3DES_EDE_CBC_SHA") {
		t.Errorf("show %s: exit %d, want the sighting's posture:\n%s%s", peers[3].name, code, out, errOut)
	}
	out, _, _ = run(t, ctx, "show", "--db", db, peers[4].leaf)
	if !strings.Contains(out, "versions accepted: TLS 1.1, TLS 1.2, TLS 1.3; weak ciphers accepted: none") {
		t.Errorf("show %s: want the sighting's posture:\n%s", peers[4].name, out)
	}

	// Without --posture: nothing measured, one connection per endpoint,
	// and the negotiated values judged as before.
	sweep(db)
	connsSettle(func(*posturePeer) int64 { return 1 })
	rows := reportRows(db)
	for _, p := range peers {
		if r := rows[p.addr]; r == nil || r["versions"] != "" || r["weak_ciphers"] != "" {
			t.Errorf("plain sweep, %s: report row %v, want empty versions and weak_ciphers (not measured)", p.name, r)
		}
	}
	if got := judged(db); len(got) != 0 {
		t.Errorf("plain sweep: findings %q, want none: every endpoint negotiated TLS 1.2 or 1.3 and a strong suite", got)
	}
	out, _, _ = run(t, ctx, "show", "--db", db, peers[3].leaf)
	if n := strings.Count(out, "versions accepted:"); n != 1 {
		t.Errorf("show after a plain sweep lists %d postures, want the first sweep's only:\n%s", n, out)
	}

	// A resumed sweep keeps its --posture, which --resume cannot change.
	d, err := store.OpenExisting(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	tls1012 := peers[1]
	id, err := d.CreateSweep(ctx, store.Sweep{Name: "resumed", StartedAt: time.Now(), Targets: []string{tls1012.addr.Addr().String()},
		Ports: fmt.Sprint(ports[0]), ProbesTotal: 1, Seed: 1, Options: map[string]any{"posture": true, "starttls": "auto"}})
	if err == nil {
		err = d.FinishSweep(ctx, id, store.StateInterrupted, time.Now())
	}
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, ctx, "sweep", "--db", db, "--resume", fmt.Sprint(id), "--posture"); code != exitUsage || !strings.Contains(errOut, "--posture cannot change it") {
		t.Errorf("--resume with --posture: exit %d, %s", code, errOut)
	}
	if out, errOut, code := run(t, ctx, "sweep", "--db", db, "--quiet", "--resume", fmt.Sprint(id)); code != 0 {
		t.Fatalf("resume: exit %d: %s%s", code, out, errOut)
	}
	if r := reportRows(db, "--sweep", fmt.Sprint(id))[tls1012.addr]; r == nil || r["versions"] != tls1012.versions {
		t.Errorf("resumed sweep: report row %v, want versions %q", r, tls1012.versions)
	}
}
