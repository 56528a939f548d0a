package scanner_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

// preambleProtocols are every protocol with a preamble before TLS.
var preambleProtocols = func() []scanner.Protocol {
	var ps []scanner.Protocol
	for _, pi := range scanner.Protocols {
		if pi.Protocol != scanner.ProtoTLS {
			ps = append(ps, pi.Protocol)
		}
	}
	return ps
}()

// FuzzPreamble sends arbitrary bytes as the server's side of each
// protocol's preamble: every probe must end, classified, with an error
// detail fit for a terminal (peer text quoted).
func FuzzPreamble(f *testing.F) {
	for _, seed := range []string{
		"220 ok\r\n250-x\r\n250 STARTTLS\r\n220 go\r\n",
		"220-a\r\nfree\r\n220 b\r\n234 ok\r\n",
		"* OK [CAPABILITY STARTTLS] hi\r\na002 OK\r\n",
		"+OK\r\n+OK\r\nSTLS\r\n.\r\n+OK\r\n",
		"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features><proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
		"554 \x1b]0;x\x07\xff\r\n",
		"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><stream:error><x\x1b xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
		"S", "N", "EFATAL: no pg_hba.conf entry\x00",
		"0\x0c\x02\x01\x01x\x07\x0a\x01\x00\x04\x00\x04\x00",                                                       // LDAP ExtendedResponse, success
		"\x03\x00\x00\x13\x0e\xd0\x00\x00\x124\x00\x02\x00\x08\x00\x01\x00\x00\x00",                                // RDP Connection Confirm, TLS
		"\x04\x01\x00\x25\x00\x00\x01\x00\x00\x00\x15\x00\x06\x01\x00\x1b\x00\x01\xff\x0f\x00\x07\xd0\x00\x00\x01", // TDS PRELOGIN response
	} {
		for proto := range preambleProtocols {
			f.Add([]byte(seed), uint8(proto))
		}
	}
	var mu sync.Mutex
	var reply []byte
	s, err := scannertest.NewServer("127.0.0.1:0", func(c net.Conn) {
		mu.Lock()
		b := reply
		mu.Unlock()
		// Send it all, then end the stream: the probe sees the bytes and
		// then EOF, so no input costs a timeout.
		if _, err := c.Write(b); err == nil {
			_ = c.(*net.TCPConn).CloseWrite()
			scannertest.Stall(c)
		}
	})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, data []byte, proto uint8) {
		mu.Lock()
		reply = data
		mu.Unlock()
		p := textProber(s, preambleProtocols[int(proto)%len(preambleProtocols)])
		r := p.Probe(context.Background(), scanner.Target{Addr: s.Addr})
		if !slices.Contains(scanner.Statuses, r.Status) {
			t.Fatalf("status %q is not one of %v", r.Status, scanner.Statuses)
		}
		if !utf8.ValidString(r.Err) || strings.ContainsFunc(r.Err, unicode.IsControl) {
			t.Fatalf("error detail %q carries raw peer bytes", r.Err)
		}
	})
}
