package scanner_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

// silentPort makes every loopback address silent on a new port (see
// scannertest.SilentPort) and returns it.
func silentPort(t *testing.T) uint16 {
	t.Helper()
	port, stop, err := scannertest.SilentPort()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return port
}

// reusePortTLS serves TLS on addr:port beside silentPort's wildcard listener.
func reusePortTLS(t *testing.T, addr netip.Addr, port uint16, cfg *tls.Config) {
	t.Helper()
	s, err := scannertest.NewReusePortTLSServer(netip.AddrPortFrom(addr, port).String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
}

// TestSilentSpaceUsesTheConnectPool sweeps a /24 in which every address is
// silent but one TLS endpoint, with one handshake worker and a large connect
// pool. Every silent address ends as a timeout and the endpoint is found;
// with connects and handshakes in one pool of one worker, the 253 silent
// connects alone would take 253 × the connect timeout (76 s), far past the
// test's bound.
func TestSilentSpaceUsesTheConnectPool(t *testing.T) {
	port := silentPort(t)
	prefix := netip.MustParsePrefix(netip.AddrFrom4([4]byte{127, 201, byte(port), 0}).String() + "/24")
	tlsAddr := netip.AddrFrom4([4]byte{127, 201, byte(port), 77})
	cert := leaf(t, newCA(t), scannertest.CertOptions{CommonName: "found.test"})
	reusePortTLS(t, tlsAddr, port, scannertest.TLSConfig(cert, 0, 0))

	// The premise: a SYN to another address on the port goes unanswered.
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(prefix.Addr().Next(), port).String(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Skip("this kernel answers SYNs to a wildcard listener with a full accept queue; no silent space on loopback here")
	}

	in, err := scanner.ParseInput(prefix.String(), false)
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := scanner.NewPlan(context.Background(), []scanner.Input{in}, nil, []uint16{port}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := scanner.DefaultConfig()
	cfg.Rate, cfg.Concurrency, cfg.ConnectConcurrency = 0, 1, 512
	cfg.Prober.ConnectTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang guard, not a measurement
	defer cancel()
	var mu sync.Mutex
	got := map[scanner.Status]int{}
	var found []scanner.Cert
	err = scanner.Sweep(ctx, plan, cfg, func(_ context.Context, _ uint64, r scanner.Result) error {
		mu.Lock()
		defer mu.Unlock()
		got[r.Status]++
		if r.Status == scanner.StatusOK {
			found = r.Chain
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Sweep: %v (outcomes so far %v)", err, got)
	}
	if got[scanner.StatusOK] != 1 || got[scanner.StatusTimeout] != 255 || len(found) == 0 ||
		found[0].SHA256 != sha256.Sum256(cert.Certificate[0]) {
		t.Errorf("outcomes %v; want 1 ok (the TLS endpoint) and 255 timeouts", got)
	}
}

// synConfig is a sweep config with SYN discovery, or a skip when this
// process may not open raw sockets.
func synConfig(t *testing.T) scanner.Config {
	t.Helper()
	if err := scanner.CheckSYN(); err != nil {
		t.Skipf("SYN discovery unavailable here: %v", err)
	}
	cfg := scanner.DefaultConfig()
	cfg.Discovery, cfg.Rate, cfg.Cooldown = scanner.DiscoverySYN, 5000, 300*time.Millisecond
	cfg.Prober.HandshakeTimeout = 2 * time.Second
	return cfg
}

// sweepAll runs a sweep of targets on ports and returns each target's result.
func sweepAll(t *testing.T, cfg scanner.Config, target string, ports ...uint16) map[netip.AddrPort]scanner.Result {
	t.Helper()
	in, err := scanner.ParseInput(target, false)
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := scanner.NewPlan(context.Background(), []scanner.Input{in}, nil, ports, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a hang guard
	defer cancel()
	var mu sync.Mutex
	got := map[netip.AddrPort]scanner.Result{}
	err = scanner.Sweep(ctx, plan, cfg, func(_ context.Context, _ uint64, r scanner.Result) error {
		mu.Lock()
		defer mu.Unlock()
		if prev, dup := got[r.Target.Addr]; dup {
			t.Errorf("%s reported twice: %s, then %s", r.Target.Addr, prev.Status, r.Status)
		}
		got[r.Target.Addr] = r
		return nil
	})
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if uint64(len(got)) != plan.Len() {
		t.Errorf("%d results for %d probes", len(got), plan.Len())
	}
	return got
}

// TestSYNDiscovery: SYN-ACK, RST and silence, each classified, the open
// endpoint's certificate found.
func TestSYNDiscovery(t *testing.T) {
	cfg := synConfig(t)
	silent := silentPort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port that is then closed: RST everywhere
	if err != nil {
		t.Fatal(err)
	}
	closed := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 202, byte(silent), 0}), 26)
	open := netip.AddrFrom4([4]byte{127, 202, byte(silent), 9})
	cert := leaf(t, newCA(t), scannertest.CertOptions{CommonName: "syn.test"})
	reusePortTLS(t, open, silent, scannertest.TLSConfig(cert, 0, 0))

	got := sweepAll(t, cfg, prefix.String(), silent, closed)
	count := map[scanner.Status]int{}
	for ap, r := range got {
		count[r.Status]++
		switch {
		case ap == netip.AddrPortFrom(open, silent):
			if r.Status != scanner.StatusOK || len(r.Chain) == 0 || r.Chain[0].SHA256 != sha256.Sum256(cert.Certificate[0]) {
				t.Errorf("open endpoint %s: %s %s, want ok with its certificate", ap, r.Status, r.Err)
			}
		case ap.Port() == closed && r.Status != scanner.StatusRefused,
			ap.Port() == silent && r.Status != scanner.StatusSilent:
			t.Errorf("%s: %s (%s)", ap, r.Status, r.Err)
		}
	}
	if count[scanner.StatusOK] != 1 || count[scanner.StatusRefused] != 64 || count[scanner.StatusSilent] != 63 {
		t.Errorf("outcomes %v; want 1 ok, 64 refused, 63 silent", count)
	}
}

// TestSYNAndConnectAgree: the same lab swept with SYN and with connect
// discovery gives the same outcome and certificate for every endpoint.
func TestSYNAndConnectAgree(t *testing.T) {
	synCfg := synConfig(t)
	lab, err := scannertest.NewLab(40)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	connCfg := scanner.DefaultConfig()
	connCfg.Prober.HandshakeTimeout = synCfg.Prober.HandshakeTimeout
	bySYN := sweepAll(t, synCfg, lab.Prefix.String(), lab.Port)
	byConnect := sweepAll(t, connCfg, lab.Prefix.String(), lab.Port)
	leafOf := func(r scanner.Result) string {
		if len(r.Chain) == 0 {
			return ""
		}
		return r.Chain[0].Fingerprint()
	}
	for ap, c := range byConnect {
		s := bySYN[ap]
		if c.Status == scanner.StatusRefused && s.Status == scanner.StatusRefused {
			continue
		}
		if s.Status != c.Status || leafOf(s) != leafOf(c) {
			t.Errorf("%s: syn %s %s, connect %s %s", ap, s.Status, leafOf(s), c.Status, leafOf(c))
		}
	}
}
