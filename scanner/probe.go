package scanner

import (
	"context"
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
		roots:            x509.NewCertPool(),
	}
}

// Probe connects to t and performs a TLS handshake, offering SSL 3.0 to
// TLS 1.3. It always returns a Result; failures are classified in Status.
func (p *Prober) Probe(ctx context.Context, t Target) (r Result) {
	r = Result{Target: t, Start: time.Now()}
	defer func() { r.End = time.Now() }()

	d := net.Dialer{Timeout: p.ConnectTimeout}
	raw, err := d.DialContext(ctx, "tcp", t.Addr.String())
	if err != nil {
		r.Status, r.Err = classify(err), err.Error()
		return r
	}
	defer raw.Close()
	r.Connected = true

	deadline := time.Now().Add(p.HandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn := &cappedConn{Conn: raw, remaining: p.MaxBytes}
	if err := conn.SetDeadline(deadline); err != nil {
		r.Status, r.Err = classify(err), err.Error()
		return r
	}
	sni := t.SNI
	if p.SNI != "" {
		sni = p.SNI
		// Record the name actually sent: hostname checks judge against it.
		r.Target.SNI = sni
	}
	tc := tls.Client(conn, &tls.Config{
		ServerName:         sni,
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionSSL30,
		MaxVersion:         tls.VersionTLS13,
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
	})
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
		if sc := log.ServerCertificates; sc != nil {
			r.Chain = p.chain(sc)
		}
	}
	return r
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
	return n, err
}
