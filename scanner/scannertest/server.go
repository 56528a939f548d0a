package scannertest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Server is a loopback listener that handles every connection with one
// behaviour: a TLS handshake, or something hostile. Close stops it and waits
// for its goroutines.
type Server struct {
	Addr  netip.AddrPort
	Chain [][]byte // DER certificates the server presents, leaf first (TLS servers)

	ln     net.Listener
	handle func(net.Conn)
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// NewServer listens on addr (for example "127.3.4.5:0") and passes each
// accepted connection to handle, which must return when the connection is
// closed. Only loopback addresses are accepted.
func NewServer(addr string, handle func(net.Conn)) (*Server, error) {
	ln, err := listenLoopback(addr, net.ListenConfig{})
	if err != nil {
		return nil, err
	}
	return newServerOn(ln, handle), nil
}

// listenLoopback listens on addr with lc, refusing any but a loopback address.
func listenLoopback(addr string, lc net.ListenConfig) (net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("listen %s: scannertest only binds loopback addresses", addr)
	}
	return lc.Listen(context.Background(), "tcp", addr)
}

// newServerOn serves ln with handle.
func newServerOn(ln net.Listener, handle func(net.Conn)) *Server {
	s := &Server{
		Addr:   ln.Addr().(*net.TCPAddr).AddrPort(),
		ln:     ln,
		handle: handle,
		conns:  make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.serve()
	return s
}

// NewTLSServer serves TLS handshakes with cfg (a crypto/tls server config).
// After the handshake the server closes the connection.
func NewTLSServer(addr string, cfg *tls.Config) (*Server, error) {
	ln, err := listenLoopback(addr, net.ListenConfig{})
	if err != nil {
		return nil, err
	}
	return serveTLSOn(ln, cfg), nil
}

// serveTLSOn serves TLS handshakes with cfg on ln, as NewTLSServer.
func serveTLSOn(ln net.Listener, cfg *tls.Config) *Server {
	s := newServerOn(ln, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if tc.Handshake() == nil {
			// Wait for the client to hang up, as a real server would keep
			// the connection open; the deadline bounds it.
			_, _ = tc.Read(make([]byte, 1))
		}
	})
	if len(cfg.Certificates) > 0 {
		s.Chain = cfg.Certificates[0].Certificate
	}
	return s
}

// Stall accepts connections and never writes a byte, like a hung appliance.
func Stall(c net.Conn) {
	_, _ = c.Read(make([]byte, 1<<16))
	// Keep reading until the client gives up or the server closes.
	buf := make([]byte, 1<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the listener, closes open connections and waits for handlers.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// TLSConfig returns a server config presenting cert, limited to the given
// versions (0 means the crypto/tls default).
func TLSConfig(cert tls.Certificate, minVersion, maxVersion uint16) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: minVersion, MaxVersion: maxVersion}
}

// SNIOnlyConfig returns a config that completes the handshake only when the
// client asks for name, like a virtual-host-only load balancer; any other
// (or no) server name gets an unrecognized_name alert.
func SNIOnlyConfig(cert tls.Certificate, name string) *tls.Config {
	return &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if h.ServerName != name {
			return nil, fmt.Errorf("no certificate for %q", h.ServerName)
		}
		return &cert, nil
	}}
}
