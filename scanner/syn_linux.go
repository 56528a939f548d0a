//go:build linux

package scanner

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// SYNSocket sends SYNs from raw sockets and reports the validated answers.
// It keeps no per-target state: retries, deduplication, rate and timeouts
// are the caller's. Send and Stats are safe for concurrent use.
//
// Each address family has two raw TCP sockets: a receive socket behind a
// kernel filter (replyFilter) and a send socket that reads nothing. Keeping
// them apart lets the IPv6 send socket have the kernel compute checksums
// (IPV6_CHECKSUM) without the kernel also verifying, and silently dropping,
// what the receive socket reads; it also keeps Send and the readers off each
// other's file descriptor locks.
type SYNSocket struct {
	cookie      *synCookie
	first, last uint16

	recv4, send4 *os.File
	recv6, send6 *os.File // nil when IPv6 is unavailable
	raw4, raw6   syscall.RawConn
	v6err        error // why IPv6 is unavailable
	rcvbuf       int

	routes     sourceCache
	broadcasts map[netip.Addr]netip.Prefix // read-only once open

	replies   chan SYNReply
	done      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	sent, received, valid, invalid atomic.Uint64
	dropped4, dropped6             atomic.Uint64 // the kernel's running drop counts
}

// NewSYNSocket opens the raw sockets and starts reading answers. IPv4 is
// required; if the kernel has no IPv6 the socket works for IPv4 alone, and
// IPv6Err says why. Close it to stop the readers and release the sockets.
func NewSYNSocket(cfg SYNConfig) (*SYNSocket, error) {
	if cfg.RecvBuffer < 0 {
		return nil, fmt.Errorf("invalid receive buffer %d bytes", cfg.RecvBuffer)
	}
	rcvbuf := cfg.RecvBuffer
	if rcvbuf == 0 {
		rcvbuf = defaultRecvBuffer
	}
	key := cfg.Key
	if key == ([32]byte{}) {
		rand.Read(key[:]) // never fails: crypto/rand crashes the program instead
	}
	eph, ephErr := ephemeralPorts()
	first, last, err := pickSourcePorts(cfg.SourcePorts, eph, ephErr)
	if err != nil {
		return nil, err
	}
	broadcasts, err := localBroadcasts()
	if err != nil {
		return nil, err
	}
	s := &SYNSocket{
		broadcasts: broadcasts,
		cookie:     newSYNCookie(key, first, last),
		first:      first,
		last:       last,
		routes:     sourceCache{m: make(map[[3]byte]netip.Addr)},
		replies:    make(chan SYNReply, replyBuffer),
		done:       make(chan struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			s.closeFiles()
		}
	}()

	if s.recv4, s.rcvbuf, err = openRecv(unix.AF_INET, rcvbuf, first, last); err != nil {
		return nil, err
	}
	if s.send4, s.raw4, err = openSend(unix.AF_INET); err != nil {
		return nil, err
	}
	if s.recv6, _, err = openRecv(unix.AF_INET6, rcvbuf, first, last); err == nil {
		s.send6, s.raw6, err = openSend(unix.AF_INET6)
	}
	if err != nil {
		if !errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.EPROTONOSUPPORT) {
			return nil, err
		}
		s.v6err = fmt.Errorf("IPv6 is unavailable on this host (%w)", err)
		if s.recv6 != nil {
			s.recv6.Close()
			s.recv6 = nil
		}
	}

	s.wg.Add(1)
	go s.receive(s.recv4, false, &s.dropped4)
	if s.recv6 != nil {
		s.wg.Add(1)
		go s.receive(s.recv6, true, &s.dropped6)
	}
	ok = true
	return s, nil
}

// openRaw opens a non-blocking raw TCP socket of family.
func openRaw(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err == nil {
		return fd, nil
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		exe, xerr := os.Executable()
		if xerr != nil {
			exe = "/path/to/certsweep"
		}
		return -1, fmt.Errorf("%w: SYN discovery needs root or CAP_NET_RAW to open raw sockets (%v): run as root, or grant it with `sudo setcap cap_net_raw+ep %s` (cap_net_raw,cap_net_admin+ep also lets it enlarge its receive buffers)", ErrNoRawSockets, err, exe)
	}
	return -1, fmt.Errorf("opening a raw %s socket: %w", familyName(family), err)
}

func familyName(family int) string {
	if family == unix.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

// openRecv opens family's receive socket: buffer, drop counting, filter. It
// returns the buffer size the kernel granted.
func openRecv(family, rcvbuf int, first, last uint16) (*os.File, int, error) {
	fd, err := openRaw(family)
	if err != nil {
		return nil, 0, err
	}
	fail := func(what string, err error) (*os.File, int, error) {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("raw %s receive socket: %s: %w", familyName(family), what, err)
	}
	// SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			return fail("SO_RCVBUF", err)
		}
	}
	granted, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return fail("SO_RCVBUF", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
		return fail("SO_RXQ_OVFL", err)
	}
	prog, err := replyFilter(family == unix.AF_INET, first, last)
	if err != nil {
		return fail("building the packet filter", err)
	}
	if err := attachFilter(fd, prog); err != nil {
		return fail("attaching the packet filter", err)
	}
	// Discard what was queued before the filter was in place.
	var junk [replySnap]byte
	for {
		if _, _, err := unix.Recvfrom(fd, junk[:], unix.MSG_DONTWAIT); err != nil && err != unix.EINTR {
			break
		}
	}
	return os.NewFile(uintptr(fd), "raw-"+familyName(family)+"-recv"), granted, nil
}

// openSend opens family's send socket. IPv4 SYNs carry their own IP header
// (IP_HDRINCL), so the source address the TCP checksum covers is the one
// sent; for IPv6 the kernel picks the source and computes the checksum.
func openSend(family int) (*os.File, syscall.RawConn, error) {
	fd, err := openRaw(family)
	if err != nil {
		return nil, nil, err
	}
	fail := func(what string, err error) (*os.File, syscall.RawConn, error) {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("raw %s send socket: %s: %w", familyName(family), what, err)
	}
	if family == unix.AF_INET {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
			return fail("IP_HDRINCL", err)
		}
	} else if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, 16); err != nil {
		return fail("IPV6_CHECKSUM", err)
	}
	prog, err := dropAllFilter()
	if err != nil {
		return fail("building the packet filter", err)
	}
	if err := attachFilter(fd, prog); err != nil {
		return fail("attaching the packet filter", err)
	}
	f := os.NewFile(uintptr(fd), "raw-"+familyName(family)+"-send")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, rc, nil
}

func attachFilter(fd int, prog []bpf.RawInstruction) error {
	ins := make([]unix.SockFilter, len(prog))
	for i, p := range prog {
		ins[i] = unix.SockFilter{Code: p.Op, Jt: p.Jt, Jf: p.Jf, K: p.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]})
}

// ephemeralPorts reads the range the kernel picks local ports from (for
// IPv6 too, despite the name).
func ephemeralPorts() ([2]uint16, error) {
	const path = "/proc/sys/net/ipv4/ip_local_port_range"
	b, err := os.ReadFile(path)
	if err != nil {
		return [2]uint16{}, fmt.Errorf("reading the kernel's ephemeral port range: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 2 {
		lo, err1 := strconv.ParseUint(f[0], 10, 16)
		hi, err2 := strconv.ParseUint(f[1], 10, 16)
		if err1 == nil && err2 == nil && lo <= hi {
			return [2]uint16{uint16(lo), uint16(hi)}, nil
		}
	}
	return [2]uint16{}, fmt.Errorf("unexpected contents of %s: %q", path, b)
}

// localBroadcasts lists the network and broadcast addresses of the IPv4
// subnets on this host's interfaces. The kernel refuses to connect a UDP
// socket to them, so the route lookup catches them, but not once their /24
// is in the source cache: a raw socket sends to a broadcast address without
// SO_BROADCAST. The network address is a broadcast address too on older
// kernels; neither is ever a sensible target.
func localBroadcasts() (map[netip.Addr]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing this host's addresses: %w", err)
	}
	m := make(map[netip.Addr]netip.Prefix)
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		ones, bits := ipn.Mask.Size()
		if !ok || !ip.Unmap().Is4() || bits != 32 || ones > 30 {
			continue
		}
		p := netip.PrefixFrom(ip.Unmap(), ones).Masked()
		n := p.Addr().As4()
		bcast := binary.BigEndian.Uint32(n[:]) | (1<<(32-ones) - 1)
		m[p.Addr()] = p
		m[netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, bcast)))] = p
	}
	return m, nil
}

// Send sends one SYN to dst, carrying dst's cookie; a retry sends the same
// SYN. It refuses unspecified, multicast, broadcast and IPv6 link-local
// destinations, the broadcast ones including the network and broadcast
// addresses of the IPv4 subnets this host was on when the socket was opened
// (a raw socket would send to them). Other errors are the kernel's,
// explained and wrapping its errno: ENOBUFS, for one, means the interface
// queue is full and the rate should come down.
func (s *SYNSocket) Send(dst netip.AddrPort) error {
	a, err := checkSYNTarget(dst)
	if err != nil {
		return err
	}
	if p, ok := s.broadcasts[a]; ok {
		return fmt.Errorf("refusing to send a SYN to %s: a broadcast address of %s, a subnet of this host", dst, p)
	}
	dst = netip.AddrPortFrom(a, dst.Port())
	if s.closed.Load() {
		return fmt.Errorf("SYN to %s: %w", dst, net.ErrClosed)
	}
	sport, isn := s.cookie.derive(dst)
	var pkt [synLen4]byte
	if a.Is4() {
		src, err := s.source4(a)
		if err != nil {
			return fmt.Errorf("SYN to %s: %w", dst, err)
		}
		buildSYN4(pkt[:], src, a, sport, dst.Port(), isn)
		err = s.sendRaw(s.raw4, pkt[:], &unix.SockaddrInet4{Addr: a.As4()})
	} else {
		if s.raw6 == nil {
			return fmt.Errorf("SYN to %s: %w", dst, s.v6err)
		}
		putSYN(pkt[:synTCPLen], sport, dst.Port(), isn, synMSS6)
		err = s.sendRaw(s.raw6, pkt[:synTCPLen], &unix.SockaddrInet6{Addr: a.As16()})
	}
	if err != nil {
		return fmt.Errorf("SYN to %s: %w", dst, err)
	}
	s.sent.Add(1)
	return nil
}

func (s *SYNSocket) sendRaw(rc syscall.RawConn, pkt []byte, to unix.Sockaddr) error {
	var serr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			serr = unix.Sendto(int(fd), pkt, 0, to)
			if serr != unix.EINTR {
				return serr != unix.EAGAIN // EAGAIN: send buffer full, wait
			}
		}
	})
	if err != nil {
		if s.closed.Load() {
			return net.ErrClosed
		}
		return err
	}
	switch {
	case serr == nil:
		return nil
	case errors.Is(serr, unix.ENOBUFS):
		return fmt.Errorf("the interface's transmit queue is full: lower the rate (%w)", serr)
	case errors.Is(serr, unix.EPERM):
		return fmt.Errorf("refused by a local firewall rule (%w)", serr)
	case errors.Is(serr, unix.EACCES):
		return fmt.Errorf("refused by the kernel: a broadcast address, or a firewall rule (%w)", serr)
	case errors.Is(serr, unix.ENETUNREACH), errors.Is(serr, unix.EHOSTUNREACH):
		return fmt.Errorf("no route to the target (%w)", serr)
	}
	return fmt.Errorf("sendto: %w", serr)
}

// sourceCache remembers the source address the routing table picks for each
// IPv4 /24, so most SYNs cost no route lookup. It is bounded: at maxRoutes
// entries it starts over, which a sweep of more than a /8 reaches.
type sourceCache struct {
	mu sync.RWMutex
	m  map[[3]byte]netip.Addr
}

const maxRoutes = 1 << 16

func (s *SYNSocket) source4(dst netip.Addr) (netip.Addr, error) {
	d := dst.As4()
	k := [3]byte(d[:3])
	s.routes.mu.RLock()
	src, ok := s.routes.m[k]
	s.routes.mu.RUnlock()
	if ok {
		return src, nil
	}
	src, err := routeSource4(dst)
	if err != nil {
		return src, err
	}
	s.routes.mu.Lock()
	if len(s.routes.m) >= maxRoutes {
		clear(s.routes.m)
	}
	s.routes.m[k] = src
	s.routes.mu.Unlock()
	return src, nil
}

// routeSource4 asks the routing table which source address a packet to dst
// leaves with: connecting a UDP socket sends nothing but selects the route.
func routeSource4(dst netip.Addr) (netip.Addr, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route lookup: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: 9, Addr: dst.As4()}); err != nil {
		if errors.Is(err, unix.EACCES) {
			return netip.Addr{}, fmt.Errorf("refusing a broadcast address (%w)", err)
		}
		return netip.Addr{}, fmt.Errorf("no route to the target (%w)", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route lookup: %w", err)
	}
	sa4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return netip.Addr{}, errors.New("route lookup: not an IPv4 source address")
	}
	return netip.AddrFrom4(sa4.Addr), nil
}

// receive reads one family's socket until Close, passing valid answers on.
func (s *SYNSocket) receive(f *os.File, v6 bool, dropped *atomic.Uint64) {
	defer s.wg.Done()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	var buf [replySnap]byte
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf[:], oob, 0)
				if rerr != unix.EINTR {
					return rerr != unix.EAGAIN
				}
			}
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			continue
		}
		s.received.Add(1)
		if oobn > 0 {
			noteDrops(oob[:oobn], dropped)
		}
		var seg segment
		var ok bool
		if v6 {
			if sa, isV6 := from.(*unix.SockaddrInet6); isV6 {
				seg, ok = parseTCP(buf[:n], netip.AddrFrom16(sa.Addr))
			}
		} else {
			seg, ok = parseIPv4(buf[:n])
		}
		var r SYNReply
		if ok {
			r, ok = s.cookie.validate(seg)
		}
		if !ok {
			s.invalid.Add(1)
			continue
		}
		s.valid.Add(1)
		select {
		case s.replies <- r:
		case <-s.done:
			return
		}
	}
}

// noteDrops records the kernel's drop count (SO_RXQ_OVFL), which rides on
// segments queued after a drop.
func noteDrops(oob []byte, dropped *atomic.Uint64) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
			dropped.Store(uint64(binary.NativeEndian.Uint32(m.Data)))
		}
	}
}

// Replies delivers validated answers, in arrival order per address family.
// Drain it promptly: while it is full the readers wait, the kernel's buffers
// fill, and further answers are lost (SYNStats.Dropped). It is closed by
// Close.
func (s *SYNSocket) Replies() <-chan SYNReply { return s.replies }

// Stats returns the counters so far.
func (s *SYNSocket) Stats() SYNStats {
	return SYNStats{
		Sent:       s.sent.Load(),
		Received:   s.received.Load(),
		Valid:      s.valid.Load(),
		Invalid:    s.invalid.Load(),
		Dropped:    s.dropped4.Load() + s.dropped6.Load(),
		RecvBuffer: s.rcvbuf,
	}
}

// SourcePorts returns the range SYNs are sent from.
func (s *SYNSocket) SourcePorts() (first, last uint16) { return s.first, s.last }

// IPv6Err says why IPv6 SYNs cannot be sent, or is nil when they can.
func (s *SYNSocket) IPv6Err() error { return s.v6err }

// Close stops the readers, closes Replies and releases the sockets. Answers
// still queued in the kernel are discarded. Send fails after Close.
func (s *SYNSocket) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.closeErr = s.closeFiles()
		s.wg.Wait()
		close(s.replies)
	})
	return s.closeErr
}

func (s *SYNSocket) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{s.recv4, s.send4, s.recv6, s.send6} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}
