package scannertest

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SilentPort makes every loopback address silent on a new port, so tests
// can sweep silent space without a firewall: a wildcard listener whose
// accept queue is full drops each SYN for the port without an answer
// (Linux), while listeners bound to one address on the same port with
// SO_REUSEPORT (NewReusePortTLSServer) still answer. Call stop to free it.
func SilentPort() (port uint16, stop func(), err error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return 0, nil, err
	}
	var conns []net.Conn
	stop = func() {
		for _, c := range conns {
			c.Close()
		}
		syscall.Close(fd)
	}
	fail := func(err error) (uint16, func(), error) {
		stop()
		return 0, nil, fmt.Errorf("silent port: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{}); err != nil {
		return fail(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		return fail(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return fail(err)
	}
	port = uint16(sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue (a backlog of 0 holds one connection): later SYNs meet
	// a full queue and are dropped.
	d := net.Dialer{Timeout: 200 * time.Millisecond}
	for range 3 {
		if c, err := d.Dial("tcp", netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port).String()); err == nil {
			conns = append(conns, c)
		}
	}
	return port, stop, nil
}

// NewReusePortTLSServer serves TLS with cfg on addr (a specific loopback
// address and a SilentPort port), bound with SO_REUSEPORT beside the
// silent wildcard listener.
func NewReusePortTLSServer(addr string, cfg *tls.Config) (*Server, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); err != nil {
			return err
		}
		return serr
	}}
	ln, err := listenLoopback(addr, lc)
	if err != nil {
		return nil, err
	}
	return serveTLSOn(ln, cfg), nil
}
