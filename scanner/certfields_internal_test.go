package scanner

import (
	"crypto"
	"crypto/rand"
	stdrsa "crypto/rsa"
	"encoding/asn1"
	"math/big"
	"testing"

	zasn1 "github.com/zmap/zcrypto/encoding/asn1"
	"github.com/zmap/zcrypto/rsa"
	"github.com/zmap/zcrypto/x509"
	"github.com/zmap/zcrypto/x509/pkix"
)

// The names in sigAlgs that zcrypto also has must be zcrypto's: stored
// values and reports from before depend on them.
func TestSigAlgNamesMatchZcrypto(t *testing.T) {
	for oid, a := range sigAlgs {
		if oid == oidRSAPSS {
			continue
		}
		var o zasn1.ObjectIdentifier
		if _, err := zasn1.Unmarshal(mustOID(t, oid), &o); err != nil {
			t.Fatal(err)
		}
		z := x509.GetSignatureAlgorithmFromAI(pkix.AlgorithmIdentifier{Algorithm: o})
		if z != x509.UnknownSignatureAlgorithm && z.String() != a.name {
			t.Errorf("%s: certsweep names it %q, zcrypto %q", oid, a.name, z)
		}
	}
}

func mustOID(t *testing.T, dotted string) []byte {
	t.Helper()
	var o asn1.ObjectIdentifier
	n := 0
	for _, c := range dotted + "." {
		if c == '.' {
			o = append(o, n)
			n = 0
			continue
		}
		n = n*10 + int(c-'0')
	}
	b, err := asn1.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDottedOID(t *testing.T) {
	for _, oid := range []string{"1.2.643.2.2.3", "2.5.4.3", "0.9.2342.19200300.100.1.25", "2.999.1", "1.2.840.113549.1.1.10"} {
		b := mustOID(t, oid)
		if got, ok := dottedOID(b[2:]); !ok || got != oid {
			t.Errorf("dottedOID(%s) = %q, %v", oid, got, ok)
		}
	}
	// An arc past 64 bits, as only a hostile certificate has.
	if got, ok := dottedOID([]byte{0x2a, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}); !ok || got != "1.2.2361183241434822606849" {
		t.Errorf("dottedOID(huge arc) = %q, %v", got, ok)
	}
	for _, bad := range [][]byte{nil, {0x2a, 0x86}, {0x2a, 0x80, 0x01}} {
		if got, ok := dottedOID(bad); ok {
			t.Errorf("dottedOID(% x) = %q, want failure", bad, got)
		}
	}
}

// verifyPSS must accept what crypto/rsa signs, with any salt length, and
// nothing else.
func TestVerifyPSS(t *testing.T) {
	k, err := stdrsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: k.N, E: big.NewInt(int64(k.E))}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA512} {
		for _, salt := range []int{1, 20, h.Size(), 64} { // 0 means "as long as fits" to crypto/rsa
			hf := h.New()
			hf.Write([]byte("tbs"))
			d := hf.Sum(nil)
			sig, err := stdrsa.SignPSS(rand.Reader, k, h, d, &stdrsa.PSSOptions{SaltLength: salt})
			if err != nil {
				t.Fatal(err)
			}
			p := pssParams{hash: h, mgfHash: h, saltLen: salt, trailer: 1}
			if !verifyPSS(pub, p, d, sig) {
				t.Errorf("%v salt %d: a good signature does not verify", h, salt)
			}
			p.saltLen++
			if verifyPSS(pub, p, d, sig) {
				t.Errorf("%v salt %d: verifies with the wrong salt length", h, salt)
			}
			p.saltLen--
			sig[10] ^= 1
			if verifyPSS(pub, p, d, sig) {
				t.Errorf("%v salt %d: a damaged signature verifies", h, salt)
			}
		}
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	for name, want := range map[string]bool{
		"SHA256-RSA": false, "SHA256-RSAPSS": false, "Ed25519": false, "RSA": false, "X25519": false, "": false,
		"1.2.643.2.2.3": true, "RSASSA-PSS": true, "0": true, "unknown_algorithm": true, "unknown(0)": true,
	} {
		if got := UnknownAlgorithm(name); got != want {
			t.Errorf("UnknownAlgorithm(%q) = %v, want %v", name, got, want)
		}
	}
}
