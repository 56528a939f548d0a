package scannertest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"
)

// Hostile connection behaviours, for NewServer. Each returns when the
// connection is closed, so Server.Close stays prompt.

// Drip sends a plausible TLS record header one byte per interval, forever:
// a tarpit that never trips a read deadline measured per byte.
func Drip(interval time.Duration) func(net.Conn) {
	return func(c net.Conn) {
		go func() { _, _ = io.Copy(io.Discard, c) }()
		for _, b := range bytes.Repeat([]byte{0x16, 0x03, 0x03, 0x40, 0x00}, 1000) {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(interval)
		}
	}
}

// RandomBytes answers the ClientHello with 64 KiB of random bytes.
func RandomBytes(c net.Conn) {
	_, _ = c.Read(make([]byte, 4096))
	junk := make([]byte, 64<<10)
	_, _ = rand.Read(junk)
	_, _ = c.Write(junk)
	Stall(c)
}

// PlainHTTP answers like a web server that does not speak TLS on this port.
func PlainHTTP(c net.Conn) {
	_, _ = c.Read(make([]byte, 4096))
	_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
}

// ResetMidHandshake reads the ClientHello and resets the connection.
func ResetMidHandshake(c net.Conn) {
	_, _ = c.Read(make([]byte, 4096))
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST, not FIN
	}
}

// Alert answers the ClientHello with a fatal handshake_failure alert.
func Alert(c net.Conn) {
	_, _ = c.Read(make([]byte, 4096))
	_, _ = c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28})
	Stall(c)
}

// RawChainConfig serves ders as the certificate chain, whatever they hold,
// signing the handshake with key: crypto/tls sends the bytes without parsing
// them, which lets a test present malformed certificates.
func RawChainConfig(ders [][]byte, key *ecdsa.PrivateKey, maxVersion uint16) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: ders, PrivateKey: key}}, MaxVersion: maxVersion}
}

// HostileCerts builds certificates that break parsers, all sharing one key.
type HostileCerts struct {
	Key  *ecdsa.PrivateKey
	good []byte
}

// NewHostileCerts makes the key and a well-formed template certificate.
func NewHostileCerts() (*HostileCerts, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	h := &HostileCerts{Key: key}
	h.good, err = h.create(&x509.Certificate{Subject: pkix.Name{CommonName: "template.hostile.test"}})
	return h, err
}

func (h *HostileCerts) create(tmpl *x509.Certificate) ([]byte, error) {
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(30*24*time.Hour)
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, &h.Key.PublicKey, h.Key)
}

// Good is a well-formed self-signed certificate for the shared key.
func (h *HostileCerts) Good() []byte { return bytes.Clone(h.good) }

// Truncated is the template cut in half.
func (h *HostileCerts) Truncated() []byte { return bytes.Clone(h.good[:len(h.good)/2]) }

// BadASN1 is a SEQUENCE header followed by random bytes.
func (h *HostileCerts) BadASN1() []byte {
	junk := make([]byte, 300)
	_, _ = rand.Read(junk)
	return append([]byte{0x30, 0x82, 0x01, 0x2c}, junk...)
}

// NegativeSerial is the template with its serial number's sign bit set.
func (h *HostileCerts) NegativeSerial() ([]byte, error) {
	der := bytes.Clone(h.good)
	// Certificate SEQUENCE > TBSCertificate SEQUENCE > [0] version > INTEGER serial.
	i := bytes.Index(der, []byte{0xa0, 0x03, 0x02, 0x01, 0x02, 0x02})
	if i < 0 {
		return nil, fmt.Errorf("template has no serial where expected")
	}
	der[i+7] |= 0x80 // first content byte of the serial
	return der, nil
}

// ImpossibleDates is the template with a 13th month in its notBefore.
func (h *HostileCerts) ImpossibleDates() ([]byte, error) {
	der := bytes.Clone(h.good)
	i := bytes.Index(der, []byte{0x17, 0x0d}) // the first UTCTime: notBefore, YYMMDDhhmmssZ
	if i < 0 {
		return nil, fmt.Errorf("template has no UTCTime")
	}
	der[i+4], der[i+5] = '1', '3'
	return der, nil
}

// UnknownKeyAlgorithm is the template with its key's algorithm OID
// (id-ecPublicKey, 1.2.840.10045.2.1) changed to an unassigned one.
func (h *HostileCerts) UnknownKeyAlgorithm() ([]byte, error) {
	der := bytes.Clone(h.good)
	oid := []byte{0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}
	i := bytes.Index(der, oid)
	if i < 0 {
		return nil, fmt.Errorf("template has no id-ecPublicKey")
	}
	der[i+len(oid)-1] = 0x7f
	return der, nil
}

// ManySANs has n IP address SANs (IPs keep 10,000 of them under the 64 KiB
// a TLS handshake message may carry).
func (h *HostileCerts) ManySANs(n int) ([]byte, error) {
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "many-sans.hostile.test"}}
	for i := range n {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)))
	}
	return h.create(tmpl)
}

// Huge has a private extension of size bytes.
func (h *HostileCerts) Huge(size int) ([]byte, error) {
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "huge.hostile.test"},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, Value: make([]byte, size)}}}
	return h.create(tmpl)
}

// HostileSubject has a common name made of raw bytes (UTF8String tag), such
// as invalid UTF-8, control characters or ANSI escape sequences.
func (h *HostileCerts) HostileSubject(cn []byte) ([]byte, error) {
	rdn := pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{2, 5, 4, 3},
		Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: cn}}}}
	raw, err := asn1.Marshal(rdn)
	if err != nil {
		return nil, err
	}
	return h.create(&x509.Certificate{RawSubject: raw, DNSNames: []string{"hostile.test"}})
}

// LongChain is n small distinct certificates.
func (h *HostileCerts) LongChain(n int) ([][]byte, error) {
	var chain [][]byte
	for i := range n {
		der, err := h.create(&x509.Certificate{Subject: pkix.Name{CommonName: fmt.Sprintf("c%d", i)}, SerialNumber: big.NewInt(int64(i + 1))})
		if err != nil {
			return nil, err
		}
		chain = append(chain, der)
	}
	return chain, nil
}

// HostileKinds are the lab kinds that misbehave, for NewLabOf. Behaviour
// kinds never complete a handshake; certificate kinds serve a TLS 1.2
// handshake presenting the named malformed or absurd chain.
var HostileKinds = []string{
	"stall", "drip", "random-bytes", "plain-http", "reset", "alert",
	"chain-200", "huge-1mb", "truncated-der", "bad-asn1", "negative-serial",
	"impossible-dates", "unknown-key-algorithm", "10000-sans",
	"subject-non-utf8", "subject-control", "subject-ansi",
}

var hostileBehaviours = map[string]func(net.Conn){
	"stall":        Stall,
	"drip":         Drip(time.Second),
	"random-bytes": RandomBytes,
	"plain-http":   PlainHTTP,
	"reset":        ResetMidHandshake,
	"alert":        Alert,
}

// hostileChain returns the chain a hostile certificate kind presents, or nil
// if kind is not one.
func (l *Lab) hostileChain(kind string) ([][]byte, error) {
	one := func(der []byte, err error) ([][]byte, error) {
		if err != nil {
			return nil, err
		}
		return [][]byte{der}, nil
	}
	if l.hostile == nil {
		switch kind {
		case "chain-200", "huge-1mb", "truncated-der", "bad-asn1", "negative-serial", "impossible-dates",
			"unknown-key-algorithm", "10000-sans", "subject-non-utf8", "subject-control", "subject-ansi":
			h, err := NewHostileCerts()
			if err != nil {
				return nil, err
			}
			l.hostile = h
		default:
			return nil, nil
		}
	}
	h := l.hostile
	switch kind {
	case "chain-200":
		return h.LongChain(200)
	case "huge-1mb":
		return one(h.Huge(1 << 20))
	case "truncated-der":
		return [][]byte{h.Truncated()}, nil
	case "bad-asn1":
		return [][]byte{h.BadASN1()}, nil
	case "negative-serial":
		return one(h.NegativeSerial())
	case "impossible-dates":
		return one(h.ImpossibleDates())
	case "unknown-key-algorithm":
		return one(h.UnknownKeyAlgorithm())
	case "10000-sans":
		return one(h.ManySANs(10000))
	case "subject-non-utf8":
		return one(h.HostileSubject([]byte("CN with \xff\xfe invalid UTF-8")))
	case "subject-control":
		return one(h.HostileSubject([]byte("ctl\x00\x07\x08\r\nnext line\x7f")))
	case "subject-ansi":
		return one(h.HostileSubject([]byte("\x1b[2J\x1b[31mFAKE OK\x1b[0m\x1b]0;pwned\x07 =cmd|' /C calc'!A0")))
	}
	return nil, nil
}
