package scanner

import (
	"net/netip"
	"testing"
	"time"
)

func mustScope(t *testing.T, targets, excludes []string, ports, sni string) *Scope {
	t.Helper()
	s, err := NewScope(targets, excludes, ports, sni)
	if err != nil {
		t.Fatalf("NewScope(%q, %q, %q, %q): %v", targets, excludes, ports, sni, err)
	}
	return s
}

func TestScopeContains(t *testing.T) {
	s := mustScope(t,
		[]string{"10.20.0.0/16", "192.0.2.5-192.0.2.9", "ldap.corp.example:636", "www.corp.example",
			"198.51.100.7:8443", "[2001:db8::10]:993", "2001:db8:1::/120"},
		[]string{"10.20.5.0/24", "192.0.2.7", "203.0.113.0/24"},
		"443,8443", "")
	a := netip.MustParseAddr
	cases := []struct {
		addr string
		port uint16
		sni  string
		want bool
	}{
		{"10.20.0.1", 443, "", true},
		{"10.20.255.255", 8443, "", true},
		{"10.20.0.1", 636, "", false},              // not in the port list
		{"10.20.5.9", 443, "", false},              // excluded
		{"10.21.0.0", 443, "", false},              // outside the range
		{"10.20.0.1", 443, "other.example", false}, // the ranges were probed without SNI
		{"192.0.2.5", 443, "", true},
		{"192.0.2.7", 443, "", false}, // excluded from the range
		{"192.0.2.10", 443, "", false},
		{"::ffff:192.0.2.9", 443, "", true}, // IPv4-mapped reads as IPv4
		// host:port covers that port only.
		{"198.51.100.7", 8443, "", true},
		{"198.51.100.7", 443, "", false},
		{"2001:db8::10", 993, "", true},
		{"2001:db8::10", 443, "", false},
		// IPv6 range.
		{"2001:db8:1::ff", 443, "", true},
		{"2001:db8:1::100", 443, "", false},
		// Hostnames are matched by the SNI recorded, at any address not excluded.
		{"203.0.114.1", 636, "ldap.corp.example", true},
		{"203.0.114.1", 443, "ldap.corp.example", false}, // host:port: that port only
		{"203.0.114.1", 443, "www.corp.example", true},
		{"203.0.114.1", 8443, "www.corp.example", true},
		{"203.0.114.1", 636, "www.corp.example", false},
		{"203.0.113.9", 443, "www.corp.example", false}, // excluded address
		{"203.0.114.1", 443, "mail.corp.example", false},
		{"203.0.114.1", 443, "", false},
	}
	for _, c := range cases {
		if got := s.Contains(a(c.addr), c.port, c.sni); got != c.want {
			t.Errorf("Contains(%s, %d, %q) = %v, want %v", c.addr, c.port, c.sni, got, c.want)
		}
	}
}

func TestScopeForcedSNI(t *testing.T) {
	s := mustScope(t, []string{"10.0.0.0/24", "api.example"}, nil, "443", "www.example")
	a := netip.MustParseAddr
	if !s.Contains(a("10.0.0.1"), 443, "www.example") {
		t.Error("a range probed with --sni: the forced name is the recorded SNI")
	}
	if s.Contains(a("10.0.0.1"), 443, "") {
		t.Error("with --sni, no probe went out without SNI")
	}
	// The hostname target was also sent the forced name, at an address not kept.
	if !s.Contains(a("172.16.0.1"), 443, "www.example") || s.Contains(a("172.16.0.1"), 8443, "www.example") {
		t.Error("hostname target under --sni: any address on its ports")
	}
}

// TestScopeHugeRanges: a /8, and whole address families, cost a binary
// search per lookup. Iterating any of them would not finish.
func TestScopeHugeRanges(t *testing.T) {
	s := mustScope(t, []string{"10.0.0.0/8", "0.0.0.0/0", "::/0"}, []string{"10.1.0.0/16"}, "1-65535", "")
	a := netip.MustParseAddr
	start := time.Now()
	for i := range 100000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		_ = s.Contains(ip, uint16(i%65535+1), "")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("100000 lookups took %v", d)
	}
	if !s.Contains(a("10.200.3.4"), 443, "") || !s.Contains(a("2001:db8::1"), 1, "") {
		t.Error("huge ranges do not contain their addresses")
	}
	if s.Contains(a("10.1.2.3"), 443, "") {
		t.Error("10.1.2.3 is excluded, whatever range covers it")
	}
}

func TestScopeExcludeWholeSlash8(t *testing.T) {
	s := mustScope(t, []string{"10.0.0.0/8"}, []string{"10.0.0.0/9"}, "443", "")
	if s.Contains(netip.MustParseAddr("10.64.0.1"), 443, "") {
		t.Error("10.64.0.1 is excluded (10.0.0.0/9)")
	}
	if !s.Contains(netip.MustParseAddr("10.128.0.1"), 443, "") {
		t.Error("10.128.0.1 is in 10.0.0.0/8 and not excluded")
	}
}

func TestScopeEqual(t *testing.T) {
	base := mustScope(t, []string{"10.0.0.0/24", "db.example:5432"}, []string{"10.0.0.7"}, "443,8443", "")
	same := []*Scope{
		mustScope(t, []string{"10.0.0.0-10.0.0.255", "DB.example.:5432"}, []string{"10.0.0.7/32"}, "8443, 443", ""),
		mustScope(t, []string{"10.0.0.128/25", "10.0.0.0/25", "db.example:5432", "10.0.0.0/24"}, []string{"10.0.0.7-10.0.0.7"}, "443,8443,443", ""),
		// An excluded address given as a target as well changes nothing.
		mustScope(t, []string{"10.0.0.0/24", "db.example:5432", "10.0.0.7"}, []string{"10.0.0.7"}, "443,8443", ""),
	}
	for i, s := range same {
		if !base.Equal(s) || !s.Equal(base) {
			t.Errorf("scope %d differs from the base scope", i)
		}
	}
	differ := []*Scope{
		mustScope(t, []string{"10.0.0.0/24", "db.example:5432"}, []string{"10.0.0.7"}, "443", ""),
		mustScope(t, []string{"10.0.0.0/24", "db.example:5432"}, nil, "443,8443", ""),
		mustScope(t, []string{"10.0.0.0/23", "db.example:5432"}, []string{"10.0.0.7"}, "443,8443", ""),
		mustScope(t, []string{"10.0.0.0/24", "db.example"}, []string{"10.0.0.7"}, "443,8443", ""),
		mustScope(t, []string{"10.0.0.0/24"}, []string{"10.0.0.7"}, "443,8443", ""),
		mustScope(t, []string{"10.0.0.0/24", "db.example:5432"}, []string{"10.0.0.7"}, "443,8443", "www.example"),
		mustScope(t, []string{"10.0.0.0/24", "db.example:5432", "10.9.9.9:22"}, []string{"10.0.0.7"}, "443,8443", ""),
	}
	for i, s := range differ {
		if base.Equal(s) || s.Equal(base) {
			t.Errorf("scope %d equals the base scope", i)
		}
	}
	// Only host:port targets: the port list was never used.
	if !mustScope(t, []string{"192.0.2.1:443"}, nil, "443", "").Equal(mustScope(t, []string{"192.0.2.1:443"}, nil, "1-1024", "")) {
		t.Error("a port list no target used makes scopes differ")
	}
	// A host:port inside the ranges adds nothing.
	if !mustScope(t, []string{"192.0.2.0/24", "192.0.2.1:443"}, nil, "443", "").Equal(mustScope(t, []string{"192.0.2.0/24"}, nil, "443", "")) {
		t.Error("a host:port target the ranges cover makes scopes differ")
	}
}

func TestScopeErrors(t *testing.T) {
	for _, c := range []struct {
		targets, excludes []string
		ports             string
	}{
		{[]string{"10.0.0.0/33"}, nil, "443"},
		{[]string{"10.0.0.0/24"}, []string{"host.example"}, "443"},
		{[]string{"10.0.0.0/24"}, nil, "0"},
		{[]string{"10.0.0.0/24"}, nil, ""},
	} {
		if _, err := NewScope(c.targets, c.excludes, c.ports, ""); err == nil {
			t.Errorf("NewScope(%q, %q, %q) succeeded", c.targets, c.excludes, c.ports)
		}
	}
}
