package scanner

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/zmap/zcrypto/tls"
	"github.com/zmap/zcrypto/x509"
)

// Prober performs one TLS handshake per target and reports what the endpoint
// presented. It accepts any certificate (it inventories, it does not trust).
// Every probe's cost is bounded: a connect timeout, a handshake deadline and
// a cap on the bytes read. A Prober is safe for concurrent use once built;
// do not change its fields while probes run.
type Prober struct {
	ConnectTimeout   time.Duration
	HandshakeTimeout time.Duration
	MaxBytes         int64  // per connection; the peer's bytes beyond it end the probe
	SNI              string // if set, sent to every target instead of the target's own name
	MaxChain         int    // certificates kept per chain; the rest are dropped
	// Protocols maps a port to the protocol spoken there; other ports get
	// implicit TLS. NewProber starts from DefaultProtocols.
	Protocols map[uint16]Protocol
	// Sniff retries an implicit-TLS probe answered by a plaintext greeting
	// with the matching protocol's upgrade.
	Sniff bool
	// Posture makes Finish follow every completed handshake with the
	// endpoint's TLS posture (Result.Posture): at most MaxPostureHandshakes
	// more handshakes, over the same upgrade and SNI (see posture.go).
	Posture bool
	// Vhosts, if set, makes Expand look for the other certificates behind
	// every endpoint that presented one (vhost.go).
	Vhosts *Vhosts

	// roots is deliberately empty: zcrypto validates the chain on every
	// handshake whatever InsecureSkipVerify says, and searching the system
	// roots each time is wasted work; certsweep judges trust later, once
	// per distinct chain (package report).
	roots *x509.CertPool
}

// Default probe bounds. A real chain is a few KiB; 1 MiB leaves room for
// absurd but legitimate chains while capping what a hostile peer can cost.
const (
	DefaultConnectTimeout   = 3 * time.Second
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultMaxBytes         = 1 << 20
	DefaultMaxChain         = 32
)

// NewProber returns a Prober with the default bounds.
func NewProber() *Prober {
	return &Prober{
		ConnectTimeout:   DefaultConnectTimeout,
		HandshakeTimeout: DefaultHandshakeTimeout,
		MaxBytes:         DefaultMaxBytes,
		MaxChain:         DefaultMaxChain,
		Protocols:        DefaultProtocols(),
		Sniff:            true,
		roots:            x509.NewCertPool(),
	}
}

// Probe connects to t and performs a TLS handshake, offering TLS 1.0 to
// TLS 1.3, after the plaintext upgrade of the port's protocol if it has one.
// An implicit-TLS probe answered by a plaintext greeting (SMTP, FTP, IMAP,
// POP3, XMPP, MySQL) is retried once with that protocol's upgrade when Sniff is
// set; with Posture set, a completed handshake is followed by the posture's.
// It always returns a Result; failures are classified in Status.
func (p *Prober) Probe(ctx context.Context, t Target) Result {
	conn, r := p.Connect(ctx, t)
	if conn == nil {
		return r
	}
	return p.Finish(ctx, conn, r)
}

// Connect opens the probe's TCP connection. On failure it returns a nil
// connection and the finished Result; on success the connection and the
// Result to pass to Finish. A sweep connects and finishes in separate pools,
// so that silent addresses do not hold handshake workers.
func (p *Prober) Connect(ctx context.Context, t Target) (net.Conn, Result) {
	r := Result{Target: t, Protocol: p.protocolFor(t.Addr.Port()), Start: time.Now()}
	d := net.Dialer{Timeout: p.ConnectTimeout}
	conn, err := d.DialContext(ctx, "tcp", t.Addr.String())
	if err != nil {
		r.Status, r.Err, r.End = classify(err), err.Error(), time.Now()
		return nil, r
	}
	r.Connected = true
	return conn, r
}

// Finish runs the rest of a probe on the connection Connect opened, and
// closes it: the protocol's upgrade, the TLS handshake, and, for an
// implicit-TLS probe answered by a plaintext greeting, the retry with that
// protocol (a new connection) when Sniff is set. With Posture set, a
// completed handshake is followed by the posture handshakes.
func (p *Prober) Finish(ctx context.Context, conn net.Conn, r Result) Result {
	r = p.finish(ctx, conn, r)
	if p.Posture && r.Status == StatusOK {
		r.Posture = p.posture(ctx, r)
	}
	return r
}

// finish is Finish without the posture.
func (p *Prober) finish(ctx context.Context, conn net.Conn, r Result) Result {
	r, head := p.handshake(ctx, conn, r, offer{})
	if r.Protocol != ProtoTLS || !p.Sniff || r.Status != StatusNotTLS || ctx.Err() != nil {
		return r
	}
	sniffed := sniff(head, r.Target.Addr.Port())
	if sniffed == "" {
		return r
	}
	conn, retry := p.Connect(ctx, r.Target)
	retry.Protocol, retry.Start = sniffed, r.Start
	if conn == nil {
		return retry
	}
	retry, _ = p.handshake(ctx, conn, retry, offer{})
	return retry
}

// protocolFor returns the protocol spoken on port.
func (p *Prober) protocolFor(port uint16) Protocol {
	if proto, ok := p.Protocols[port]; ok {
		return proto
	}
	return ProtoTLS
}

// offer is what a ClientHello offers. The zero value is a probe's own:
// TLS 1.0 to TLS 1.3 (zcrypto's client has no SSL 3.0) and zcrypto's default suites.
type offer struct {
	min, max uint16 // versions; 0, 0 for the probe's own range
	// suites, if set, are offered exactly as listed, implemented by zcrypto
	// or not: a posture probe only needs the server's choice (ServerHello).
	suites []uint16
	// noChain skips parsing the certificates: a posture probe does not
	// store them.
	noChain bool
}

// handshake runs one connection from Connect: the upgrade of the
// started Result's protocol, then the TLS handshake offering o; it closes
// raw. It also returns the first bytes the peer sent, for sniffing.
func (p *Prober) handshake(ctx context.Context, raw net.Conn, started Result, o offer) (r Result, head []byte) {
	r = started
	t, proto := r.Target, r.Protocol
	defer func() { r.End = time.Now() }()
	defer raw.Close()
	var err error

	// One deadline covers the whole probe, plaintext preamble included.
	deadline := time.Now().Add(p.HandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn := &cappedConn{Conn: raw, remaining: p.MaxBytes}
	defer func() { head = conn.head[:conn.headLen] }()
	if err := conn.SetDeadline(deadline); err != nil {
		r.Status, r.Err = classify(err), err.Error()
		return r, nil
	}
	sni := t.SNI
	if p.SNI != "" {
		sni = p.SNI
		// Record the name actually sent: hostname checks judge against it.
		r.Target.SNI = sni
	}
	var tlsConn net.Conn = conn
	if up := upgraders[proto]; up != nil {
		// Cancelling ctx must also cut a plaintext read short.
		stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
		name := sni
		if name == "" {
			name = t.Addr.Addr().String()
		}
		tlsConn, err = up(newSession(conn, name, t.Addr.Port()))
		stop()
		if err != nil {
			r.Status, r.Err = classify(err), err.Error()
			if r.Status != StatusNoStartTLS {
				r.Err = fmt.Sprintf("%s, before TLS: %s", proto, r.Err) // which stage failed
			}
			return r, nil
		}
	}
	minV, maxV := uint16(tls.VersionSSL30), uint16(tls.VersionTLS13)
	if o.max != 0 {
		minV, maxV = o.min, o.max
	}
	cfg := &tls.Config{
		ServerName:         sni,
		InsecureSkipVerify: true,
		MinVersion:         minV,
		MaxVersion:         maxV,
		CipherSuites:       o.suites,
		ForceSuites:        o.suites != nil,
		ClientDSAEnabled:   true,
		RootCAs:            p.roots,
		// Classical groups only, so one cheap key share: an inventory needs
		// no post-quantum secrecy, ML-KEM costs both ends far more CPU, and
		// merely listing it makes PQ-preferring servers answer with a
		// HelloRetryRequest (an extra round trip). P-256 first: every TLS 1.3
		// server must support it (RFC 8446 §9.1), and zcrypto's X25519 goes
		// through x/crypto's curve25519.X25519, which derives a public key it
		// throws away on every call: four scalar multiplications a handshake
		// instead of two (90-150 µs of CPU a handshake here; BENCHMARKS.md).
		CurvePreferences: []tls.CurveID{tls.CurveP256, tls.X25519, tls.CurveP384, tls.CurveP521},
	}
	if maxV == tls.VersionSSL30 {
		cfg.ClientFingerprintConfiguration = ssl30Hello(sni, o.suites)
	}
	tc := tls.Client(tlsConn, cfg)
	err = tc.HandshakeContext(ctx)
	r.Status = classify(err)
	if err != nil {
		r.Err = err.Error()
	}
	if err == nil {
		st := tc.ConnectionState()
		r.TLSVersion, r.CipherSuite = st.Version, st.CipherSuite
	}
	// The handshake log holds what the server sent even when the handshake
	// failed after its Certificate message (for example, an unparsable one).
	if log := tc.GetHandshakeLog(); log != nil {
		if err != nil && log.ServerHello != nil {
			r.TLSVersion, r.CipherSuite = uint16(log.ServerHello.Version), uint16(log.ServerHello.CipherSuite)
			if sv := log.ServerHello.SupportedVersions; sv != nil {
				r.TLSVersion = uint16(sv.SelectedVersion)
			}
		}
		if sc := log.ServerCertificates; sc != nil && !o.noChain {
			r.Chain = p.chain(sc)
		}
	}
	return r, nil
}

func (p *Prober) chain(sc *tls.Certificates) []Cert {
	if len(sc.Certificate.Raw) == 0 {
		return nil
	}
	chain := make([]Cert, 0, 1+len(sc.Chain))
	chain = append(chain, certFromParsed(sc.Certificate.Raw, sc.Certificate.Parsed))
	for _, c := range sc.Chain {
		if len(chain) >= p.MaxChain {
			break
		}
		chain = append(chain, certFromParsed(c.Raw, c.Parsed))
	}
	return chain
}

// cappedConn fails reads once the peer has sent more than its budget, so a
// hostile endpoint cannot make a probe buffer without bound.
type cappedConn struct {
	net.Conn
	remaining int64
	exceeded  atomic.Bool
	// The first bytes the peer sent, for recognising a plaintext greeting.
	head    [128]byte
	headLen int
}

func (c *cappedConn) Read(b []byte) (int, error) {
	if c.remaining <= 0 {
		c.exceeded.Store(true)
		return 0, errTooLarge
	}
	if int64(len(b)) > c.remaining {
		b = b[:c.remaining]
	}
	n, err := c.Conn.Read(b)
	c.remaining -= int64(n)
	c.headLen += copy(c.head[c.headLen:], b[:n])
	return n, err
}
