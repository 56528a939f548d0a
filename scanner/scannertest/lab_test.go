package scannertest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// freeLabPrefix picks a random 127.x.y.0/24 that is unlikely to hold any
// other test's listeners (127.77.0.0/24 is the demo's default).
func freeLabPrefix() netip.Prefix {
	for {
		a, b := rand.IntN(254)+1, rand.IntN(256)
		if a != 77 {
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(a), byte(b), 0}), 24)
		}
	}
}

func TestNewLabAt(t *testing.T) {
	var lab *Lab
	var prefix netip.Prefix
	var err error
	for range 10 {
		prefix = freeLabPrefix()
		if lab, err = NewLabAt(prefix, 0, len(DemoKinds)); !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		t.Fatalf("NewLabAt(%s): %v", prefix, err)
	}
	if lab.Prefix != prefix || lab.Port == 0 || len(lab.Endpoints) != len(DemoKinds) {
		t.Fatalf("lab at %s port %d with %d endpoints, want %s, a port, %d endpoints", lab.Prefix, lab.Port, len(lab.Endpoints), prefix, len(DemoKinds))
	}
	addr := prefix.Addr()
	for i, ep := range lab.Endpoints {
		addr = addr.Next()
		if want := netip.AddrPortFrom(addr, lab.Port); ep.Server.Addr != want || ep.Kind != DemoKinds[i] {
			t.Errorf("endpoint %d: %s %s, want %s %s", i, ep.Kind, ep.Server.Addr, DemoKinds[i], want)
		}
	}
	first := lab.Endpoints[0].Presents[0]

	// The same address and port while the lab runs: taken, and said so.
	if l2, err := NewLabAt(prefix, lab.Port, 1); !errors.Is(err, syscall.EADDRINUSE) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("second lab on %s port %d: err %v, want EADDRINUSE", prefix, lab.Port, err)
	}
	// A failed start leaves nothing listening: the first lab still answers.
	conn, err := tls.Dial("tcp", lab.Endpoints[0].Server.Addr.String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("the first lab stopped answering: %v", err)
	}
	conn.Close()

	// Stopped and started again at the same place: the same endpoints with
	// renewed certificates, as after a week in which everything was renewed.
	port := lab.Port
	lab.Close()
	var again *Lab
	deadline := time.Now().Add(5 * time.Second)
	for {
		again, err = NewLabAt(prefix, port, len(DemoKinds))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart at %s port %d: %v", prefix, port, err)
	}
	defer again.Close()
	if again.Endpoints[0].Server.Addr != netip.AddrPortFrom(prefix.Addr().Next(), port) {
		t.Errorf("restarted lab's first endpoint is %s", again.Endpoints[0].Server.Addr)
	}
	if bytes.Equal(again.Endpoints[0].Presents[0], first) {
		t.Errorf("a restarted lab presents the same leaf; want a newly issued one")
	}
}

func TestNewLabAtRefuses(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		n      int
	}{
		{"10.0.0.0/24", 13},         // not loopback
		{"192.168.1.0/24", 13},      // not loopback
		{"::1/128", 1},              // IPv6
		{"::ffff:127.0.0.0/120", 1}, // IPv4-mapped, still not an IPv4 prefix
		{"0.0.0.0/0", 13},           // wider than 127.0.0.0/8
		{"127.1.2.3/24", 13},        // host bits
		{"127.1.2.0/28", 15},        // 14 hosts only
		{"127.1.2.0/24", 0},         // empty
	} {
		p := netip.MustParsePrefix(tc.prefix)
		if lab, err := NewLabAt(p, 0, tc.n); err == nil {
			lab.Close()
			t.Errorf("NewLabAt(%s, %d) started a lab", tc.prefix, tc.n)
		}
	}
	if got := LabCapacity(netip.MustParsePrefix("127.1.2.0/28")); got != 14 {
		t.Errorf("LabCapacity(/28) = %d, want 14", got)
	}
	if got := LabCapacity(netip.MustParsePrefix("127.0.0.0/8")); got != 65000 {
		t.Errorf("LabCapacity(/8) = %d, want 65000", got)
	}
}
