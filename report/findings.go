package report

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// Severity ranks findings. The zero value is SeverityInfo.
type Severity int

// Severities, lowest first.
const (
	SeverityInfo Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = []string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity parses a severity name (info, low, medium, high, critical).
func ParseSeverity(s string) (Severity, error) {
	if i := slices.Index(severityNames, strings.ToLower(strings.TrimSpace(s))); i >= 0 {
		return Severity(i), nil
	}
	return 0, fmt.Errorf("unknown severity %q: use %s", s, strings.Join(severityNames, ", "))
}

// Kind names a finding. Kinds and their severities are fixed and documented.
type Kind string

// The finding kinds.
const (
	KindExpired          Kind = "expired"
	KindExpiring         Kind = "expiring"
	KindNotYetValid      Kind = "not-yet-valid"
	KindWeakKey          Kind = "weak-key"
	KindWeakSignature    Kind = "weak-signature"
	KindSelfSigned       Kind = "self-signed"
	KindUntrusted        Kind = "untrusted"
	KindIncompleteChain  Kind = "incomplete-chain"
	KindHostnameMismatch Kind = "hostname-mismatch"
	KindLongValidity     Kind = "long-validity"
	KindLint             Kind = "lint"
	KindUntracked        Kind = "untracked"
	KindNew              Kind = "new"
	KindCoverageDrop     Kind = "coverage-drop" // of a sweep, not of an endpoint
	KindPlaintextOnly    Kind = "plaintext-only"

	KindUnparsableValidity Kind = "unparsable-validity"
	KindUnknownAlgorithm   Kind = "unknown-algorithm"

	KindLegacyProtocol    Kind = "legacy-protocol"
	KindWeakCipher        Kind = "weak-cipher"
	KindKeyReuse          Kind = "key-reuse"
	KindSharedCertificate Kind = "shared-certificate"
)

// KindInfo documents a finding kind.
type KindInfo struct {
	Kind     Kind
	Severity Severity
	Why      string
}

// Kinds lists every finding kind with its severity and why it matters, in
// the order reports list them.
var Kinds = []KindInfo{
	{KindExpired, SeverityCritical, "clients refuse the endpoint now; an outage in progress"},
	{KindCoverageDrop, SeverityCritical, "the sweep reached no TLS endpoint, or under half of the previous sweep of its name: the scanner lost its network, and this report cannot be trusted"},
	{KindExpiring, SeverityHigh, "expires within the --expiring-within window (default 30 days): renew before it becomes an outage"},
	{KindWeakKey, SeverityHigh, "RSA/DSA under 2048 bits or EC under 256 bits can be factored or is refused by modern clients"},
	{KindWeakSignature, SeverityHigh, "MD5/SHA-1 (or worse) signatures can be forged; clients refuse them"},
	{KindUntrusted, SeverityHigh, "the chain as presented does not verify to the system roots nor to --ca-bundle"},
	{KindHostnameMismatch, SeverityHigh, "the name used to reach the endpoint is not in the certificate: clients refuse it"},
	{KindLegacyProtocol, SeverityHigh, "the endpoint accepts (sweep --posture) or negotiated SSL 3.0, TLS 1.0 or TLS 1.1: deprecated (RFC 8996), broken or refused by current clients"},
	{KindWeakCipher, SeverityHigh, "the endpoint accepts (sweep --posture) or negotiated a NULL, export, anonymous, RC4 or DES/3DES cipher suite: traffic can be read or forged"},
	{KindUnparsableValidity, SeverityHigh, "notBefore or notAfter cannot be read (a GeneralizedTime without seconds, say): clients refuse the certificate, and nobody can tell when it expires"},
	{KindNotYetValid, SeverityMedium, "not valid yet: a wrong clock or a certificate deployed early"},
	{KindSelfSigned, SeverityMedium, "a self-signed leaf: nobody vouches for it, users learn to click through warnings"},
	{KindIncompleteChain, SeverityMedium, "the endpoint omits an intermediate it should send: some clients fail"},
	{KindKeyReuse, SeverityMedium, "one private key in different certificates on more than one address: one stolen key opens all of them, and revoking one certificate does not retire the key"},
	{KindUnknownAlgorithm, SeverityMedium, "a signature or key algorithm certsweep cannot name (stored as its OID, or RSASSA-PSS without a hash): its strength is not judged, and most clients refuse it"},
	{KindLint, SeverityMedium, "zlint reports an error or fatal result (opt-in with --lint)"},
	{KindUntracked, SeverityMedium, "no owner in the tracked inventory: a shadow certificate nobody will renew"},
	{KindPlaintextOnly, SeverityMedium, "a mail, directory, database or other service that does not offer TLS or refuses it (outcome no-starttls): credentials and data cross the network in clear"},
	{KindLongValidity, SeverityLow, "a publicly trusted leaf valid for more than 398 days: browsers reject it"},
	{KindSharedCertificate, SeverityLow, "one certificate on more addresses than --max-addresses-per-cert allows (off by default): for teams that forbid shared or wildcard certificates"},
	{KindNew, SeverityInfo, "first seen in this sweep"},
}

// KindSeverity returns the fixed severity of a kind.
func KindSeverity(k Kind) Severity {
	for _, ki := range Kinds {
		if ki.Kind == k {
			return ki.Severity
		}
	}
	return SeverityInfo
}

// ParseKind validates a kind name.
func ParseKind(s string) (Kind, error) {
	for _, ki := range Kinds {
		if string(ki.Kind) == s {
			return ki.Kind, nil
		}
	}
	var names []string
	for _, ki := range Kinds {
		names = append(names, string(ki.Kind))
	}
	return "", fmt.Errorf("unknown finding kind %q: use one of %s", s, strings.Join(names, ", "))
}

// Finding is one problem with an endpoint's certificate or chain.
type Finding struct {
	Kind     Kind
	Severity Severity
	Detail   string // human detail; contains certificate text, escape it per medium
}

func finding(k Kind, format string, args ...any) Finding {
	return Finding{Kind: k, Severity: KindSeverity(k), Detail: fmt.Sprintf(format, args...)}
}

// Policy holds the thresholds and trust anchors findings are judged by.
// Now is explicit so that findings are reproducible: nothing here reads the
// clock.
type Policy struct {
	Now               time.Time
	ExpiringWithin    time.Duration
	MinRSABits        int // RSA and DSA
	MinECBits         int
	MaxPublicValidity time.Duration
	Roots             *x509.CertPool // public roots (the system's); nil = none
	OrgRoots          *x509.CertPool // the organisation's own CAs (--ca-bundle); nil = none
	OrgIntermediates  []*x509.Certificate
	Lint              bool
	// ExpiringFraction also makes a certificate expiring once it has used
	// this fraction of its lifetime (0 = off), for lifetimes up to
	// maxFractionLifetime: a 90-day certificate that stopped renewing is
	// caught at day 72, not at day 60 of a 30-day window. Longer lifetimes
	// are judged by ExpiringWithin only (80% of ten years is two years early).
	ExpiringFraction float64
	// MaxAddressesPerCert makes a leaf presented on more addresses a
	// shared-certificate finding (0 = off).
	MaxAddressesPerCert int
}

// maxFractionLifetime is the longest lifetime ExpiringFraction applies to:
// the longest a publicly trusted leaf may have (398 days).
const maxFractionLifetime = 398 * 24 * time.Hour

// DefaultPolicy returns the documented defaults, with no trust anchors.
func DefaultPolicy(now time.Time) Policy {
	return Policy{
		Now:               now,
		ExpiringWithin:    30 * 24 * time.Hour,
		ExpiringFraction:  0.8,
		MinRSABits:        2048,
		MinECBits:         256,
		MaxPublicValidity: 398 * 24 * time.Hour,
	}
}

// CertFindings judges one certificate on its own: validity, key, signature.
// chainPos is its place in the presented chain (0 = leaf).
func CertFindings(c store.Certificate, chainPos int, p Policy) []Finding {
	var out []Finding
	who := ""
	if chainPos > 0 {
		who = fmt.Sprintf("chain certificate %d (%s): ", chainPos, c.Subject)
	}
	if c.ParseError != "" {
		if c.ValidityUnreadable() {
			return []Finding{finding(KindUnparsableValidity, "%s%s", who, c.ParseError)}
		}
		return nil // nothing trustworthy to judge; untrusted covers it
	}
	// A parsed certificate's validity is as encoded: the zero time is year 1,
	// a date like any other, not "unknown".
	switch {
	case p.Now.After(c.NotAfter):
		out = append(out, finding(KindExpired, "%sexpired %s (%d days ago)", who, c.NotAfter.Format(TimeLayout), wholeDays(c.NotAfter, p.Now)))
	case p.Now.Before(c.NotBefore):
		out = append(out, finding(KindNotYetValid, "%snot valid before %s", who, c.NotBefore.Format(TimeLayout)))
	case c.NotAfter.Sub(p.Now) <= p.ExpiringWithin:
		out = append(out, finding(KindExpiring, "%sexpires %s (in %d days)", who, c.NotAfter.Format(TimeLayout), wholeDays(p.Now, c.NotAfter)))
	default:
		if used, life, ok := lifetimeUsed(c, p); ok {
			out = append(out, finding(KindExpiring, "%sexpires %s (in %d days): %.0f%% of its %d-day lifetime used, renewal is overdue",
				who, c.NotAfter.Format(TimeLayout), wholeDays(p.Now, c.NotAfter), 100*used, life))
		}
	}
	switch {
	case (c.KeyType == "RSA" || c.KeyType == "DSA") && c.KeyBits < p.MinRSABits,
		c.KeyType == "ECDSA" && c.KeyBits < p.MinECBits:
		out = append(out, finding(KindWeakKey, "%s%s key of %d bits", who, c.KeyType, c.KeyBits))
	}
	if weakSignature(c.SignatureAlgorithm) && !(c.SelfSigned && c.IsCA) {
		// A root's self-signature is never checked by clients; any other is.
		out = append(out, finding(KindWeakSignature, "%ssigned with %s", who, c.SignatureAlgorithm))
	}
	var unknown []string
	if scanner.UnknownAlgorithm(c.SignatureAlgorithm) && !(c.SelfSigned && c.IsCA) {
		unknown = append(unknown, "signature algorithm "+c.SignatureAlgorithm)
	}
	if scanner.UnknownAlgorithm(c.KeyType) {
		unknown = append(unknown, "key algorithm "+c.KeyType)
	}
	if len(unknown) > 0 {
		out = append(out, finding(KindUnknownAlgorithm, "%s%s", who, strings.Join(unknown, ", ")))
	}
	if chainPos == 0 && c.SelfSigned {
		out = append(out, finding(KindSelfSigned, "self-signed by %s", c.Subject))
	}
	return out
}

// lifetimeUsed reports the fraction of c's lifetime used at p.Now, and the
// lifetime in days, when it reaches p.ExpiringFraction.
func lifetimeUsed(c store.Certificate, p Policy) (used float64, days int, ok bool) {
	life := c.NotAfter.Unix() - c.NotBefore.Unix()
	if p.ExpiringFraction <= 0 || life <= 0 || life > int64(maxFractionLifetime/time.Second) {
		return 0, 0, false
	}
	used = float64(p.Now.Unix()-c.NotBefore.Unix()) / float64(life)
	return used, int(life / 86400), used >= p.ExpiringFraction
}

// wholeDays is the whole days from a to b, without time.Duration's ±292-year
// limit: certificates run from year 1 to year 9999.
func wholeDays(a, b time.Time) int {
	return int((b.Unix() - a.Unix()) / (24 * 60 * 60))
}

func weakSignature(alg string) bool {
	a := strings.ToUpper(alg)
	return strings.Contains(a, "MD5") || strings.Contains(a, "MD2") || strings.Contains(a, "SHA1") || strings.Contains(a, "SHA-1")
}

// CertSource loads a stored certificate, with its DER, by hex fingerprint.
type CertSource func(ctx context.Context, sha256 string) (store.Certificate, error)

// Evaluator judges endpoints. It caches chain verdicts, lint results and
// chain certificates in bounded caches, so that a sweep where thousands of
// endpoints share a chain costs one verification. Not safe for concurrent
// use.
type Evaluator struct {
	p      Policy
	facts  SweepFacts
	certs  CertSource
	known  []*x509.Certificate // CA certificates seen anywhere, for incomplete-chain
	chains genCache[string, chainVerdict]
	lints  genCache[string, []string]
	chain  genCache[string, store.Certificate]
}

// NewEvaluator returns an evaluator for policy p. known are CA certificates
// (DER) to try as missing intermediates when a chain does not verify.
func NewEvaluator(p Policy, certs CertSource, known [][]byte) *Evaluator {
	// Sized so that a sweep's distinct chains usually fit: a verdict is
	// ~200 bytes (64K of them ~13 MB), a certificate with DER ~2 KB.
	e := &Evaluator{p: p, certs: certs,
		chains: newGenCache[string, chainVerdict](1 << 16),
		lints:  newGenCache[string, []string](1 << 14),
		chain:  newGenCache[string, store.Certificate](4096)}
	for _, der := range known {
		if c, err := x509.ParseCertificate(der); err == nil {
			e.known = append(e.known, c)
		}
	}
	e.known = append(e.known, p.OrgIntermediates...)
	return e
}

// Evaluate returns the findings for one endpoint, most severe first. An
// endpoint that presented no certificate because it refused TLS (status
// no-starttls) has one finding, plaintext-only.
func (e *Evaluator) Evaluate(ctx context.Context, ep store.Endpoint) ([]Finding, error) {
	if !ep.HasLeaf() {
		if ep.Status != string(scanner.StatusNoStartTLS) {
			return nil, nil
		}
		return []Finding{finding(KindPlaintextOnly, "%s", ep.Error)}, nil
	}
	out := CertFindings(ep.Leaf, 0, e.p)
	out = append(out, e.endpointFindings(ep)...)
	for i, fp := range ep.Chain {
		if i == 0 {
			continue
		}
		c, err := e.chainCert(ctx, fp)
		if err != nil {
			return nil, err
		}
		for _, f := range CertFindings(c, i, e.p) {
			if f.Kind != KindSelfSigned && f.Kind != KindNotYetValid {
				out = append(out, f)
			}
		}
	}
	v, err := e.verify(ctx, ep)
	if err != nil {
		return nil, err
	}
	switch {
	case v.incomplete:
		out = append(out, finding(KindIncompleteChain, "the chain verifies only with an intermediate the endpoint did not send (%s)", v.detail))
	case !v.trusted:
		out = append(out, finding(KindUntrusted, "%s", v.detail))
	}
	if v.public && ep.Leaf.NotAfter.Sub(ep.Leaf.NotBefore) > e.p.MaxPublicValidity {
		out = append(out, finding(KindLongValidity, "publicly trusted and valid for %d days", wholeDays(ep.Leaf.NotBefore, ep.Leaf.NotAfter)))
	}
	if ep.SNI != "" && !scanner.MatchesHost(ep.Leaf.SANs, ep.SNI) {
		out = append(out, finding(KindHostnameMismatch, "reached as %s; certificate names: %s", ep.SNI, strings.Join(ep.Leaf.SANs, ", ")))
	}
	if e.p.Lint {
		names, err := e.lint(ctx, ep.Leaf.Fingerprint())
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			out = append(out, finding(KindLint, "%s", n))
		}
	}
	if ep.Owner == "" {
		out = append(out, finding(KindUntracked, "no owner in the tracked inventory"))
	}
	if ep.Leaf.FirstSweepID == ep.SweepID {
		out = append(out, finding(KindNew, "first seen in sweep %d", ep.SweepID))
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return int(b.Severity) - int(a.Severity) })
	return out, nil
}

// Highest is the most severe of the findings, or -1 if there are none.
func Highest(fs []Finding) Severity {
	h := Severity(-1)
	for _, f := range fs {
		h = max(h, f.Severity)
	}
	return h
}

func (e *Evaluator) chainCert(ctx context.Context, fp string) (store.Certificate, error) {
	if c, ok := e.chain.get(fp); ok {
		return c, nil
	}
	c, err := e.certs(ctx, fp)
	if err != nil {
		return c, fmt.Errorf("load chain certificate %s: %w", fp, err)
	}
	e.chain.put(fp, c)
	return c, nil
}

type chainVerdict struct {
	trusted, public, incomplete bool
	detail                      string
}

// verify checks the chain as presented against the public and organisation
// roots, at a time inside the leaf's validity: expiry is its own finding.
func (e *Evaluator) verify(ctx context.Context, ep store.Endpoint) (chainVerdict, error) {
	chain := ep.Chain
	if len(chain) == 0 {
		chain = []string{ep.Leaf.Fingerprint()}
	}
	key := strings.Join(chain, ",")
	if v, ok := e.chains.get(key); ok {
		return v, nil
	}
	var certs []*x509.Certificate
	for _, fp := range chain {
		c, err := e.chainCert(ctx, fp)
		if err != nil {
			return chainVerdict{}, err
		}
		xc, err := x509.ParseCertificate(c.DER)
		if err != nil {
			v := chainVerdict{detail: fmt.Sprintf("chain certificate %d cannot be verified: %v", len(certs), err)}
			e.chains.put(key, v)
			return v, nil
		}
		certs = append(certs, xc)
	}
	v := e.verifyParsed(certs)
	e.chains.put(key, v)
	return v, nil
}

func (e *Evaluator) verifyParsed(certs []*x509.Certificate) chainVerdict {
	leaf := certs[0]
	at := e.p.Now
	if at.Before(leaf.NotBefore) {
		at = leaf.NotBefore
	}
	if at.After(leaf.NotAfter) {
		at = leaf.NotAfter
	}
	check := func(roots *x509.CertPool, extra []*x509.Certificate) error {
		if roots == nil {
			return fmt.Errorf("no roots")
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		for _, c := range extra {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	errPublic := check(e.p.Roots, nil)
	if errPublic == nil {
		return chainVerdict{trusted: true, public: true}
	}
	errOrg := check(e.p.OrgRoots, nil)
	if errOrg == nil {
		return chainVerdict{trusted: true}
	}
	if len(e.known) > 0 {
		if check(e.p.Roots, e.known) == nil || check(e.p.OrgRoots, e.known) == nil {
			return chainVerdict{trusted: true, incomplete: true, detail: "issuer " + leaf.Issuer.String()}
		}
	}
	why := errPublic
	if e.p.Roots == nil {
		why = errOrg
	}
	if e.p.Roots == nil && e.p.OrgRoots == nil {
		return chainVerdict{detail: "no trust anchors: neither system roots nor --ca-bundle"}
	}
	return chainVerdict{detail: "does not verify: " + why.Error()}
}

// lint runs zlint on the leaf and returns the names of error and fatal lints.
func (e *Evaluator) lint(ctx context.Context, fp string) ([]string, error) {
	if names, ok := e.lints.get(fp); ok {
		return names, nil
	}
	c, err := e.chainCert(ctx, fp)
	if err != nil {
		return nil, err
	}
	var names []string
	zc, err := zx509.ParseCertificate(c.DER)
	if err == nil {
		for name, r := range zlint.LintCertificate(zc).Results {
			if r.Status == lint.Error || r.Status == lint.Fatal {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	e.lints.put(fp, names)
	return names, nil
}

// genCache is a bounded cache: two generations of at most n entries each;
// when the young one fills, the old one is dropped. Hot entries survive by
// being copied forward on hit.
type genCache[K comparable, V any] struct {
	n          int
	young, old map[K]V
}

func newGenCache[K comparable, V any](n int) genCache[K, V] {
	return genCache[K, V]{n: n, young: make(map[K]V), old: make(map[K]V)}
}

func (c *genCache[K, V]) get(k K) (V, bool) {
	if v, ok := c.young[k]; ok {
		return v, true
	}
	v, ok := c.old[k]
	if ok {
		c.put(k, v)
	}
	return v, ok
}

func (c *genCache[K, V]) put(k K, v V) {
	if len(c.young) >= c.n {
		c.old, c.young = c.young, make(map[K]V, c.n)
	}
	c.young[k] = v
}

// SweepFacts are what a sweep's endpoints show together, gathered before
// judging them one by one (store.ReusedKeys, store.SharedCertificates).
type SweepFacts struct {
	// KeyAddresses maps a public key (SPKI SHA-256, hex) found in more than
	// one certificate on more than one address to those addresses: their
	// number, and at least the first KeyReuseShown+1 of them.
	KeyAddresses map[string]store.ReusedKey
	// CertAddresses maps a leaf (SHA-256, hex) to the number of addresses
	// presenting it, for those over Policy.MaxAddressesPerCert.
	CertAddresses map[string]int
}

// KeyReuseShown is how many other hosts a key-reuse finding names.
const KeyReuseShown = 5

// SetFacts gives the evaluator the sweep-wide facts key-reuse and
// shared-certificate are judged by.
func (e *Evaluator) SetFacts(f SweepFacts) { e.facts = f }

// endpointFindings judges what is the endpoint's, not its certificate's:
// the protocol versions and cipher suites it accepts (its posture, when
// measured) or negotiated, and whether its key or certificate is spread
// over other addresses.
func (e *Evaluator) endpointFindings(ep store.Endpoint) []Finding {
	var out []Finding
	verb := "negotiated"
	if ep.Posture {
		verb = "accepts"
	}
	legacy, weak := weaknesses(ep)
	if len(legacy) > 0 {
		out = append(out, finding(KindLegacyProtocol, "%s %s", verb, strings.Join(legacy, ", ")))
	}
	if len(weak) > 0 {
		out = append(out, finding(KindWeakCipher, "%s %s", verb, strings.Join(weak, ", ")))
	}
	if reused := e.facts.KeyAddresses[hex.EncodeToString(ep.Leaf.SPKISHA256[:])]; reused.Count > 0 {
		// The first hosts but this one, and a count of the rest: a key
		// reused on 100,000 addresses must not cost each of them a pass
		// over the others (that made report quadratic). This endpoint's
		// host is among them: it presented the key in this sweep.
		host := ep.IP
		if ep.Site != "" {
			host = ep.Site + ":" + ep.IP // as store.ReusedKeys names a host at a site
		}
		var shown []string
		for _, a := range reused.Hosts {
			if len(shown) == KeyReuseShown {
				break
			}
			if a != host {
				shown = append(shown, a)
			}
		}
		detail := strings.Join(shown, ", ")
		if rest := reused.Count - 1 - len(shown); rest > 0 {
			detail += fmt.Sprintf(" and %d more", rest)
		}
		out = append(out, finding(KindKeyReuse, "the same public key is in other certificates on %s", detail))
	}
	if n := e.facts.CertAddresses[ep.Leaf.Fingerprint()]; n > 0 {
		out = append(out, finding(KindSharedCertificate, "presented on %d addresses (more than --max-addresses-per-cert %d)", n, e.p.MaxAddressesPerCert))
	}
	return out
}

// weaknesses lists the legacy versions and weak suites of an endpoint:
// every one its posture found accepted, when measured, else the ones it
// negotiated. The negotiated ones count either way (a posture handshake
// may have failed for reasons of its own).
func weaknesses(ep store.Endpoint) (legacy, weak []string) {
	versions, suites := []string{ep.TLSVersion}, []string{ep.CipherSuite}
	if ep.Posture {
		versions = append(slices.Clone(ep.Versions), ep.TLSVersion)
		suites = append(slices.Clone(ep.WeakCiphers), ep.CipherSuite)
	}
	for _, v := range versions {
		if legacyVersion(v) && !slices.Contains(legacy, v) {
			legacy = append(legacy, v)
		}
	}
	for _, s := range suites {
		if scanner.WeakSuiteName(s) && !slices.Contains(weak, s) {
			weak = append(weak, s)
		}
	}
	return legacy, weak
}

// legacyVersion reports SSL 3.0, TLS 1.0 and TLS 1.1 (RFC 8996).
func legacyVersion(v string) bool {
	switch v {
	case "SSLv3", "SSL 3.0", "TLS 1.0", "TLS 1.1":
		return true
	}
	return false
}
