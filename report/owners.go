package report

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"strings"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
)

// Owner is who owns an endpoint's certificate, and why certsweep thinks so.
type Owner struct {
	Name string // "" for a shadow certificate
	Note string
	Via  string // "certificate", "serial+issuer", "inherited from …", "rule 3 (…)"
}

// Owners resolves owners from the tracked inventory: entries naming a
// certificate (by fingerprint, or by serial and issuer, or inherited by a
// renewal) come first; owner rules cover the rest, the most specific
// matching rule winning. It holds the whole inventory in memory (entries
// and rules are counted in thousands, not millions).
type Owners struct {
	bySHA    map[string]store.Tracked
	bySerial map[string][]serialEntry // by serial; the issuer is compared parsed
	rules    []ownerRule
}

type serialEntry struct {
	store.Tracked
	issuerKey string // DNKey of Issuer, computed once
}

type ownerRule struct {
	store.OwnerRule
	prefix    netip.Prefix // valid when the rule has a CIDR
	issuerKey string
}

// LoadOwners reads the tracked entries and owner rules.
func LoadOwners(entries iter.Seq2[store.Tracked, error], rules iter.Seq2[store.OwnerRule, error]) (*Owners, error) {
	o := &Owners{bySHA: map[string]store.Tracked{}, bySerial: map[string][]serialEntry{}}
	for t, err := range entries {
		if err != nil {
			return nil, fmt.Errorf("read the tracked inventory: %w", err)
		}
		if t.SHA256 != "" {
			o.bySHA[t.SHA256] = t
		} else {
			o.bySerial[t.Serial] = append(o.bySerial[t.Serial], serialEntry{t, DNKey(t.Issuer)})
		}
	}
	for r, err := range rules {
		if err != nil {
			return nil, fmt.Errorf("read the owner rules: %w", err)
		}
		or, err := compileRule(r)
		if err != nil {
			return nil, fmt.Errorf("owner rule %d: %w", r.ID, err)
		}
		o.rules = append(o.rules, or)
	}
	// Most specific first; see specificity.
	slices.SortStableFunc(o.rules, func(a, b ownerRule) int { return compareSpecificity(b, a) })
	return o, nil
}

func compileRule(r store.OwnerRule) (ownerRule, error) {
	or := ownerRule{OwnerRule: r}
	if r.CIDR != "" {
		p, err := ParseCIDR(r.CIDR)
		if err != nil {
			return or, err
		}
		or.prefix = p
	}
	if r.Issuer != "" {
		or.issuerKey = DNKey(r.Issuer)
	}
	return or, nil
}

// ParseCIDR reads a rule's --cidr: a prefix, or a single address.
func ParseCIDR(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%q is not a CIDR such as 10.20.0.0/16", s)
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// DNKey is the comparison key of a distinguished name written in any of the
// spellings users paste (RFC 4514, openssl's two print forms). Text that
// does not parse as a DN is compared as itself, ignoring case and spacing.
func DNKey(s string) string {
	if dn, err := scanner.ParseDN(s); err == nil {
		return dn.Key()
	}
	return "\x00" + strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// compareSpecificity orders rules: more selectors first; then by the kind
// of selector, a DNS-name suffix (it names the service) before a CIDR,
// the subject's organization, the issuer and the port, so that
// "*.shop.corp.example → shop" carves an exception out of
// "10.20.0.0/16 → dc"; then the narrower CIDR, then the longer suffix. Ties
// go to the older rule (the sort is stable).
func compareSpecificity(a, b ownerRule) int {
	shape := func(r ownerRule) (count, kinds int) {
		for bit, set := range []bool{r.Port != 0, r.Issuer != "", r.SubjectO != "", r.CIDR != "", r.NameSuffix != ""} {
			if set {
				count++
				kinds |= 1 << bit
			}
		}
		return count, kinds
	}
	bits := func(r ownerRule) int {
		if r.CIDR == "" {
			return -1
		}
		// IPv4 and IPv6 prefixes compare by how much of their space they pin.
		return r.prefix.Bits() + 128 - r.prefix.Addr().BitLen()
	}
	ca, ka := shape(a)
	cb, kb := shape(b)
	return cmp.Or(cmp.Compare(ca, cb), cmp.Compare(ka, kb), cmp.Compare(bits(a), bits(b)),
		cmp.Compare(len(a.NameSuffix), len(b.NameSuffix)))
}

// OfCert is the owner a tracked entry gives the certificate itself, ignoring
// rules (which depend on where it was seen).
func (o *Owners) OfCert(c store.Certificate) (Owner, bool) {
	if t, ok := o.bySHA[c.Fingerprint()]; ok {
		via := "certificate"
		if t.InheritedFrom != "" {
			via = fmt.Sprintf("inherited from %s (%s) on %s", shortFP(t.InheritedFrom), t.InheritedVia, t.AddedAt.Format("2006-01-02"))
		}
		return Owner{Name: t.Owner, Note: t.Note, Via: via}, true
	}
	if ts := o.bySerial[c.Serial]; len(ts) > 0 && c.Serial != "" {
		key := DNKey(c.Issuer)
		for _, t := range ts {
			if t.issuerKey == key {
				return Owner{Name: t.Owner, Note: t.Note, Via: "serial+issuer"}, true
			}
		}
	}
	return Owner{}, false
}

// Of is the owner of an endpoint's leaf certificate: its tracked entry, or
// else the most specific owner rule that matches the endpoint.
func (o *Owners) Of(ep store.Endpoint) Owner {
	if ow, ok := o.OfCert(ep.Leaf); ok {
		return ow
	}
	for _, r := range o.rules {
		if r.matches(ep) {
			return Owner{Name: r.Owner, Note: r.Note, Via: fmt.Sprintf("rule %d (%s)", r.ID, DescribeRule(r.OwnerRule))}
		}
	}
	return Owner{}
}

// RuleMatches reports whether rule r selects endpoint ep.
func RuleMatches(r store.OwnerRule, ep store.Endpoint) (bool, error) {
	or, err := compileRule(r)
	if err != nil {
		return false, err
	}
	return or.matches(ep), nil
}

func (r ownerRule) matches(ep store.Endpoint) bool {
	if r.Port != 0 && r.Port != ep.Port {
		return false
	}
	if r.CIDR != "" {
		a, err := netip.ParseAddr(ep.IP)
		if err != nil || !r.prefix.Contains(a.Unmap()) {
			return false
		}
	}
	if r.NameSuffix != "" && !slices.ContainsFunc(dnsNames(ep.Leaf), func(n string) bool { return hasDNSSuffix(n, r.NameSuffix) }) {
		return false
	}
	if r.SubjectO != "" {
		dn, err := scanner.ParseDN(ep.Leaf.Subject)
		if err != nil || !slices.ContainsFunc(dn.Get("O"), func(v string) bool { return strings.EqualFold(strings.TrimSpace(v), strings.TrimSpace(r.SubjectO)) }) {
			return false
		}
	}
	if r.Issuer != "" && DNKey(ep.Leaf.Issuer) != r.issuerKey {
		return false
	}
	return true
}

// dnsNames are the names a certificate is for: its DNS SANs, or its CN
// when it has none (as clients did before SANs were required).
func dnsNames(c store.Certificate) []string {
	var names []string
	for _, san := range c.SANs {
		if _, err := netip.ParseAddr(san); err != nil {
			names = append(names, strings.ToLower(strings.TrimSuffix(san, ".")))
		}
	}
	if len(names) == 0 {
		if dn, err := scanner.ParseDN(c.Subject); err == nil {
			for _, cn := range dn.Get("CN") {
				names = append(names, strings.ToLower(strings.TrimSuffix(cn, ".")))
			}
		}
	}
	return names
}

// hasDNSSuffix reports whether name is suffix or a name under it, on a
// label boundary: "www.corp.example" has suffix "corp.example" and
// ".corp.example"; "evilcorp.example" has neither.
func hasDNSSuffix(name, suffix string) bool {
	suffix = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(suffix, "."), "."))
	name = strings.TrimPrefix(name, "*.")
	return name == suffix || strings.HasSuffix(name, "."+suffix)
}

// DescribeRule spells a rule's selectors, e.g. "cidr 10.20.0.0/16, port 443".
func DescribeRule(r store.OwnerRule) string {
	var parts []string
	if r.CIDR != "" {
		parts = append(parts, "cidr "+r.CIDR)
	}
	if r.Port != 0 {
		parts = append(parts, fmt.Sprintf("port %d", r.Port))
	}
	if r.NameSuffix != "" {
		parts = append(parts, "name-suffix "+r.NameSuffix)
	}
	if r.SubjectO != "" {
		parts = append(parts, "subject-o "+r.SubjectO)
	}
	if r.Issuer != "" {
		parts = append(parts, "issuer "+r.Issuer)
	}
	return strings.Join(parts, ", ")
}

func shortFP(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// InheritSource is what finding renewals needs from the inventory;
// *store.DB provides it.
type InheritSource interface {
	Endpoints(ctx context.Context, sweepID int64) iter.Seq2[store.Endpoint, error]
	TrackedCertificates(ctx context.Context) iter.Seq2[store.Certificate, error]
	Successors(ctx context.Context, sweepID int64, sha256 string) iter.Seq2[store.Successor, error]
}

// Inherit finds the certificates of sweep sweepID that replace a tracked
// certificate and have no entry of their own: the leaf now at an endpoint
// where a tracked certificate was the leaf before (the most recently seen
// one wins), or else a certificate with the same subject and the same
// non-empty set of DNS names as exactly one owner's tracked certificate (a
// renewal deployed somewhere new). Only entries carry over, not rules:
// rules apply to the new certificate by themselves.
func (o *Owners) Inherit(ctx context.Context, src InheritSource, sweepID int64) ([]store.Inheritance, error) {
	type candidate struct {
		store.Inheritance
		seen string // when the predecessor was last seen at the endpoint; latest wins
	}
	byEndpoint := map[string]candidate{}
	renewals := map[string][]store.Inheritance{} // renewal key → owned certificates
	for c, err := range src.TrackedCertificates(ctx) {
		if err != nil {
			return nil, fmt.Errorf("read tracked certificates: %w", err)
		}
		ow, ok := o.OfCert(c)
		if !ok {
			continue // named by serial, but another issuer's
		}
		from := c.Fingerprint()
		if key, ok := renewalKey(c.Cert); ok {
			renewals[key] = append(renewals[key], store.Inheritance{From: from, Owner: ow.Name, Note: ow.Note, Via: "same subject and names"})
		}
		for s, err := range src.Successors(ctx, sweepID, from) {
			if err != nil {
				return nil, fmt.Errorf("read the successors of %s: %w", from, err)
			}
			seen := s.PrevSeen.Format(TimeLayout)
			if prev, ok := byEndpoint[s.SHA256]; ok && prev.seen >= seen {
				continue
			}
			byEndpoint[s.SHA256] = candidate{store.Inheritance{SHA256: s.SHA256, From: from, Owner: ow.Name, Note: ow.Note,
				Via: "endpoint " + endpointText(s.Site, s.IP, s.Port, s.SNI)}, seen}
		}
	}
	var out []store.Inheritance
	done := map[string]bool{}
	for ep, err := range src.Endpoints(ctx, sweepID) {
		if err != nil {
			return nil, fmt.Errorf("read sweep %d: %w", sweepID, err)
		}
		fp := ep.Leaf.Fingerprint()
		if done[fp] {
			continue
		}
		done[fp] = true
		if _, owned := o.OfCert(ep.Leaf); owned {
			continue
		}
		if c, ok := byEndpoint[fp]; ok {
			out = append(out, c.Inheritance)
			continue
		}
		key, ok := renewalKey(ep.Leaf.Cert)
		if !ok {
			continue
		}
		if hs := renewals[key]; len(hs) > 0 && !slices.ContainsFunc(hs, func(h store.Inheritance) bool { return h.Owner != hs[0].Owner }) {
			h := hs[len(hs)-1]
			h.SHA256 = fp
			out = append(out, h)
		}
	}
	return out, nil
}

// renewalKey identifies a certificate across renewals: its subject and its
// set of DNS names. Certificates without DNS names (appliances' "CN=localhost"
// and the like) have no key: too many unrelated ones look alike.
func renewalKey(c scanner.Cert) (string, bool) {
	if c.ParseError != "" || c.Subject == "" {
		return "", false
	}
	var names []string
	for _, san := range c.SANs {
		if _, err := netip.ParseAddr(san); err != nil {
			names = append(names, strings.ToLower(strings.TrimSuffix(san, ".")))
		}
	}
	if len(names) == 0 {
		return "", false
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return DNKey(c.Subject) + "\x00" + strings.Join(names, "\x00"), true
}

func endpointText(site, ip string, port int, sni string) string {
	s := fmt.Sprintf("%s:%d", ip, port)
	if a, err := netip.ParseAddr(ip); err == nil {
		s = netip.AddrPortFrom(a, uint16(port)).String() // [v6]:port
	}
	if sni != "" {
		s += " " + sni
	}
	if site != "" {
		s += " at site " + site
	}
	return s
}
