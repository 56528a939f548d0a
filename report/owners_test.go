package report_test

import (
	"context"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
)

func cert(fp byte, subject, issuer, serial string, sans ...string) store.Certificate {
	var c store.Certificate
	c.SHA256[0] = fp
	c.Subject, c.Issuer, c.Serial, c.SANs = subject, issuer, serial, sans
	return c
}

func endpoint(ip string, port int, c store.Certificate) store.Endpoint {
	return store.Endpoint{SweepID: 2, IP: ip, Port: port, Leaf: c}
}

// TestOwnerRules checks each selector, and that the most specific rule
// wins whatever order the rules were added in.
func TestOwnerRules(t *testing.T) {
	rules := []store.OwnerRule{
		{ID: 1, CIDR: "10.0.0.0/8", Owner: "netops"},
		{ID: 2, CIDR: "10.20.0.0/16", Owner: "dc"},
		{ID: 3, CIDR: "10.20.0.0/16", Port: 636, Owner: "directory"},
		{ID: 4, NameSuffix: "shop.corp.example", Owner: "shop"},
		{ID: 5, NameSuffix: "corp.example", Owner: "web"},
		{ID: 6, SubjectO: "Example Appliances Ltd", Owner: "vendor"},
		{ID: 7, Issuer: "C = US, O = Corp, CN = Corp Issuing CA 2", Owner: "pki"},
		{ID: 8, Port: 8443, Owner: "alt"},
	}
	// Reversed, so that the oldest-first order of ties is exercised too.
	slices.Reverse(rules)
	owners, err := report.LoadOwners(seq[store.Tracked](), seq(rules...))
	if err != nil {
		t.Fatal(err)
	}
	plain := cert(1, "CN=x", "CN=Other", "01")
	tests := []struct {
		ep   store.Endpoint
		want string
	}{
		{endpoint("10.1.2.3", 443, plain), "netops"},
		{endpoint("10.20.2.3", 443, plain), "dc"},
		{endpoint("10.20.2.3", 636, plain), "directory"},
		{endpoint("192.0.2.1", 8443, plain), "alt"},
		{endpoint("192.0.2.1", 443, cert(2, "CN=a.shop.corp.example", "CN=Other", "01", "a.shop.corp.example")), "shop"},
		{endpoint("192.0.2.1", 443, cert(2, "CN=www.corp.example", "CN=Other", "01", "www.corp.example")), "web"},
		// A label boundary: evilcorp.example is not under corp.example.
		{endpoint("192.0.2.1", 443, cert(2, "CN=evilcorp.example", "CN=Other", "01", "evilcorp.example")), ""},
		// No SANs: the CN counts as the name.
		{endpoint("192.0.2.1", 443, cert(2, "CN=old.corp.example", "CN=Other", "01")), "web"},
		{endpoint("192.0.2.1", 443, cert(3, "CN=printer, O=Example Appliances Ltd", "CN=Other", "01")), "vendor"},
		{endpoint("192.0.2.1", 443, cert(3, "CN=printer, O=example appliances ltd", "CN=Other", "01")), "vendor"},
		// The issuer rule was written in openssl's print form; certsweep stores zcrypto's.
		{endpoint("192.0.2.1", 443, cert(4, "CN=y", "CN=Corp Issuing CA 2, O=Corp, C=US", "01")), "pki"},
		{endpoint("192.0.2.1", 443, cert(4, "CN=y", "CN=Corp Issuing CA 3, O=Corp, C=US", "01")), ""},
		// More selectors win first: directory (cidr and port) beats shop (a suffix).
		{endpoint("10.20.0.9", 636, cert(5, "CN=ldap.shop.corp.example", "CN=Other", "01", "ldap.shop.corp.example")), "directory"},
	}
	for _, tc := range tests {
		if got := owners.Of(tc.ep).Name; got != tc.want {
			t.Errorf("%s:%d %q: owner %q, want %q (via %q)", tc.ep.IP, tc.ep.Port, tc.ep.Leaf.Subject, got, tc.want, owners.Of(tc.ep).Via)
		}
	}
}

// TestOwnerEntriesBeatRules: a certificate's own entry, by fingerprint or
// by serial and an issuer in any spelling, comes before any rule.
func TestOwnerEntriesBeatRules(t *testing.T) {
	byFP := cert(1, "CN=a", "CN=Corp CA,O=Corp", "0a")
	bySerial := cert(2, "CN=b", "CN=Corp CA, O=Corp", "0b")
	entries := []store.Tracked{
		{SHA256: byFP.Fingerprint(), Owner: "alice"},
		{Serial: "0b", Issuer: "/O=Corp/CN=Corp CA", Owner: "bob"},
	}
	owners, err := report.LoadOwners(seq(entries...), seq(store.OwnerRule{ID: 1, CIDR: "0.0.0.0/0", Owner: "everyone"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c          store.Certificate
		owner, via string
	}{
		{byFP, "alice", "certificate"},
		{bySerial, "bob", "serial+issuer"},
		{cert(3, "CN=c", "CN=Corp CA, O=Corp", "0b0b"), "everyone", "rule 1 (cidr 0.0.0.0/0)"},
	} {
		got := owners.Of(endpoint("192.0.2.7", 443, tc.c))
		if got.Name != tc.owner || got.Via != tc.via {
			t.Errorf("%s: owner %q via %q, want %q via %q", tc.c.Subject, got.Name, got.Via, tc.owner, tc.via)
		}
	}
}

type inheritSource struct {
	endpoints  []store.Endpoint
	tracked    []store.Certificate
	successors map[string][]store.Successor
}

func (s inheritSource) Endpoints(context.Context, int64) iter.Seq2[store.Endpoint, error] {
	return seq(s.endpoints...)
}
func (s inheritSource) TrackedCertificates(context.Context) iter.Seq2[store.Certificate, error] {
	return seq(s.tracked...)
}
func (s inheritSource) Successors(_ context.Context, _ int64, fp string) iter.Seq2[store.Successor, error] {
	return seq(s.successors[fp]...)
}

// TestInherit covers the two ways a renewal is recognised and the cases
// where nothing may be inherited.
func TestInherit(t *testing.T) {
	oldWWW := cert(1, "CN=www.corp.example", "CN=CA", "01", "www.corp.example")
	newWWW := cert(2, "CN=www.corp.example", "CN=CA", "02", "www.corp.example") // at the same endpoint
	oldAPI := cert(3, "CN=api.corp.example", "CN=CA", "03", "api.corp.example", "api2.corp.example")
	newAPI := cert(4, "CN=api.corp.example", "CN=CA", "04", "api2.corp.example", "API.corp.example") // elsewhere, same names
	oldBox := cert(5, "CN=localhost", "CN=localhost", "05")
	newBox := cert(6, "CN=localhost", "CN=localhost", "06") // no DNS names: never by subject alone
	stranger := cert(7, "CN=api.corp.example", "CN=CA", "07", "api.corp.example")
	owned := cert(8, "CN=db.corp.example", "CN=CA", "08", "db.corp.example") // tracked itself

	entries := []store.Tracked{
		{SHA256: oldWWW.Fingerprint(), Owner: "web", Note: "lb"},
		{SHA256: oldAPI.Fingerprint(), Owner: "api"},
		{SHA256: oldBox.Fingerprint(), Owner: "ops"},
		{SHA256: owned.Fingerprint(), Owner: "dba"},
	}
	owners, err := report.LoadOwners(seq(entries...), seq[store.OwnerRule]())
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)
	src := inheritSource{
		endpoints: []store.Endpoint{
			endpoint("10.0.0.1", 443, newWWW), endpoint("10.0.0.2", 443, newAPI),
			endpoint("10.0.0.3", 443, newBox), endpoint("10.0.0.4", 443, stranger),
			endpoint("10.0.0.5", 443, owned),
		},
		tracked: []store.Certificate{oldWWW, oldAPI, oldBox, owned},
		successors: map[string][]store.Successor{
			oldWWW.Fingerprint(): {{SHA256: newWWW.Fingerprint(), IP: "10.0.0.1", Port: 443, PrevSeen: seen}},
			// The dba's certificate moved to where the old API one was: it has its own owner.
			oldAPI.Fingerprint(): {{SHA256: owned.Fingerprint(), IP: "10.0.0.9", Port: 443, PrevSeen: seen}},
		},
	}
	got, err := owners.Inherit(context.Background(), src, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Inheritance{
		{SHA256: newWWW.Fingerprint(), From: oldWWW.Fingerprint(), Via: "endpoint 10.0.0.1:443", Owner: "web", Note: "lb"},
		{SHA256: newAPI.Fingerprint(), From: oldAPI.Fingerprint(), Via: "same subject and names", Owner: "api"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Inherit:\n got  %+v\n want %+v", got, want)
	}
}

func TestDaysLeft(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		after time.Duration
		want  int
	}{
		{30*24*time.Hour + 5*time.Hour, 30},
		{5 * time.Hour, 0},
		{-2 * time.Hour, -1}, // expired this morning: negative, not 0
		{-(5*24*time.Hour + 3*time.Hour), -5},
		{-5 * 24 * time.Hour, -5},
	} {
		if got := report.DaysLeft(now, now.Add(tc.after)); got != tc.want {
			t.Errorf("DaysLeft(now+%s) = %d, want %d", tc.after, got, tc.want)
		}
	}
}
