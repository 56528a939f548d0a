package report_test

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
)

// siteSource is a DiffSource of endpoints at sites: each endpoint is
// "site ip" on port 443 with a one-certificate chain.
func siteSource(eps map[string]string) report.DiffSource {
	var states []store.EndpointState
	var chains []store.ChainCert
	for key, fp := range eps {
		site, ip, _ := strings.Cut(key, " ")
		a := netip.MustParseAddr(ip)
		states = append(states, store.EndpointState{Site: site, IP: ip, Addr: a, Port: 443, Status: "ok",
			LeafSHA256: fp, Subject: "CN=" + fp, NotAfter: time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)})
		chains = append(chains, store.ChainCert{CertID: certID(fp), SHA256: fp, Subject: "CN=" + fp, Site: site, IP: ip, Addr: a, Port: 443})
	}
	slices.SortFunc(states, store.CompareEndpoints)
	slices.SortFunc(chains, func(x, y store.ChainCert) int {
		if x.CertID != y.CertID {
			return int(x.CertID - y.CertID)
		}
		return store.CompareEndpoints(store.EndpointState{Site: x.Site, IP: x.IP, Addr: x.Addr, Port: x.Port},
			store.EndpointState{Site: y.Site, IP: y.IP, Addr: y.Addr, Port: y.Port})
	})
	return report.DiffSource{Endpoints: seq(states...), Chains: seq(chains...)}
}

// The same private address at two sites is two endpoints: a rotation at
// one site is one certificate-changed row for that site, and the other
// site's endpoint, unchanged, is not confused with it.
func TestDiffKeepsSitesApart(t *testing.T) {
	old := siteSource(map[string]string{"fra 10.0.0.5": "fra-1", "dal 10.0.0.5": "dal-1", " 10.0.0.5": "none-1"})
	cur := siteSource(map[string]string{"fra 10.0.0.5": "fra-2", "dal 10.0.0.5": "dal-1", " 10.0.0.5": "none-1", "dal 10.0.0.6": "dal-3"})
	var got []report.Change
	sum, err := report.Diff(old, cur, nil, func(c report.Change) error { got = append(got, c); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || sum.Unchanged != 2 {
		t.Fatalf("diff = %+v (%s), want a rotation at fra and a new endpoint at dal, 2 unchanged", got, sum)
	}
	// Rows come in endpoint order: site first ("dal" < "fra").
	if got[0].Kind != report.ChangeEndpointNew || got[0].Site != "dal" || got[0].IP != "10.0.0.6" {
		t.Errorf("first row %+v, want endpoint-new at dal 10.0.0.6", got[0])
	}
	if c := got[1]; c.Kind != report.ChangeCertChanged || c.Site != "fra" || c.Old.SHA256 != "fra-1" || c.New.SHA256 != "fra-2" {
		t.Errorf("second row %+v, want certificate-changed fra-1 → fra-2 at fra", c)
	}
	row := got[1].Row()
	if len(row) != len(report.DiffColumns) || report.DiffColumns[len(row)-1] != "site" || row[len(row)-1] != "fra" {
		t.Errorf("row %v: want the site in the last column (%v)", row, report.DiffColumns)
	}
	if ep := got[1].TableRow()[1]; ep != "fra:10.0.0.5:443" {
		t.Errorf("table endpoint %q, want fra:10.0.0.5:443", ep)
	}
	noSite := report.Change{Kind: report.ChangeEndpointNew, IP: "10.0.0.5", Addr: netip.MustParseAddr("10.0.0.5"), Port: 443}
	if ep := noSite.TableRow()[1]; ep != "10.0.0.5:443" {
		t.Errorf("table endpoint without a site %q, want 10.0.0.5:443 as before", ep)
	}
}

// CompareEndpoints puts the site first: SQL orders by o.site, then the
// address, and the diff's merge join relies on both agreeing.
func TestCompareEndpointsSiteFirst(t *testing.T) {
	ep := func(site, ip string, port int) store.EndpointState {
		return store.EndpointState{Site: site, IP: ip, Addr: netip.MustParseAddr(ip), Port: port}
	}
	in := []store.EndpointState{ep("b", "10.0.0.1", 443), ep("", "10.0.0.9", 443), ep("a", "10.0.0.10", 443), ep("a", "10.0.0.9", 8443), ep("", "10.0.0.10", 1)}
	slices.SortFunc(in, store.CompareEndpoints)
	var got []string
	for _, e := range in {
		got = append(got, e.Site+"/"+e.IP)
	}
	want := []string{"/10.0.0.9", "/10.0.0.10", "a/10.0.0.9", "a/10.0.0.10", "b/10.0.0.1"}
	if !slices.Equal(got, want) {
		t.Errorf("sorted %v, want %v", got, want)
	}
	if store.CompareEndpoints(ep("a", "10.0.0.1", 443), ep("b", "10.0.0.1", 443)) == 0 {
		t.Error("one address at two sites compares equal: it must be two endpoints")
	}
}

// A finding's alert key gains the site as its last element only when the
// endpoint has one: the keys destinations accepted before sites existed
// (site "") stay byte for byte the same, so nothing is sent twice after
// the upgrade; the same finding at another site is a finding of its own.
func TestAlertKeySite(t *testing.T) {
	ep := store.Endpoint{IP: "10.0.0.5", Port: 443, SNI: "www.example.com", Protocol: "tls"}
	ep.Leaf.SHA256[0] = 0xab
	f := report.Finding{Kind: report.KindExpired, Severity: report.SeverityCritical, Detail: "expired"}
	want := `["expired","ab00000000000000000000000000000000000000000000000000000000000000","10.0.0.5",443,"www.example.com","tls",""]`
	if got := report.AlertKey(ep, f, 1); got != want {
		t.Errorf("key without a site:\n got %s\nwant %s (as stored before schema 9)", got, want)
	}
	fra, dal := ep, ep
	fra.Site, dal.Site = "fra", "dal"
	kf, kd := report.AlertKey(fra, f, 1), report.AlertKey(dal, f, 1)
	var v []any
	if err := json.Unmarshal([]byte(kf), &v); err != nil || len(v) != 8 || v[7] != "fra" {
		t.Errorf("key at site fra %s (%v): want the site as an 8th element", kf, err)
	}
	if kf == kd || kf == want {
		t.Errorf("one finding at two sites has keys %s and %s (no site: %s): want three keys", kf, kd, want)
	}
}

// The report, findings and diff columns end with site, after every column
// they had: spreadsheets built on the old order keep working.
func TestSiteColumnsLast(t *testing.T) {
	for name, cols := range map[string][]string{"report": report.ReportColumns, "findings": report.FindingColumns, "diff": report.DiffColumns} {
		if cols[len(cols)-1] != "site" {
			t.Errorf("%s columns end with %q, want site", name, cols[len(cols)-1])
		}
	}
	ep := store.Endpoint{Site: "fra", IP: "10.0.0.5", Port: 443}
	f := report.Finding{Kind: report.KindPlaintextOnly, Severity: report.SeverityMedium}
	if row := report.FindingRow(ep, f); len(row) != len(report.FindingColumns) || row[len(row)-1] != "fra" {
		t.Errorf("finding row %v: want %d cells, the site last", row, len(report.FindingColumns))
	}
	if row := report.ReportRow(ep, []report.Finding{f}, time.Now()); len(row) != len(report.ReportColumns) || row[len(row)-1] != "fra" {
		t.Errorf("report row %v: want %d cells, the site last", row, len(report.ReportColumns))
	}
	if row := report.FindingRow(store.Endpoint{}, f); len(row) != len(report.FindingColumns) {
		t.Errorf("sweep finding row %v: want %d cells", row, len(report.FindingColumns))
	}
}
