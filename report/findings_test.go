package report_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// certSet stands in for the database: certificates by fingerprint.
type certSet map[string]store.Certificate

func (s certSet) add(der []byte) store.Certificate {
	c := store.Certificate{Cert: scanner.ParseCert(der), FirstSweepID: 1}
	s[c.Fingerprint()] = c
	return c
}

func (s certSet) source(_ context.Context, fp string) (store.Certificate, error) {
	c, ok := s[fp]
	if !ok {
		return c, fmt.Errorf("certificate %s: %w", fp, store.ErrNotFound)
	}
	return c, nil
}

func kinds(fs []report.Finding) []report.Kind {
	var out []report.Kind
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

type lab struct {
	ca     *scannertest.CA
	certs  certSet
	policy report.Policy
}

func newTestLab(t *testing.T) *lab {
	t.Helper()
	ca, err := scannertest.NewCA("findings")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root.Cert)
	p := report.DefaultPolicy(time.Now())
	p.OrgRoots = roots
	return &lab{ca: ca, certs: certSet{}, policy: p}
}

// endpoint stores the chain and returns an endpoint presenting it, tracked
// (owner "ops") and not new, so that only the defect under test shows.
func (l *lab) endpoint(chain [][]byte, sni string) store.Endpoint {
	ep := store.Endpoint{SweepID: 2, IP: "127.0.0.9", Port: 443, SNI: sni, Owner: "ops"}
	for i, der := range chain {
		c := l.certs.add(der)
		if i == 0 {
			ep.Leaf = c
		}
		ep.Chain = append(ep.Chain, c.Fingerprint())
	}
	return ep
}

func TestFindings(t *testing.T) {
	l := newTestLab(t)
	now := l.policy.Now
	leaf := func(o scannertest.CertOptions) [][]byte {
		if o.CommonName == "" {
			o.CommonName, o.DNSNames = "app.test", []string{"app.test"}
		}
		c, err := l.ca.Leaf(o)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate
	}
	selfSigned := func(o scannertest.CertOptions) [][]byte {
		o.CommonName, o.DNSNames = "self.test", []string{"self.test"}
		c, err := scannertest.SelfSigned(o)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate
	}
	tests := []struct {
		name  string
		chain [][]byte
		sni   string
		want  []report.Kind
	}{
		{"clean", leaf(scannertest.CertOptions{}), "app.test", nil},
		{"expired", leaf(scannertest.CertOptions{NotBefore: now.Add(-100 * 24 * time.Hour), NotAfter: now.Add(-time.Hour)}), "", []report.Kind{report.KindExpired}},
		{"expiring", leaf(scannertest.CertOptions{NotAfter: now.Add(10 * 24 * time.Hour)}), "", []report.Kind{report.KindExpiring}},
		{"not-yet-valid", leaf(scannertest.CertOptions{NotBefore: now.Add(48 * time.Hour), NotAfter: now.Add(90 * 24 * time.Hour)}), "", []report.Kind{report.KindNotYetValid}},
		{"rsa-1024", leaf(scannertest.CertOptions{RSABits: 1024}), "", []report.Kind{report.KindWeakKey}},
		{"self-signed-sha1", selfSigned(scannertest.CertOptions{RSABits: 2048, SHA1: true}), "",
			[]report.Kind{report.KindSelfSigned, report.KindUntrusted, report.KindWeakSignature}},
		{"hostname-mismatch", leaf(scannertest.CertOptions{}), "other.test", []report.Kind{report.KindHostnameMismatch}},
		{"wildcard-match", leaf(scannertest.CertOptions{CommonName: "*.apps.test", DNSNames: []string{"*.apps.test"}}), "x.apps.test", nil},
		{"wildcard-one-label-only", leaf(scannertest.CertOptions{CommonName: "*.apps.test", DNSNames: []string{"*.apps.test"}}), "a.b.apps.test", []report.Kind{report.KindHostnameMismatch}},
		{"incomplete-chain", leaf(scannertest.CertOptions{})[:1], "", []report.Kind{report.KindIncompleteChain}},
	}
	// The intermediate is known (another endpoint sent it), so a leaf sent
	// without it is an incomplete chain rather than untrusted.
	ev := report.NewEvaluator(l.policy, l.certs.source, [][]byte{l.ca.Intermediate.DER})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := ev.Evaluate(context.Background(), l.endpoint(tc.chain, tc.sni))
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(fs); !slices.Equal(got, tc.want) {
				t.Errorf("Evaluate(%s) kinds = %v, want %v (%+v)", tc.name, got, tc.want, fs)
			}
		})
	}

	t.Run("untrusted-without-bundle", func(t *testing.T) {
		p := l.policy
		p.OrgRoots = nil
		ev := report.NewEvaluator(p, l.certs.source, nil)
		fs, err := ev.Evaluate(context.Background(), l.endpoint(leaf(scannertest.CertOptions{}), ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(fs); !slices.Equal(got, []report.Kind{report.KindUntrusted}) {
			t.Errorf("kinds = %v, want [untrusted]", got)
		}
	})
	t.Run("untracked-and-new", func(t *testing.T) {
		ep := l.endpoint(leaf(scannertest.CertOptions{}), "")
		ep.Owner, ep.Leaf.FirstSweepID = "", ep.SweepID
		fs, err := ev.Evaluate(context.Background(), ep)
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(fs); !slices.Equal(got, []report.Kind{report.KindNew, report.KindUntracked}) {
			t.Errorf("kinds = %v, want [new untracked]", got)
		}
		if fs[0].Kind != report.KindUntracked || report.Highest(fs) != report.SeverityMedium {
			t.Errorf("findings not sorted most severe first: %+v", fs)
		}
	})
	t.Run("long-validity-needs-public-trust", func(t *testing.T) {
		// The lab CA plays a public root here.
		p := l.policy
		p.Roots, p.OrgRoots = p.OrgRoots, nil
		ev := report.NewEvaluator(p, l.certs.source, nil)
		long := leaf(scannertest.CertOptions{NotAfter: now.Add(500 * 24 * time.Hour)})
		fs, err := ev.Evaluate(context.Background(), l.endpoint(long, ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(fs); !slices.Equal(got, []report.Kind{report.KindLongValidity}) {
			t.Errorf("kinds = %v, want [long-validity]", got)
		}
		// The same leaf under a private root is not judged by the public rule.
		ev = report.NewEvaluator(l.policy, l.certs.source, nil)
		if fs, _ := ev.Evaluate(context.Background(), l.endpoint(long, "")); len(fs) != 0 {
			t.Errorf("private long-lived leaf: findings %v, want none", kinds(fs))
		}
	})
	t.Run("expired-intermediate", func(t *testing.T) {
		ep := l.endpoint(leaf(scannertest.CertOptions{}), "")
		inter := l.certs[ep.Chain[1]]
		inter.NotAfter = now.Add(-time.Hour) // as if the intermediate had lapsed
		l.certs[inter.Fingerprint()] = inter
		defer l.certs.add(l.ca.Intermediate.DER)
		ev := report.NewEvaluator(l.policy, l.certs.source, nil)
		fs, err := ev.Evaluate(context.Background(), ep)
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(fs); !slices.Contains(got, report.KindExpired) {
			t.Errorf("kinds = %v, want expired (of the intermediate)", got)
		}
	})
	t.Run("lint", func(t *testing.T) {
		p := l.policy
		p.Lint = true
		ev := report.NewEvaluator(p, l.certs.source, nil)
		// RSA-1024 trips zlint's error-level minimum-key-size lint.
		fs, err := ev.Evaluate(context.Background(), l.endpoint(leaf(scannertest.CertOptions{RSABits: 1024}), ""))
		if err != nil {
			t.Fatal(err)
		}
		var lints []string
		for _, f := range fs {
			if f.Kind == report.KindLint {
				lints = append(lints, f.Detail)
			}
		}
		if len(lints) == 0 {
			t.Errorf("--lint on an RSA-1024 leaf gave no lint findings: %+v", fs)
		}
	})
}

func TestParseSeverityAndKind(t *testing.T) {
	for i, name := range []string{"info", "low", "medium", "high", "critical"} {
		s, err := report.ParseSeverity(name)
		if err != nil || int(s) != i || s.String() != name {
			t.Errorf("ParseSeverity(%q) = %v, %v", name, s, err)
		}
	}
	if _, err := report.ParseSeverity("severe"); err == nil {
		t.Errorf("ParseSeverity(severe) succeeded")
	}
	if _, err := report.ParseKind("expired"); err != nil {
		t.Errorf("ParseKind(expired) = %v", err)
	}
	if _, err := report.ParseKind("bad"); err == nil {
		t.Errorf("ParseKind(bad) succeeded")
	}
}

// TestCertFindingsOddFields judges the stored fields of the unusual
// certificates of issue 14: dates in year 1 and 9999 (the zero time is a
// date, not "unknown"), unreadable validity, and algorithms certsweep
// cannot name.
func TestCertFindingsOddFields(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	p := report.DefaultPolicy(now)
	ok := scanner.Cert{Subject: "CN=odd.test", Issuer: "CN=ca.test", KeyType: "RSA", KeyBits: 2048, SignatureAlgorithm: "SHA256-RSA",
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0)}
	year9999 := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	tests := []struct {
		name   string
		edit   func(c *scanner.Cert)
		want   []report.Kind
		detail string // of the first finding
	}{
		{"clean", func(*scanner.Cert) {}, nil, ""},
		{"expired-in-year-1", func(c *scanner.Cert) {
			c.NotBefore, c.NotAfter = time.Time{}, time.Date(1, 12, 31, 23, 59, 59, 0, time.UTC)
		},
			[]report.Kind{report.KindExpired}, "expired 0001-12-31T23:59:59Z (740712 days ago)"},
		{"zero-validity-is-year-1", func(c *scanner.Cert) { c.NotBefore, c.NotAfter = time.Time{}, time.Time{} },
			[]report.Kind{report.KindExpired}, "expired 0001-01-01T00:00:00Z (741077 days ago)"},
		{"valid-from-year-9999", func(c *scanner.Cert) { c.NotBefore, c.NotAfter = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), year9999 },
			[]report.Kind{report.KindNotYetValid}, "not valid before 9999-01-01T00:00:00Z"},
		{"year-1-to-year-9999", func(c *scanner.Cert) { c.NotBefore, c.NotAfter = time.Time{}, year9999 }, nil, ""},
		{"unreadable-notAfter", func(c *scanner.Cert) {
			*c = scanner.Cert{ParseError: `unreadable validity: notAfter GeneralizedTime "209912312359Z" is not a date in the form YYYYMMDDHHMMSSZ that RFC 5280 requires`}
		}, []report.Kind{report.KindUnparsableValidity},
			`unreadable validity: notAfter GeneralizedTime "209912312359Z" is not a date in the form YYYYMMDDHHMMSSZ that RFC 5280 requires`},
		{"other-parse-error", func(c *scanner.Cert) { *c = scanner.Cert{ParseError: "asn1: syntax error: data truncated"} }, nil, ""},
		{"gost", func(c *scanner.Cert) {
			c.SignatureAlgorithm, c.KeyType, c.KeyBits = "1.2.643.2.2.3", "1.2.643.2.2.19", 0
		},
			[]report.Kind{report.KindUnknownAlgorithm}, "signature algorithm 1.2.643.2.2.3, key algorithm 1.2.643.2.2.19"},
		{"pss-without-hash", func(c *scanner.Cert) { c.SignatureAlgorithm = "RSASSA-PSS" },
			[]report.Kind{report.KindUnknownAlgorithm}, "signature algorithm RSASSA-PSS"},
		{"stored-before-issue-14", func(c *scanner.Cert) { c.SignatureAlgorithm, c.KeyType = "0", "unknown_algorithm" },
			[]report.Kind{report.KindUnknownAlgorithm}, "signature algorithm 0, key algorithm unknown_algorithm"},
		{"pss-sha1", func(c *scanner.Cert) { c.SignatureAlgorithm = "SHA1-RSAPSS" },
			[]report.Kind{report.KindWeakSignature}, "signed with SHA1-RSAPSS"},
		{"pss-sha256-odd-salt", func(c *scanner.Cert) { c.SignatureAlgorithm = "SHA256-RSAPSS" }, nil, ""},
		// A root's own signature is never checked by clients, whatever it is.
		{"root-with-unknown-self-signature", func(c *scanner.Cert) {
			c.SignatureAlgorithm, c.SelfSigned, c.IsCA, c.Issuer = "1.2.643.2.2.3", true, true, c.Subject
		}, []report.Kind{report.KindSelfSigned}, "self-signed by CN=odd.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			fs := report.CertFindings(store.Certificate{Cert: c}, 0, p)
			if got := kinds(fs); !slices.Equal(got, tc.want) {
				t.Fatalf("kinds = %v, want %v (%+v)", got, tc.want, fs)
			}
			if len(fs) > 0 && fs[0].Detail != tc.detail {
				t.Errorf("detail = %q, want %q", fs[0].Detail, tc.detail)
			}
			for _, f := range fs {
				if f.Severity != report.KindSeverity(f.Kind) {
					t.Errorf("%s has severity %v, want %v", f.Kind, f.Severity, report.KindSeverity(f.Kind))
				}
			}
		})
	}
	if report.KindSeverity(report.KindUnparsableValidity) != report.SeverityHigh ||
		report.KindSeverity(report.KindUnknownAlgorithm) != report.SeverityMedium {
		t.Errorf("severities: unparsable-validity %v, unknown-algorithm %v; want high, medium",
			report.KindSeverity(report.KindUnparsableValidity), report.KindSeverity(report.KindUnknownAlgorithm))
	}
}

// TestPostureFindings: with a measured posture, legacy-protocol and
// weak-cipher list everything the endpoint accepts; without one, what it
// negotiated.
func TestPostureFindings(t *testing.T) {
	l := newTestLab(t)
	c, err := l.ca.Leaf(scannertest.CertOptions{CommonName: "app.test", DNSNames: []string{"app.test"}})
	if err != nil {
		t.Fatal(err)
	}
	ev := report.NewEvaluator(l.policy, l.certs.source, nil)
	for _, tc := range []struct {
		name                 string
		version, suite       string
		posture              bool
		versions, weak       []string
		wantLegacy, wantWeak string // the findings' details; "" = no finding
	}{
		{"negotiated-clean", "TLS 1.3", "TLS_AES_128_GCM_SHA256", false, nil, nil, "", ""},
		{"negotiated-legacy", "TLS 1.0", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", false, nil, nil,
			"negotiated TLS 1.0", "negotiated TLS_RSA_WITH_3DES_EDE_CBC_SHA"},
		{"accepts-legacy", "TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", true,
			[]string{"SSLv3", "TLS 1.0", "TLS 1.1", "TLS 1.2"}, []string{"TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"},
			"accepts SSLv3, TLS 1.0, TLS 1.1", "accepts TLS_RSA_WITH_RC4_128_SHA, TLS_RSA_WITH_3DES_EDE_CBC_SHA"},
		{"accepts-nothing-weak", "TLS 1.3", "TLS_AES_128_GCM_SHA256", true, []string{"TLS 1.2", "TLS 1.3"}, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := l.endpoint(c.Certificate, "app.test")
			ep.TLSVersion, ep.CipherSuite = tc.version, tc.suite
			ep.Posture, ep.Versions, ep.WeakCiphers = tc.posture, tc.versions, tc.weak
			fs, err := ev.Evaluate(context.Background(), ep)
			if err != nil {
				t.Fatal(err)
			}
			details := map[report.Kind]string{}
			for _, f := range fs {
				details[f.Kind] = f.Detail
			}
			if details[report.KindLegacyProtocol] != tc.wantLegacy || details[report.KindWeakCipher] != tc.wantWeak {
				t.Errorf("legacy-protocol %q, weak-cipher %q; want %q, %q (all: %+v)",
					details[report.KindLegacyProtocol], details[report.KindWeakCipher], tc.wantLegacy, tc.wantWeak, fs)
			}
		})
	}
}

// TestKeyReuseDetailBounded: a key on 100,000 hosts names five of the
// others and counts the rest, never this endpoint's own host (at a site,
// site:ip).
func TestKeyReuseDetailBounded(t *testing.T) {
	l := newTestLab(t)
	c, err := l.ca.Leaf(scannertest.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ep := l.endpoint(c.Certificate, "")
	ep.Site = "fra"
	spki := hex.EncodeToString(ep.Leaf.SPKISHA256[:])
	hosts := []string{"fra:" + ep.IP} // first: it must not be listed
	for i := range 100_000 {
		hosts = append(hosts, fmt.Sprintf("dal:10.%d.%d.%d", i>>16, i>>8&255, i&255))
	}
	ev := report.NewEvaluator(l.policy, l.certs.source, [][]byte{l.ca.Intermediate.DER})
	ev.SetFacts(report.SweepFacts{KeyAddresses: map[string]store.ReusedKey{spki: {Hosts: hosts[:report.KeyReuseShown+1], Count: len(hosts)}}})
	fs, err := ev.Evaluate(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	var detail string
	for _, f := range fs {
		if f.Kind == report.KindKeyReuse {
			detail = f.Detail
		}
	}
	want := "the same public key is in other certificates on dal:10.0.0.0, dal:10.0.0.1, dal:10.0.0.2, dal:10.0.0.3, dal:10.0.0.4 and 99995 more"
	if detail != want {
		t.Errorf("key-reuse detail %q, want %q", detail, want)
	}
}
