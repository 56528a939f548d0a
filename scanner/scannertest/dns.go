package scannertest

import (
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSServer is a DNS server on loopback UDP that answers PTR and A/AAAA
// queries from fixed tables, for tests of reverse-DNS names and hostname
// targets through a real resolver (net.Resolver speaking to it).
type DNSServer struct {
	Addr string // host:port

	conn *net.UDPConn
	ptr  map[netip.Addr][]string
	host map[string][]netip.Addr
	wg   sync.WaitGroup
}

// NewDNSServer starts a server on 127.0.0.1 with the given reverse names
// (address → names) and forward records (name → addresses).
func NewDNSServer(ptr map[netip.Addr][]string, hosts map[string][]netip.Addr) (*DNSServer, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	s := &DNSServer{Addr: c.LocalAddr().String(), conn: c, ptr: ptr, host: map[string][]netip.Addr{}}
	for name, addrs := range hosts {
		s.host[strings.ToLower(strings.TrimSuffix(name, "."))] = addrs
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Close stops the server.
func (s *DNSServer) Close() {
	s.conn.Close()
	s.wg.Wait()
}

func (s *DNSServer) serve() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if resp, ok := s.answer(buf[:n]); ok {
			_, _ = s.conn.WriteToUDP(resp, from)
		}
	}
}

// answer builds the response to one query; NXDOMAIN for unknown names.
func (s *DNSServer) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	found := false
	switch q.Type {
	case dnsmessage.TypePTR:
		if a, ok := reverseAddr(name); ok {
			for _, n := range s.ptr[a] {
				found = true
				_ = b.PTRResource(rh, dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(n + ".")})
			}
		}
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		for _, a := range s.host[name] {
			found = true
			if q.Type == dnsmessage.TypeA && a.Is4() {
				_ = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
			} else if q.Type == dnsmessage.TypeAAAA && a.Is6() {
				_ = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
			}
		}
	}
	if !found {
		// Rebuild with NXDOMAIN: the resolver then stops asking.
		b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
			RecursionDesired: h.RecursionDesired, RCode: dnsmessage.RCodeNameError})
		_ = b.StartQuestions()
		_ = b.Question(q)
	}
	out, err := b.Finish()
	return out, err == nil
}

// reverseAddr parses an in-addr.arpa name (IPv4 only; tests use 127/8).
func reverseAddr(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
	return a, err == nil
}
