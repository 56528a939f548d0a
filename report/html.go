package report

import (
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"html/template"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certsweep/certsweep/store"
)

var (
	//go:embed html.tmpl
	htmlTemplateText string
	//go:embed html.css
	htmlCSS string
	//go:embed html.js
	htmlJS string

	// htmlTemplates is parsed once and never changed: html/template escapes
	// every value by its context (text, attribute, URL), which is what makes
	// a certificate field such as "<script>" render as text.
	htmlTemplates = template.Must(template.New("html").Parse(htmlTemplateText))
)

// CSP is the Content-Security-Policy of every page certsweep writes: nothing
// is fetched, and the only script and style that run are the page's own,
// pinned by hash, so markup smuggled into a certificate field could not run
// even if escaping failed.
var CSP = "default-src 'none'; script-src '" + cspHash(htmlJS) + "'; style-src '" + cspHash(htmlCSS) +
	"'; img-src data:; base-uri 'none'; form-action 'none'"

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// HTMLOptions adjusts an HTML page. The zero value writes a standalone
// report.
type HTMLOptions struct {
	Title   string    // the page's heading; "certsweep report" when empty
	Now     time.Time // what the expiry timeline counts from; time.Now() when zero
	Warning string    // shown above the summary (a coverage warning, say)
	Nav     []Link    // links under the heading
	// CertLink, when set, makes each fingerprint a link to CertLink followed
	// by the fingerprint (the web view's certificate pages).
	CertLink string
}

// Link is a link of a page's navigation.
type Link struct{ Text, Href string }

// htmlHidden are columns the HTML table leaves to the CSV: detail that
// would double the page's size at 10,000 rows and that the certificate page
// (or the CSV) shows.
var htmlHidden = []string{"serial", "not_before", "signature_algorithm", "first_seen", "last_seen",
	"tls_version", "cipher", "note", "owner_source", "versions", "weak_ciphers", "spki_sha256", "offer", "sni_source", "site"} // site: shown in the ip cell (fra:10.0.0.5)

// timelineWeeks is how far ahead the expiry timeline looks.
const timelineWeeks = 26

// subnetRows caps the subnet table; the endpoint table filters the rest.
const subnetRows = 50

type htmlColumn struct {
	Name string
	Num  bool
	Type string // "n" (numeric), "sev", "ip" or "" (text), for sorting
	src  int    // index in the encoder's columns
}

type htmlCell struct{ Text, Class, Href string }

type htmlRow struct {
	Sev   int
	Kinds string
	Owner string
	Cells []htmlCell
}

// htmlEncoder streams the endpoint table as rows arrive and writes the
// summary, which needs every row, after it; CSS shows the summary first.
// Memory holds only the counts and the set of certificates seen.
type htmlEncoder struct {
	w       io.Writer
	opts    HTMLOptions
	columns []string
	shown   []htmlColumn
	col     map[string]int // column name → index

	rows      int
	severity  [5]int // findings by severity
	kinds     map[string]int
	owners    map[string]bool
	subnets   map[string]*subnetCount
	certs     map[string]bool // fingerprints already on the timeline
	expired   int
	weeks     [timelineWeeks]int
	later     int // certificates expiring after the timeline
	unknown   int // certificates without a readable expiry
	endpoints map[string]bool
}

type subnetCount struct {
	endpoints, findings int
	worst               Severity
}

// NewHTML returns an encoder that writes one self-contained HTML page: a
// summary (counts by severity, an expiry timeline, findings by kind and by
// subnet) and a sortable, filterable table of the rows. The summary is
// computed from the columns present: severity, findings or kind, ip,
// sha256 and not_after, owner. Inline CSS, SVG and one small script; the
// page fetches nothing.
func NewHTML(w io.Writer, columns []string, o HTMLOptions) (Encoder, error) {
	if o.Title == "" {
		o.Title = "certsweep report"
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	e := &htmlEncoder{w: w, opts: o, columns: columns, col: map[string]int{},
		kinds: map[string]int{}, owners: map[string]bool{}, subnets: map[string]*subnetCount{},
		certs: map[string]bool{}, endpoints: map[string]bool{}}
	for i, c := range columns {
		e.col[c] = i
		if slices.Contains(htmlHidden, c) {
			continue
		}
		hc := htmlColumn{Name: c, src: i}
		switch c {
		case "port", "days_left", "key_bits", "handshake_ms", "probes_total", "new_certs", "id":
			hc.Num, hc.Type = true, "n"
		case "severity":
			hc.Type = "sev"
		case "ip":
			hc.Type = "ip"
		}
		e.shown = append(e.shown, hc)
	}
	err := htmlTemplates.ExecuteTemplate(w, "head", struct {
		page
		Columns []htmlColumn
	}{e.page(), e.shown})
	if err != nil {
		return nil, fmt.Errorf("write html: %w", err)
	}
	return e, nil
}

// page is what the top of every page shows.
type page struct {
	CSP, Title, Generated, Warning string
	Nav                            []Link
	CSS                            template.CSS
}

func (e *htmlEncoder) page() page {
	return page{CSP: CSP, Title: e.opts.Title, Generated: e.opts.Now.UTC().Format("2006-01-02 15:04 UTC"),
		Warning: e.opts.Warning, Nav: e.opts.Nav, CSS: template.CSS(htmlCSS)}
}

func (e *htmlEncoder) value(values []any, name string) (any, bool) {
	i, ok := e.col[name]
	if !ok || i >= len(values) {
		return nil, false
	}
	return values[i], true
}

func (e *htmlEncoder) text(values []any, name string) string {
	v, _ := e.value(values, name)
	return Text(v)
}

func (e *htmlEncoder) Encode(values ...any) error {
	if len(values) != len(e.columns) {
		return fmt.Errorf("html: %d values for %d columns", len(values), len(e.columns))
	}
	e.rows++
	var kinds []string
	if k := e.text(values, "findings"); k != "" {
		kinds = strings.Split(k, ";")
	} else if k := e.text(values, "kind"); k != "" {
		kinds = []string{k}
	}
	worst := Severity(-1)
	if s, err := ParseSeverity(e.text(values, "severity")); err == nil {
		worst = s
	}
	for _, k := range kinds {
		s := KindSeverity(Kind(k))
		if _, ok := e.col["kind"]; ok && worst >= 0 {
			s = worst // a findings row says its severity
		}
		e.severity[s]++
		e.kinds[k]++
		worst = max(worst, s)
	}
	owner := Terminal(e.text(values, "owner"))
	if _, ok := e.col["owner"]; ok && owner != "" {
		e.owners[owner] = true
	}
	ip := e.text(values, "ip")
	if a, err := netip.ParseAddr(ip); err == nil {
		e.endpoints[e.text(values, "site")+" "+ip+" "+e.text(values, "port")+" "+e.text(values, "sni")+" "+e.text(values, "protocol")] = true
		bits := 24
		if a = a.Unmap(); a.Is6() {
			bits = 64
		}
		p, _ := a.Prefix(bits)
		subnet := p.String()
		if site := e.text(values, "site"); site != "" {
			subnet = Terminal(site) + ":" + subnet // the same private range at two sites is two subnets
		}
		sc := e.subnets[subnet]
		if sc == nil {
			sc = &subnetCount{worst: -1}
			e.subnets[subnet] = sc
		}
		sc.endpoints++
		sc.findings += len(kinds)
		sc.worst = max(sc.worst, worst)
	}
	e.timeline(values)

	row := htmlRow{Sev: int(worst), Kinds: strings.Join(kinds, " "), Owner: owner}
	for _, c := range e.shown {
		v := values[c.src]
		// Escaped as on a terminal as well: html/template makes markup
		// inert, this makes control characters and bidi overrides visible.
		cell := htmlCell{Text: Terminal(Text(v))}
		switch v := v.(type) {
		case time.Time:
			if !v.IsZero() {
				cell.Text = v.UTC().Format(time.DateOnly)
			}
		case Date:
			cell.Text = time.Time(v).UTC().Format(time.DateOnly)
		case []string:
			cell.Text = Terminal(strings.Join(v, ", ")) // lets a long list wrap
		}
		switch {
		case c.Num:
			cell.Class = "n"
		case c.Name == "severity" && cell.Text != "":
			cell.Class = "sev " + cell.Text
		case strings.HasSuffix(c.Name, "sha256"):
			cell.Class = "fp"
			if e.opts.CertLink != "" && len(cell.Text) == 64 {
				cell.Href = e.opts.CertLink + cell.Text
			}
		case c.Name == "findings":
			cell.Text = strings.ReplaceAll(cell.Text, ";", " ")
		case c.Name == "ip":
			if site := e.text(values, "site"); site != "" {
				cell.Text = Terminal(site) + ":" + cell.Text // as diff shows it: fra:10.0.0.5
			}
		}
		row.Cells = append(row.Cells, cell)
	}
	if err := htmlTemplates.ExecuteTemplate(e.w, "row", row); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}

// timeline counts the row's certificate once, in the week it expires.
func (e *htmlEncoder) timeline(values []any) {
	fp := e.text(values, "sha256")
	if fp == "" || e.certs[fp] {
		return
	}
	e.certs[fp] = true
	v, _ := e.value(values, "not_after")
	var t time.Time
	switch v := v.(type) {
	case Date:
		t = time.Time(v)
	case time.Time:
		t = v
	default:
		e.unknown++
		return
	}
	if t.Before(e.opts.Now) {
		e.expired++
		return
	}
	// Sub saturates for dates centuries away, which land in "later".
	if w := int(t.Sub(e.opts.Now) / (7 * 24 * time.Hour)); w < timelineWeeks {
		e.weeks[w]++
	} else {
		e.later++
	}
}

type htmlTile struct {
	Class, Label string
	Count        int
}

type htmlKind struct {
	Name, Severity string
	Count          int
}

type htmlSubnet struct {
	Name, Worst         string
	Endpoints, Findings int
}

type htmlBar struct {
	X, Y, W, H, TX, VY, LY int
	Count                  int
	Expired                bool
	Title, Label           string
}

type htmlTimeline struct {
	Width, Height int
	Bars          []htmlBar
	Caption       string
}

type htmlSeverity struct {
	Rank int
	Name string
}

func (e *htmlEncoder) Close() error {
	d := struct {
		Tiles       []htmlTile
		Timeline    *htmlTimeline
		Kinds       []htmlKind
		Subnets     []htmlSubnet
		MoreSubnets int
		HasSeverity bool
		Severities  []htmlSeverity
		KindOptions []string
		HasOwner    bool
		Owners      []string
		Rows        int
		Script      template.JS
	}{Rows: e.rows, Script: template.JS(htmlJS)}

	_, hasSev := e.col["severity"]
	_, hasFindings := e.col["findings"]
	_, hasKind := e.col["kind"]
	if hasSev || hasFindings || hasKind {
		for s := SeverityCritical; s >= SeverityInfo; s-- {
			d.Tiles = append(d.Tiles, htmlTile{Class: s.String(), Label: s.String() + " findings", Count: e.severity[s]})
			d.Severities = append(d.Severities, htmlSeverity{Rank: int(s), Name: s.String()})
		}
		slices.Reverse(d.Severities)
		d.HasSeverity = true
	}
	if len(e.endpoints) > 0 {
		d.Tiles = append(d.Tiles, htmlTile{Class: "total", Label: "endpoints", Count: len(e.endpoints)})
	}
	if _, ok := e.col["sha256"]; ok {
		d.Tiles = append(d.Tiles, htmlTile{Class: "total", Label: "certificates", Count: len(e.certs)})
	}
	if _, ok := e.col["not_after"]; ok && len(e.certs) > 0 {
		d.Timeline = e.timelineSVG()
	}

	for k, n := range e.kinds {
		d.Kinds = append(d.Kinds, htmlKind{Name: Terminal(k), Severity: KindSeverity(Kind(k)).String(), Count: n})
		d.KindOptions = append(d.KindOptions, Terminal(k))
	}
	slices.SortFunc(d.Kinds, func(a, b htmlKind) int {
		sa, _ := ParseSeverity(a.Severity)
		sb, _ := ParseSeverity(b.Severity)
		return cmp.Or(cmp.Compare(sb, sa), cmp.Compare(b.Count, a.Count), strings.Compare(a.Name, b.Name))
	})
	slices.Sort(d.KindOptions)

	for name, sc := range e.subnets {
		worst := ""
		if sc.worst >= 0 {
			worst = sc.worst.String()
		}
		d.Subnets = append(d.Subnets, htmlSubnet{Name: name, Worst: worst, Endpoints: sc.endpoints, Findings: sc.findings})
	}
	slices.SortFunc(d.Subnets, func(a, b htmlSubnet) int {
		return cmp.Or(cmp.Compare(b.Findings, a.Findings), cmp.Compare(b.Endpoints, a.Endpoints), strings.Compare(a.Name, b.Name))
	})
	if len(d.Subnets) > subnetRows {
		d.MoreSubnets = len(d.Subnets) - subnetRows
		d.Subnets = d.Subnets[:subnetRows]
	}

	if _, ok := e.col["owner"]; ok {
		d.HasOwner = true
		for o := range e.owners {
			d.Owners = append(d.Owners, o)
		}
		slices.Sort(d.Owners)
	}
	if err := htmlTemplates.ExecuteTemplate(e.w, "tail", d); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}

// timelineSVG lays out one bar for the expired certificates and one per
// week ahead, scaled to the tallest.
func (e *htmlEncoder) timelineSVG() *htmlTimeline {
	// left leaves room for half the "expired" label, centred under the
	// first bar: with less, the label is cut off at the edge.
	const barW, gap, plotH, top, left = 22, 6, 110, 16, 16
	counts := append([]int{e.expired}, e.weeks[:]...)
	tallest := max(1, slices.Max(counts))
	tl := &htmlTimeline{Width: left + len(counts)*(barW+gap), Height: top + plotH + 30}
	for i, n := range counts {
		h := n * plotH / tallest
		if n > 0 {
			h = max(h, 2)
		}
		x := left + i*(barW+gap)
		b := htmlBar{X: x, Y: top + plotH - h, W: barW, H: h, TX: x + barW/2, VY: top + plotH - h - 3,
			LY: top + plotH + 14, Count: n, Expired: i == 0}
		if i == 0 {
			b.Label = "expired"
			b.Title = fmt.Sprintf("%d certificates already expired", n)
		} else {
			from := e.opts.Now.AddDate(0, 0, 7*(i-1))
			b.Title = fmt.Sprintf("%d certificates expiring in week %d (from %s)", n, i, from.UTC().Format(time.DateOnly))
			if i%4 == 2 { // every fourth week, clear of the "expired" label
				b.Label = from.UTC().Format("Jan 2")
			}
		}
		tl.Bars = append(tl.Bars, b)
	}
	tl.Caption = fmt.Sprintf("%d expired, %d expiring in the next %d weeks, %d later", e.expired, sum(e.weeks[:]), timelineWeeks, e.later)
	if e.unknown > 0 {
		tl.Caption += fmt.Sprintf(", %d with no readable expiry date", e.unknown)
	}
	tl.Caption += "; each certificate counts once, however many endpoints present it."
	return tl
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// CertPage is what the web view shows about one certificate.
type CertPage struct {
	Cert      store.Certificate
	Owner     string // "" for a shadow certificate
	Sightings []store.Sighting
	More      bool   // Sightings was cut short
	Nav       []Link // links under the heading
	Now       time.Time
	// SweepLink is the address of a sweep's dashboard, before its ID.
	SweepLink string
}

// WriteCertPage writes one certificate's page: its fields, where it was
// seen and its PEM, with the same escaping and policy as the report.
func WriteCertPage(w io.Writer, p CertPage) error {
	c := p.Cert
	type field struct{ Name, Value string }
	notBefore, notAfter := Validity(c.Cert)
	fields := []field{
		{"SHA-256", c.Fingerprint()},
		{"Subject", c.Subject},
		{"Issuer", c.Issuer},
		{"Serial", c.Serial},
		{"Not before", Text(notBefore)},
		{"Not after", Text(notAfter)},
		{"Key", strings.TrimSpace(c.KeyType + " " + strconv.Itoa(c.KeyBits))},
		{"Signature", c.SignatureAlgorithm},
		{"SANs", strings.Join(c.SANs, ", ")},
		{"CA", strconv.FormatBool(c.IsCA)},
		{"Self-signed", strconv.FormatBool(c.SelfSigned)},
		{"SPKI SHA-256", fmt.Sprintf("%x", c.SPKISHA256)},
		{"First seen", Text(c.FirstSeen)},
		{"Last seen", Text(c.LastSeen)},
		{"Owner", cmp.Or(p.Owner, "none (a shadow certificate, unless an owner rule covers its endpoints)")},
	}
	if c.ParseError != "" {
		fields = slices.Insert(fields, 1, field{"Parse error", c.ParseError})
	}
	for i := range fields {
		fields[i].Value = Terminal(fields[i].Value)
	}
	type sighting struct {
		SweepID                                                 int64
		SweepHref, Observed, Endpoint, SNI, TLS, Versions, Weak string
		Position                                                int
	}
	var ss []sighting
	for _, s := range p.Sightings {
		where := fmt.Sprintf("%s:%d", s.IP, s.Port)
		if strings.Contains(s.IP, ":") {
			where = fmt.Sprintf("[%s]:%d", s.IP, s.Port)
		}
		if s.Protocol != "" && s.Protocol != "tls" {
			where += "/" + s.Protocol
		}
		versions, weak := PostureCells(s.Posture, s.Versions, s.WeakCiphers)
		ss = append(ss, sighting{SweepID: s.SweepID, SweepHref: p.SweepLink + strconv.FormatInt(s.SweepID, 10),
			Observed: Text(s.ObservedAt), Endpoint: Terminal(where), SNI: Terminal(s.SNI), TLS: Terminal(s.TLSVersion),
			Position: s.Position, Versions: Terminal(versions), Weak: Terminal(weak)})
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	d := struct {
		page
		Fields    []field
		Sightings []sighting
		More      bool
		PEM       string
	}{
		page: page{CSP: CSP, Title: "certificate " + c.Fingerprint()[:16] + "…", Generated: now.UTC().Format("2006-01-02 15:04 UTC"),
			Nav: p.Nav, CSS: template.CSS(htmlCSS)},
		Fields: fields, Sightings: ss, More: p.More,
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})),
	}
	if err := htmlTemplates.ExecuteTemplate(w, "cert", d); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}
