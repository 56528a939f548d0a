package scanner_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

// The text protocols: SMTP, IMAP, POP3 and FTP (lines), XMPP (XML streams).
var textProtocols = []scanner.Protocol{scanner.ProtoSMTP, scanner.ProtoIMAP, scanner.ProtoPOP3, scanner.ProtoFTP, scanner.ProtoXMPP, scanner.ProtoXMPPServer}

// startTextServer serves handle on a random loopback address.
func startTextServer(t *testing.T, addr string, handle func(net.Conn)) *scannertest.Server {
	t.Helper()
	s, err := scannertest.NewServer(addr, handle)
	if err != nil {
		t.Fatalf("start peer: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// textProber speaks proto on s's port, with short bounds for hostile peers.
func textProber(s *scannertest.Server, proto scanner.Protocol) *scanner.Prober {
	p := scanner.NewProber()
	p.ConnectTimeout, p.HandshakeTimeout = time.Second, 2*time.Second
	p.Protocols = map[uint16]scanner.Protocol{s.Addr.Port(): proto}
	return p
}

func TestTextUpgrade(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "mail.test", DNSNames: []string{"mail.test"}})
	for _, proto := range textProtocols {
		for _, v := range []struct {
			name        string
			cfg         *tls.Config
			wantVersion uint16
		}{
			{"default", scannertest.TLSConfig(cert, 0, 0), tls.VersionTLS13},
			{"tls12", scannertest.TLSConfig(cert, 0, tls.VersionTLS12), tls.VersionTLS12},
		} {
			t.Run(string(proto)+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				s, err := scannertest.NewPeer(loopback(t), string(proto), v.cfg, scannertest.Normal)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Close)
				r := textProber(s, proto).Probe(context.Background(), scanner.Target{Addr: s.Addr})
				if r.Status != scanner.StatusOK || r.Protocol != proto {
					t.Fatalf("Probe(%s peer) = %q over %q (%s), want ok over %q", proto, r.Status, r.Protocol, r.Err, proto)
				}
				if r.TLSVersion != v.wantVersion {
					t.Errorf("TLSVersion = %#x, want %#x", r.TLSVersion, v.wantVersion)
				}
				if got, want := fingerprints(r.Chain), derFingerprints(s.Chain); !slices.Equal(got, want) {
					t.Errorf("chain = %x, want the peer's %x", got, want)
				}
			})
		}
	}
}

// textHostileWant is the status each hostile behaviour must end in.
var textHostileWant = map[scannertest.Behaviour]scanner.Status{
	scannertest.NoUpgrade:          scanner.StatusNoStartTLS,
	scannertest.RefuseUpgrade:      scanner.StatusNoStartTLS,
	scannertest.StallAfterGreeting: scanner.StatusTimeout,
	scannertest.LongLine:           scanner.StatusTooLarge,
	scannertest.EndlessReply:       scanner.StatusTooLarge,
	scannertest.Garbage:            scanner.StatusNotTLS,
	scannertest.StallAfterUpgrade:  scanner.StatusTimeout,
}

func TestTextUpgradeHostile(t *testing.T) {
	ca := newCA(t)
	cfg := scannertest.TLSConfig(leaf(t, ca, scannertest.CertOptions{CommonName: "mail.test"}), 0, 0)
	for _, proto := range textProtocols {
		for _, b := range scannertest.Behaviours[1:] {
			t.Run(string(proto)+"/"+b.String(), func(t *testing.T) {
				t.Parallel()
				want := textHostileWant[b]
				s, err := scannertest.NewPeer(loopback(t), string(proto), cfg, b)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Close)
				p := textProber(s, proto)
				p.HandshakeTimeout = time.Second
				start := time.Now()
				r := p.Probe(context.Background(), scanner.Target{Addr: s.Addr})
				el := time.Since(start)
				if r.Status != want || r.Protocol != proto || !r.Connected {
					t.Errorf("Probe(%s peer, %s) = %q over %q connected=%v (%s), want %q over %q", proto, b, r.Status, r.Protocol, r.Connected, r.Err, want, proto)
				}
				if r.Err == "" {
					t.Errorf("Probe(%s peer, %s): no error detail", proto, b)
				}
				// Generous slack: this bounds the cost, it does not time the machine.
				if el > 3*p.HandshakeTimeout {
					t.Errorf("Probe(%s peer, %s) took %v, want at most about %v", proto, b, el, p.HandshakeTimeout)
				}
				t.Logf("%s/%s: %s (%s) in %v", proto, b, r.Status, r.Err, el.Round(time.Millisecond))
			})
		}
	}
}

func TestTextSniff(t *testing.T) {
	ca := newCA(t)
	cfg := scannertest.TLSConfig(leaf(t, ca, scannertest.CertOptions{CommonName: "mail.test"}), 0, 0)
	for _, proto := range []scanner.Protocol{scanner.ProtoSMTP, scanner.ProtoFTP, scanner.ProtoIMAP, scanner.ProtoPOP3, scanner.ProtoXMPP, scanner.ProtoMySQL} {
		t.Run(string(proto), func(t *testing.T) {
			t.Parallel()
			s, err := scannertest.NewPeer(loopback(t), string(proto), cfg, scannertest.Normal)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			p := textProber(s, proto)
			p.Protocols = map[uint16]scanner.Protocol{} // implicit TLS on every port
			r := p.Probe(context.Background(), scanner.Target{Addr: s.Addr})
			if r.Status != scanner.StatusOK || r.Protocol != proto {
				t.Errorf("sniffing Probe(%s peer) = %q over %q (%s), want ok over %q", proto, r.Status, r.Protocol, r.Err, proto)
			}
			p.Sniff = false
			r = p.Probe(context.Background(), scanner.Target{Addr: s.Addr})
			if r.Status != scanner.StatusNotTLS || r.Protocol != scanner.ProtoTLS {
				t.Errorf("Probe(%s peer) without sniffing = %q over %q (%s), want not-tls over tls", proto, r.Status, r.Protocol, r.Err)
			}
		})
	}
}

// TestTextPeerVariants runs the peers' optional forms: greetings of several
// lines, capabilities in or out of the greeting, XMPP's stream 'to'.
func TestTextPeerVariants(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "chat.test"})
	cfg := scannertest.TLSConfig(cert, 0, 0)
	n := scannertest.Normal
	tests := []struct {
		name    string
		proto   scanner.Protocol
		handle  func(addr netip.AddrPort) func(net.Conn) // given the peer's address
		sni     string
		want    scanner.Status
		wantErr string
	}{
		{"smtp/multi-line-greeting", scanner.ProtoSMTP, func(netip.AddrPort) func(net.Conn) {
			return scannertest.SMTPPeer(cfg, n, "mail.peer.test ESMTP", "220 is in the text, not the end", "last line")
		}, "", scanner.StatusOK, ""},
		{"ftp/free-text-greeting", scanner.ProtoFTP, func(netip.AddrPort) func(net.Conn) {
			return scannertest.FTPPeer(cfg, n, "peer.test FTP server", "   Authorized use only.", "123 is not our code",
				"220-still going", "", "last line")
		}, "", scanner.StatusOK, ""},
		{"imap/capability-in-greeting", scanner.ProtoIMAP, func(netip.AddrPort) func(net.Conn) {
			return scannertest.IMAPPeer(cfg, n, true)
		}, "", scanner.StatusOK, ""},
		{"imap/capability-command", scanner.ProtoIMAP, func(netip.AddrPort) func(net.Conn) {
			return scannertest.IMAPPeer(cfg, n, false)
		}, "", scanner.StatusOK, ""},
		{"imap/capability-command/no-starttls", scanner.ProtoIMAP, func(netip.AddrPort) func(net.Conn) {
			return scannertest.IMAPPeer(cfg, scannertest.NoUpgrade, false)
		}, "", scanner.StatusNoStartTLS, "does not advertise STARTTLS"},
		{"pop3/no-capa", scanner.ProtoPOP3, func(netip.AddrPort) func(net.Conn) {
			return scannertest.POP3Peer(cfg, n, false)
		}, "", scanner.StatusOK, ""},
		{"pop3/no-capa/no-stls", scanner.ProtoPOP3, func(netip.AddrPort) func(net.Conn) {
			return scannertest.POP3Peer(cfg, scannertest.NoUpgrade, false)
		}, "", scanner.StatusNoStartTLS, "has no CAPA and refused STLS"},
		{"xmpp/to-is-sni", scanner.ProtoXMPP, func(netip.AddrPort) func(net.Conn) {
			return scannertest.XMPPPeer(cfg, n, "chat.test")
		}, "chat.test", scanner.StatusOK, ""},
		{"xmpp/to-is-sni/not-served", scanner.ProtoXMPP, func(netip.AddrPort) func(net.Conn) {
			return scannertest.XMPPPeer(cfg, n, "chat.test")
		}, "other.test", scanner.StatusNoStartTLS, `stream error "host-unknown"`},
		{"xmpp/to-is-address", scanner.ProtoXMPP, func(a netip.AddrPort) func(net.Conn) {
			return scannertest.XMPPPeer(cfg, n, a.Addr().String())
		}, "", scanner.StatusOK, ""},
		{"xmpp/to-is-address/not-served", scanner.ProtoXMPP, func(netip.AddrPort) func(net.Conn) {
			return scannertest.XMPPPeer(cfg, n, "chat.test")
		}, "", scanner.StatusNoStartTLS, `stream error "host-unknown"`},
		{"xmpp-server/to-is-sni", scanner.ProtoXMPPServer, func(netip.AddrPort) func(net.Conn) {
			return scannertest.XMPPPeer(cfg, n, "chat.test")
		}, "chat.test", scanner.StatusOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The handler needs the address before the server exists.
			var handle func(net.Conn)
			ready := make(chan struct{})
			s := startTextServer(t, loopback(t), func(c net.Conn) { <-ready; handle(c) })
			handle = tc.handle(s.Addr)
			close(ready)
			r := textProber(s, tc.proto).Probe(context.Background(), scanner.Target{Addr: s.Addr, SNI: tc.sni})
			if r.Status != tc.want || !strings.Contains(r.Err, tc.wantErr) {
				t.Fatalf("Probe = %q (%s), want %q with %q in the error", r.Status, r.Err, tc.want, tc.wantErr)
			}
			if tc.want == scanner.StatusOK && !slices.Equal(fingerprints(r.Chain), derFingerprints(cert.Certificate)) {
				t.Errorf("chain = %x, want the peer's", fingerprints(r.Chain))
			}
		})
	}
}

// TestTextIPv6 checks the address forms sent over IPv6: SMTP's EHLO literal
// "[IPv6:::1]" (the peer answers 501 to a wrong one) and XMPP's 'to'
// "[::1]" (RFC 7622).
func TestTextIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	ca := newCA(t)
	cfg := scannertest.TLSConfig(leaf(t, ca, scannertest.CertOptions{CommonName: "v6.test"}), 0, 0)
	for proto, handle := range map[scanner.Protocol]func(net.Conn){
		scanner.ProtoSMTP: scannertest.SMTPPeer(cfg, scannertest.Normal),
		scanner.ProtoXMPP: scannertest.XMPPPeer(cfg, scannertest.Normal, "[::1]"),
	} {
		s := startTextServer(t, "[::1]:0", handle)
		r := textProber(s, proto).Probe(context.Background(), scanner.Target{Addr: s.Addr})
		if r.Status != scanner.StatusOK {
			t.Errorf("Probe(%s peer on %v) = %q (%s), want ok", proto, s.Addr, r.Status, r.Err)
		}
	}
}

// scripted sends greeting (if any), then answers each line the client sends
// with the next reply, then waits for the client to hang up.
func scripted(greeting string, replies ...string) func(net.Conn) {
	return func(c net.Conn) {
		if greeting != "" {
			if _, err := c.Write([]byte(greeting)); err != nil {
				return
			}
		}
		br := bufio.NewReader(c)
		for _, r := range replies {
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
			if _, err := c.Write([]byte(r)); err != nil {
				return
			}
		}
		scannertest.Stall(c)
	}
}

// xmppScripted answers the client's stream header (sent in one write, with
// no line end) with reply.
func xmppScripted(reply string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := c.Read(make([]byte, 4096)); err != nil {
			return
		}
		if _, err := c.Write([]byte(reply)); err == nil {
			scannertest.Stall(c)
		}
	}
}

// TestTextReplies runs the replies the peers do not give: refusals in the
// greeting, odd capability lists, peer text with terminal escapes.
func TestTextReplies(t *testing.T) {
	const xmppHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1' version='1.0'>"
	tests := []struct {
		name    string
		proto   scanner.Protocol
		handle  func(net.Conn)
		want    scanner.Status
		wantErr string
	}{
		{"smtp/554-greeting", scanner.ProtoSMTP, scripted("554 5.7.1 No SMTP service here\r\n"),
			scanner.StatusNoStartTLS, `refuses service: 554 "5.7.1 No SMTP service here"`},
		{"smtp/421-multi-line-greeting", scanner.ProtoSMTP, scripted("421-mx.test busy\r\n421 try later\r\n"),
			scanner.StatusNoStartTLS, `421 "mx.test busy try later"`},
		{"smtp/ehlo-rejected", scanner.ProtoSMTP, scripted("220 old.test SMTP\r\n", "502 5.5.2 EHLO not recognized\r\n"),
			scanner.StatusNoStartTLS, "rejects EHLO"},
		{"smtp/starttls-lower-case", scanner.ProtoSMTP, scripted("220 mx.test ESMTP\r\n", "250-mx.test\r\n250-starttls\r\n250 SIZE 1000\r\n", "454 4.7.0 TLS not available\r\n"),
			scanner.StatusNoStartTLS, `refused STARTTLS: 454 "4.7.0 TLS not available"`},
		{"smtp/starttls-lookalike", scanner.ProtoSMTP, scripted("220 mx.test ESMTP\r\n", "250-mx.test\r\n250-STARTTLSX\r\n250 X-STARTTLS\r\n"),
			scanner.StatusNoStartTLS, "does not advertise STARTTLS"},
		{"smtp/escapes-quoted", scanner.ProtoSMTP, scripted("554 \x1b[2J\x1b[31mevil\x07\r\n"),
			scanner.StatusNoStartTLS, `"\x1b[2J\x1b[31mevil\a"`},
		{"smtp/not-smtp", scanner.ProtoSMTP, scripted("HTTP/1.1 400 Bad Request\r\n\r\n"),
			scanner.StatusNotTLS, "expected a reply code"},
		{"ftp/421-greeting", scanner.ProtoFTP, scripted("421 Too many users\r\n"),
			scanner.StatusNoStartTLS, `refuses service: 421 "Too many users"`},
		{"ftp/120-then-220", scanner.ProtoFTP, scripted("120 Ready in 1 minute\r\n220 Ready\r\n", "534 Request denied for policy reasons\r\n"),
			scanner.StatusNoStartTLS, "refused AUTH TLS: 534"},
		{"ftp/334", scanner.ProtoFTP, scripted("220 FTP\r\n", "334 ADAT=needed\r\n"),
			scanner.StatusNoStartTLS, "refused AUTH TLS: 334"},
		{"imap/bye-greeting", scanner.ProtoIMAP, scripted("* BYE too many connections\r\n"),
			scanner.StatusNoStartTLS, "refuses service"},
		{"imap/preauth-starttls-bad", scanner.ProtoIMAP, scripted("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome back\r\n", "a002 BAD not in authenticated state\r\n"),
			scanner.StatusNoStartTLS, `refused STARTTLS: "a002 BAD`},
		{"imap/capability-no", scanner.ProtoIMAP, scripted("* OK ready\r\n", "* OK [ALERT] hello\r\na001 NO go away\r\n"),
			scanner.StatusNoStartTLS, "refused CAPABILITY"},
		{"imap/bye-mid-reply", scanner.ProtoIMAP, scripted("* OK ready\r\n", "* BYE shutting down\r\n"),
			scanner.StatusNoStartTLS, "closed the connection"},
		{"imap/continuation", scanner.ProtoIMAP, scripted("* OK ready\r\n", "+ go ahead\r\n"),
			scanner.StatusNotTLS, "expected an IMAP response"},
		{"imap/not-imap", scanner.ProtoIMAP, scripted("220 mx.test ESMTP\r\n"),
			scanner.StatusNotTLS, "expected an IMAP greeting"},
		{"pop3/err-greeting", scanner.ProtoPOP3, scripted("-ERR [SYS/TEMP] maintenance\r\n"),
			scanner.StatusNoStartTLS, "refuses service"},
		{"pop3/capa-dot-stuffed", scanner.ProtoPOP3, scripted("+OK ready\r\n", "+OK\r\n..\r\nSTLS\r\n.\r\n", "-ERR no\r\n"),
			scanner.StatusNoStartTLS, `refused STLS: "-ERR no"`},
		{"pop3/odd-capa-reply", scanner.ProtoPOP3, scripted("+OK ready\r\n", "what?\r\n"),
			scanner.StatusNotTLS, "expected a POP3 reply to CAPA"},
		{"xmpp/see-other-host", scanner.ProtoXMPP, xmppScripted(xmppHeader +
			"<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>[2001:db8::1]:5222</see-other-host>" +
			"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>moved</text></stream:error></stream:stream>"),
			scanner.StatusNoStartTLS, `stream error "see-other-host"`},
		{"xmpp/stream-closed", scanner.ProtoXMPP, xmppScripted(xmppHeader + "</stream:stream>"),
			scanner.StatusNoStartTLS, "closed the stream"},
		{"xmpp/not-a-stream", scanner.ProtoXMPP, xmppScripted("<html><body>hi</body></html>"),
			scanner.StatusNotTLS, "expected an XMPP stream header"},
		{"xmpp/malformed", scanner.ProtoXMPP, xmppScripted(xmppHeader + "<stream:features><a></b>"),
			scanner.StatusNotTLS, "malformed XML"},
		{"xmpp/hang-up-mid-stream", scanner.ProtoXMPP, func(c net.Conn) {
			_, _ = c.Read(make([]byte, 4096))
			_, _ = c.Write([]byte(xmppHeader + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"))
			_ = c.(*net.TCPConn).CloseWrite()
			scannertest.Stall(c)
		}, scanner.StatusReset, ""},
		{"xmpp/starttls-wrong-namespace", scanner.ProtoXMPP, xmppScripted(xmppHeader + "<stream:features><starttls xmlns='urn:example'/></stream:features>"),
			scanner.StatusNoStartTLS, "does not offer <starttls/>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startTextServer(t, loopback(t), tc.handle)
			r := textProber(s, tc.proto).Probe(context.Background(), scanner.Target{Addr: s.Addr})
			if r.Status != tc.want || !strings.Contains(r.Err, tc.wantErr) {
				t.Errorf("Probe = %q (%s), want %q with %q in the error", r.Status, r.Err, tc.want, tc.wantErr)
			}
		})
	}
}
