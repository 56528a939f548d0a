package scanner

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/zmap/zcrypto/tls"
)

// NameSource says where a probe's server name (SNI) came from.
type NameSource string

// The sources of server names. A probe of the sweep's own targets has
// SourceTarget: an address (no SNI) or a hostname given as a target.
const (
	SourceTarget    NameSource = ""
	SourceNamesFile NameSource = "names-file" // --names-file
	SourceFollowed  NameSource = "followed"   // a DNS name of a certificate found at that address and port
	SourcePTR       NameSource = "ptr"        // the address's reverse DNS names
	SourceInventory NameSource = "inventory"  // a name an earlier sweep saw at that address and port
	// SourceDefault is the probe without SNI added at a hostname target,
	// so that the default certificate is kept too when names are tried.
	SourceDefault NameSource = "default"
)

// NameSources lists every source in a stable order, for statistics.
var NameSources = []NameSource{SourceTarget, SourceNamesFile, SourceFollowed, SourcePTR, SourceInventory, SourceDefault}

// KeyFamily restricts what a ClientHello offers to certificates of one key
// family; "" offers every family (every probe's own offer).
type KeyFamily string

// The key families --all-keys asks for.
const (
	FamilyAny   KeyFamily = ""
	FamilyRSA   KeyFamily = "rsa"
	FamilyECDSA KeyFamily = "ecdsa"
)

// DefaultMaxNames is the default bound on the names tried at one address
// and port.
const DefaultMaxNames = 32

// FollowDepth is how far --follow-names goes: the names of the certificate
// an address presents (depth 1), then the names of certificates found
// through those (depth 2).
const FollowDepth = 2

// Vhosts makes a sweep look for every certificate behind each address and
// port that presented one: the certificates other server names (SNI)
// select, and the certificate of the other key family. Each extra probe is
// one more handshake, made by the same worker right after the endpoint's
// own probe (so the per-host bound holds) and paced by the sweep's rate.
type Vhosts struct {
	Names *NameList // --names-file; nil for none
	// Inventory returns the names earlier sweeps saw at an address and
	// port (nil: none are tried).
	Inventory func(ctx context.Context, ap netip.AddrPort) ([]string, error)
	PTR       PTRResolver // reverse DNS names are tried when set
	Follow    bool        // try the DNS names of the certificates found, to FollowDepth
	// MaxNames bounds the names tried at one address and port, all sources
	// together; the rest are counted in Expansion.Capped.
	MaxNames int
	// AllKeys probes each endpoint that presented a certificate once more,
	// offering only the other key family (RSA or ECDSA), so a server
	// holding both shows both.
	AllKeys bool
}

// triesNames reports whether any source of names is on.
func (v *Vhosts) triesNames() bool {
	return v.Names != nil || v.Inventory != nil || v.PTR != nil || v.Follow
}

// Expansion is what the Vhosts probes of one endpoint found.
type Expansion struct {
	// Found are further observations at the same address and port, each
	// with a certificate: one per server name that presented one, and one
	// per key family whose certificate differs from the one offered by
	// default. Each carries its Source and Offer.
	Found []Result
	Tried map[NameSource]int // extra probes made, by the source of their name, found or not
	// KeyProbes is the number of --all-keys probes made.
	KeyProbes int
	// Capped is the number of names left untried because MaxNames was
	// reached.
	Capped int
}

// Expand runs the Vhosts probes of r's endpoint when r presented a
// certificate, and returns r with Expansion set. take is called before
// each probe, for the sweep's rate; it fails when the sweep is cancelled.
// A nil Vhosts, or an endpoint without a certificate, returns r as it is.
func (p *Prober) Expand(ctx context.Context, r Result, take func(context.Context) error) Result {
	v := p.Vhosts
	if v == nil || len(r.Chain) == 0 || ctx.Err() != nil {
		return r
	}
	x := &Expansion{Tried: make(map[NameSource]int)}
	r.Expansion = x
	if v.AllKeys {
		x.Found = append(x.Found, p.otherKeys(ctx, r, x, take)...)
	}
	if !v.triesNames() || p.SNI != "" {
		return r
	}

	// Names are tried in a queue: known names first (the inventory's, the
	// file's, reverse DNS), then the names of each certificate found, to
	// FollowDepth. seen deduplicates across every source; the cap counts
	// probes, so a certificate with thousands of names costs MaxNames.
	type queued struct {
		name   string
		source NameSource
		depth  int // of the certificate the name came from, for following
	}
	var queue []queued
	seen := map[string]bool{strings.ToLower(r.Target.SNI): true}
	push := func(name string, src NameSource, depth int) {
		if n, ok := normalName(name); ok && !seen[n] {
			seen[n] = true
			queue = append(queue, queued{n, src, depth})
		}
	}
	follow := func(c Cert, depth int) {
		if v.Follow && depth < FollowDepth {
			for _, n := range CertDNSNames(c) {
				push(n, SourceFollowed, depth+1)
			}
		}
	}
	addr := r.Target.Addr
	if r.Target.SNI != "" {
		queue = append(queue, queued{"", SourceDefault, 0})
	}
	if v.Inventory != nil {
		names, _ := v.Inventory(ctx, addr) // an unreadable inventory only means fewer names
		for _, n := range names {
			push(n, SourceInventory, 0)
		}
	}
	if v.Names != nil {
		for _, n := range v.Names.For(addr.Addr()) {
			push(n, SourceNamesFile, 0)
		}
	}
	if v.PTR != nil {
		names, _ := v.PTR.LookupAddr(ctx, addr.Addr().String()) // no PTR record is the common case
		for _, n := range names {
			push(n, SourcePTR, 0)
		}
	}
	follow(r.Chain[0], 0)

	budget := max(v.MaxNames, 0)
	for len(queue) > 0 {
		if budget == 0 {
			x.Capped = len(queue)
			break
		}
		q := queue[0]
		queue = queue[1:]
		if err := take(ctx); err != nil {
			return r
		}
		budget--
		x.Tried[q.source]++
		got := p.again(ctx, r, Target{Addr: addr, SNI: q.name}, offer{})
		got.Source = q.source
		// A server that does not know a name answers with its default
		// certificate: that is no virtual host, and keeping it would report
		// every name tried as a hostname mismatch.
		if len(got.Chain) == 0 || q.name != "" && got.Chain[0].SHA256 == r.Chain[0].SHA256 && !MatchesHost(got.Chain[0].SANs, q.name) {
			continue
		}
		x.Found = append(x.Found, got)
		follow(got.Chain[0], q.depth)
		if v.AllKeys {
			x.Found = append(x.Found, p.otherKeys(ctx, got, x, take)...)
		}
	}
	return r
}

// otherKeys probes base's endpoint offering only each key family other
// than that of the certificate it presented, and returns the results that
// presented a different certificate.
func (p *Prober) otherKeys(ctx context.Context, base Result, x *Expansion, take func(context.Context) error) []Result {
	var out []Result
	have := KeyFamilyOf(base.Chain[0])
	for _, f := range []KeyFamily{FamilyRSA, FamilyECDSA} {
		if f == have {
			continue
		}
		if err := take(ctx); err != nil {
			return out
		}
		x.KeyProbes++
		got := p.again(ctx, base, base.Target, offer{min: tls.VersionTLS10, max: tls.VersionTLS12, suites: familySuites(f)})
		if len(got.Chain) == 0 || got.Chain[0].SHA256 == base.Chain[0].SHA256 {
			continue
		}
		got.Source, got.Offer = base.Source, f
		out = append(out, got)
	}
	return out
}

// again makes one more probe of base's endpoint, with target's SNI,
// through the protocol base reached TLS with (sniffed or not).
func (p *Prober) again(ctx context.Context, base Result, target Target, o offer) Result {
	conn, started := p.Connect(ctx, target)
	started.Protocol = base.Protocol
	if conn == nil {
		return started
	}
	got, _ := p.handshake(ctx, conn, started, o)
	return got
}

// KeyFamilyOf is the key family of c's public key, FamilyAny for one that
// is neither RSA nor ECDSA.
func KeyFamilyOf(c Cert) KeyFamily {
	switch c.KeyType {
	case "RSA":
		return FamilyRSA
	case "ECDSA":
		return FamilyECDSA
	}
	return FamilyAny
}

// CertDNSNames are the server names a certificate is for: its DNS SANs,
// or its CN when it has none (as clients did before SANs), without
// wildcards (never guessed) or anything that is not a hostname.
func CertDNSNames(c Cert) []string {
	var out []string
	for _, n := range c.SANs {
		if _, err := netip.ParseAddr(n); err != nil {
			out = append(out, n)
		}
	}
	if len(out) == 0 && c.CommonName != "" {
		out = append(out, c.CommonName)
	}
	return slices.DeleteFunc(out, func(n string) bool {
		_, ok := normalName(n)
		return !ok
	})
}

// familySuites are the TLS 1.0-1.2 suites zcrypto implements whose
// certificate is of family f. TLS 1.2 servers choose the certificate by
// suite; zcrypto's client cannot narrow TLS 1.3's signature algorithms,
// so a server that speaks only TLS 1.3 shows only its preferred one.
func familySuites(f KeyFamily) []uint16 {
	if f == FamilyECDSA {
		return ecdsaSuites()
	}
	return rsaSuites()
}

var (
	ecdsaSuites = sync.OnceValue(func() []uint16 { return suitesWithPrefix("TLS_ECDHE_ECDSA_") })
	rsaSuites   = sync.OnceValue(func() []uint16 { return suitesWithPrefix("TLS_ECDHE_RSA_", "TLS_DHE_RSA_", "TLS_RSA_WITH_") })
)

func suitesWithPrefix(prefixes ...string) []uint16 {
	var out []uint16
	for _, s := range tls.PortableCiphers {
		name := tls.CipherSuiteID(s).String()
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			out = append(out, s)
		}
	}
	return out
}
