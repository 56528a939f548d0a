//go:build linux

package scanner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ---- Pure parts: no privileges needed.

func TestSYNCookie(t *testing.T) {
	var k1, k2 [32]byte
	k1[0], k2[0] = 1, 2
	a := netip.MustParseAddrPort("192.0.2.7:443")
	c1 := newSYNCookie(k1, 61000, 65535)
	p1, s1 := c1.derive(a)
	if p2, s2 := c1.derive(a); p1 != p2 || s1 != s2 {
		t.Errorf("not deterministic: %d/%d then %d/%d", p1, s1, p2, s2)
	}
	if p2, s2 := newSYNCookie(k1, 61000, 65535).derive(a); p1 != p2 || s1 != s2 {
		t.Errorf("a second cookie with the same key disagrees")
	}
	if _, s2 := newSYNCookie(k2, 61000, 65535).derive(a); s1 == s2 {
		t.Errorf("another key gives the same ISN %d", s1)
	}
	if p2, s2 := c1.derive(netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())); p1 != p2 || s1 != s2 {
		t.Errorf("the IPv4-mapped spelling of a target has another cookie")
	}
	for _, other := range []string{"192.0.2.7:444", "192.0.2.8:443", "[2001:db8::7]:443"} {
		if _, s2 := c1.derive(netip.MustParseAddrPort(other)); s1 == s2 {
			t.Errorf("%s has the same ISN as %s", other, a)
		}
	}

	for _, r := range [][2]uint16{{61000, 65535}, {1024, 32767}, {40000, 40000}, {1, 65535}, {65535, 65535}} {
		c := newSYNCookie(k1, r[0], r[1])
		seen := map[uint16]bool{}
		for i := range 5000 {
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), uint16(rand.IntN(65535)+1))
			p, _ := c.derive(dst)
			if p < r[0] || p > r[1] || !c.inRange(p) {
				t.Fatalf("range %d-%d: source port %d for %s", r[0], r[1], p, dst)
			}
			seen[p] = true
		}
		if want := min(int(r[1])-int(r[0])+1, 1000); len(seen) < want {
			t.Errorf("range %d-%d: only %d distinct source ports in 5000 targets", r[0], r[1], len(seen))
		}
		if r[0] > 0 && c.inRange(r[0]-1) || r[1] < 65535 && c.inRange(r[1]+1) {
			t.Errorf("range %d-%d: inRange accepts a port outside it", r[0], r[1])
		}
	}
}

func TestSYNValidate(t *testing.T) {
	c := newSYNCookie([32]byte{7}, 61000, 65535)
	tgt := netip.MustParseAddrPort("198.51.100.9:8443")
	sport, isn := c.derive(tgt)
	other := c.first + uint16((uint32(sport-c.first)+1)%c.size)
	seg := func(src netip.AddrPort, dport uint16, flags uint8, seq, ack uint32) segment {
		return segment{src: src, dstPort: dport, flags: flags, seq: seq, ack: ack}
	}
	tests := []struct {
		name       string
		seg        segment
		ok, open   bool
		wantReason string
	}{
		{"SYN-ACK", seg(tgt, sport, tcpSYN|tcpACK, 99, isn+1), true, true, ""},
		{"SYN-ACK with ECN flags", seg(tgt, sport, tcpSYN|tcpACK|0x40, 99, isn+1), true, true, ""},
		{"RST-ACK", seg(tgt, sport, tcpRST|tcpACK, 0, isn+1), true, false, ""},
		{"RST-ACK acknowledging ISN", seg(tgt, sport, tcpRST|tcpACK, 0, isn), true, false, ""},
		{"RST without ACK flag, ack field ISN+1", seg(tgt, sport, tcpRST, 0, isn+1), true, false, ""},
		{"SYN-ACK acknowledging ISN", seg(tgt, sport, tcpSYN|tcpACK, 99, isn), false, false, "a SYN-ACK must acknowledge ISN+1"},
		{"SYN-ACK wrong ack", seg(tgt, sport, tcpSYN|tcpACK, 99, isn+2), false, false, ""},
		{"RST wrong ack", seg(tgt, sport, tcpRST|tcpACK, 0, isn+2), false, false, ""},
		{"bare RST, seq ISN+1", seg(tgt, sport, tcpRST, isn+1, 0), false, false, "not validated by seq"},
		{"other destination port in range", seg(tgt, other, tcpSYN|tcpACK, 99, isn+1), false, false, ""},
		{"destination port outside range", seg(tgt, 60999, tcpSYN|tcpACK, 99, isn+1), false, false, ""},
		{"other source address", seg(netip.MustParseAddrPort("198.51.100.10:8443"), sport, tcpSYN|tcpACK, 99, isn+1), false, false, ""},
		{"other source port", seg(netip.MustParseAddrPort("198.51.100.9:8444"), sport, tcpSYN|tcpACK, 99, isn+1), false, false, ""},
		{"SYN", seg(tgt, sport, tcpSYN, isn, 0), false, false, ""},
		{"ACK", seg(tgt, sport, tcpACK, 99, isn+1), false, false, ""},
		{"FIN-ACK", seg(tgt, sport, tcpFIN|tcpACK, 99, isn+1), false, false, ""},
	}
	for _, tt := range tests {
		r, ok := c.validate(tt.seg)
		if ok != tt.ok || ok && (r.Open != tt.open || r.Addr != tgt) {
			t.Errorf("%s: got %+v valid=%v, want valid=%v open=%v %s", tt.name, r, ok, tt.ok, tt.open, tt.wantReason)
		}
	}
}

// forgeIPv4 serialises a TCP segment in an IPv4 packet with gopacket, an
// implementation independent of ours.
func forgeIPv4(t testing.TB, src, dst netip.AddrPort, flags uint8, seq, ack uint32, ipOptions bool) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	if ipOptions {
		ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}} // NOP NOP NOP EOL
	}
	tcp := forgeTCP(src.Port(), dst.Port(), flags, seq, ack)
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func forgeTCP(sport, dport uint16, flags uint8, seq, ack uint32) *layers.TCP {
	return &layers.TCP{
		SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, Ack: ack, Window: 29200,
		FIN: flags&tcpFIN != 0, SYN: flags&tcpSYN != 0, RST: flags&tcpRST != 0, ACK: flags&tcpACK != 0,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}},
	}
}

// TestSYNPacketsMatchGopacket checks the hand-built SYN and the hand-written
// parser against gopacket.
func TestSYNPacketsMatchGopacket(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.200")
	var b [synLen4]byte
	buildSYN4(b[:], src, dst, 61234, 443, 0xdeadbeef)
	p := gopacket.NewPacket(b[:], layers.LayerTypeIPv4, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode our SYN: %v", el.Error())
	}
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ip.SrcIP.Equal(src.AsSlice()) || !ip.DstIP.Equal(dst.AsSlice()) || ip.Length != synLen4 || ip.TTL != synTTL || ip.Flags != layers.IPv4DontFragment || ip.Protocol != layers.IPProtocolTCP {
		t.Errorf("IPv4 header: %+v", ip)
	}
	if tcp.SrcPort != 61234 || tcp.DstPort != 443 || tcp.Seq != 0xdeadbeef || tcp.Ack != 0 || !tcp.SYN || tcp.ACK || tcp.RST || tcp.FIN || tcp.Window != synWindow || tcp.DataOffset != 6 {
		t.Errorf("TCP header: %+v", tcp)
	}
	if len(tcp.Options) != 1 || tcp.Options[0].OptionType != layers.TCPOptionKindMSS || !bytes.Equal(tcp.Options[0].OptionData, []byte{0x05, 0xb4}) {
		t.Errorf("TCP options: %v, want MSS 1460", tcp.Options)
	}
	// gopacket recomputes the checksum over the same pseudo-header.
	want := tcp.Checksum
	tcp.Checksum = 0
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcp); err != nil {
		t.Fatal(err)
	}
	if got := tcp.Checksum; got != want {
		t.Errorf("TCP checksum %#04x, gopacket computes %#04x", want, got)
	}
	// An odd-length segment (one byte of payload), checksummed by gopacket.
	ipL := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	tcpL := forgeTCP(1, 2, tcpACK, 1, 2)
	if err := tcpL.SetNetworkLayerForChecksum(ipL); err != nil {
		t.Fatal(err)
	}
	buf = gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ipL, tcpL, gopacket.Payload{0x5a}); err != nil {
		t.Fatal(err)
	}
	odd := buf.Bytes()
	seg := append([]byte(nil), odd[ipv4HeaderLen:]...)
	wantSum := uint16(seg[16])<<8 | uint16(seg[17])
	seg[16], seg[17] = 0, 0
	if got := tcpChecksum4(src.As4(), dst.As4(), seg); got != wantSum {
		t.Errorf("odd-length checksum %#04x, gopacket computes %#04x", got, wantSum)
	}

	// The parser, on gopacket-built answers with and without IP options.
	from, to := netip.MustParseAddrPort("198.51.100.200:443"), netip.MustParseAddrPort("192.0.2.1:61234")
	for _, opts := range []bool{false, true} {
		pkt := forgeIPv4(t, from, to, tcpSYN|tcpACK, 77, 0xdeadbef0, opts)
		seg, ok := parseIPv4(pkt)
		if want := (segment{src: from, dstPort: 61234, flags: tcpSYN | tcpACK, seq: 77, ack: 0xdeadbef0}); !ok || seg != want {
			t.Errorf("IP options %v: parsed %+v %v, want %+v", opts, seg, ok, want)
		}
		if _, ok := parseIPv4(pkt[:19]); ok {
			t.Errorf("a truncated IPv4 header parsed")
		}
		ihl := int(pkt[0]&0x0f) * 4
		if _, ok := parseIPv4(pkt[:ihl+19]); ok {
			t.Errorf("a truncated TCP header parsed")
		}
		frag := append([]byte(nil), pkt...)
		frag[7] = 1 // fragment offset 8
		if _, ok := parseIPv4(frag); ok {
			t.Errorf("a non-first fragment parsed")
		}
	}
}

func TestSYNReplyFilter(t *testing.T) {
	const first, last = 61000, 65535
	run := func(ipv4 bool, pkt []byte) bool {
		t.Helper()
		raw, err := replyFilter(ipv4, first, last)
		if err != nil {
			t.Fatal(err)
		}
		ins := make([]bpf.Instruction, len(raw))
		for i, r := range raw {
			ins[i] = r.Disassemble()
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			t.Fatal(err)
		}
		n, err := vm.Run(pkt)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 && n != replySnap {
			t.Errorf("filter keeps %d bytes, want %d", n, replySnap)
		}
		return n > 0
	}
	from := netip.MustParseAddrPort("192.0.2.9:443")
	tests := []struct {
		name  string
		dport uint16
		flags uint8
		keep  bool
	}{
		{"SYN-ACK", 61000, tcpSYN | tcpACK, true},
		{"SYN-ACK last port", 65535, tcpSYN | tcpACK, true},
		{"RST-ACK", 62000, tcpRST | tcpACK, true},
		{"bare RST", 62000, tcpRST, true},
		{"SYN-ACK below range", 60999, tcpSYN | tcpACK, false},
		{"RST below range", 443, tcpRST | tcpACK, false},
		{"SYN", 62000, tcpSYN, false},
		{"ACK", 62000, tcpACK, false},
		{"FIN-ACK", 62000, tcpFIN | tcpACK, false},
	}
	for _, tt := range tests {
		to := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), tt.dport)
		for _, opts := range []bool{false, true} {
			if got := run(true, forgeIPv4(t, from, to, tt.flags, 1, 2, opts)); got != tt.keep {
				t.Errorf("IPv4 (options %v) %s to port %d: kept %v, want %v", opts, tt.name, tt.dport, got, tt.keep)
			}
		}
		buf := gopacket.NewSerializeBuffer()
		if err := forgeTCP(from.Port(), tt.dport, tt.flags, 1, 2).SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
			t.Fatal(err)
		}
		if got := run(false, buf.Bytes()); got != tt.keep {
			t.Errorf("IPv6 %s to port %d: kept %v, want %v", tt.name, tt.dport, got, tt.keep)
		}
	}
	pkt := forgeIPv4(t, from, netip.MustParseAddrPort("192.0.2.1:62000"), tcpSYN|tcpACK, 1, 2, false)
	frag := append([]byte(nil), pkt...)
	frag[7] = 1
	if run(true, frag) {
		t.Errorf("IPv4 filter keeps a non-first fragment")
	}
	if run(true, pkt[:30]) {
		t.Errorf("IPv4 filter keeps a truncated TCP header")
	}
}

func TestPickSourcePorts(t *testing.T) {
	def := [2]uint16{32768, 60999}
	tests := []struct {
		want, eph   [2]uint16
		ephErr      error
		first, last uint16
		errHas      string
	}{
		{eph: def, first: 61000, last: 65535},
		{eph: [2]uint16{1024, 64000}, first: 64001, last: 65535},
		{eph: [2]uint16{10000, 65535}, first: 1024, last: 9999},
		{eph: [2]uint16{1500, 65000}, errHas: "ip_local_port_range"},
		{eph: [2]uint16{1024, 64600}, errHas: "fewer than 1024"},
		{ephErr: errors.New("no /proc"), errHas: "set them explicitly"},
		{want: [2]uint16{20000, 20100}, eph: def, first: 20000, last: 20100},
		{want: [2]uint16{20000, 20100}, ephErr: errors.New("no /proc"), first: 20000, last: 20100},
		{want: [2]uint16{60000, 61000}, eph: def, errHas: "overlap"},
		{want: [2]uint16{30000, 32768}, eph: def, errHas: "overlap"},
		{want: [2]uint16{0, 10}, eph: def, errHas: "invalid"},
		{want: [2]uint16{500, 400}, eph: def, errHas: "invalid"},
	}
	for _, tt := range tests {
		first, last, err := pickSourcePorts(tt.want, tt.eph, tt.ephErr)
		if tt.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("want %v eph %v: err %v, want one mentioning %q", tt.want, tt.eph, err, tt.errHas)
			}
			continue
		}
		if err != nil || first != tt.first || last != tt.last {
			t.Errorf("want %v eph %v: %d-%d %v, want %d-%d", tt.want, tt.eph, first, last, err, tt.first, tt.last)
		}
	}
}

func TestCheckSYNTarget(t *testing.T) {
	for _, s := range []string{"0.0.0.0:443", "[::]:443", "224.0.0.1:443", "[ff02::1]:443", "255.255.255.255:443", "[fe80::1]:443", "[fe80::1%lo]:443", "192.0.2.1:0"} {
		if _, err := checkSYNTarget(netip.MustParseAddrPort(s)); err == nil {
			t.Errorf("%s: accepted", s)
		}
	}
	if _, err := checkSYNTarget(netip.AddrPort{}); err == nil {
		t.Errorf("the zero AddrPort: accepted")
	}
	for _, s := range []string{"192.0.2.1:443", "127.0.0.1:1", "169.254.1.1:443", "[2001:db8::1]:443", "[::1]:443"} {
		if _, err := checkSYNTarget(netip.MustParseAddrPort(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if a, err := checkSYNTarget(netip.MustParseAddrPort("[::ffff:192.0.2.1]:443")); err != nil || !a.Is4() {
		t.Errorf("IPv4-mapped target: %v %v, want it as IPv4", a, err)
	}
}

func BenchmarkSYNCookie(b *testing.B) {
	c := newSYNCookie([32]byte{1}, 61000, 65535)
	var sink uint32
	for i := 0; b.Loop(); i++ {
		_, isn := c.derive(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 443))
		sink += isn
	}
	_ = sink
}

// BenchmarkSYNRouteLookup is what a SYN to a /24 not in the source cache
// costs on top.
func BenchmarkSYNRouteLookup(b *testing.B) {
	for b.Loop() {
		if _, err := routeSource4(netip.MustParseAddr("127.0.0.1")); err != nil {
			b.Fatal(err)
		}
	}
}

// ---- Raw sockets: root or CAP_NET_RAW, traffic on loopback only.

const synNetnsEnv = "CERTSWEEP_SYN_TEST_NETNS"

// unshareCmd finds how to run a command in a fresh network namespace: as
// root a plain one, otherwise inside a user namespace where we are root.
var unshareCmd = sync.OnceValues(func() ([]string, error) {
	path, err := exec.LookPath("unshare")
	if err != nil {
		return nil, err
	}
	args := []string{path, "--net"}
	if os.Geteuid() != 0 {
		args = []string{path, "--user", "--map-root-user", "--net"}
	}
	if out, err := exec.Command(args[0], append(args[1:], "true")...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return args, nil
})

// inFreshNetns reports whether the calling test should run here: in the
// fresh network namespace its parent process made (with lo brought up), or
// on the host's loopback when no namespace can be made but we are root.
// Otherwise it runs the test again in a fresh namespace, reports that run's
// outcome as this test's, and returns false; or skips.
func inFreshNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(synNetnsEnv) != "" {
		if err := loopbackUp(); err != nil {
			t.Fatalf("bringing lo up in the test's network namespace: %v", err)
		}
		return true
	}
	args, err := unshareCmd()
	if err != nil {
		if os.Geteuid() == 0 {
			t.Logf("no fresh network namespace (%v): using the host's loopback", err)
			return true
		}
		t.Skipf("raw-socket tests need root or a network namespace: %v", err)
	}
	cmd := exec.Command(args[0], append(args[1:], os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v", "-test.timeout=2m")...)
	cmd.Env = append(os.Environ(), synNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a fresh network namespace: %v\n%s", err, out)
	}
	if i := bytes.Index(out, []byte("--- SKIP: "+t.Name()+" ")); i >= 0 {
		t.Skipf("in a fresh network namespace:\n%s", out[i:])
	}
	t.Logf("ran in a fresh network namespace:\n%s", out)
	return false
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func openSYNSocket(t testing.TB, cfg SYNConfig) *SYNSocket {
	t.Helper()
	s, err := NewSYNSocket(cfg)
	if errors.Is(err, ErrNoRawSockets) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// nextReply waits up to d for an answer.
func nextReply(s *SYNSocket, d time.Duration) (SYNReply, bool) {
	select {
	case r, ok := <-s.Replies():
		return r, ok
	case <-time.After(d):
		return SYNReply{}, false
	}
}

// closedPort returns a port on which nothing listens at addr.
func closedPort(t *testing.T, addr string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ap := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	return ap
}

// waitStats polls until ok(Stats) holds or 2 s pass, returning the last.
func waitStats(s *SYNSocket, ok func(SYNStats) bool) SYNStats {
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := s.Stats()
		if ok(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSYNOpenClosed is the round trip, for either family: a listener
// answers SYN-ACK, a closed port RST, and the kernel's RST to the SYN-ACK
// leaves the listener working.
func checkSYNOpenClosed(t *testing.T, network, addr string) {
	s := openSYNSocket(t, SYNConfig{})
	if network == "tcp6" && s.IPv6Err() != nil {
		t.Skip(s.IPv6Err())
	}
	l, err := net.Listen(network, net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).AddrPort()
	closed := closedPort(t, addr)

	for _, c := range []struct {
		dst  netip.AddrPort
		open bool
	}{{open, true}, {closed, false}} {
		if err := s.Send(c.dst); err != nil {
			t.Fatal(err)
		}
		r, ok := nextReply(s, 2*time.Second)
		if !ok || r != (SYNReply{Addr: c.dst, Open: c.open}) {
			t.Fatalf("SYN to %s: reply %+v (received %v), want open=%v", c.dst, r, ok, c.open)
		}
	}
	if r, ok := nextReply(s, 200*time.Millisecond); ok {
		t.Errorf("unexpected extra reply %+v", r)
	}
	st := s.Stats()
	first, last := s.SourcePorts()
	t.Logf("source ports %d-%d, stats %+v", first, last, st)
	if st.Sent != 2 || st.Valid != 2 || st.Received != 2 || st.Invalid != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 2 sent, 2 received, 2 valid", st)
	}

	// The kernel reset the listener's half-open connection; it still accepts.
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.DialTimeout(network, open.String(), 2*time.Second)
	if err != nil {
		t.Fatalf("connecting to the listener after the SYN: %v", err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("accepting after the SYN: %v", err)
	}
}

func TestSYNSocketIPv4(t *testing.T) {
	if inFreshNetns(t) {
		checkSYNOpenClosed(t, "tcp4", "127.1.2.3")
	}
}

func TestSYNSocketIPv6(t *testing.T) {
	if !inFreshNetns(t) {
		return
	}
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		l.Close()
	}
	checkSYNOpenClosed(t, "tcp6", "::1")
}

// listenDrops reads TcpExtListenDrops: SYNs a listener dropped.
func listenDrops(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open("/proc/net/netstat")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var names []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "TcpExt:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, n := range names {
			if n == "ListenDrops" && i < len(fields) {
				v, _ := strconv.ParseUint(fields[i], 10, 64)
				return v
			}
		}
	}
	t.Fatal("no TcpExt ListenDrops in /proc/net/netstat")
	return 0
}

// TestSYNSocketSilence sends a SYN that is dropped without an answer: on
// loopback every closed port answers RST, but a listener whose accept queue
// is full drops new SYNs silently.
func TestSYNSocketSilence(t *testing.T) {
	if !inFreshNetns(t) {
		return
	}
	s := openSYNSocket(t, SYNConfig{})
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 1, 2, 4}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.AddrPortFrom(netip.AddrFrom4(sa.(*unix.SockaddrInet4).Addr), uint16(sa.(*unix.SockaddrInet4).Port))
	// Fill the accept queue (never accepted): connects complete until one
	// hangs, its SYN dropped.
	full := false
	for range 5 {
		c, err := net.DialTimeout("tcp4", dst.String(), 300*time.Millisecond)
		if err != nil {
			full = true
			break
		}
		defer c.Close()
	}
	if !full {
		t.Fatal("the accept queue never filled")
	}

	drops := listenDrops(t)
	if err := s.Send(dst); err != nil {
		t.Fatal(err)
	}
	if r, ok := nextReply(s, time.Second); ok {
		t.Fatalf("reply %+v from a listener that drops SYNs", r)
	}
	if d := listenDrops(t); d <= drops {
		t.Errorf("TcpExtListenDrops went from %d to %d: our SYN did not reach the listener", drops, d)
	}
	if st := s.Stats(); st.Sent != 1 || st.Received != 0 {
		t.Errorf("stats %+v, want 1 sent, none received", st)
	}
}

// TestSYNSocketForgedReplies injects answers from a second raw socket: only
// those carrying the right cookie are reported, even for targets never sent
// to (validation is stateless).
func TestSYNSocketForgedReplies(t *testing.T) {
	if !inFreshNetns(t) {
		return
	}
	s := openSYNSocket(t, SYNConfig{})
	c := s.cookie
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	send := func(src, dst netip.AddrPort, flags uint8, seq, ack uint32) {
		t.Helper()
		if err := unix.Sendto(fd, forgeIPv4(t, src, dst, flags, seq, ack, false), 0, &unix.SockaddrInet4{Addr: dst.Addr().As4()}); err != nil {
			t.Fatal(err)
		}
	}
	us := netip.MustParseAddr("127.0.0.1")
	to := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(us, port) }
	t1, t2, t3 := netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("127.0.0.1:82"), netip.MustParseAddrPort("127.0.0.3:8443")
	p1, isn1 := c.derive(t1)
	p2, isn2 := c.derive(t2)
	p3, isn3 := c.derive(t3)
	otherPort := c.first + uint16((uint32(p1-c.first)+1)%c.size)

	// Read by us, and invalid.
	send(t1, to(p1), tcpSYN|tcpACK, 5, isn1+2)                                      // wrong ack
	send(netip.MustParseAddrPort("127.0.0.2:80"), to(p1), tcpSYN|tcpACK, 5, isn1+1) // other source address
	send(netip.MustParseAddrPort("127.0.0.1:81"), to(p1), tcpSYN|tcpACK, 5, isn1+1) // other source port
	send(t1, to(otherPort), tcpSYN|tcpACK, 5, isn1+1)                               // other port of our range
	send(t1, to(p1), tcpRST|tcpACK, 0, isn1+7)                                      // RST, wrong ack
	send(t1, to(p1), tcpRST, isn1+1, 0)                                             // bare RST, seq ISN+1
	// Not even read: the kernel filter passes only answers to our ports.
	send(t1, to(c.first-1), tcpSYN|tcpACK, 5, isn1+1) // below our range
	send(t1, to(p1), tcpSYN, 5, 0)                    // a SYN, not an answer
	send(t1, to(p1), tcpACK, 5, isn1+1)               // an ACK
	// Valid.
	send(t1, to(p1), tcpSYN|tcpACK, 5, isn1+1)
	send(t2, to(p2), tcpRST|tcpACK, 0, isn2+1)
	send(t3, to(p3), tcpRST|tcpACK, 0, isn3) // acknowledging the ISN itself, as some stacks do
	want := map[SYNReply]bool{{t1, true}: true, {t2, false}: true, {t3, false}: true}
	wantRecv, wantInvalid := uint64(9), uint64(6)

	// IPv6: the kernel checksums and picks ::1 as the source.
	if s.IPv6Err() == nil {
		fd6, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd6)
		if err := unix.SetsockoptInt(fd6, unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, 16); err != nil {
			t.Fatal(err)
		}
		t6 := netip.MustParseAddrPort("[::1]:80")
		p6, isn6 := c.derive(t6)
		for _, ack := range []uint32{isn6 + 2, isn6 + 1} {
			buf := gopacket.NewSerializeBuffer()
			if err := forgeTCP(80, p6, tcpSYN|tcpACK, 5, ack).SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
				t.Fatal(err)
			}
			if err := unix.Sendto(fd6, buf.Bytes(), 0, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
				if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENETUNREACH) {
					t.Logf("no IPv6 loopback, IPv4 only: %v", err)
					break
				}
				t.Fatal(err)
			}
			if ack == isn6+1 {
				want[SYNReply{t6, true}] = true
			}
			wantRecv, wantInvalid = wantRecv+1, wantInvalid+map[bool]uint64{true: 0, false: 1}[ack == isn6+1]
		}
	}

	for len(want) > 0 {
		r, ok := nextReply(s, 2*time.Second)
		if !ok {
			t.Fatalf("missing replies: %v", want)
		}
		if !want[r] {
			t.Fatalf("reported %+v, which no valid answer said", r)
		}
		delete(want, r)
	}
	if r, ok := nextReply(s, 300*time.Millisecond); ok {
		t.Fatalf("reported %+v, which no valid answer said", r)
	}
	st := waitStats(s, func(st SYNStats) bool { return st.Received >= wantRecv })
	if st.Received != wantRecv || st.Invalid != wantInvalid || st.Valid != wantRecv-wantInvalid || st.Sent != 0 {
		t.Errorf("stats %+v, want %d received, %d invalid", st, wantRecv, wantInvalid)
	}
}

// TestSYNSocketDrops overflows a minimal receive buffer by not reading
// Replies, and checks the kernel's drops are counted.
func TestSYNSocketDrops(t *testing.T) {
	if !inFreshNetns(t) {
		return
	}
	s := openSYNSocket(t, SYNConfig{RecvBuffer: 1}) // the kernel raises it to its minimum
	dst := closedPort(t, "127.0.0.1")
	const burst = 3 * replyBuffer
	for range burst {
		if err := s.Send(dst); err != nil {
			t.Fatal(err)
		}
	}
	drain := func() int {
		n := 0
		for {
			if _, ok := nextReply(s, 200*time.Millisecond); !ok {
				return n
			}
			n++
		}
	}
	got := drain()
	// The drop count rides on the next segment queued after the drops:
	// a few more, each read before the next is sent.
	for range 5 {
		if err := s.Send(dst); err != nil {
			t.Fatal(err)
		}
		if _, ok := nextReply(s, time.Second); !ok {
			t.Fatal("no reply once Replies is drained")
		}
		got++
	}
	st := s.Stats()
	t.Logf("%d replies to %d SYNs, stats %+v", got, st.Sent, st)
	// The kernel's count, not ours: Linux 6.18 counts each loss twice.
	if lost := st.Sent - st.Valid; st.Valid != uint64(got) || st.Dropped == 0 || st.Dropped < lost {
		t.Errorf("stats %+v, %d replies read: want the %d lost counted as dropped", st, got, lost)
	}
}

// TestSYNSocketClose closes while the reader waits on a full Replies.
func TestSYNSocketClose(t *testing.T) {
	if !inFreshNetns(t) {
		return
	}
	s := openSYNSocket(t, SYNConfig{})
	dst := closedPort(t, "127.0.0.1")
	for range replyBuffer + 10 {
		if err := s.Send(dst); err != nil {
			t.Fatal(err)
		}
	}
	waitStats(s, func(st SYNStats) bool { return st.Valid > replyBuffer })
	done := make(chan error)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs while Replies is full")
	}
	n := 0
	for range s.Replies() {
		n++
	}
	if n > replyBuffer {
		t.Errorf("%d replies after Close, want at most the channel's %d", n, replyBuffer)
	}
	if err := s.Send(dst); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send after Close: %v, want net.ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// BenchmarkSYNSend sends SYNs to a closed port on the host's loopback (each
// answered by a RST, read and validated) and reports the send rate.
func BenchmarkSYNSend(b *testing.B) {
	s := openSYNSocket(b, SYNConfig{})
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	dst := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	go func() {
		for range s.Replies() {
		}
	}()
	for b.Loop() {
		if err := s.Send(dst); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "SYN/s")
	st := waitStats(s, func(st SYNStats) bool { return st.Valid+st.Dropped >= st.Sent })
	b.ReportMetric(float64(st.Valid)/float64(st.Sent), "valid/sent")
}

// TestSYNSocketBroadcast checks that the broadcast and network addresses of
// a subnet of this host are refused, whether or not the route to their /24
// is cached (a raw socket would send to them). It needs its own namespace,
// where it gives lo a /24 with a broadcast address.
func TestSYNSocketBroadcast(t *testing.T) {
	if !inFreshNetns(t) {
		return
	}
	if os.Getenv(synNetnsEnv) == "" {
		t.Skip("not in a fresh network namespace: will not add addresses to the host's lo")
	}
	if out, err := exec.Command("ip", "addr", "add", "127.5.5.1/24", "brd", "+", "dev", "lo").CombinedOutput(); err != nil {
		t.Skipf("ip addr add: %v: %s", err, out)
	}
	s := openSYNSocket(t, SYNConfig{})
	bcast, network := netip.MustParseAddrPort("127.5.5.255:443"), netip.MustParseAddrPort("127.5.5.0:443")
	if err := s.Send(bcast); err == nil || !strings.Contains(err.Error(), "broadcast") {
		t.Errorf("uncached: Send(%s) = %v, want a refusal", bcast, err)
	}
	if err := s.Send(netip.MustParseAddrPort("127.5.5.7:443")); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []netip.AddrPort{bcast, network} {
		if err := s.Send(dst); err == nil || !strings.Contains(err.Error(), "broadcast") {
			t.Errorf("cached: Send(%s) = %v, want a refusal", dst, err)
		} else {
			t.Log(err)
		}
	}
	if st := s.Stats(); st.Sent != 1 {
		t.Errorf("stats %+v, want 1 sent", st)
	}
}
