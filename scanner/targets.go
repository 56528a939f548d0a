package scanner

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// DefaultPorts are the TCP ports probed when the user gives no --ports: the
// well-known TLS services a certificate inventory needs to cover, implicit
// TLS and the ports of every protocol in Protocols.
var DefaultPorts = []uint16{
	21,    // FTP (AUTH TLS)
	25,    // SMTP (STARTTLS)
	110,   // POP3 (STLS)
	143,   // IMAP (STARTTLS)
	389,   // LDAP (StartTLS)
	443,   // HTTPS
	465,   // SMTPS (submissions)
	587,   // SMTP submission (STARTTLS)
	636,   // LDAPS
	853,   // DNS over TLS
	989,   // FTPS data
	990,   // FTPS control
	993,   // IMAPS
	995,   // POP3S
	1433,  // SQL Server (TDS PRELOGIN)
	2376,  // Docker daemon (TLS)
	3268,  // LDAP global catalog (StartTLS)
	3269,  // LDAPS global catalog
	3306,  // MySQL / MariaDB
	3389,  // Remote Desktop
	5061,  // SIP over TLS
	5222,  // XMPP client (STARTTLS)
	5269,  // XMPP server (STARTTLS)
	5432,  // PostgreSQL
	5986,  // WinRM over HTTPS
	6443,  // Kubernetes API server
	8443,  // HTTPS alternate, appliances and admin consoles
	8883,  // MQTT over TLS
	9443,  // HTTPS alternate
	10250, // Kubernetes kubelet
}

// Input is one parsed target token: an address range (Lo..Hi), or a hostname
// to resolve. Port, when non-zero, restricts the input to that one port.
type Input struct {
	Raw    string
	Lo, Hi netip.Addr // valid when Host == ""
	Host   string
	Port   uint16
}

// largestIPv6Prefix is the widest IPv6 prefix swept without an explicit
// override: a /112 is 65,536 addresses, larger ones are almost always typos.
const largestIPv6Prefix = 112

// ParseInput parses one target token: an IPv4 or IPv6 address, a CIDR, a
// range "a-b", a hostname, or any single address or hostname with ":port"
// (IPv6 as "[addr]:port"). IPv6 ranges wider than a /112 are refused unless
// allowLargeIPv6 is set. Errors name the token and say how to fix it.
func ParseInput(tok string, allowLargeIPv6 bool) (Input, error) {
	in := Input{Raw: tok}
	s := strings.TrimSpace(tok)
	if s == "" {
		return in, fmt.Errorf("empty target")
	}
	switch {
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return in, cidrError(s, err)
		}
		p = p.Masked()
		if p.Addr().Is6() && p.Bits() < largestIPv6Prefix && !allowLargeIPv6 {
			return in, fmt.Errorf("IPv6 prefix %q is larger than a /%d (%s addresses); pass --allow-large-ipv6 if you mean it", s, largestIPv6Prefix, approxCount(128-p.Bits()))
		}
		in.Lo, in.Hi = p.Addr(), lastAddr(p)
		return in, nil
	case isAddrRange(s):
		a, b, _ := strings.Cut(s, "-")
		lo, errLo := netip.ParseAddr(strings.TrimSpace(a))
		hi, errHi := netip.ParseAddr(strings.TrimSpace(b))
		if errLo != nil || errHi != nil {
			return in, fmt.Errorf("invalid range %q: want two addresses such as 10.0.0.5-10.0.0.90", s)
		}
		lo, hi = lo.Unmap(), hi.Unmap()
		if lo.Is4() != hi.Is4() {
			return in, fmt.Errorf("invalid range %q: both ends must be IPv4 or both IPv6", s)
		}
		if hi.Less(lo) {
			return in, fmt.Errorf("invalid range %q: the first address is after the last", s)
		}
		if lo.Is6() && !allowLargeIPv6 && span(lo, hi) > 1<<(128-largestIPv6Prefix) {
			return in, fmt.Errorf("IPv6 range %q is larger than a /%d; pass --allow-large-ipv6 if you mean it", s, largestIPv6Prefix)
		}
		in.Lo, in.Hi = lo, hi
		return in, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		in.Lo, in.Hi = a.Unmap(), a.Unmap()
		return in, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return in, fmt.Errorf("invalid target %q: port 0 is not a valid port", s)
		}
		in.Lo, in.Hi, in.Port = ap.Addr().Unmap(), ap.Addr().Unmap(), ap.Port()
		return in, nil
	}
	host := s
	if h, p, ok := strings.Cut(s, ":"); ok {
		port, err := parsePort(p)
		if err != nil {
			return in, fmt.Errorf("invalid target %q: %w", s, err)
		}
		host, in.Port = h, port
	}
	if !isHostname(host) {
		return in, fmt.Errorf("invalid target %q: not an address, CIDR, range or hostname", s)
	}
	in.Host = strings.ToLower(strings.TrimSuffix(host, "."))
	return in, nil
}

// isAddrRange reports whether s looks like "addr-addr": a dash with an address
// on at least one side (hostnames may contain dashes, addresses never do).
func isAddrRange(s string) bool {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return false
	}
	_, errA := netip.ParseAddr(strings.TrimSpace(a))
	_, errB := netip.ParseAddr(strings.TrimSpace(b))
	return errA == nil || errB == nil
}

func cidrError(s string, err error) error {
	addr, bitsStr, _ := strings.Cut(s, "/")
	a, aerr := netip.ParseAddr(addr)
	if aerr != nil {
		return fmt.Errorf("invalid CIDR %q: %q is not an IP address", s, addr)
	}
	n, nerr := strconv.Atoi(bitsStr)
	if max := a.BitLen(); nerr != nil || n < 0 || n > max {
		return fmt.Errorf("invalid CIDR %q: prefix length must be 0-%d", s, max)
	}
	return fmt.Errorf("invalid CIDR %q: %w", s, err)
}

// isHostname reports whether s is a syntactically valid DNS name (RFC 1123
// labels; underscores tolerated, as internal DNS often has them).
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	// An all-numeric dotted name is a mistyped IPv4 address, not a host.
	return strings.ContainsFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
}

// ParsePorts parses a port list such as "443,8443,9000-9010" (a port spec's
// protocol names, as in "2525/smtp", are accepted and ignored). The result
// is sorted and free of duplicates.
func ParsePorts(s string) ([]uint16, error) {
	ports, _, err := ParsePortSpec(s)
	return ports, err
}

// ParsePortSpec parses a port list in which a port or range may name the
// protocol spoken there: "443,2525/smtp,10389/ldap,9000-9010". It returns
// the sorted, de-duplicated ports and the protocol named for each port
// that has one; a port named with two different protocols is an error.
func ParsePortSpec(s string) ([]uint16, map[uint16]Protocol, error) {
	var ports []uint16
	protos := make(map[uint16]Protocol)
	for tok := range strings.SplitSeq(s, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		var proto Protocol
		if spec, name, ok := strings.Cut(tok, "/"); ok {
			p, err := ParseProtocol(name)
			if err != nil {
				return nil, nil, fmt.Errorf("port %q: %w", tok, err)
			}
			tok, proto = strings.TrimSpace(spec), p
		}
		lo, hi, err := parsePortRange(tok)
		if err != nil {
			return nil, nil, err
		}
		for p := uint32(lo); p <= uint32(hi); p++ {
			port := uint16(p)
			ports = append(ports, port)
			if proto == "" {
				continue
			}
			if prev, ok := protos[port]; ok && prev != proto {
				return nil, nil, fmt.Errorf("port %d is named as both %s and %s; name one protocol per port", port, prev, proto)
			}
			protos[port] = proto
		}
	}
	if len(ports) == 0 {
		return nil, nil, fmt.Errorf("no ports in %q; give a list such as 443,8443,9000-9010", s)
	}
	slices.Sort(ports)
	return slices.Compact(ports), protos, nil
}

// parsePortRange reads "443" or "9000-9010".
func parsePortRange(tok string) (lo, hi uint16, err error) {
	a, b, ok := strings.Cut(tok, "-")
	if !ok {
		p, err := parsePort(tok)
		return p, p, err
	}
	if lo, err = parsePort(a); err != nil {
		return 0, 0, err
	}
	if hi, err = parsePort(b); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("port range %q runs backwards; write it as %d-%d", tok, hi, lo)
	}
	return lo, hi, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q out of range 1-65535", s)
	}
	return uint16(n), nil
}

// addrRange is an inclusive range of addresses of one family, as 128-bit
// integers (IPv4 in its IPv4-mapped form) so both families share arithmetic.
type addrRange struct{ lo, hi u128 }

func (r addrRange) size() u128 { return r.hi.sub(r.lo).add64(1) }

// mergeRanges sorts and coalesces overlapping or adjacent ranges.
func mergeRanges(rs []addrRange) []addrRange {
	slices.SortFunc(rs, func(a, b addrRange) int { return a.lo.cmp(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && (r.lo.cmp(out[n-1].hi) <= 0 || r.lo == out[n-1].hi.add64(1)) {
			if r.hi.cmp(out[n-1].hi) > 0 {
				out[n-1].hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtractRanges removes every address in ex from rs. Both must be merged.
func subtractRanges(rs, ex []addrRange) []addrRange {
	var out []addrRange
	j := 0
	for _, r := range rs {
		cur := r
		alive := true
		for j < len(ex) && ex[j].hi.cmp(cur.lo) < 0 {
			j++
		}
		for k := j; k < len(ex) && ex[k].lo.cmp(cur.hi) <= 0; k++ {
			e := ex[k]
			if e.lo.cmp(cur.lo) > 0 {
				out = append(out, addrRange{cur.lo, e.lo.sub64(1)})
			}
			if e.hi.cmp(cur.hi) >= 0 {
				alive = false
				break
			}
			cur.lo = e.hi.add64(1)
		}
		if alive {
			out = append(out, cur)
		}
	}
	return out
}

func contains(rs []addrRange, a u128) bool {
	i, _ := slices.BinarySearchFunc(rs, a, func(r addrRange, a u128) int {
		if r.hi.cmp(a) < 0 {
			return -1
		}
		if r.lo.cmp(a) > 0 {
			return 1
		}
		return 0
	})
	return i < len(rs) && rs[i].lo.cmp(a) <= 0 && a.cmp(rs[i].hi) <= 0
}

// u128 is an unsigned 128-bit integer, enough for any IPv6 address.
type u128 struct{ hi, lo uint64 }

func addrToU128(a netip.Addr) u128 {
	b := a.As16()
	var v u128
	for i := range 8 {
		v.hi = v.hi<<8 | uint64(b[i])
		v.lo = v.lo<<8 | uint64(b[8+i])
	}
	return v
}

func (v u128) addr() netip.Addr {
	var b [16]byte
	for i := range 8 {
		b[i] = byte(v.hi >> (56 - 8*i))
		b[8+i] = byte(v.lo >> (56 - 8*i))
	}
	return netip.AddrFrom16(b).Unmap()
}

func (v u128) cmp(w u128) int {
	switch {
	case v.hi < w.hi, v.hi == w.hi && v.lo < w.lo:
		return -1
	case v == w:
		return 0
	}
	return 1
}

func (v u128) add64(n uint64) u128 {
	lo, carry := bits.Add64(v.lo, n, 0)
	return u128{v.hi + carry, lo}
}

func (v u128) sub64(n uint64) u128 {
	lo, borrow := bits.Sub64(v.lo, n, 0)
	return u128{v.hi - borrow, lo}
}

func (v u128) sub(w u128) u128 {
	lo, borrow := bits.Sub64(v.lo, w.lo, 0)
	return u128{v.hi - w.hi - borrow, lo}
}

func lastAddr(p netip.Prefix) netip.Addr {
	v := addrToU128(p.Addr())
	hostBits := p.Addr().BitLen() - p.Bits()
	switch {
	case hostBits >= 128:
		return u128{^uint64(0), ^uint64(0)}.addr()
	case hostBits >= 64:
		v.lo = ^uint64(0)
		v.hi |= 1<<(hostBits-64) - 1
	default:
		v.lo |= 1<<hostBits - 1
	}
	return v.addr()
}

// span returns the number of addresses in lo..hi, saturating at 2^64-1.
func span(lo, hi netip.Addr) uint64 {
	d := addrToU128(hi).sub(addrToU128(lo))
	if d.hi != 0 || d.lo == ^uint64(0) {
		return ^uint64(0)
	}
	return d.lo + 1
}

func approxCount(hostBits int) string {
	if hostBits < 63 {
		return strconv.FormatUint(1<<hostBits, 10)
	}
	return "2^" + strconv.Itoa(hostBits)
}
