package scanner_test

import (
	"bytes"
	"crypto/dsa"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	zasn1 "github.com/zmap/zcrypto/encoding/asn1"
	zpkix "github.com/zmap/zcrypto/x509/pkix"
)

// FuzzCertAgainstX509 compares ParseCert's summary (zcrypto plus
// certfields.go) with crypto/x509's reading of the same bytes, wherever both
// parse: serial, validity, SANs, key, signature algorithm, CA flag,
// self-signature, SPKI fingerprint, subject and issuer. A disagreement fails,
// except for these deliberate differences:
//
//   - Signature algorithms crypto/x509 does not name (it says "0"):
//     certsweep names RSASSA-PSS by the hash its parameters give, whatever
//     the salt ("SHA256-RSAPSS"; "RSASSA-PSS" when they give none), names
//     SHA224-RSA, ECDSA-SHA224 and DSA-SHA224, and anything else by dotted
//     OID.
//   - Keys crypto/x509 does not parse are named by their dotted OID.
//     X25519 keys have no bit count (0).
//   - Self-signatures crypto/x509 refuses to check (SHA-1, MD5, DSA, RSA
//     keys under 1024 bits, algorithms it does not know) are certsweep's
//     own verdict. Where crypto/x509 verifies one, certsweep must agree.
//   - Names compare as ParseDN keys (attribute order and case do not
//     count), with zcrypto's attribute names. A TeletexString that is not
//     UTF-8 (crypto/x509 keeps the bytes, certsweep reads Latin-1) or a
//     BMPString with a lone surrogate (crypto/x509 shows U+FFFD, certsweep
//     escapes the bytes) leaves that name uncompared.
//
// The seeds are the certificates of TestCertFields and testdata/certs.
func FuzzCertAgainstX509(f *testing.F) {
	for _, c := range fieldCases(f) {
		f.Add(c.der)
	}
	ca, err := scannertest.NewCA("fuzz x509")
	if err != nil {
		f.Fatal(err)
	}
	leaf, err := ca.Leaf(scannertest.CertOptions{CommonName: "fuzz.test", DNSNames: []string{"fuzz.test", "*.fuzz.test"}, Organization: "Fuzz, Inc."})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(leaf.Certificate[0])
	f.Add(ca.Root.DER)
	f.Fuzz(func(t *testing.T, der []byte) {
		c := scanner.ParseCert(der)
		if c.ParseError != "" {
			return
		}
		for _, n := range []struct{ label, s string }{{"subject", c.Subject}, {"issuer", c.Issuer}} {
			if strings.Contains(n.s, "<nil>") && !bytes.Contains(der, []byte("<nil>")) {
				t.Errorf("%s %q shows a value as <nil>", n.label, n.s)
			}
		}
		if c.SignatureAlgorithm == "0" || c.SignatureAlgorithm == "" {
			t.Errorf("signature algorithm stored as %q", c.SignatureAlgorithm)
		}
		g, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		compareWithX509(t, c, g)
	})
}

func compareWithX509(t *testing.T, c scanner.Cert, g *x509.Certificate) {
	t.Helper()
	if g.SerialNumber != nil {
		s := strings.TrimLeft(g.SerialNumber.Text(16), "-")
		if len(s)%2 == 1 {
			s = "0" + s
		}
		if g.SerialNumber.Sign() < 0 {
			s = "-" + s
		}
		if g.SerialNumber.Sign() == 0 {
			s = "00"
		}
		if c.Serial != s {
			t.Errorf("serial: certsweep %q, crypto/x509 %q", c.Serial, s)
		}
	}
	if !c.NotBefore.Equal(g.NotBefore) || !c.NotAfter.Equal(g.NotAfter) {
		t.Errorf("validity: certsweep %v to %v, crypto/x509 %v to %v", c.NotBefore, c.NotAfter, g.NotBefore, g.NotAfter)
	}
	if c.NotBefore.Location() != time.UTC || c.NotAfter.Location() != time.UTC {
		t.Errorf("validity not in UTC: %v, %v", c.NotBefore, c.NotAfter)
	}
	sans := slices.Clone(g.DNSNames)
	for _, ip := range g.IPAddresses {
		sans = append(sans, ip.String())
	}
	if !slices.Equal(c.SANs, sans) {
		t.Errorf("SANs: certsweep %q, crypto/x509 %q", c.SANs, sans)
	}

	keyType, keyBits := x509Key(g)
	if c.KeyType != keyType || c.KeyBits != keyBits {
		t.Errorf("key: certsweep %s/%d, crypto/x509 %s/%d", c.KeyType, c.KeyBits, keyType, keyBits)
	}
	if c.SPKISHA256 != sha256.Sum256(g.RawSubjectPublicKeyInfo) {
		t.Errorf("SPKI fingerprint differs")
	}

	sigOID := algorithmOID(g.RawTBSCertificate)
	switch {
	case g.SignatureAlgorithm != x509.UnknownSignatureAlgorithm:
		if c.SignatureAlgorithm != g.SignatureAlgorithm.String() {
			t.Errorf("signature algorithm: certsweep %q, crypto/x509 %q", c.SignatureAlgorithm, g.SignatureAlgorithm)
		}
	case sigOID == "1.2.840.113549.1.1.10":
		if c.SignatureAlgorithm != "RSASSA-PSS" && !strings.HasSuffix(c.SignatureAlgorithm, "-RSAPSS") {
			t.Errorf("RSASSA-PSS named %q", c.SignatureAlgorithm)
		}
	case slices.Contains([]string{"SHA224-RSA", "ECDSA-SHA224", "DSA-SHA224"}, c.SignatureAlgorithm):
	default:
		if c.SignatureAlgorithm != sigOID {
			t.Errorf("signature algorithm crypto/x509 does not name: certsweep %q, OID %s", c.SignatureAlgorithm, sigOID)
		}
	}

	if g.BasicConstraintsValid && g.IsCA != c.IsCA || !g.BasicConstraintsValid && c.IsCA {
		t.Errorf("CA: certsweep %v, crypto/x509 %v (basic constraints present: %v)", c.IsCA, g.IsCA, g.BasicConstraintsValid)
	}

	if bytes.Equal(g.RawSubject, g.RawIssuer) {
		err := g.CheckSignature(g.SignatureAlgorithm, g.RawTBSCertificate, g.Signature)
		var insecure x509.InsecureAlgorithmError
		refused := errors.As(err, &insecure) || errors.Is(err, x509.ErrUnsupportedAlgorithm) ||
			err != nil && strings.Contains(err.Error(), "insecure")
		switch {
		case err == nil && !c.SelfSigned:
			t.Errorf("crypto/x509 verifies the self-signature (%v); certsweep says not self-signed", g.SignatureAlgorithm)
		case err != nil && !refused && c.SelfSigned:
			t.Errorf("crypto/x509 finds the self-signature bad (%v); certsweep says self-signed", err)
		}
	} else if c.SelfSigned {
		t.Errorf("issuer differs from subject, yet certsweep says self-signed")
	}

	for _, n := range []struct {
		label, ours string
		raw         []byte
	}{{"subject", c.Subject, g.RawSubject}, {"issuer", c.Issuer, g.RawIssuer}} {
		theirs, ok := x509NameKey(n.raw)
		if !ok {
			continue
		}
		d, err := scanner.ParseDN(n.ours)
		if n.ours == "" && theirs == "" {
			continue
		}
		if err != nil {
			t.Errorf("%s %q does not parse back: %v", n.label, n.ours, err)
			continue
		}
		if d.Key() != theirs {
			t.Errorf("%s: certsweep %q (key %s), crypto/x509's values give key %s", n.label, n.ours, d.Key(), theirs)
		}
	}
}

// x509Key is crypto/x509's key in certsweep's terms.
func x509Key(g *x509.Certificate) (string, int) {
	switch k := g.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	case *dsa.PublicKey:
		return "DSA", k.P.BitLen()
	case *ecdh.PublicKey:
		if k.Curve() == ecdh.X25519() {
			return "X25519", 0
		}
	}
	var spki struct {
		Algorithm struct {
			Algorithm asn1.ObjectIdentifier
			Params    asn1.RawValue `asn1:"optional"`
		}
		Key asn1.BitString
	}
	if _, err := asn1.Unmarshal(g.RawSubjectPublicKeyInfo, &spki); err != nil {
		return "?", 0
	}
	return spki.Algorithm.Algorithm.String(), 0
}

// algorithmOID is the dotted OID of a TBSCertificate's signature algorithm.
func algorithmOID(tbs []byte) string {
	var t struct {
		Raw       asn1.RawContent
		Version   int `asn1:"optional,explicit,default:0,tag:0"`
		Serial    asn1.RawValue
		Algorithm struct {
			Algorithm asn1.ObjectIdentifier
			Params    asn1.RawValue `asn1:"optional"`
		}
		Rest []asn1.RawValue `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(tbs, &t); err != nil {
		return "?"
	}
	return t.Algorithm.Algorithm.String()
}

type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type rawATVSET []rawATV

// x509NameKey is the ParseDN key of a name as crypto/x509 decodes its values
// (it refuses certificates with values it cannot decode), with zcrypto's
// attribute names. It reports false for the names the allow-list leaves
// uncompared.
func x509NameKey(raw []byte) (string, bool) {
	var rdns []rawATVSET
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) > 0 {
		return "", false
	}
	var d scanner.DN
	for _, rdn := range rdns {
		for _, atv := range rdn {
			var v string
			b := atv.Value.Bytes
			switch atv.Value.Tag {
			case 20: // TeletexString
				if !utf8.Valid(b) {
					return "", false
				}
				v = string(b)
			case 30: // BMPString
				var err error
				if v, err = bmpText(b); err != nil {
					return "", false
				}
			default:
				if _, err := asn1.Unmarshal(atv.Value.FullBytes, &v); err != nil {
					v = string(b) // crypto/x509 parsed it: the bytes are the text
				}
			}
			d = append(d, scanner.DNAttr{Type: zcryptoTypeName(atv.Type), Value: v})
		}
	}
	if len(d) == 0 {
		return "", true
	}
	p, err := scanner.ParseDN(d.String())
	if err != nil {
		return "", false
	}
	return p.Key(), true
}

// bmpText decodes UTF-16BE as crypto/x509 does, failing on a lone surrogate
// (which it would show as U+FFFD).
func bmpText(b []byte) (string, error) {
	if l := len(b); l >= 2 && b[l-1] == 0 && b[l-2] == 0 {
		b = b[:l-2]
	}
	var s []rune
	for i := 0; i+1 < len(b); i += 2 {
		u := rune(b[i])<<8 | rune(b[i+1])
		if u >= 0xd800 && u < 0xdc00 && i+3 < len(b) {
			lo := rune(b[i+2])<<8 | rune(b[i+3])
			if lo >= 0xdc00 && lo < 0xe000 {
				s = append(s, 0x10000+(u-0xd800)<<10+(lo-0xdc00))
				i += 2
				continue
			}
		}
		if u >= 0xd800 && u < 0xe000 {
			return "", errors.New("lone surrogate")
		}
		s = append(s, u)
	}
	return string(s), nil
}

// zcryptoTypeName is the attribute name zcrypto prints, or the dotted OID.
func zcryptoTypeName(oid asn1.ObjectIdentifier) string {
	z := make(zasn1.ObjectIdentifier, len(oid))
	copy(z, oid)
	s := zpkix.RDNSequence{{{Type: z, Value: "x"}}}.String()
	if n, ok := strings.CutSuffix(s, "=x"); ok && !strings.ContainsAny(n, "=#") {
		return n
	}
	return oid.String()
}
