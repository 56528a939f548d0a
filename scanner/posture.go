package scanner

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/zmap/zcrypto/tls"
)

// Posture is what an endpoint accepts besides what its probe negotiated:
// each protocol version offered alone, and weak cipher suites offered
// alone. A server accepts a version or suite when its ServerHello chooses
// it; the handshake need not complete (zcrypto cannot finish an export or
// anonymous suite, but the server has agreed to it).
type Posture struct {
	Versions    []uint16 // accepted, oldest first
	WeakCiphers []uint16 // weak suites the server chose, ascending; empty when it chose none
}

// PostureVersions are the versions a posture tries, oldest first.
var PostureVersions = []uint16{tls.VersionSSL30, tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13}

// MaxPostureHandshakes bounds the extra handshakes of one endpoint's
// posture: one per version but the one its probe negotiated (known
// accepted), then weak-suite handshakes with what is left.
const MaxPostureHandshakes = 6

// posture measures r's endpoint, which completed a handshake, with
// handshakes over the same protocol upgrade and SNI, one after another so
// that the sweep's per-host bound holds. A handshake that fails in any way
// means "not accepted". It returns nil (not measured) if ctx ends first.
func (p *Prober) posture(ctx context.Context, r Result) *Posture {
	var pos Posture
	budget := MaxPostureHandshakes
	for _, v := range PostureVersions {
		if v == r.TLSVersion {
			pos.Versions = append(pos.Versions, v)
			continue
		}
		budget--
		o := offer{min: v, max: v, noChain: true}
		if v <= tls.VersionTLS12 {
			// Old versions with every suite certsweep can name: a server
			// that speaks TLS 1.0 only with RC4 or DHE still accepts TLS 1.0.
			o.suites = legacySuites()
		}
		if got, _, ok := p.postureHandshake(ctx, r, o); ok && got == v {
			pos.Versions = append(pos.Versions, v)
		}
	}
	// Weak suites exist up to TLS 1.2 only. Each handshake offers the weak
	// suites not yet chosen, so a second one can name another.
	if slices.ContainsFunc(pos.Versions, func(v uint16) bool { return v <= tls.VersionTLS12 }) {
		offered := weakSuites()
		for ; budget > 0; budget-- {
			_, suite, ok := p.postureHandshake(ctx, r, offer{min: tls.VersionSSL30, max: tls.VersionTLS12, suites: offered, noChain: true})
			if !ok || !slices.Contains(offered, suite) {
				break
			}
			pos.WeakCiphers = append(pos.WeakCiphers, suite)
			offered = slices.DeleteFunc(slices.Clone(offered), func(s uint16) bool { return s == suite })
		}
	}
	if ctx.Err() != nil {
		return nil // cut short: a partial posture would read as "not accepted"
	}
	slices.Sort(pos.WeakCiphers)
	return &pos
}

// postureHandshake runs one posture handshake against r's endpoint,
// through r's protocol and with r's SNI, and returns the version and suite
// the server's ServerHello chose; ok is false if none arrived.
func (p *Prober) postureHandshake(ctx context.Context, r Result, o offer) (version, suite uint16, ok bool) {
	got := p.again(ctx, r, r.Target, o) // a failed connect has no version
	return got.TLSVersion, got.CipherSuite, got.TLSVersion != 0
}

// ssl30Hello is an SSL 3.0 ClientHello offering suites. zcrypto's client
// stops at TLS 1.0 (its MinVersion SSL 3.0 means TLS 1.0), so the hello is
// built from fields; the handshake then fails at the ServerHello, whose
// version is all a posture needs. SNI goes along, as in every probe.
func ssl30Hello(sni string, suites []uint16) *tls.ClientFingerprintConfiguration {
	h := &tls.ClientFingerprintConfiguration{
		HandshakeVersion:   tls.VersionSSL30,
		CipherSuites:       suites,
		CompressionMethods: []uint8{0},
	}
	if sni != "" {
		h.Extensions = []tls.ClientExtension{&tls.SNIExtension{Domains: []string{sni}}}
	}
	return h
}

// WeakSuiteName reports a cipher suite name (as zcrypto names it) that
// gives no real protection: NULL encryption, export grade, anonymous key
// exchange, RC4, DES or 3DES.
func WeakSuiteName(name string) bool {
	s := strings.ToUpper(name)
	for _, w := range []string{"_NULL_", "_EXPORT", "_ANON_", "_RC4_", "_DES_", "_DES40_", "3DES"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// weakSuites is every suite zcrypto names that WeakSuiteName calls weak,
// ascending, except TLS_NULL_WITH_NULL_NULL, which no server may choose.
var weakSuites = sync.OnceValue(func() []uint16 {
	var out []uint16
	for id := 1; id <= 0xFFFF; id++ {
		if WeakSuiteName(tls.CipherSuiteID(id).String()) {
			out = append(out, uint16(id))
		}
	}
	return out
})

// legacySuites is what a posture handshake of TLS 1.2 or older offers:
// zcrypto's broad portable list, then the weak suites.
var legacySuites = sync.OnceValue(func() []uint16 {
	out := slices.Clone(tls.PortableCiphers)
	for _, s := range weakSuites() {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
})
