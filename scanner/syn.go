package scanner

// Stateless SYN discovery, zmap-style: a SYN is sent from a raw socket with
// no connection state kept; what is needed to recognise the answer is carried
// in the SYN itself. The source port and initial sequence number are derived
// from a keyed hash of the target, so a SYN-ACK or RST is accepted only if it
// comes from the target, to the port derived for it, acknowledging the
// sequence number derived for it. This file holds the portable parts (the
// cookie, packet layout, validation, the kernel filter); syn_linux.go holds
// the sockets.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"sync"

	"golang.org/x/net/bpf"
)

// ErrNoRawSockets is wrapped by NewSYNSocket's error when this process may
// not send raw packets (no root or CAP_NET_RAW, or not Linux). Callers fall
// back to connect() discovery on it.
var ErrNoRawSockets = errors.New("raw sockets unavailable")

// SYNConfig configures a SYNSocket.
type SYNConfig struct {
	// Key seeds the validation cookies: use 32 fresh random bytes per sweep.
	// The zero value draws a random key.
	Key [32]byte
	// SourcePorts is the first and last source port SYNs are sent from. The
	// zero value picks the ports above the kernel's ephemeral range
	// (net.ipv4.ip_local_port_range; 61000-65535 with the default
	// 32768-60999), else below it down to 1024, whichever first holds at
	// least 1024 ports. An explicit range may not overlap the ephemeral range:
	// the kernel's own connections, the TLS handshakes among them, would share
	// 4-tuples with the SYNs.
	SourcePorts [2]uint16
	// RecvBuffer is the receive buffer of each raw receive socket, in bytes;
	// 0 means 8 MiB. Without CAP_NET_ADMIN the kernel caps it at
	// net.core.rmem_max; SYNStats.RecvBuffer says what was granted.
	RecvBuffer int
}

// SYNReply is a validated answer to one of our SYNs. Every valid answer is
// reported, duplicates included (a retried SYN, or a target that retransmits
// its SYN-ACK, answers more than once): deduplicating would need per-target
// state, which is the scheduler's.
type SYNReply struct {
	Addr netip.AddrPort // the target that answered
	Open bool           // SYN-ACK: something listens; false: RST (closed)
}

// SYNStats counts a SYNSocket's traffic since it was opened.
type SYNStats struct {
	Sent uint64 // SYNs handed to the kernel
	// Received counts the segments read. A kernel filter passes only SYN-ACKs
	// and RSTs addressed to the source-port range, so the host's other TCP
	// traffic (the TLS handshakes included) and our own SYNs are not read.
	Received uint64
	Valid    uint64 // Received segments that answer one of our SYNs
	// Invalid counts Received segments that fail the cookie: a wrong
	// acknowledgement, source or destination port. Late answers to an
	// earlier sweep (another key) land here, as do forged ones.
	Invalid uint64
	// Dropped is the kernel's count of segments discarded because a receive
	// buffer was full (SO_RXQ_OVFL): replies lost because Replies is drained
	// too slowly or the buffer is too small for the rate. Read it as an
	// alarm, not a tally: the kernel reports it with the next segment it
	// queues, so it lags, and Linux 6.18 counts each loss twice (measured;
	// its /proc/net/raw drops column agrees).
	Dropped uint64
	// RecvBuffer is the receive buffer the kernel granted each receive
	// socket, as getsockopt(SO_RCVBUF) reports it (twice the request: the
	// kernel adds room for its bookkeeping).
	RecvBuffer int
}

const (
	defaultRecvBuffer = 8 << 20
	minSourcePorts    = 1024
	synTTL            = 64 // what Linux sends with: paths are far shorter
	synWindow         = 65535
	synMSS4           = 1460 // an Ethernet MTU less the IPv4 and TCP headers
	synMSS6           = 1440
	replyBuffer       = 1024 // SYNReply channel capacity
	replySnap         = 128  // bytes kept of each segment: IPv4 header (<= 60) + TCP header
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// synCookie derives each target's source port and ISN: HMAC-SHA256 keyed
// per sweep over the target's 16-byte address and port. HMAC is a PRF, so
// without the key an off-path host cannot produce a reply that validates
// except by guessing 32 bits of ISN and the port. It costs ~150 ns per call
// (BenchmarkSYNCookie), small beside the sendto syscall. hash.Hash is not
// safe for concurrent use, hence the pool.
type synCookie struct {
	first uint16 // source ports are first .. first+size-1
	size  uint32
	pool  sync.Pool
}

func newSYNCookie(key [32]byte, first, last uint16) *synCookie {
	c := &synCookie{first: first, size: uint32(last) - uint32(first) + 1}
	c.pool.New = func() any { return hmac.New(sha256.New, key[:]) }
	return c
}

// derive returns the source port and ISN of the SYN to dst. IPv4 addresses
// are hashed in their IPv4-mapped form, so a target has one cookie whichever
// way its address is spelled.
func (c *synCookie) derive(dst netip.AddrPort) (sport uint16, isn uint32) {
	var msg [18]byte
	a := dst.Addr().Unmap().As16()
	copy(msg[:16], a[:])
	binary.BigEndian.PutUint16(msg[16:], dst.Port())
	h := c.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(msg[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	c.pool.Put(h)
	// Modulo bias is at most size/2^32: negligible.
	sport = c.first + uint16(binary.BigEndian.Uint32(sum[0:4])%c.size)
	return sport, binary.BigEndian.Uint32(sum[4:8])
}

func (c *synCookie) inRange(port uint16) bool {
	return uint32(port-c.first) < c.size
}

// segment is what validation needs of a received TCP segment.
type segment struct {
	src     netip.AddrPort // who sent it: the target, if it is an answer
	dstPort uint16
	flags   uint8
	seq     uint32
	ack     uint32
}

// validate decides whether seg answers a SYN of ours, and what it says.
//
// A SYN-ACK must acknowledge ISN+1. A RST must carry ISN+1 in its
// acknowledgement field, as RFC 9293 (and 793) has a closed port answer a
// SYN: <SEQ=0><ACK=ISN+1><CTL=RST,ACK>. Like zmap we also take ack = ISN,
// sent by a few stacks and middleboxes that do not count the SYN. A RST
// without the ACK flag is taken if its acknowledgement field validates (the
// field, not the flag, is what proves it saw our SYN). A bare RST matched on
// its sequence number is not: RFC 793 sends <SEQ=SEG.ACK><CTL=RST> only in
// reply to a segment bearing an ACK, which a SYN is not, so nothing but the
// port would tie it to us, 16 bits that a blind spoofer can guess.
func (c *synCookie) validate(seg segment) (r SYNReply, ok bool) {
	if !c.inRange(seg.dstPort) {
		return r, false
	}
	var open bool
	switch {
	case seg.flags&tcpRST != 0:
	case seg.flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK:
		open = true
	default:
		return r, false
	}
	sport, isn := c.derive(seg.src)
	if seg.dstPort != sport {
		return r, false
	}
	if seg.ack != isn+1 && (open || seg.ack != isn) {
		return r, false
	}
	return SYNReply{Addr: seg.src, Open: open}, true
}

// Received segments are parsed by hand rather than with gopacket's layers:
// only five fixed-offset fields of the TCP header are needed (no options, no
// payload), and the receive loop then allocates nothing per segment; the
// tests check this parser and the SYN builder against gopacket's.

// parseIPv4 reads a segment from a raw IPv4 socket, which delivers the IP
// header too.
func parseIPv4(b []byte) (segment, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return segment{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || b[9] != 6 || binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
		return segment{}, false
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	return parseTCP(b[ihl:], src)
}

// parseTCP reads the TCP header at the start of b, sent from src. A raw IPv6
// socket delivers just this, with the source in the socket address.
func parseTCP(b []byte, src netip.Addr) (segment, bool) {
	if len(b) < 20 {
		return segment{}, false
	}
	return segment{
		src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:2])),
		dstPort: binary.BigEndian.Uint16(b[2:4]),
		seq:     binary.BigEndian.Uint32(b[4:8]),
		ack:     binary.BigEndian.Uint32(b[8:12]),
		flags:   b[13],
	}, true
}

// SYNs are built by hand too: a fixed 44-byte layout filled in place costs
// nothing per packet, where gopacket's serialisation allocates.

const (
	ipv4HeaderLen = 20
	synTCPLen     = 24 // 20-byte header + the MSS option
	synLen4       = ipv4HeaderLen + synTCPLen
)

// putSYN writes a SYN's TCP header into b (synTCPLen bytes), checksum zero.
func putSYN(b []byte, sport, dport uint16, isn uint32, mss uint16) {
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], isn)
	binary.BigEndian.PutUint32(b[8:], 0) // ack
	b[12] = synTCPLen / 4 << 4           // data offset
	b[13] = tcpSYN
	binary.BigEndian.PutUint16(b[14:], synWindow)
	binary.BigEndian.PutUint16(b[16:], 0) // checksum
	binary.BigEndian.PutUint16(b[18:], 0) // urgent pointer
	b[20], b[21] = 2, 4                   // MSS option: kind 2, length 4
	binary.BigEndian.PutUint16(b[22:], mss)
}

// buildSYN4 writes a whole IPv4 SYN into b (synLen4 bytes), for a raw socket
// with IP_HDRINCL. The IP header's ID and checksum are left zero: the kernel
// fills them in. The TCP checksum is ours, over the RFC 793 pseudo-header.
func buildSYN4(b []byte, src, dst netip.Addr, sport, dport uint16, isn uint32) {
	ip := b[:ipv4HeaderLen]
	ip[0] = 4<<4 | ipv4HeaderLen/4
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:], synLen4)
	binary.BigEndian.PutUint16(ip[4:], 0)      // ID: the kernel picks one
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
	ip[8] = synTTL
	ip[9] = 6 // TCP
	binary.BigEndian.PutUint16(ip[10:], 0)
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	tcp := b[ipv4HeaderLen:synLen4]
	putSYN(tcp, sport, dport, isn, synMSS4)
	binary.BigEndian.PutUint16(tcp[16:], tcpChecksum4(s4, d4, tcp))
}

// tcpChecksum4 is the TCP checksum of seg (its checksum field zero) between
// IPv4 addresses src and dst.
func tcpChecksum4(src, dst [4]byte, seg []byte) uint16 {
	var sum uint32
	sum += uint32(src[0])<<8 | uint32(src[1])
	sum += uint32(src[2])<<8 | uint32(src[3])
	sum += uint32(dst[0])<<8 | uint32(dst[1])
	sum += uint32(dst[2])<<8 | uint32(dst[3])
	sum += 6 + uint32(len(seg))
	for i := 0; i+1 < len(seg); i += 2 {
		sum += uint32(seg[i])<<8 | uint32(seg[i+1])
	}
	if len(seg)%2 == 1 {
		sum += uint32(seg[len(seg)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// replyFilter is the classic BPF program attached to each receive socket: it
// passes only SYN-ACKs and RSTs addressed to a port in [first, last] and
// keeps replySnap bytes of them. Every TCP segment the host receives is
// offered to a raw TCP socket; without the filter the TLS handshakes'
// certificates (and any bulk transfer on the box) would be copied to us and
// could crowd answers out of the buffer. The Go side validates everything
// again, so the filter only saves work. ipv4 says whether packets start with
// an IPv4 header (raw IPv4 sockets) or with the TCP header (raw IPv6).
func replyFilter(ipv4 bool, first, last uint16) ([]bpf.RawInstruction, error) {
	// The TCP part ends in drop, keep; skips below count to those two.
	tcp := []bpf.Instruction{
		bpf.LoadIndirect{Off: 2, Size: 2}, // destination port
		bpf.JumpIf{Cond: bpf.JumpLessThan, Val: uint32(first), SkipTrue: 5},
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: uint32(last), SkipTrue: 4},
		bpf.LoadIndirect{Off: 13, Size: 1}, // flags
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: tcpRST, SkipTrue: 3},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: tcpSYN | tcpACK},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: tcpSYN | tcpACK, SkipTrue: 1},
		bpf.RetConstant{Val: 0},         // drop
		bpf.RetConstant{Val: replySnap}, // keep
	}
	var prog []bpf.Instruction
	if ipv4 {
		prog = []bpf.Instruction{
			// Not a first fragment: no TCP header. (Raw sockets see
			// reassembled packets; this is belt and braces.)
			bpf.LoadAbsolute{Off: 6, Size: 2},
			// Skip LoadMemShift and the TCP part up to its drop.
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: uint8(1 + len(tcp) - 2)},
			bpf.LoadMemShift{Off: 0}, // X = IP header length
		}
	} else {
		prog = []bpf.Instruction{bpf.LoadConstant{Dst: bpf.RegX, Val: 0}}
	}
	return bpf.Assemble(append(prog, tcp...))
}

// dropAllFilter keeps the send-only sockets' receive queues empty: a raw TCP
// socket is offered every TCP segment whether or not anyone reads it.
func dropAllFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
}

// pickSourcePorts chooses the source-port range from the configured one and
// the kernel's ephemeral range eph (ephErr if it could not be read).
func pickSourcePorts(want, eph [2]uint16, ephErr error) (first, last uint16, err error) {
	const sysctl = "net.ipv4.ip_local_port_range"
	if want != [2]uint16{} {
		first, last = want[0], want[1]
		if first == 0 || first > last {
			return 0, 0, fmt.Errorf("invalid source ports %d-%d: want first <= last, both 1-65535", first, last)
		}
		if ephErr == nil && first <= eph[1] && last >= eph[0] {
			return 0, 0, fmt.Errorf("source ports %d-%d overlap the kernel's ephemeral ports %d-%d (%s): the kernel's own connections, the TLS handshakes among them, would collide with the SYNs; pick ports outside that range", first, last, eph[0], eph[1], sysctl)
		}
		return first, last, nil
	}
	if ephErr != nil {
		return 0, 0, fmt.Errorf("choosing SYN source ports: %w; set them explicitly, outside the kernel's ephemeral range (%s)", ephErr, sysctl)
	}
	if eph[1] <= 65535-minSourcePorts {
		return eph[1] + 1, 65535, nil
	}
	if eph[0] >= 1024+minSourcePorts {
		return 1024, eph[0] - 1, nil
	}
	return 0, 0, fmt.Errorf("the kernel's ephemeral ports %d-%d (%s) leave fewer than %d ports above them or between 1024 and them for SYN source ports: narrow the range (e.g. sysctl -w %s=\"32768 60999\") or set the source ports explicitly", eph[0], eph[1], sysctl, minSourcePorts, sysctl)
}

// checkSYNTarget refuses destinations a SYN must never go to, and returns
// the address in canonical form (IPv4-mapped IPv6 as IPv4).
func checkSYNTarget(dst netip.AddrPort) (netip.Addr, error) {
	a := dst.Addr().Unmap()
	switch {
	case !a.IsValid():
		return a, errors.New("no target address")
	case a.IsUnspecified():
		return a, fmt.Errorf("refusing to send a SYN to %s: unspecified address", dst)
	case a.IsMulticast():
		return a, fmt.Errorf("refusing to send a SYN to %s: multicast address", dst)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return a, fmt.Errorf("refusing to send a SYN to %s: broadcast address", dst)
	case a.Is6() && (a.IsLinkLocalUnicast() || a.Zone() != ""):
		return a, fmt.Errorf("refusing to send a SYN to %s: IPv6 link-local targets need an interface, which SYN discovery does not take; use connect discovery", dst)
	case dst.Port() == 0:
		return a, fmt.Errorf("refusing to send a SYN to %s: port 0", dst)
	}
	return a, nil
}
