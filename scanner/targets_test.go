package scanner_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/certsweep/certsweep/scanner"
)

func TestParseInput(t *testing.T) {
	tests := []struct {
		tok          string
		lo, hi, host string
		port         uint16
	}{
		{"10.0.0.1", "10.0.0.1", "10.0.0.1", "", 0},
		{"10.0.0.7/24", "10.0.0.0", "10.0.0.255", "", 0},
		{"10.0.0.5-10.0.0.90", "10.0.0.5", "10.0.0.90", "", 0},
		{"10.0.0.5 - 10.0.0.90", "10.0.0.5", "10.0.0.90", "", 0},
		{"2001:db8::/120", "2001:db8::", "2001:db8::ff", "", 0},
		{"2001:db8::1-2001:db8::10", "2001:db8::1", "2001:db8::10", "", 0},
		{"::ffff:10.1.2.3", "10.1.2.3", "10.1.2.3", "", 0},
		{"10.0.0.1:8443", "10.0.0.1", "10.0.0.1", "", 8443},
		{"[2001:db8::1]:636", "2001:db8::1", "2001:db8::1", "", 636},
		{"LDAP-01.corp.example", "", "", "ldap-01.corp.example", 0},
		{"ldap.corp.example.:636", "", "", "ldap.corp.example", 636},
		{"localhost", "", "", "localhost", 0},
	}
	for _, tc := range tests {
		in, err := scanner.ParseInput(tc.tok, false)
		if err != nil {
			t.Errorf("ParseInput(%q) error: %v", tc.tok, err)
			continue
		}
		if in.Host != tc.host || in.Port != tc.port {
			t.Errorf("ParseInput(%q) = host %q port %d, want %q %d", tc.tok, in.Host, in.Port, tc.host, tc.port)
		}
		if tc.host == "" && (in.Lo.String() != tc.lo || in.Hi.String() != tc.hi) {
			t.Errorf("ParseInput(%q) = %s-%s, want %s-%s", tc.tok, in.Lo, in.Hi, tc.lo, tc.hi)
		}
	}
}

func TestParseInputErrors(t *testing.T) {
	tests := []struct{ tok, want string }{
		{"10.0.0.0/33", `invalid CIDR "10.0.0.0/33": prefix length must be 0-32`},
		{"10.0.0.0/-1", "prefix length must be 0-32"},
		{"2001:db8::/129", "prefix length must be 0-128"},
		{"10.0.0/24", `"10.0.0" is not an IP address`},
		{"300.1.1.1", "not an address"},
		{"10.0.0.9-10.0.0.1", "first address is after the last"},
		{"10.0.0.1-2001:db8::1", "both ends must be IPv4 or both IPv6"},
		{"10.0.0.1-banana", "want two addresses"},
		{"2001:db8::/64", "--allow-large-ipv6"},
		{"10.0.0.1:70000", `port "70000" out of range 1-65535`},
		{"host.example:https", `port "https" is not a number`},
		{"10.0.0.1:0", "port 0"},
		{"under score!", "not an address, CIDR, range or hostname"},
		{"", "empty target"},
	}
	for _, tc := range tests {
		_, err := scanner.ParseInput(tc.tok, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseInput(%q) error = %v, want it to contain %q", tc.tok, err, tc.want)
		}
	}
	if _, err := scanner.ParseInput("2001:db8::/64", true); err != nil {
		t.Errorf("ParseInput(/64, allowLargeIPv6) = %v, want success", err)
	}
}

func TestParsePorts(t *testing.T) {
	got, err := scanner.ParsePorts("8443, 443,9000-9003,443")
	if want := []uint16{443, 8443, 9000, 9001, 9002, 9003}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ParsePorts = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []struct{ in, want string }{
		{"0", `port "0" out of range 1-65535`},
		{"65536", "out of range"},
		{"443,abc", `port "abc" is not a number`},
		{"9010-9000", "runs backwards; write it as 9000-9010"},
		{",", "no ports"},
	} {
		if _, err := scanner.ParsePorts(bad.in); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParsePorts(%q) error = %v, want %q", bad.in, err, bad.want)
		}
	}
}

func mustInputs(t *testing.T, toks ...string) []scanner.Input {
	t.Helper()
	var out []scanner.Input
	for _, tok := range toks {
		in, err := scanner.ParseInput(tok, false)
		if err != nil {
			t.Fatalf("ParseInput(%q): %v", tok, err)
		}
		out = append(out, in)
	}
	return out
}

// fakeResolver answers from a table: name resolution without the network.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func collect(p *scanner.Plan, seed uint64) []scanner.Target {
	var out []scanner.Target
	for _, t := range p.Targets(seed) {
		out = append(out, t)
	}
	return out
}

func TestPlan(t *testing.T) {
	ctx := context.Background()
	res := fakeResolver{
		"web.test": {netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.9.9.9")},
	}
	inputs := mustInputs(t,
		"10.0.0.0/28", "10.0.0.8-10.0.0.20", "10.0.0.3", // overlapping: 10.0.0.0-20
		"10.0.0.4:443",   // already covered by the ranges on 443: dropped
		"10.0.0.4:9999",  // a port outside the list: kept
		"web.test",       // named: kept with SNI on every port, even inside the ranges
		"missing.test",   // does not resolve: a warning
		"10.0.0.12:8443", // excluded below
	)
	excludes := mustInputs(t, "10.0.0.10-10.0.0.12", "10.9.9.9")
	p, warnings, err := scanner.NewPlan(ctx, inputs, excludes, []uint16{443, 8443}, res)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "missing.test") {
		t.Errorf("warnings = %v, want one about missing.test", warnings)
	}
	// 21 addresses minus 3 excluded, times 2 ports; plus web.test on 10.0.0.5 × 2; plus 10.0.0.4:9999.
	if got, want := p.Len(), uint64(18*2+2+1); got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	all := collect(p, 1)
	if uint64(len(all)) != p.Len() {
		t.Fatalf("Targets yielded %d, Len() = %d", len(all), p.Len())
	}
	seen := map[scanner.Target]bool{}
	for _, tg := range all {
		if seen[tg] {
			t.Errorf("target %v yielded twice", tg)
		}
		seen[tg] = true
		a := tg.Addr.Addr()
		if a == netip.MustParseAddr("10.0.0.11") || a == netip.MustParseAddr("10.9.9.9") {
			t.Errorf("excluded address %v was yielded", tg)
		}
	}
	for _, want := range []scanner.Target{
		{Addr: netip.MustParseAddrPort("10.0.0.5:443"), SNI: "web.test"},
		{Addr: netip.MustParseAddrPort("10.0.0.5:443")},
		{Addr: netip.MustParseAddrPort("10.0.0.4:9999")},
		{Addr: netip.MustParseAddrPort("10.0.0.20:8443")},
		{Addr: netip.MustParseAddrPort("10.0.0.0:443")},
	} {
		if !seen[want] {
			t.Errorf("target %v missing", want)
		}
	}
}

func TestPlanOrder(t *testing.T) {
	p, _, err := scanner.NewPlan(context.Background(), mustInputs(t, "10.1.0.0/22"), nil, []uint16{443, 636, 8443}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := collect(p, 7), collect(p, 7), collect(p, 8)
	if !slices.Equal(a, b) {
		t.Errorf("the same seed gave two different orders")
	}
	if slices.Equal(a, c) {
		t.Errorf("different seeds gave the same order")
	}
	sorted := slices.SortedFunc(slices.Values(a), func(x, y scanner.Target) int { return x.Addr.Compare(y.Addr) })
	if slices.Equal(a, sorted) {
		t.Errorf("order is sequential, want a permutation")
	}
	// Spread: consecutive probes rarely hit the same /24 (4 /24s here, so
	// a random order repeats one about a quarter of the time).
	same := 0
	for i := 1; i < len(a); i++ {
		if a[i].Addr.Addr().As4()[2] == a[i-1].Addr.Addr().As4()[2] {
			same++
		}
	}
	if frac := float64(same) / float64(len(a)-1); frac > 0.4 {
		t.Errorf("%.0f%% of consecutive probes hit the same /24, want about 25%%", 100*frac)
	}
}

func TestPlanHugeRangeIsNotMaterialised(t *testing.T) {
	p, _, err := scanner.NewPlan(context.Background(), mustInputs(t, "10.0.0.0/8"), nil,
		[]uint16{443, 465, 636, 853, 993, 995, 5986, 6443, 8443, 9443}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Len(), uint64(1<<24*10); got != want {
		t.Fatalf("Len() = %d, want %d", got, want)
	}
	// Taking the first targets must not walk (or allocate) the whole space.
	allocs := testing.AllocsPerRun(1, func() {
		n := 0
		for range p.Targets(3) {
			if n++; n == 10000 {
				break
			}
		}
	})
	if allocs > 100 {
		t.Errorf("iterating 10000 targets of a /8 allocated %v times, want a handful", allocs)
	}
}

func TestPlanRefusesAbsurdSize(t *testing.T) {
	in := mustInputs(t, "0.0.0.0/0")
	ipv6, err := scanner.ParseInput("2001:db8::/32", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := scanner.NewPlan(context.Background(), append(in, ipv6), nil, []uint16{443}, nil); err == nil {
		t.Errorf("NewPlan(2^96 addresses) succeeded, want a size error")
	}
}

func FuzzParseInput(f *testing.F) {
	for _, s := range []string{"10.0.0.0/24", "10.0.0.1-10.0.0.9", "host.example:443", "[::1]:8443", "2001:db8::/120", "a-b", "1.2.3.4/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := scanner.ParseInput(s, false)
		if err != nil {
			return
		}
		if in.Host == "" && in.Hi.Less(in.Lo) {
			t.Errorf("ParseInput(%q) gave a backwards range %s-%s", s, in.Lo, in.Hi)
		}
	})
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"443", "443,8443", "9000-9010", "1-65535", "0", "a,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ports, err := scanner.ParsePorts(s)
		if err != nil {
			return
		}
		if len(ports) == 0 || !slices.IsSorted(ports) || ports[0] == 0 {
			t.Errorf("ParsePorts(%q) = %v: want sorted, non-empty, no port 0", s, ports)
		}
	})
}
