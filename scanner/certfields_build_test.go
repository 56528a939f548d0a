package scanner_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unicode/utf16"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// A hand assembler for the certificates crypto/x509 will not write: any
// Time encoding, any AlgorithmIdentifier, any string type in a name. It
// builds a TBSCertificate element by element and signs it for real, so that
// self-signatures verify (or, for an unknown algorithm, signs garbage).

// der is one DER element.
func der(tag cbasn1.Tag, content ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(tag, func(b *cryptobyte.Builder) {
		for _, c := range content {
			b.AddBytes(c)
		}
	})
	return b.BytesOrPanic()
}

func seq(parts ...[]byte) []byte { return der(cbasn1.SEQUENCE, parts...) }

// explicit wraps an element in the context-specific tag [n].
func explicit(n int, inner []byte) []byte {
	return der(cbasn1.Tag(n).Constructed().ContextSpecific(), inner)
}

func derInt(n int64) []byte {
	var b cryptobyte.Builder
	b.AddASN1Int64(n)
	return b.BytesOrPanic()
}

func derOID(oid string) []byte {
	var o asn1.ObjectIdentifier
	for _, arc := range bytes.Split([]byte(oid), []byte(".")) {
		n := 0
		for _, c := range arc {
			n = n*10 + int(c-'0')
		}
		o = append(o, n)
	}
	b, err := asn1.Marshal(o)
	if err != nil {
		panic(err)
	}
	return b
}

var derNull = []byte{0x05, 0x00}

// algID is an AlgorithmIdentifier; params nil means absent.
func algID(oid string, params []byte) []byte {
	if params == nil {
		return seq(derOID(oid))
	}
	return seq(derOID(oid), params)
}

func genTime(s string) []byte { return der(cbasn1.GeneralizedTime, []byte(s)) }
func utcTime(s string) []byte { return der(cbasn1.UTCTime, []byte(s)) }

// attr is one attribute of a name, with its string type and raw bytes.
type attr struct {
	oid   string
	tag   cbasn1.Tag
	value []byte
}

const (
	oidCN           = "2.5.4.3"
	oidSerialNumber = "2.5.4.5"
	oidPostalCode   = "2.5.4.17"
)

// ASN.1 string tags by number, for the types cryptobyte/asn1 does not name.
const (
	tagTeletex   = cbasn1.Tag(20)
	tagVisible   = cbasn1.Tag(26)
	tagUniversal = cbasn1.Tag(28)
	tagBMP       = cbasn1.Tag(30)
)

// name is a Name with one attribute per RDN, in the order given.
func name(attrs ...attr) []byte {
	var rdns [][]byte
	for _, a := range attrs {
		rdns = append(rdns, der(cbasn1.SET, seq(derOID(a.oid), der(a.tag, a.value))))
	}
	return seq(rdns...)
}

func cn(tag cbasn1.Tag, value []byte) []byte { return name(attr{oidCN, tag, value}) }

func bmp(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

func universal(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
	}
	return b
}

// signer signs TBSCertificates: algID goes in the TBS and outside it.
type signer struct {
	algID []byte
	spki  []byte
	sign  func(tbs []byte) []byte
}

type testKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keys     testKeys
	keysErr  error
)

// getKeys makes the test keys once per process: RSA keys are slow to make.
func getKeys(t testing.TB) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		if keys.rsa, keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
			return
		}
		if keys.ec, keysErr = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); keysErr != nil {
			return
		}
		_, keys.ed, keysErr = ed25519.GenerateKey(rand.Reader)
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return &keys
}

func spkiOf(t testing.TB, pub any) []byte {
	t.Helper()
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func digest(h crypto.Hash, msg []byte) []byte {
	hf := h.New()
	hf.Write(msg)
	return hf.Sum(nil)
}

func rsaPKCS1(t testing.TB, oid string, h crypto.Hash) signer {
	k := getKeys(t).rsa
	return signer{algID(oid, derNull), spkiOf(t, &k.PublicKey), func(tbs []byte) []byte {
		sig, err := rsa.SignPKCS1v15(nil, k, h, digest(h, tbs))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}}
}

// rsaPSS signs with hash h and salt length salt (MGF1 with h, as Go does)
// under whatever parameters the test writes.
func rsaPSS(t testing.TB, params []byte, h crypto.Hash, salt int) signer {
	k := getKeys(t).rsa
	return signer{algID("1.2.840.113549.1.1.10", params), spkiOf(t, &k.PublicKey), func(tbs []byte) []byte {
		sig, err := rsa.SignPSS(rand.Reader, k, h, digest(h, tbs), &rsa.PSSOptions{SaltLength: salt})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}}
}

// pssParams writes RSASSA-PSS-params naming hashOID (with hashParams),
// MGF1 with the same hash, and the salt length; a negative salt is left to
// its default.
func pssParams(hashOID string, hashParams []byte, salt int) []byte {
	parts := [][]byte{
		explicit(0, algID(hashOID, hashParams)),
		explicit(1, algID("1.2.840.113549.1.1.8", algID(hashOID, hashParams))),
	}
	if salt >= 0 {
		parts = append(parts, explicit(2, derInt(int64(salt))))
	}
	return seq(parts...)
}

func ecdsaSigner(t testing.TB, oid string, h crypto.Hash) signer {
	k := getKeys(t).ec
	return signer{algID(oid, nil), spkiOf(t, &k.PublicKey), func(tbs []byte) []byte {
		sig, err := ecdsa.SignASN1(rand.Reader, k, digest(h, tbs))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}}
}

func ed25519Signer(t testing.TB) signer {
	k := getKeys(t).ed
	return signer{algID("1.3.101.112", nil), spkiOf(t, k.Public()), func(tbs []byte) []byte {
		return ed25519.Sign(k, tbs)
	}}
}

// unknownSigner claims an algorithm nobody here implements, over the RSA
// key or the given SubjectPublicKeyInfo, with a signature of garbage.
func unknownSigner(t testing.TB, oid string, spki []byte) signer {
	if spki == nil {
		spki = spkiOf(t, &getKeys(t).rsa.PublicKey)
	}
	return signer{algID(oid, nil), spki, func([]byte) []byte { return bytes.Repeat([]byte{0x5a}, 64) }}
}

// certSpec is a self-issued certificate: the issuer is the subject.
type certSpec struct {
	serial              int64
	subject             []byte
	notBefore, notAfter []byte
	signer              signer
}

// build assembles and signs a v3 certificate without extensions.
func (s certSpec) build() []byte {
	subject := s.subject
	if subject == nil {
		subject = cn(cbasn1.UTF8String, []byte("fields.test"))
	}
	nb, na := s.notBefore, s.notAfter
	if nb == nil {
		nb = utcTime("250101000000Z")
	}
	if na == nil {
		na = genTime("20991231235959Z")
	}
	tbs := seq(explicit(0, derInt(2)), derInt(s.serial), s.signer.algID, subject,
		seq(nb, na), subject, s.signer.spki)
	sig := s.signer.sign(tbs)
	return seq(tbs, s.signer.algID, der(cbasn1.BIT_STRING, []byte{0}, sig))
}

// testdataCert reads a PEM certificate from testdata/certs (README.md
// there says how each was made).
func testdataCert(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "certs", file))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", file)
	}
	return blk.Bytes
}
