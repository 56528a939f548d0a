package report_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"golang.org/x/net/html"
)

// htmlEndpoint is an endpoint of a hand-built report row.
func htmlEndpoint(i int, ip, subject string, notAfter time.Time, owner string) store.Endpoint {
	var fp [32]byte
	fp[0], fp[1], fp[31] = byte(i>>8), byte(i), 0xcd
	return store.Endpoint{SweepID: 1, IP: ip, Port: 443, Protocol: "tls", Owner: owner,
		Leaf: store.Certificate{Cert: scanner.Cert{SHA256: fp, Subject: subject, Issuer: "CN=Lab CA",
			NotBefore: notAfter.AddDate(0, -3, 0), NotAfter: notAfter, KeyType: "ECDSA", KeyBits: 256}}}
}

func renderHTML(t testing.TB, now time.Time, rows [][]any) string {
	t.Helper()
	var buf bytes.Buffer
	enc, err := report.NewHTML(&buf, report.ReportColumns, report.HTMLOptions{Now: now, Title: "sweep 1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := enc.Encode(r...); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestHTMLReport(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	xss := "<script>alert(1)</script>"
	f := func(k report.Kind) report.Finding { return report.Finding{Kind: k, Severity: report.KindSeverity(k)} }
	rows := [][]any{
		report.ReportRow(htmlEndpoint(1, "10.0.0.5", xss, now.AddDate(0, 0, -3), ""), []report.Finding{f(report.KindExpired), f(report.KindUntracked)}, now),
		report.ReportRow(htmlEndpoint(2, "10.0.0.9", "CN=soon", now.AddDate(0, 0, 10), "web-team"), []report.Finding{f(report.KindExpiring)}, now),
		report.ReportRow(htmlEndpoint(3, "10.0.1.1", "CN=ok", now.AddDate(0, 6, 0).AddDate(0, 0, 20), "web-team"), nil, now),
		report.ReportRow(htmlEndpoint(4, "2001:db8::1", "CN=v6 \x1b[31m\u202e", now.AddDate(0, 0, 15), "\"><b>owner"), []report.Finding{f(report.KindSelfSigned)}, now),
	}
	// The same certificate at a second endpoint counts once on the timeline.
	again := htmlEndpoint(2, "10.0.0.10", "CN=soon", now.AddDate(0, 0, 10), "web-team")
	rows = append(rows, report.ReportRow(again, []report.Finding{f(report.KindExpiring)}, now))
	out := renderHTML(t, now, rows)

	if strings.Contains(out, xss) || !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the subject %q is not escaped as text", xss)
	}
	if strings.ContainsAny(out, "\x1b\u202e") {
		t.Errorf("a control character or bidi override reached the page raw")
	}
	if n := strings.Count(out, "<script"); n != 1 {
		t.Errorf("the page has %d <script elements, want only its own", n)
	}
	for _, fetch := range []string{" src=", "<link", "url(", "@import", "http://", "https://"} {
		if strings.Contains(out, fetch) {
			t.Errorf("the page contains %q: it must fetch nothing", fetch)
		}
	}
	checkCSP(t, out)

	doc, err := html.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	body := find(doc, func(n *html.Node) bool { return n.Data == "tbody" && attr(n.Parent, "id") == "rows" })
	if body == nil {
		t.Fatal("no table#rows tbody")
	}
	var trs []*html.Node
	for c := body.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.Data == "tr" {
			trs = append(trs, c)
		}
	}
	if len(trs) != len(rows) {
		t.Fatalf("table has %d rows, want %d", len(trs), len(rows))
	}
	if got := attr(trs[0], "data-sev"); got != fmt.Sprint(int(report.SeverityCritical)) {
		t.Errorf("row 1 data-sev = %q, want critical's rank", got)
	}
	if got := attr(trs[0], "data-kinds"); got != "expired untracked" {
		t.Errorf("row 1 data-kinds = %q", got)
	}
	if got := attr(trs[3], "data-owner"); got != "\"><b>owner" {
		t.Errorf("row 4 data-owner = %q, want the owner as text", got)
	}
	if !strings.Contains(text(trs[0]), xss) {
		t.Errorf("row 1 does not show the subject as text: %q", text(trs[0]))
	}

	tiles := map[string]string{}
	for _, li := range findAll(doc, func(n *html.Node) bool {
		return n.Data == "li" && n.Parent != nil && attr(n.Parent, "class") == "tiles"
	}) {
		b := find(li, func(n *html.Node) bool { return n.Data == "b" })
		tiles[strings.TrimPrefix(text(li), text(b))] = text(b)
	}
	for label, want := range map[string]string{"critical findings": "1", "high findings": "2", "medium findings": "2",
		"low findings": "0", "endpoints": "5", "certificates": "4"} {
		if tiles[label] != want {
			t.Errorf("tile %q = %q, want %s (tiles %v)", label, tiles[label], want, tiles)
		}
	}

	titles := map[string]bool{}
	for _, n := range findAll(doc, func(n *html.Node) bool { return n.Data == "title" && n.Parent.Data == "g" }) {
		titles[text(n)] = true
	}
	for _, want := range []string{
		"1 certificates already expired",
		"1 certificates expiring in week 2 (from 2026-03-09)", // 10 days ahead, counted once
		"1 certificates expiring in week 3 (from 2026-03-16)", // 15 days ahead
	} {
		if !titles[want] {
			t.Errorf("timeline lacks a bar %q; bars: %v", want, titles)
		}
	}
	if !strings.Contains(out, "1 expired, 2 expiring in the next 26 weeks, 1 later") {
		t.Errorf("timeline caption is wrong")
	}

	subnets := map[string]string{}
	for _, tr := range findAll(doc, func(n *html.Node) bool { return n.Data == "tr" }) {
		var cells []string
		for c := tr.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "td" {
				cells = append(cells, text(c))
			}
		}
		if len(cells) == 4 && strings.Contains(cells[0], "/") {
			subnets[cells[0]] = strings.Join(cells[1:], " ")
		}
	}
	for name, want := range map[string]string{"10.0.0.0/24": "3 4 critical", "10.0.1.0/24": "1 0 ", "2001:db8::/64": "1 1 medium"} {
		if subnets[name] != want {
			t.Errorf("subnet %s = %q, want %q (all: %v)", name, subnets[name], want, subnets)
		}
	}
	for _, id := range []string{"f-sev", "f-kind", "f-owner", "f-text"} {
		if find(doc, func(n *html.Node) bool { return attr(n, "id") == id }) == nil {
			t.Errorf("filter #%s is missing", id)
		}
	}
}

// checkCSP verifies that the page's policy allows exactly its own inline
// script and style, by the hashes of what the page carries.
func checkCSP(t *testing.T, out string) {
	t.Helper()
	m := regexp.MustCompile(`<meta http-equiv="Content-Security-Policy" content="([^"]+)">`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no Content-Security-Policy meta tag")
	}
	csp := html.UnescapeString(m[1])
	if csp != report.CSP {
		t.Errorf("meta CSP %q differs from report.CSP %q", csp, report.CSP)
	}
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q must default to none and allow no unsafe-inline", csp)
	}
	for _, tag := range []string{"script", "style"} {
		body := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(out, -1)
		for _, b := range body {
			sum := sha256.Sum256([]byte(b[1]))
			h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
			if !strings.Contains(csp, tag+"-src "+h) {
				t.Errorf("the page's <%s> (hash %s) is not the one %s-src allows: %q", tag, h, tag, csp)
			}
		}
	}
}

func TestHTMLOtherListings(t *testing.T) {
	// Every listing may be written as HTML; the summary uses what its
	// columns offer.
	var buf bytes.Buffer
	enc, err := report.NewEncoder(&buf, "html", []string{"id", "name", "state"})
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Encode(int64(3), "<b>weekly</b>", "complete"); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "<td>&lt;b&gt;weekly&lt;/b&gt;</td>") || strings.Contains(out, `id="f-sev"`) || strings.Contains(out, "<svg") {
		t.Errorf("sweeps as html: want the escaped name and no severity filter or timeline:\n%s", out)
	}
	if err := enc.Encode("too few"); err == nil {
		t.Error("Encode with the wrong number of values succeeded")
	}
}

func TestCertPage(t *testing.T) {
	ep := htmlEndpoint(7, "10.0.0.7", "CN=<img src=x onerror=alert(1)>", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "")
	ep.Leaf.DER = []byte{0x30, 0x03, 0x02, 0x01, 0x01}
	var buf bytes.Buffer
	err := report.WriteCertPage(&buf, report.CertPage{Cert: ep.Leaf, SweepLink: "/?sweep=",
		Sightings: []store.Sighting{{SweepID: 4, IP: "::1", Port: 8443, SNI: "a\x1bb", Protocol: "smtp"}}})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"CN=&lt;img src=x onerror=alert(1)&gt;", "[::1]:8443/smtp", `a\x1bb`, `href="/?sweep=4"`,
		"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----"} {
		if !strings.Contains(out, want) {
			t.Errorf("certificate page lacks %q", want)
		}
	}
	if strings.Contains(out, "<img") {
		t.Error("the subject's markup reached the page")
	}
	checkCSP(t, out)
}

// BenchmarkHTMLReport10k renders the report of 10,000 endpoints, the size
// the HTML report must stay usable at; it reports the page's size.
func BenchmarkHTMLReport10k(b *testing.B) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	f := func(k report.Kind) report.Finding { return report.Finding{Kind: k, Severity: report.KindSeverity(k)} }
	var rows [][]any
	for i := range 10000 {
		ep := htmlEndpoint(i, fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256+1),
			fmt.Sprintf("CN=host-%d.corp.example,O=Corp", i), now.AddDate(0, 0, i%400-30), []string{"", "web-team", "dc-team"}[i%3])
		ep.SNI = fmt.Sprintf("host-%d.corp.example", i)
		ep.Leaf.SANs = []string{ep.SNI, "www." + ep.SNI}
		ep.TLSVersion, ep.CipherSuite = "TLS 1.3", "TLS_AES_128_GCM_SHA256"
		var fs []report.Finding
		switch i % 5 {
		case 0:
			fs = []report.Finding{f(report.KindUntracked)}
		case 1:
			fs = []report.Finding{f(report.KindExpiring), f(report.KindSelfSigned)}
		}
		rows = append(rows, report.ReportRow(ep, fs, now))
	}
	var size int
	b.ReportAllocs()
	for b.Loop() {
		size = len(renderHTML(b, now, rows))
	}
	b.ReportMetric(float64(size), "bytes/page")
}

func attr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	if all := findAll(n, match); len(all) > 0 {
		return all[0]
	}
	return nil
}

// TestHTMLSites: the same address at two sites is two endpoints, shown
// as site:ip, in two subnets.
func TestHTMLSites(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	here := htmlEndpoint(1, "10.0.0.5", "CN=here", now.AddDate(0, 1, 0), "")
	there := htmlEndpoint(2, "10.0.0.5", "CN=there", now.AddDate(0, 1, 0), "")
	there.Site = "fra"
	out := renderHTML(t, now, [][]any{report.ReportRow(here, nil, now), report.ReportRow(there, nil, now)})
	doc, err := html.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var firstCells, subnets []string
	for _, tr := range findAll(doc, func(n *html.Node) bool { return n.Data == "tr" }) {
		var cells []string
		for c := tr.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "td" {
				cells = append(cells, text(c))
			}
		}
		switch {
		case len(cells) == 4 && strings.Contains(cells[0], "/"):
			subnets = append(subnets, cells[0]+" "+cells[1])
		case len(cells) > 4:
			firstCells = append(firstCells, cells[0])
		}
	}
	if want := []string{"10.0.0.5", "fra:10.0.0.5"}; !slices.Equal(firstCells, want) {
		t.Errorf("ip cells %q, want %q", firstCells, want)
	}
	slices.Sort(subnets)
	if want := []string{"10.0.0.0/24 1", "fra:10.0.0.0/24 1"}; !slices.Equal(subnets, want) {
		t.Errorf("subnets %q, want %q", subnets, want)
	}
	tile := find(doc, func(n *html.Node) bool { return n.Data == "li" && strings.HasSuffix(text(n), "endpoints") })
	if tile == nil || !strings.HasPrefix(text(tile), "2") {
		t.Errorf("the endpoints tile does not count 2")
	}
}
