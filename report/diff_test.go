package report_test

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
)

func seq[T any](vs ...T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, v := range vs {
			if !yield(v, nil) {
				return
			}
		}
	}
}

// fakeSweep builds a DiffSource from endpoints given as "ip port sni" →
// chain (fingerprints, leaf first), sorted as the store would.
type fakeSweep map[string][]string

var certIDs = map[string]int64{}

func certID(fp string) int64 {
	if id, ok := certIDs[fp]; ok {
		return id
	}
	certIDs[fp] = int64(len(certIDs) + 1)
	return certIDs[fp]
}

func (f fakeSweep) source(scope *scanner.Scope) report.DiffSource {
	var eps []store.EndpointState
	var chains []store.ChainCert
	for key, chain := range f {
		var ip, sni string
		var port int
		fmt.Sscan(key, &ip, &port, &sni)
		a, _ := netip.ParseAddr(ip)
		e := store.EndpointState{IP: ip, Addr: a, Port: port, SNI: sni, Status: "ok"}
		if len(chain) > 0 {
			e.LeafSHA256, e.Subject = chain[0], "CN="+chain[0]
			e.NotAfter = time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
		}
		eps = append(eps, e)
		for pos, fp := range chain {
			chains = append(chains, store.ChainCert{CertID: certID(fp), SHA256: fp, Subject: "CN=" + fp,
				Position: pos, IP: ip, Addr: a, Port: port, SNI: sni})
		}
	}
	slices.SortFunc(eps, store.CompareEndpoints)
	slices.SortFunc(chains, func(x, y store.ChainCert) int {
		if x.CertID != y.CertID {
			return int(x.CertID - y.CertID)
		}
		return store.CompareEndpoints(store.EndpointState{IP: x.IP, Addr: x.Addr, Port: x.Port, SNI: x.SNI},
			store.EndpointState{IP: y.IP, Addr: y.Addr, Port: y.Port, SNI: y.SNI})
	})
	return report.DiffSource{Endpoints: seq(eps...), Chains: seq(chains...), Scope: scope}
}

func runDiff(t *testing.T, old, cur report.DiffSource, owner report.OwnerOf) ([]string, report.DiffSummary) {
	t.Helper()
	var got []string
	sum, err := report.Diff(old, cur, owner, func(c report.Change) error {
		s := fmt.Sprintf("%s %s:%d %s>%s", c.Kind, c.IP, c.Port, c.Old.SHA256, c.New.SHA256)
		if c.SNI != "" {
			s += " sni=" + c.SNI
		}
		if c.Owner != "" {
			s += " owner=" + c.Owner
		}
		got = append(got, s)
		return nil
	})
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	return got, sum
}

func TestDiffOneRowPerChange(t *testing.T) {
	old := fakeSweep{
		"10.0.0.9 443":    {"leafA", "inter1", "root"},
		"10.0.0.10 443":   {"leafB", "inter1"},
		"10.0.0.11 443":   {"leafG", "inter2"}, // goes away, with the only inter2
		"10.0.0.100 443":  {"leafS"},           // the same leaf on two endpoints: one rotates
		"10.0.0.101 443":  {"leafS"},
		"2001:db8::1 443": {"leafV"},
		"10.0.0.12 636":   {}, // answers, presents nothing, in both
	}
	cur := fakeSweep{
		"10.0.0.9 443":    {"leafA2", "inter1", "root"}, // rotated
		"10.0.0.10 443":   {"leafB", "inter3"},          // new intermediate
		"10.0.0.12 443":   {"leafN", "inter1"},          // new endpoint
		"10.0.0.100 443":  {"leafS"},
		"10.0.0.101 443":  {"leafS2"},
		"2001:db8::1 443": {"leafV"},
		"10.0.0.12 636":   {},
	}
	got, sum := runDiff(t, old.source(nil), cur.source(nil), nil)
	want := []string{
		"certificate-changed 10.0.0.9:443 leafA>leafA2",
		"endpoint-gone 10.0.0.11:443 leafG>",
		"endpoint-new 10.0.0.12:443 >leafN",
		"certificate-changed 10.0.0.101:443 leafS>leafS2",
		"certificate-new 10.0.0.10:443 >inter3",
		"certificate-gone 10.0.0.11:443 inter2>",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff:\n got  %q\n want %q", got, want)
	}
	if s := sum.String(); s != "2 certificate-changed, 1 endpoint-gone, 1 endpoint-new, 1 certificate-new, 1 certificate-gone; 4 unchanged" {
		t.Errorf("summary = %q", s)
	}
	if !sum.Any([]report.ChangeKind{report.ChangeCertGone}) || (report.DiffSummary{Counts: map[report.ChangeKind]int{}}).Any(report.ChangeKinds) {
		t.Error("DiffSummary.Any is wrong")
	}
}

func TestDiffNumericOrder(t *testing.T) {
	old := fakeSweep{}
	cur := fakeSweep{
		"10.0.0.10 443":  {"a"},
		"10.0.0.9 443":   {"b"},
		"9.255.0.1 443":  {"c"},
		"::1 443":        {"d"},
		"10.0.0.9 80":    {"e"},
		"10.0.0.9 80 x":  {"f"},
		"100.0.0.1 8443": {"g"},
	}
	got, _ := runDiff(t, old.source(nil), cur.source(nil), nil)
	want := []string{
		"endpoint-new 9.255.0.1:443 >c",
		"endpoint-new 10.0.0.9:80 >e",
		"endpoint-new 10.0.0.9:80 >f sni=x",
		"endpoint-new 10.0.0.9:443 >b",
		"endpoint-new 10.0.0.10:443 >a",
		"endpoint-new 100.0.0.1:8443 >g",
		"endpoint-new ::1:443 >d",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff order:\n got  %q\n want %q", got, want)
	}
}

func TestDiffScope(t *testing.T) {
	scope := func(targets []string, ports string) *scanner.Scope {
		s, err := scanner.NewScope(targets, nil, ports, "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	old := fakeSweep{
		"10.0.0.1 443":   {"leaf1"},
		"10.0.0.200 443": {"leaf200", "interOld"}, // the newer sweep did not probe .200
		"10.0.0.2 443":   {"leaf2"},               // really gone
	}
	cur := fakeSweep{
		"10.0.0.1 443":  {"leaf1"},
		"10.0.0.1 8443": {"leaf8443", "interNew"}, // the older sweep did not probe 8443
		"10.0.0.3 443":  {"leaf3"},                // really new
	}
	got, sum := runDiff(t, old.source(scope([]string{"10.0.0.0/24"}, "443")),
		cur.source(scope([]string{"10.0.0.0/25"}, "443,8443")),
		func(ip string, port int, sni, leaf string) string { return "team-" + leaf })
	want := []string{
		"endpoint-gone 10.0.0.2:443 leaf2> owner=team-leaf2",
		"endpoint-new 10.0.0.3:443 >leaf3 owner=team-leaf3",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff across scopes:\n got  %q\n want %q", got, want)
	}
	if sum.NotProbed != 2 || sum.Unchanged != 1 {
		t.Errorf("not probed %d, unchanged %d; want 2, 1", sum.NotProbed, sum.Unchanged)
	}
}

func TestDiffStreamError(t *testing.T) {
	boom := errors.New("read failed")
	failing := func(yield func(store.EndpointState, error) bool) {
		if yield(store.EndpointState{IP: "10.0.0.1", Addr: netip.MustParseAddr("10.0.0.1"), Port: 443}, nil) {
			yield(store.EndpointState{}, boom)
		}
	}
	empty := report.DiffSource{Endpoints: seq[store.EndpointState](), Chains: seq[store.ChainCert]()}
	src := report.DiffSource{Endpoints: failing, Chains: seq[store.ChainCert]()}
	if _, err := report.Diff(src, empty, nil, func(report.Change) error { return nil }); !errors.Is(err, boom) {
		t.Errorf("Diff with a failing stream = %v, want its error", err)
	}
}

func TestParseChangeKinds(t *testing.T) {
	ks, err := report.ParseChangeKinds("endpoint-gone, certificate-changed,endpoint-gone")
	if err != nil || !slices.Equal(ks, []report.ChangeKind{report.ChangeEndpointGone, report.ChangeCertChanged}) {
		t.Errorf("ParseChangeKinds = %v, %v", ks, err)
	}
	_, err = report.ParseChangeKinds("endpoint-gone,rotated")
	if err == nil || !strings.Contains(err.Error(), `"rotated"`) || !strings.Contains(err.Error(), "certificate-changed, endpoint-gone, endpoint-new, certificate-new, certificate-gone") {
		t.Errorf("ParseChangeKinds(rotated) = %v, want the kinds listed", err)
	}
	if _, err := report.ParseChangeKinds(" , "); err == nil {
		t.Error("ParseChangeKinds of nothing succeeded")
	}
}

func TestDiffEncoders(t *testing.T) {
	exp := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
	long := strings.Repeat("Very Long Organisational Unit Name, ", 6)
	changes := []report.Change{
		{Kind: report.ChangeCertChanged, IP: "10.20.130.45", Addr: netip.MustParseAddr("10.20.130.45"), Port: 8443,
			Old:   report.DiffCert{SHA256: strings.Repeat("ab", 32), Subject: "CN=old", NotAfter: exp.AddDate(-1, 0, 0)},
			New:   report.DiffCert{SHA256: strings.Repeat("cd", 32), Subject: "CN=www.corp.example," + long, NotAfter: exp},
			Owner: "web-platform-team"},
		{Kind: report.ChangeEndpointGone, IP: "2001:db8:1234:5678::10", Addr: netip.MustParseAddr("2001:db8:1234:5678::10"), Port: 389,
			SNI: "ldap.corp.example", Protocol: "ldap", Old: report.DiffCert{SHA256: strings.Repeat("ef", 32), Subject: "CN=\x1b[31mred\u202e" + long, NotAfter: exp}},
		{Kind: report.ChangeCertNew, IP: "10.0.0.1", Addr: netip.MustParseAddr("10.0.0.1"), Port: 587, Protocol: "smtp",
			New: report.DiffCert{SHA256: strings.Repeat("01", 32), Subject: "CN=Corp Issuing CA 3", NotAfter: exp}},
	}
	encode := func(format string, changes []report.Change) string {
		var buf bytes.Buffer
		enc, err := report.NewDiffEncoder(&buf, format)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			if err := enc.Encode(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	table := func(changes []report.Change) (string, []string) {
		out := encode("table", changes)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != len(changes)+1 || !strings.HasPrefix(lines[0], "CHANGE") {
			t.Fatalf("table:\n%s", out)
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > report.DiffTableWidth {
				t.Errorf("table line is %d runes wide, want <= %d:\n%s", n, report.DiffTableWidth, l)
			}
		}
		if strings.Contains(out, "\x1b") || strings.Contains(out, strings.Repeat("ab", 32)) {
			t.Errorf("table has a raw escape or a full fingerprint:\n%s", out)
		}
		return out, lines
	}

	// Realistic rows: only the long subject is shortened.
	realistic, lines := table([]report.Change{changes[0], changes[2]})
	for _, want := range []string{"10.20.130.45:8443", "abababababab", "cdcdcdcdcdcd", "2027-03-04",
		"CN=www.corp.example,", "…", "web-platform-team", "CN=Corp Issuing CA 3", "10.0.0.1:587/smtp"} {
		if !strings.Contains(realistic, want) {
			t.Errorf("table lacks %q:\n%s", want, realistic)
		}
	}
	if !strings.Contains(lines[1], "2027-03-04") || strings.Contains(lines[1], "2026-03-04") {
		t.Errorf("a rotation's table row shows the new expiry: %s", lines[1])
	}
	// An extreme row (IPv6, SNI, a long hostile subject) still fits, escaped.
	extreme, _ := table(changes)
	for _, want := range []string{"[2001:db8:1234:5678::10]", `CN=\x1b[31mred`, "endpoint-gone"} {
		if !strings.Contains(extreme, want) {
			t.Errorf("table lacks %q:\n%s", want, extreme)
		}
	}

	csv := encode("csv", changes)
	if !strings.HasPrefix(csv, "change,ip,port,sni,old_sha256,old_not_after,new_sha256,new_not_after,subject,owner,protocol,offer,site\r\n") ||
		!strings.Contains(csv, "certificate-changed,10.20.130.45,8443,,"+strings.Repeat("ab", 32)+",2026-03-04T05:06:07Z,"+strings.Repeat("cd", 32)+",2027-03-04T05:06:07Z,") {
		t.Errorf("csv:\n%s", csv)
	}
	json := encode("json", changes)
	if !strings.Contains(json, `{"change":"certificate-new","ip":"10.0.0.1","port":587,"sni":"","old_sha256":"","old_not_after":null,"new_sha256":"`+strings.Repeat("01", 32)+`","new_not_after":"2027-03-04T05:06:07Z","subject":"CN=Corp Issuing CA 3","owner":"","protocol":"smtp","offer":"","site":""}`) ||
		!strings.Contains(json, `"owner":"","protocol":"ldap","offer":"","site":""}`) || !strings.Contains(json, `"owner":"web-platform-team","protocol":"","offer":"","site":""}`) {
		t.Errorf("json:\n%s", json)
	}
}
