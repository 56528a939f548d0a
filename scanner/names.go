package scanner

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// NameList is a names file (sweep --names-file): server names to try as
// SNI, on every swept address or on some only. It is built once and read
// by every probe; it is safe for concurrent use.
type NameList struct {
	everywhere []string
	byAddr     map[netip.Addr][]string
	byPrefix   []prefixNames // usually few; searched in order
	count      int
}

type prefixNames struct {
	prefix netip.Prefix
	names  []string
}

// maxNamesFileLine bounds one line of a names file, so that a wrong file
// (a binary, a dump without newlines) fails with a line number instead of
// being read into memory whole.
const maxNamesFileLine = 4096

// ParseNamesFile reads a names file: one entry a line, `NAME` (tried on
// every swept address) or `ADDRESS NAME` / `CIDR NAME` (tried there only);
// blank lines and lines starting with # are skipped. A bad line is an
// error naming its line number, so a typo is not silently skipped.
func ParseNamesFile(r io.Reader) (*NameList, error) {
	l := &NameList{byAddr: make(map[netip.Addr][]string)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxNamesFileLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		name := fields[len(fields)-1]
		if len(fields) > 2 {
			return nil, fmt.Errorf("line %d: %q: give NAME, or ADDRESS NAME, or CIDR NAME", n, line)
		}
		norm, ok := normalName(name)
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not a DNS name to send as SNI (letters, digits, hyphens and dots; no wildcards, no addresses)", n, name)
		}
		l.count++
		if len(fields) == 1 {
			l.everywhere = append(l.everywhere, norm)
			continue
		}
		where := fields[0]
		if a, err := netip.ParseAddr(where); err == nil {
			a = a.Unmap()
			l.byAddr[a] = append(l.byAddr[a], norm)
			continue
		}
		p, err := netip.ParsePrefix(where)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q is neither an address nor a CIDR", n, where)
		}
		l.byPrefix = append(l.byPrefix, prefixNames{p.Masked(), []string{norm}})
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("a line is longer than %d bytes: is this a names file?", maxNamesFileLine)
		}
		return nil, err
	}
	return l, nil
}

// Len is the number of entries in the file.
func (l *NameList) Len() int { return l.count }

// For returns the names to try at a: those for a itself, then those for
// the prefixes that hold it, then those for every address.
func (l *NameList) For(a netip.Addr) []string {
	a = a.Unmap()
	out := append([]string(nil), l.byAddr[a]...)
	for _, p := range l.byPrefix {
		if p.prefix.Contains(a) {
			out = append(out, p.names...)
		}
	}
	return append(out, l.everywhere...)
}

// PTRResolver looks up the reverse DNS names of an address;
// *net.Resolver satisfies it.
type PTRResolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// normalName returns name as sent in SNI (lowercase, no trailing dot) and
// whether it can be one: a DNS hostname, not an address, not a wildcard.
// Certificate names are attacker-controlled: anything else is dropped.
func normalName(name string) (string, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if len(name) == 0 || len(name) > 253 {
		return "", false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "", false // RFC 6066 §3: SNI carries no literal address
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return name, true
}

// MatchesHost reports whether name is covered by the certificate's DNS SANs,
// with RFC 6125 wildcards (one whole left-most label).
func MatchesHost(sans []string, name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, san := range sans {
		san = strings.ToLower(strings.TrimSuffix(san, "."))
		if san == name {
			return true
		}
		if rest, ok := strings.CutPrefix(san, "*."); ok {
			if _, after, found := strings.Cut(name, "."); found && after == rest && !strings.Contains(rest, "*") {
				return true
			}
		}
	}
	return false
}
