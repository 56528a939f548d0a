// Package scannertest provides TLS endpoints on loopback for testing and
// demonstrating certsweep, in the manner of net/http/httptest: a test CA,
// certificates with chosen defects, real crypto/tls listeners on 127.x.y.z
// addresses, and a lab of many such endpoints. It only ever binds loopback.
package scannertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CertOptions describes a certificate to issue. Zero values mean: an ECDSA
// P-256 key, valid from an hour ago for 90 days, signed with SHA-256.
type CertOptions struct {
	CommonName   string
	DNSNames     []string
	IPs          []net.IP
	NotBefore    time.Time
	NotAfter     time.Time
	RSABits      int           // use an RSA key of this size instead of ECDSA P-256
	Key          crypto.Signer // reuse this key instead of generating one (RSA keys are slow to make)
	SHA1         bool          // sign with SHA-1 (RSA keys only)
	IsCA         bool
	Organization string
}

// Issued is a certificate with its key, ready to serve.
type Issued struct {
	Cert *x509.Certificate
	DER  []byte
	Key  crypto.Signer
}

// CA is a certificate authority for tests: a root and, for three-certificate
// chains, one intermediate.
type CA struct {
	Root         *Issued
	Intermediate *Issued
}

// NewCA creates a root and an intermediate named after name.
func NewCA(name string) (*CA, error) {
	// Backdated, as real CAs are older than the leaves they sign (and expired
	// lab leaves must still chain to a CA that was valid at the time).
	root, err := issue(CertOptions{CommonName: name + " Root CA", IsCA: true, Organization: name,
		NotBefore: time.Now().Add(-5 * 365 * 24 * time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour)}, nil)
	if err != nil {
		return nil, err
	}
	inter, err := issue(CertOptions{CommonName: name + " Intermediate CA", IsCA: true, Organization: name,
		NotBefore: time.Now().Add(-4 * 365 * 24 * time.Hour), NotAfter: time.Now().Add(5 * 365 * 24 * time.Hour)}, root)
	if err != nil {
		return nil, err
	}
	return &CA{Root: root, Intermediate: inter}, nil
}

// Leaf issues a leaf signed by the intermediate. The returned chain is what a
// well-configured server presents: leaf, intermediate (not the root).
func (ca *CA) Leaf(o CertOptions) (tls.Certificate, error) {
	leaf, err := issue(o, ca.Intermediate)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.DER, ca.Intermediate.DER}, PrivateKey: leaf.Key, Leaf: leaf.Cert}, nil
}

// LeafFromRoot issues a leaf signed directly by the root.
func (ca *CA) LeafFromRoot(o CertOptions) (tls.Certificate, error) {
	leaf, err := issue(o, ca.Root)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.DER}, PrivateKey: leaf.Key, Leaf: leaf.Cert}, nil
}

// SelfSigned issues a self-signed leaf.
func SelfSigned(o CertOptions) (tls.Certificate, error) {
	c, err := issue(o, nil)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{c.DER}, PrivateKey: c.Key, Leaf: c.Cert}, nil
}

// issue creates a certificate signed by parent, or self-signed when parent is nil.
func issue(o CertOptions, parent *Issued) (*Issued, error) {
	key := o.Key
	var err error
	switch {
	case key != nil:
	case o.RSABits > 0:
		key, err = rsa.GenerateKey(rand.Reader, o.RSABits)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	skid := sha1.Sum(spki) // RFC 5280 method 1 (a key identifier, not a security use)
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CommonName},
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		SubjectKeyId:          skid[:],
		BasicConstraintsValid: true,
		IsCA:                  o.IsCA,
	}
	if o.Organization != "" {
		tmpl.Subject.Organization = []string{o.Organization}
	}
	if o.IsCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if o.SHA1 {
		tmpl.SignatureAlgorithm = x509.SHA1WithRSA
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate %q: %w", o.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, DER: der, Key: key}, nil
}
