package report

import (
	"cmp"
	"fmt"
	"io"
	"iter"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
)

// ChangeKind names a difference between two sweeps.
type ChangeKind string

// The kinds of change Diff reports. Every change is one row.
const (
	ChangeCertChanged  ChangeKind = "certificate-changed" // same endpoint, another leaf: a rotation, old → new
	ChangeEndpointGone ChangeKind = "endpoint-gone"       // answered before, not now; carries its last leaf as old
	ChangeEndpointNew  ChangeKind = "endpoint-new"        // answers now, did not before
	ChangeCertNew      ChangeKind = "certificate-new"     // presented now, not before, and on no endpoint row
	ChangeCertGone     ChangeKind = "certificate-gone"    // presented before, nowhere now, and on no endpoint row
)

// ChangeKinds lists every kind, in the order summaries count them.
var ChangeKinds = []ChangeKind{ChangeCertChanged, ChangeEndpointGone, ChangeEndpointNew, ChangeCertNew, ChangeCertGone}

// ParseChangeKinds reads a comma-separated list of change kinds.
func ParseChangeKinds(s string) ([]ChangeKind, error) {
	var out []ChangeKind
	for tok := range strings.SplitSeq(s, ",") {
		k := ChangeKind(strings.TrimSpace(tok))
		if k == "" {
			continue
		}
		if !slices.Contains(ChangeKinds, k) {
			return nil, fmt.Errorf("unknown change %q: use %s", string(k), joinKinds(ChangeKinds))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no change kind in %q: use %s", s, joinKinds(ChangeKinds))
	}
	return out, nil
}

func joinKinds(ks []ChangeKind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// DiffCert is one side of a change: a certificate, or nothing (zero).
type DiffCert struct {
	SHA256   string // full fingerprint, lowercase hex; "" when absent
	Subject  string
	NotAfter time.Time
}

// Change is one difference between two sweeps: an endpoint row (new, gone,
// changed) or a certificate row (new, gone). A certificate row names the
// first endpoint, in address order, that presents the certificate (in the
// newer sweep for certificate-new, the older one for certificate-gone).
type Change struct {
	Kind     ChangeKind
	Site     string // the vantage point (sweep --site); "" by default
	IP       string
	Addr     netip.Addr // IP parsed; invalid if it is not an address
	Port     int
	SNI      string
	Protocol string // "tls" or the protocol TLS was reached by, e.g. "smtp"
	Offer    string // "" every key family offered, "rsa" or "ecdsa" (--all-keys)
	Old, New DiffCert
	Owner    string
}

// OwnerOf says who owns the certificate with fingerprint leafSHA256 as
// presented by an endpoint; "" for nobody.
type OwnerOf func(ip string, port int, sni, leafSHA256 string) string

// DiffSource is one sweep as Diff reads it: its endpoints (ordered as
// store.EndpointStates yields them), the certificates of their chains
// (ordered as store.ChainCerts yields them), and the scope the sweep
// probed (nil: everything the other sweep saw counts as probed).
type DiffSource struct {
	Endpoints iter.Seq2[store.EndpointState, error]
	Chains    iter.Seq2[store.ChainCert, error]
	Scope     *scanner.Scope
}

// DiffSummary counts what Diff found.
type DiffSummary struct {
	Counts    map[ChangeKind]int
	Unchanged int // endpoints in both sweeps with the same leaf
	NotProbed int // endpoints left out: outside the other sweep's scope
}

// Any reports whether a change of any of the kinds occurred.
func (s DiffSummary) Any(kinds []ChangeKind) bool {
	for _, k := range kinds {
		if s.Counts[k] > 0 {
			return true
		}
	}
	return false
}

// String is e.g. "2 certificate-changed, 1 endpoint-gone, 0 endpoint-new,
// 0 certificate-new, 0 certificate-gone; 35 unchanged".
func (s DiffSummary) String() string {
	parts := make([]string, len(ChangeKinds))
	for i, k := range ChangeKinds {
		parts[i] = fmt.Sprintf("%d %s", s.Counts[k], k)
	}
	return strings.Join(parts, ", ") + fmt.Sprintf("; %d unchanged", s.Unchanged)
}

func inScope(s *scanner.Scope, a netip.Addr, port int, sni string) bool {
	if s == nil {
		return true
	}
	return a.IsValid() && port > 0 && port <= 65535 && s.Contains(a, uint16(port), sni)
}

// Diff compares sweep old with sweep cur and emits one Change per
// difference, within the scope both probed: an endpoint that one sweep saw
// and the other never probed (outside its scope) is counted as not probed,
// never as gone or new.
//
// Endpoint rows come first, in address order (numerically, IPv4 before
// IPv6, then port and SNI), streamed by merge-joining the two ordered
// endpoint streams. Certificate rows follow, ordered by the endpoint they
// name, then fingerprint.
//
// Memory: nothing is held per unchanged endpoint. Diff keeps the set of
// fingerprints shown on endpoint rows (so that a certificate already shown
// there is not listed again as certificate-new or -gone) and the
// certificate rows until they are sorted: both grow with the number of
// changes, not with the size of the sweeps.
func Diff(old, cur DiffSource, owner OwnerOf, emit func(Change) error) (DiffSummary, error) {
	sum := DiffSummary{Counts: map[ChangeKind]int{}}
	shown := map[string]struct{}{} // fingerprints on endpoint rows
	send := func(ch Change) error {
		if owner != nil {
			ch.Owner = owner(ch.IP, ch.Port, ch.SNI, cmp.Or(ch.New.SHA256, ch.Old.SHA256))
		}
		sum.Counts[ch.Kind]++
		return emit(ch)
	}
	endpoint := func(k ChangeKind, e store.EndpointState, before, after *store.EndpointState) error {
		ch := Change{Kind: k, Site: e.Site, IP: e.IP, Addr: e.Addr, Port: e.Port, SNI: e.SNI, Protocol: e.Protocol, Offer: e.Offer}
		if before != nil {
			ch.Old = DiffCert{before.LeafSHA256, before.Subject, before.NotAfter}
		}
		if after != nil {
			ch.New = DiffCert{after.LeafSHA256, after.Subject, after.NotAfter}
		}
		for _, fp := range []string{ch.Old.SHA256, ch.New.SHA256} {
			if fp != "" {
				shown[fp] = struct{}{}
			}
		}
		return send(ch)
	}
	err := mergeJoin(old.Endpoints, cur.Endpoints, store.CompareEndpoints, func(p, c *store.EndpointState) error {
		switch {
		case c == nil:
			if !inScope(cur.Scope, p.Addr, p.Port, p.SNI) {
				sum.NotProbed++
				return nil
			}
			return endpoint(ChangeEndpointGone, *p, p, nil)
		case p == nil:
			if !inScope(old.Scope, c.Addr, c.Port, c.SNI) {
				sum.NotProbed++
				return nil
			}
			return endpoint(ChangeEndpointNew, *c, nil, c)
		case p.LeafSHA256 != c.LeafSHA256:
			return endpoint(ChangeCertChanged, *c, p, c)
		}
		sum.Unchanged++
		return nil
	})
	if err != nil {
		return sum, err
	}

	var certRows []Change
	err = mergeGroups(old.Chains, cur.Chains, func(before, after *store.ChainCert) error {
		var ch Change
		switch {
		case before != nil && after != nil:
			return nil
		case before != nil:
			ch = Change{Kind: ChangeCertGone, Site: before.Site, IP: before.IP, Addr: before.Addr, Port: before.Port, SNI: before.SNI, Protocol: before.Protocol, Offer: before.Offer,
				Old: DiffCert{before.SHA256, before.Subject, before.NotAfter}}
		case after != nil:
			ch = Change{Kind: ChangeCertNew, Site: after.Site, IP: after.IP, Addr: after.Addr, Port: after.Port, SNI: after.SNI, Protocol: after.Protocol, Offer: after.Offer,
				New: DiffCert{after.SHA256, after.Subject, after.NotAfter}}
		default:
			return nil
		}
		if _, ok := shown[cmp.Or(ch.Old.SHA256, ch.New.SHA256)]; !ok {
			certRows = append(certRows, ch)
		}
		return nil
	}, old.Scope, cur.Scope)
	if err != nil {
		return sum, err
	}
	slices.SortFunc(certRows, func(a, b Change) int {
		ea := store.EndpointState{Site: a.Site, IP: a.IP, Addr: a.Addr, Port: a.Port, SNI: a.SNI, Protocol: a.Protocol, Offer: a.Offer}
		eb := store.EndpointState{Site: b.Site, IP: b.IP, Addr: b.Addr, Port: b.Port, SNI: b.SNI, Protocol: b.Protocol, Offer: b.Offer}
		return cmp.Or(store.CompareEndpoints(ea, eb), strings.Compare(a.Old.SHA256+a.New.SHA256, b.Old.SHA256+b.New.SHA256))
	})
	for _, ch := range certRows {
		if err := send(ch); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// pull wraps iter.Pull2 so that a stream's error ends it with that error.
func pull[T any](seq iter.Seq2[T, error]) (next func() (*T, error), stop func()) {
	n, stop := iter.Pull2(seq)
	return func() (*T, error) {
		v, err, ok := n()
		if !ok {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &v, nil
	}, stop
}

// mergeJoin walks two streams ordered by compare and calls f with each
// element of one stream only (the other nil) or the matching pair. It holds
// one element of each stream at a time.
func mergeJoin[T any](a, b iter.Seq2[T, error], compare func(x, y T) int, f func(x, y *T) error) error {
	nextA, stopA := pull(a)
	defer stopA()
	nextB, stopB := pull(b)
	defer stopB()
	x, err := nextA()
	if err != nil {
		return err
	}
	y, err := nextB()
	if err != nil {
		return err
	}
	for x != nil || y != nil {
		advA, advB := true, true
		switch {
		case y == nil || (x != nil && compare(*x, *y) < 0):
			err, advB = f(x, nil), false
		case x == nil || compare(*x, *y) > 0:
			err, advA = f(nil, y), false
		default:
			err = f(x, y)
		}
		if err != nil {
			return err
		}
		if advA {
			if x, err = nextA(); err != nil {
				return err
			}
		}
		if advB {
			if y, err = nextB(); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergeGroups merge-joins two chain streams by certificate. For each
// certificate, f gets, per sweep, the first endpoint (in address order)
// that presented it within the other sweep's scope, or nil when none did.
func mergeGroups(a, b iter.Seq2[store.ChainCert, error], f func(before, after *store.ChainCert) error, scopeA, scopeB *scanner.Scope) error {
	// groups folds a chain stream into one element per certificate: the
	// first row inside scope, or a row with SHA256 "" when none is.
	groups := func(seq iter.Seq2[store.ChainCert, error], other *scanner.Scope) iter.Seq2[store.ChainCert, error] {
		return func(yield func(store.ChainCert, error) bool) {
			var cur store.ChainCert
			have, found := false, false
			for c, err := range seq {
				if err != nil {
					yield(c, err)
					return
				}
				if have && c.CertID != cur.CertID {
					if !found {
						cur.SHA256 = ""
					}
					if !yield(cur, nil) {
						return
					}
					have = false
				}
				if !have {
					cur, have, found = c, true, false
				}
				if !found && inScope(other, c.Addr, c.Port, c.SNI) {
					cur, found = c, true
				}
			}
			if have {
				if !found {
					cur.SHA256 = ""
				}
				yield(cur, nil)
			}
		}
	}
	byID := func(x, y store.ChainCert) int { return cmp.Compare(x.CertID, y.CertID) }
	return mergeJoin(groups(a, scopeB), groups(b, scopeA), byID, func(x, y *store.ChainCert) error {
		if x != nil && x.SHA256 == "" {
			x = nil
		}
		if y != nil && y.SHA256 == "" {
			y = nil
		}
		return f(x, y)
	})
}

// DiffColumns is the column order of `certsweep diff` in csv and json.
var DiffColumns = []string{"change", "ip", "port", "sni", "old_sha256", "old_not_after",
	"new_sha256", "new_not_after", "subject", "owner", "protocol", "offer", "site"}

// DiffTableColumns is the narrower view `certsweep diff` prints as a table:
// short fingerprints, the endpoint in one column, the expiry of the
// certificate the row is about (the new one, or the old one when gone).
var DiffTableColumns = []string{"change", "endpoint", "old", "new", "expires", "subject", "owner"}

// Row renders the change in DiffColumns order.
func (c Change) Row() []any {
	var port any
	if c.Port != 0 {
		port = c.Port
	}
	return []any{string(c.Kind), c.IP, port, c.SNI, c.Old.SHA256, c.Old.NotAfter,
		c.New.SHA256, c.New.NotAfter, cmp.Or(c.New.Subject, c.Old.Subject), c.Owner, c.Protocol, c.Offer, c.Site}
}

// TableRow renders the change in DiffTableColumns order, escaped for the
// terminal and not yet truncated.
func (c Change) TableRow() []string {
	ep := c.IP + ":" + fmt.Sprint(c.Port)
	if c.Addr.IsValid() && c.Port > 0 && c.Port <= 65535 {
		ep = netip.AddrPortFrom(c.Addr, uint16(c.Port)).String() // [v6]:port
	}
	if c.Protocol != "" && c.Protocol != string(scanner.ProtoTLS) {
		ep += "/" + c.Protocol // as a port spec names it: 587/smtp
	}
	if c.Site != "" {
		ep = c.Site + ":" + ep // dc1:10.0.0.5:443
	}
	if c.SNI != "" {
		ep += " " + c.SNI
	}
	if c.Offer != "" {
		ep += " [" + c.Offer + " only]"
	}
	expires := c.New.NotAfter
	if c.New.SHA256 == "" {
		expires = c.Old.NotAfter
	}
	date := ""
	if !expires.IsZero() {
		date = expires.UTC().Format("2006-01-02")
	}
	short := func(fp string) string { return fp[:min(12, len(fp))] }
	return []string{string(c.Kind), Terminal(ep), Terminal(short(c.Old.SHA256)), Terminal(short(c.New.SHA256)),
		date, Terminal(cmp.Or(c.New.Subject, c.Old.Subject)), Terminal(c.Owner)}
}

// DiffEncoder writes changes in a format: csv and json with DiffColumns,
// a table with DiffTableColumns fitted to DiffTableWidth.
type DiffEncoder struct {
	enc   Encoder
	table *diffTable
}

// NewDiffEncoder returns an encoder of changes for format.
func NewDiffEncoder(w io.Writer, format string) (*DiffEncoder, error) {
	if format == "table" {
		return &DiffEncoder{table: &diffTable{w: w, header: true}}, nil
	}
	enc, err := NewEncoder(w, format, DiffColumns)
	if err != nil {
		return nil, err
	}
	return &DiffEncoder{enc: enc}, nil
}

// Encode writes one change.
func (e *DiffEncoder) Encode(c Change) error {
	if e.table != nil {
		return e.table.add(c.TableRow())
	}
	return e.enc.Encode(c.Row()...)
}

// Close flushes buffered output and reports any write error.
func (e *DiffEncoder) Close() error {
	if e.table != nil {
		return e.table.flush()
	}
	return e.enc.Close()
}

// DiffTableWidth is the width, in runes, that diff tables fit: the subject,
// then the owner, then the endpoint are shortened (ending in "…") when a
// line would be wider.
const DiffTableWidth = 120

// diffTable aligns blocks of rows like the table encoder, and fits them to
// DiffTableWidth.
type diffTable struct {
	w      io.Writer
	rows   [][]string
	header bool // the header is still to be written
}

func (t *diffTable) add(cells []string) error {
	t.rows = append(t.rows, cells)
	if len(t.rows) >= tableBlock {
		return t.flush()
	}
	return nil
}

// fitSteps shrink flexible columns, in order, down to a minimum width:
// the subject first, then the owner, then the endpoint (an IPv6 address
// with a port fits in 28), and again all three, further.
var fitSteps = []struct{ col, min int }{{5, 20}, {6, 10}, {1, 28}, {5, 10}, {6, 6}, {1, 21}}

func (t *diffTable) flush() error {
	rows := t.rows
	if t.header {
		head := make([]string, len(DiffTableColumns))
		for i, c := range DiffTableColumns {
			head[i] = strings.ToUpper(c)
		}
		rows = append([][]string{head}, rows...)
		t.header = false
	}
	t.rows = t.rows[:0]
	if len(rows) == 0 {
		return nil
	}
	n := len(DiffTableColumns)
	widths := make([]int, n)
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	total := 2 * (n - 1)
	for _, w := range widths {
		total += w
	}
	for _, s := range fitSteps {
		if over := total - DiffTableWidth; over > 0 && widths[s.col] > s.min {
			cut := min(over, widths[s.col]-s.min)
			widths[s.col] -= cut
			total -= cut
		}
	}
	var b strings.Builder
	for _, r := range rows {
		b.Reset()
		for i, c := range r {
			c = truncate(c, widths[i])
			b.WriteString(c)
			if i < n-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		line := strings.TrimRight(b.String(), " ")
		if _, err := io.WriteString(t.w, line+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// truncate shortens s to w runes, the last one "…", when it is longer.
func truncate(s string, w int) string {
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	if w <= 0 {
		return ""
	}
	r := []rune(s)
	return string(r[:w-1]) + "…"
}
