package scannertest

import (
	"crypto"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Endpoint is one lab listener and what it demonstrates.
type Endpoint struct {
	Kind   string // e.g. "valid", "expired", "tls10-only", "stall"
	Server *Server
	// Presents is the chain a client that sends no SNI receives (nil when the
	// endpoint completes no handshake for such a client).
	Presents [][]byte
}

// Lab is a set of endpoints on consecutive addresses of one loopback subnet,
// all on the same port, so that sweeping Prefix on Port covers all of it.
type Lab struct {
	Prefix    netip.Prefix
	Port      uint16
	CA        *CA
	Endpoints []*Endpoint
	// Peers are the protocol endpoints StartPeers added, each on its own
	// port (ProtocolPeer.Port) at one of the lab's addresses.
	Peers []*Endpoint

	kind    func(i int) string
	rsaKey  crypto.Signer // shared by "valid-rsa" endpoints
	hostile *HostileCerts // made on first use by hostile kinds
}

// DemoKinds are the defects the first endpoints of every lab show, in order;
// the rest of a lab is plain valid endpoints with distinct certificates.
var DemoKinds = []string{
	"valid", "expired", "expiring-7d", "self-signed", "rsa-1024", "sha1-signature",
	"tls10-only", "tls13-only", "wrong-host", "full-chain", "sni-only", "stall",
	"incomplete-chain",
}

// SNIOnlyName is the server name the lab's "sni-only" endpoint answers to.
const SNIOnlyName = "app.lab.test"

// NewLab starts n endpoints (n <= 65000) on a random 127.x.0.0/16 or
// 127.x.y.0/24 subnet. The first endpoints cycle through DemoKinds.
// Close it to stop every listener.
func NewLab(n int) (*Lab, error) {
	return NewLabOf(n, demoKind)
}

// BenchKinds alternates valid ECDSA P-256 and RSA-2048 endpoints, for
// throughput measurements.
func BenchKinds(i int) string { return [...]string{"valid", "valid-rsa"}[i%2] }

// NewLabOf starts n endpoints whose kinds kind(i) chooses: any of DemoKinds,
// "valid" (ECDSA P-256) or "valid-rsa" (RSA-2048; the key is shared, the
// certificates are distinct).
func NewLabOf(n int, kind func(i int) string) (*Lab, error) {
	if n < 1 || n > 65000 {
		return nil, fmt.Errorf("lab size %d: want 1-65000 endpoints", n)
	}
	var lastErr error
	for range 20 {
		// Random subnets let parallel tests and a running demo coexist.
		a, b := rand.IntN(254)+1, rand.IntN(256)
		prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(a), byte(b), 0}), 24)
		if n > 253 {
			prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(a), 0, 0}), 16)
		}
		l, err := newLabAt(prefix, 0, n, kind)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free loopback subnet for the lab: %w", lastErr)
}

// NewLabAt starts n endpoints, the first cycling through DemoKinds as in
// NewLab, on the first n host addresses of prefix (prefix.Addr()+1 onwards),
// all on port (0 picks a free port). prefix must be an IPv4 subnet of
// 127.0.0.0/8, without host bits, with room for n hosts besides its network
// and broadcast addresses. Unlike NewLab it does not retry elsewhere: when an
// address is taken, the error satisfies errors.Is(err, syscall.EADDRINUSE).
//
// Every call issues a new CA and new certificates with new keys, so two labs
// started one after the other at the same prefix and port present the same
// endpoints with renewed certificates.
func NewLabAt(prefix netip.Prefix, port uint16, n int) (*Lab, error) {
	if err := CheckLabPrefix(prefix, n); err != nil {
		return nil, err
	}
	return newLabAt(prefix, port, n, demoKind)
}

// CheckLabPrefix reports why prefix cannot hold a lab of n endpoints, or nil.
func CheckLabPrefix(prefix netip.Prefix, n int) error {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	switch {
	case n < 1 || n > 65000:
		return fmt.Errorf("lab size %d: want 1-65000 endpoints", n)
	case !prefix.IsValid() || !prefix.Addr().Is4() || prefix.Bits() < loopback.Bits() || !loopback.Contains(prefix.Addr()):
		return fmt.Errorf("lab subnet %s: not an IPv4 subnet of 127.0.0.0/8 (a lab only binds loopback)", prefix)
	case prefix != prefix.Masked():
		return fmt.Errorf("lab subnet %s: host bits set (the subnet is %s)", prefix, prefix.Masked())
	case LabCapacity(prefix) < n:
		return fmt.Errorf("lab subnet %s: room for %d endpoints, not %d", prefix, LabCapacity(prefix), n)
	}
	return nil
}

// LabCapacity is how many endpoints a lab on prefix can hold: its addresses
// less the network and broadcast addresses, at most 65000.
func LabCapacity(prefix netip.Prefix) int {
	host := prefix.Addr().BitLen() - prefix.Bits()
	if host >= 17 {
		return 65000
	}
	return max(0, min(65000, 1<<host-2))
}

func demoKind(i int) string {
	if i < len(DemoKinds) {
		return DemoKinds[i]
	}
	return "valid"
}

// newLabAt issues a new CA and starts the lab; on failure every listener
// already started is closed.
func newLabAt(prefix netip.Prefix, port uint16, n int, kind func(i int) string) (*Lab, error) {
	ca, err := NewCA("certsweep lab")
	if err != nil {
		return nil, err
	}
	l := &Lab{CA: ca, kind: kind, Prefix: prefix, Port: port}
	for i := range n {
		if kind(i) == "valid-rsa" {
			if l.rsaKey, err = rsa.GenerateKey(cryptorand.Reader, 2048); err != nil {
				return nil, err
			}
			break
		}
	}
	addr := prefix.Addr()
	for i := range n {
		addr = addr.Next()
		ep, err := l.endpoint(i, addr)
		if err != nil {
			l.Close()
			return nil, err
		}
		if i == 0 {
			l.Port = ep.Server.Addr.Port()
		}
		l.Endpoints = append(l.Endpoints, ep)
	}
	return l, nil
}

func (l *Lab) endpoint(i int, addr netip.Addr) (*Endpoint, error) {
	kind := l.kind(i)
	listen := netip.AddrPortFrom(addr, l.Port).String()
	name := fmt.Sprintf("host-%d.lab.test", i)
	opts := CertOptions{CommonName: name, DNSNames: []string{name}, IPs: []net.IP{addr.AsSlice()}}
	var (
		cert       tls.Certificate
		err        error
		minV, maxV uint16
	)
	if h, ok := hostileBehaviours[kind]; ok {
		s, err := NewServer(listen, h)
		if err != nil {
			return nil, err
		}
		return &Endpoint{Kind: kind, Server: s}, nil
	}
	if ders, err := l.hostileChain(kind); err != nil || ders != nil {
		if err != nil {
			return nil, err
		}
		// TLS 1.2: the certificates travel in clear, as most appliances still do.
		s, err := NewTLSServer(listen, RawChainConfig(ders, l.hostile.Key, tls.VersionTLS12))
		if err != nil {
			return nil, err
		}
		return &Endpoint{Kind: kind, Server: s, Presents: ders}, nil
	}
	switch kind {
	case "sni-only":
		opts.DNSNames = []string{SNIOnlyName}
		cert, err = l.CA.Leaf(opts)
		if err != nil {
			return nil, err
		}
		s, err := NewTLSServer(listen, SNIOnlyConfig(cert, SNIOnlyName))
		if err != nil {
			return nil, err
		}
		s.Chain = cert.Certificate
		return &Endpoint{Kind: kind, Server: s}, nil
	case "expired":
		opts.NotBefore, opts.NotAfter = time.Now().Add(-400*24*time.Hour), time.Now().Add(-10*24*time.Hour)
		cert, err = l.CA.Leaf(opts)
	case "expiring-7d":
		opts.NotAfter = time.Now().Add(7 * 24 * time.Hour)
		cert, err = l.CA.Leaf(opts)
	case "self-signed":
		cert, err = SelfSigned(opts)
	case "rsa-1024":
		opts.RSABits = 1024
		cert, err = l.CA.Leaf(opts)
	case "sha1-signature":
		opts.RSABits, opts.SHA1 = 2048, true
		cert, err = SelfSigned(opts)
	case "tls10-only":
		minV, maxV = tls.VersionTLS10, tls.VersionTLS10
		cert, err = l.CA.Leaf(opts)
	case "tls13-only":
		minV, maxV = tls.VersionTLS13, tls.VersionTLS13
		cert, err = l.CA.Leaf(opts)
	case "wrong-host":
		opts.CommonName, opts.DNSNames, opts.IPs = "other.example", []string{"other.example"}, nil
		cert, err = l.CA.Leaf(opts)
	case "incomplete-chain":
		cert, err = l.CA.Leaf(opts)
		cert.Certificate = cert.Certificate[:1] // the leaf without its intermediate
	case "valid-rsa":
		opts.Key = l.rsaKey
		cert, err = l.CA.Leaf(opts)
	case "full-chain":
		cert, err = l.CA.Leaf(opts)
		cert.Certificate = append(cert.Certificate, l.CA.Root.DER)
	default:
		cert, err = l.CA.Leaf(opts)
	}
	if err != nil {
		return nil, err
	}
	s, err := NewTLSServer(listen, TLSConfig(cert, minV, maxV))
	if err != nil {
		return nil, err
	}
	return &Endpoint{Kind: kind, Server: s, Presents: cert.Certificate}, nil
}

// ProtocolPeer is a lab endpoint that reaches TLS through a protocol's
// upgrade (STARTTLS and the like), on a port of its own.
type ProtocolPeer struct {
	Kind      string // what it demonstrates, e.g. "smtp-starttls"
	Protocol  string // a scanner protocol name, as NewPeer takes
	Port      uint16
	Behaviour Behaviour
}

// DemoPeers are the protocol endpoints a demo lab adds: mail, directory
// and database services on unprivileged ports, and a mail server that
// offers no TLS at all.
var DemoPeers = []ProtocolPeer{
	{"smtp-starttls", "smtp", 2525, Normal},
	{"ldap-starttls", "ldap", 10389, Normal},
	{"postgres-ssl", "postgres", 15432, Normal},
	{"smtp-plaintext-only", "smtp", 2525, NoUpgrade},
}

// StartPeers starts each peer on the lab's addresses in order, the first
// peer on the first endpoint's address, each presenting its own leaf from
// the lab CA. Peers that share a port must be on different addresses,
// which this order gives as long as the lab has as many endpoints.
func (l *Lab) StartPeers(peers []ProtocolPeer) error {
	addr := l.Prefix.Addr()
	for i, p := range peers {
		addr = addr.Next()
		name := fmt.Sprintf("%s-%d.lab.test", p.Protocol, i)
		cert, err := l.CA.Leaf(CertOptions{CommonName: name, DNSNames: []string{name}, IPs: []net.IP{addr.AsSlice()}})
		if err != nil {
			return err
		}
		s, err := NewPeer(netip.AddrPortFrom(addr, p.Port).String(), p.Protocol, TLSConfig(cert, 0, 0), p.Behaviour)
		if err != nil {
			return fmt.Errorf("start the lab's %s peer: %w", p.Kind, err)
		}
		ep := &Endpoint{Kind: p.Kind, Server: s}
		if p.Behaviour == Normal {
			ep.Presents = cert.Certificate
		}
		l.Peers = append(l.Peers, ep)
	}
	return nil
}

// Close stops every endpoint of the lab.
func (l *Lab) Close() {
	for _, e := range append(l.Endpoints, l.Peers...) {
		e.Server.Close()
	}
}
