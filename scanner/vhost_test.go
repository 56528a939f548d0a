package scanner_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

// vhostLab is one address serving a default certificate and one per
// virtual host, each name reachable by one source only:
//
//	default  SANs default.vh.test, b.vh.test   (presented without SNI)
//	a        a.vh.test                         (names file only)
//	b        b.vh.test, c.vh.test              (followed from the default: depth 1)
//	c        c.vh.test, b.vh.test, f.vh.test   (followed from b: depth 2; lists b again: a loop)
//	f        f.vh.test                         (depth 3: never followed)
//	d        d.vh.test                         (inventory only)
//	e        e.vh.test                         (reverse DNS only)
type vhostLab struct {
	addr   netip.AddrPort
	leaves map[string]string // name ("" default) → leaf fingerprint
}

func newVhostLab(t *testing.T) *vhostLab {
	t.Helper()
	ca, err := scannertest.NewCA("vhost lab")
	if err != nil {
		t.Fatal(err)
	}
	sans := map[string][]string{
		"":          {"default.vh.test", "b.vh.test"},
		"a.vh.test": {"a.vh.test"},
		"b.vh.test": {"b.vh.test", "c.vh.test"},
		"c.vh.test": {"c.vh.test", "b.vh.test", "f.vh.test"},
		"f.vh.test": {"f.vh.test"},
		"d.vh.test": {"d.vh.test"},
		"e.vh.test": {"e.vh.test"},
	}
	lab := &vhostLab{leaves: map[string]string{}}
	byName := map[string]tls.Certificate{}
	var def tls.Certificate
	for name, dns := range sans {
		c := leaf(t, ca, scannertest.CertOptions{CommonName: dns[0], DNSNames: dns})
		sum := sha256.Sum256(c.Certificate[0])
		lab.leaves[name] = hex.EncodeToString(sum[:])
		if name == "" {
			def = c
		} else {
			byName[name] = c
		}
	}
	s := startTLS(t, scannertest.VhostConfig(def, byName))
	lab.addr = s.Addr
	return lab
}

// expand probes the lab's address with v and returns what Expand found,
// by SNI, as fingerprints.
func (l *vhostLab) expand(t *testing.T, v *scanner.Vhosts) (map[string]string, *scanner.Expansion) {
	t.Helper()
	ctx := context.Background()
	p := scanner.NewProber()
	p.Vhosts = v
	r := p.Probe(ctx, scanner.Target{Addr: l.addr})
	if r.Status != scanner.StatusOK {
		t.Fatalf("probe: %s %s", r.Status, r.Err)
	}
	r = p.Expand(ctx, r, func(ctx context.Context) error { return ctx.Err() })
	if r.Expansion == nil {
		t.Fatal("Expand ran no probes")
	}
	got := map[string]string{}
	for _, f := range r.Expansion.Found {
		if _, dup := got[f.Target.SNI]; dup {
			t.Errorf("name %q observed twice", f.Target.SNI)
		}
		got[f.Target.SNI] = f.Chain[0].Fingerprint()
		if f.Target.Addr != l.addr {
			t.Errorf("%q probed at %s, want %s", f.Target.SNI, f.Target.Addr, l.addr)
		}
	}
	return got, r.Expansion
}

func names(t *testing.T, text string) *scanner.NameList {
	t.Helper()
	l, err := scanner.ParseNamesFile(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestExpandSources: each name is found by its own source and no other;
// following stops at depth 2 and survives a loop; a name the server does
// not know (it answers with its default certificate) is not kept.
func TestExpandSources(t *testing.T) {
	lab := newVhostLab(t)
	dns, err := scannertest.NewDNSServer(map[netip.Addr][]string{lab.addr.Addr(): {"e.vh.test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns.Addr)
	}}
	want := func(ns ...string) map[string]string {
		m := map[string]string{}
		for _, n := range ns {
			m[n] = lab.leaves[n]
		}
		return m
	}
	inventory := func(ctx context.Context, ap netip.AddrPort) ([]string, error) {
		if ap != lab.addr {
			t.Errorf("inventory asked for %s", ap)
		}
		return []string{"d.vh.test"}, nil
	}
	other := netip.MustParsePrefix("10.99.0.0/16") // names for elsewhere are not tried here
	cases := []struct {
		name  string
		v     scanner.Vhosts
		want  map[string]string
		tried map[scanner.NameSource]int
	}{
		{"names file", scanner.Vhosts{Names: names(t, "a.vh.test\nunknown.vh.test\n"+other.String()+" d.vh.test\n"), MaxNames: 32},
			want("a.vh.test"), map[scanner.NameSource]int{scanner.SourceNamesFile: 2}},
		{"names file for this address", scanner.Vhosts{Names: names(t, lab.addr.Addr().String()+" A.VH.TEST.\n"), MaxNames: 32},
			want("a.vh.test"), map[scanner.NameSource]int{scanner.SourceNamesFile: 1}},
		// default.vh.test is on the default certificate, which covers it: kept.
		{"follow", scanner.Vhosts{Follow: true, MaxNames: 32},
			map[string]string{"default.vh.test": lab.leaves[""], "b.vh.test": lab.leaves["b.vh.test"], "c.vh.test": lab.leaves["c.vh.test"]},
			map[scanner.NameSource]int{scanner.SourceFollowed: 3}},
		{"ptr", scanner.Vhosts{PTR: resolver, MaxNames: 32}, want("e.vh.test"), map[scanner.NameSource]int{scanner.SourcePTR: 1}},
		{"inventory", scanner.Vhosts{Inventory: inventory, MaxNames: 32}, want("d.vh.test"), map[scanner.NameSource]int{scanner.SourceInventory: 1}},
		{"no names", scanner.Vhosts{MaxNames: 32}, map[string]string{}, map[scanner.NameSource]int{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, x := lab.expand(t, &c.v)
			if !maps.Equal(got, c.want) {
				t.Errorf("found %v, want %v", got, c.want)
			}
			if !maps.Equal(x.Tried, c.tried) {
				t.Errorf("tried %v, want %v", x.Tried, c.tried)
			}
			if x.Capped != 0 {
				t.Errorf("capped %d, want 0", x.Capped)
			}
		})
	}
}

// TestExpandCapped: the names tried at one endpoint never exceed MaxNames,
// whatever the sources offer, and the rest are counted.
func TestExpandCapped(t *testing.T) {
	lab := newVhostLab(t)
	var file strings.Builder
	for i := range 40 {
		file.WriteString("n" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ".vh.test\n")
	}
	file.WriteString("a.vh.test\n") // the 41st: beyond the cap
	_, x := lab.expand(t, &scanner.Vhosts{Names: names(t, file.String()), Follow: true, MaxNames: 5})
	tried := 0
	for _, n := range x.Tried {
		tried += n
	}
	if tried != 5 {
		t.Errorf("tried %d names, want 5 (the cap)", tried)
	}
	// 41 file names and the default certificate's 2 names, 5 tried.
	if x.Capped != 41+2-5 {
		t.Errorf("capped %d, want %d", x.Capped, 41+2-5)
	}
}

// TestExpandAllKeys: a server holding an ECDSA and an RSA certificate
// (crypto/tls chooses by the client's offer) shows both; a server with one
// certificate yields nothing more.
func TestExpandAllKeys(t *testing.T) {
	ca, err := scannertest.NewCA("dual")
	if err != nil {
		t.Fatal(err)
	}
	ec := leaf(t, ca, scannertest.CertOptions{CommonName: "dual.test", DNSNames: []string{"dual.test"}})
	rsa := leaf(t, ca, scannertest.CertOptions{CommonName: "dual.test", DNSNames: []string{"dual.test"}, RSABits: 2048})
	fp := func(c tls.Certificate) string {
		sum := sha256.Sum256(c.Certificate[0])
		return hex.EncodeToString(sum[:])
	}
	for _, c := range []struct {
		name  string
		certs []tls.Certificate
		want  map[scanner.KeyFamily]string // by offer
	}{
		{"ecdsa and rsa", []tls.Certificate{ec, rsa}, map[scanner.KeyFamily]string{"": fp(ec), scanner.FamilyRSA: fp(rsa)}},
		{"rsa and ecdsa", []tls.Certificate{rsa, ec}, map[scanner.KeyFamily]string{"": fp(rsa), scanner.FamilyECDSA: fp(ec)}},
		{"ecdsa only", []tls.Certificate{ec}, map[scanner.KeyFamily]string{"": fp(ec)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startTLS(t, &tls.Config{Certificates: c.certs})
			ctx := context.Background()
			p := scanner.NewProber()
			p.Vhosts = &scanner.Vhosts{AllKeys: true, MaxNames: 32}
			r := p.Expand(ctx, p.Probe(ctx, scanner.Target{Addr: s.Addr}), func(ctx context.Context) error { return ctx.Err() })
			got := map[scanner.KeyFamily]string{"": r.Chain[0].Fingerprint()}
			for _, f := range r.Expansion.Found {
				got[f.Offer] = f.Chain[0].Fingerprint()
				if f.Status != scanner.StatusOK {
					t.Errorf("offer %s: %s %s", f.Offer, f.Status, f.Err)
				}
			}
			if !maps.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if r.Expansion.KeyProbes != 1 {
				t.Errorf("%d key probes, want 1 (the other family)", r.Expansion.KeyProbes)
			}
		})
	}
}

func TestParseNamesFile(t *testing.T) {
	l := names(t, "# zone export\n\nwww.example.com\n10.0.0.5 mail.example.com\n10.0.1.0/24 Portal.Example.com.\n  \n")
	if l.Len() != 3 {
		t.Errorf("Len %d, want 3", l.Len())
	}
	for _, c := range []struct {
		addr string
		want []string
	}{
		{"10.0.0.5", []string{"mail.example.com", "www.example.com"}},
		{"10.0.1.77", []string{"portal.example.com", "www.example.com"}},
		{"::ffff:10.0.1.77", []string{"portal.example.com", "www.example.com"}},
		{"192.0.2.1", []string{"www.example.com"}},
	} {
		if got := l.For(netip.MustParseAddr(c.addr)); !slices.Equal(got, c.want) {
			t.Errorf("For(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	for _, bad := range []string{
		"*.example.com",                  // wildcards are never guessed
		"10.0.0.1",                       // an address is no SNI
		"10.0.0.1 a.example 3",           // three fields
		"10.0.0.0/33 a.example.com",      // bad CIDR
		"not-an-addr a.example.com",      // bad address
		"bad name.example.com\x00",       // control byte
		strings.Repeat("a", 64) + ".com", // label too long
		"-lead.example.com",
		strings.Repeat("x", 5000), // an over-long line
	} {
		if _, err := scanner.ParseNamesFile(strings.NewReader("ok.example.com\n" + bad + "\n")); err == nil {
			t.Errorf("%.40q: accepted", bad)
		} else if !strings.Contains(err.Error(), "line 2") && !strings.Contains(err.Error(), "longer than") {
			t.Errorf("%.40q: error %q does not name line 2", bad, err)
		}
	}
}
