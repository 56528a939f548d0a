package scanner

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/zmap/zcrypto/dsa"
	"github.com/zmap/zcrypto/rsa"
	"github.com/zmap/zcrypto/x509"
	"golang.org/x/crypto/ed25519"
)

// Cert is one certificate as an endpoint presented it, with the summary
// fields an inventory needs. DER is the source of truth: a certificate that
// does not parse keeps its DER and records why in ParseError (and then has no
// other fields: a zero validity means unknown only there). Text fields
// come from the peer and are untrusted: escape them for the output medium.
type Cert struct {
	DER                []byte
	SHA256             [32]byte
	Subject, Issuer    string
	Serial             string // lowercase hex, as printed by openssl
	SANs               []string
	CommonName         string    // the subject's CN, for names to follow when there are no SANs
	NotBefore          time.Time // UTC, as encoded: year 1 (the zero time) is a date, never "unknown"
	NotAfter           time.Time // UTC, as encoded
	KeyType            string    // RSA, ECDSA, Ed25519, DSA, X25519, or the key algorithm's dotted OID
	KeyBits            int
	SignatureAlgorithm string // as signatureName names it; UnknownAlgorithm tells one that cannot be judged
	IsCA               bool
	SelfSigned         bool
	SPKISHA256         [32]byte
	ParseError         string
}

// Fingerprint is the lowercase hex SHA-256 of the DER, the certificate's key.
func (c Cert) Fingerprint() string { return hex.EncodeToString(c.SHA256[:]) }

// ParseCert summarises a DER certificate leniently (zcrypto's parser accepts
// much that crypto/x509 refuses). It never fails: parse errors are recorded
// in the result, which always carries the DER and its fingerprint.
func ParseCert(der []byte) Cert {
	c := Cert{DER: der, SHA256: sha256.Sum256(der)}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		c.ParseError = err.Error()
		if why := validityError(der); why != "" {
			c.ParseError = why // the validity is what clients and reports need to know
		}
		return c
	}
	fillCert(&c, x)
	return c
}

// certFromParsed summarises a certificate zcrypto already parsed during the
// handshake, saving a second parse.
func certFromParsed(der []byte, x *x509.Certificate) Cert {
	if x == nil {
		return ParseCert(der)
	}
	c := Cert{DER: der, SHA256: sha256.Sum256(der)}
	fillCert(&c, x)
	return c
}

func fillCert(c *Cert, x *x509.Certificate) {
	c.Subject = nameString(x.Subject, x.RawSubject)
	c.CommonName = x.Subject.CommonName
	c.Issuer = nameString(x.Issuer, x.RawIssuer)
	if x.SerialNumber != nil {
		c.Serial = serialHex(x.SerialNumber.Bytes(), x.SerialNumber.Sign() < 0)
	}
	c.SANs = make([]string, 0, len(x.DNSNames)+len(x.IPAddresses))
	c.SANs = append(c.SANs, x.DNSNames...)
	for _, ip := range x.IPAddresses {
		c.SANs = append(c.SANs, ip.String())
	}
	c.NotBefore, c.NotAfter = x.NotBefore.UTC(), x.NotAfter.UTC()
	c.KeyType, c.KeyBits = keyInfo(x)
	c.SignatureAlgorithm = signatureName(x)
	c.IsCA = x.BasicConstraintsValid && x.IsCA
	c.SelfSigned = selfSigned(x)
	c.SPKISHA256 = sha256.Sum256(x.RawSubjectPublicKeyInfo)
}

func serialHex(b []byte, negative bool) string {
	s := hex.EncodeToString(b)
	if s == "" {
		s = "00"
	}
	if negative {
		return "-" + s
	}
	return s
}

func keyInfo(x *x509.Certificate) (string, int) {
	switch k := x.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N != nil {
			return "RSA", k.N.BitLen()
		}
	case *ecdsa.PublicKey:
		if k.Curve != nil {
			return "ECDSA", k.Curve.Params().BitSize
		}
	case *x509.AugmentedECDSA:
		if k.Pub != nil && k.Pub.Curve != nil {
			return "ECDSA", k.Pub.Curve.Params().BitSize
		}
	case ed25519.PublicKey:
		return "Ed25519", 256
	case *dsa.PublicKey:
		if k.P != nil {
			return "DSA", k.P.BitLen()
		}
	}
	return keyAlgorithmName(x), 0
}
