package scannertest

import (
	"bufio"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
)

func init() {
	// One peer serves both: it answers in the namespace the client opened.
	peers["xmpp"] = func(cfg *tls.Config, b Behaviour) func(net.Conn) { return XMPPPeer(cfg, b) }
	peers["xmpp-server"] = peers["xmpp"]
}

const (
	xmppStreamsNS = "http://etherx.jabber.org/streams"
	xmppTLSNS     = "urn:ietf:params:xml:ns:xmpp-tls"
	xmppErrorsNS  = "urn:ietf:params:xml:ns:xmpp-streams"
)

// XMPPPeer returns an XMPP server (RFC 6120) for client (jabber:client) or
// server-to-server (jabber:server) streams. Like Prosody it offers
// <starttls/> only on a stream whose 'to' is a domain it serves, and ends
// any other with a host-unknown stream error; with no servedNames it serves
// every domain.
//
// Behaviours, after reading the client's stream header: NoUpgrade lists no
// <starttls/> in its features, RefuseUpgrade answers <starttls/> with
// <failure/>, StallAfterGreeting sends its stream header and then nothing,
// LongLine sends a stream header with an attribute that never ends,
// EndlessReply sends features that never end, Garbage sends binary junk.
func XMPPPeer(cfg *tls.Config, b Behaviour, servedNames ...string) func(net.Conn) {
	return func(c net.Conn) {
		// The client's part before TLS is a header and one element: 64 KiB
		// and a few hundred tokens bound what a peer reads.
		br := bufio.NewReader(io.LimitReader(c, 64<<10))
		if !xmppStartsTag(br) {
			// Not XML (a TLS ClientHello, say): a stream header and a
			// stream error, as RFC 6120 §4.9.1.2 requires. Checked here
			// because the decoder only rejects text once a '<' ends it.
			xmppEnd(c, xmppOpen("jabber:client", "")+xmppStreamError("not-well-formed"))
			return
		}
		d := xml.NewDecoder(br)
		tokens := 0
		next := func() (xml.StartElement, error) {
			for tokens < 500 {
				tokens++
				t, err := d.Token()
				if err != nil {
					return xml.StartElement{}, err
				}
				if el, ok := t.(xml.StartElement); ok {
					return el, nil
				}
			}
			return xml.StartElement{}, errors.New("too many XML tokens")
		}
		hdr, err := next()
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			xmppEnd(c, xmppOpen("jabber:client", "")+xmppStreamError("not-well-formed"))
			return
		}
		if err != nil {
			return
		}
		ns, to := "", ""
		for _, a := range hdr.Attr {
			switch {
			case a.Name.Space == "" && a.Name.Local == "xmlns":
				ns = a.Value
			case a.Name.Space == "" && a.Name.Local == "to":
				to = a.Value
			}
		}
		switch {
		case hdr.Name.Space != xmppStreamsNS || hdr.Name.Local != "stream",
			ns != "jabber:client" && ns != "jabber:server":
			xmppEnd(c, xmppOpen("jabber:client", "")+xmppStreamError("invalid-namespace"))
			return
		case b == Garbage:
			sendTextGarbage(c)
			return
		case b == LongLine:
			textFloodLine(c, "<?xml version='1.0'?><stream:stream xmlns='"+ns+"' xmlns:stream='"+xmppStreamsNS+"' id='")
			return
		case len(servedNames) > 0 && !slices.ContainsFunc(servedNames, func(n string) bool { return strings.EqualFold(n, to) }):
			xmppEnd(c, xmppOpen(ns, "")+xmppStreamError("host-unknown"))
			return
		}
		open := xmppOpen(ns, to)
		switch b {
		case StallAfterGreeting:
			if _, err := io.WriteString(c, open); err == nil {
				Stall(c)
			}
			return
		case EndlessReply:
			if _, err := io.WriteString(c, open+"<stream:features>"); err == nil {
				textFloodLines(c, func(i int) string { return fmt.Sprintf("<x-feature-%d xmlns='urn:example:endless'/>\n", i) })
			}
			return
		}
		features := "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>"
		if b != NoUpgrade {
			features += "<starttls xmlns='" + xmppTLSNS + "'><required/></starttls>"
		}
		if _, err := io.WriteString(c, open+"<stream:features>"+features+"</stream:features>"); err != nil {
			return
		}
		el, err := next()
		if err != nil {
			return
		}
		if el.Name.Space != xmppTLSNS || el.Name.Local != "starttls" {
			xmppEnd(c, xmppStreamError("policy-violation"))
			return
		}
		if b == NoUpgrade || b == RefuseUpgrade {
			xmppEnd(c, "<failure xmlns='"+xmppTLSNS+"'/></stream:stream>")
			return
		}
		if _, err := io.WriteString(c, "<proceed xmlns='"+xmppTLSNS+"'/>"); err != nil {
			return
		}
		textUpgrade(c, cfg, b)
	}
}

// xmppStartsTag skips whitespace and reports whether the client's bytes
// start with '<'; false on a read error too.
func xmppStartsTag(br *bufio.Reader) bool {
	for {
		b, err := br.ReadByte()
		switch {
		case err != nil:
			return false
		case b == '<':
			return br.UnreadByte() == nil
		case b != ' ' && b != '\t' && b != '\r' && b != '\n':
			return false
		}
	}
}

// xmppOpen is the server's stream header, answering a stream to domain
// (empty if the header must go out before the client's is understood).
func xmppOpen(ns, domain string) string {
	from := ""
	if domain != "" {
		var esc strings.Builder
		_ = xml.EscapeText(&esc, []byte(domain))
		from = " from='" + esc.String() + "'"
	}
	return "<?xml version='1.0'?><stream:stream xmlns='" + ns + "' xmlns:stream='" + xmppStreamsNS +
		"' id='certsweep-peer-1'" + from + " version='1.0'>"
}

// xmppStreamError is a stream error with condition cond, closing the stream.
func xmppStreamError(cond string) string {
	return "<stream:error><" + cond + " xmlns='" + xmppErrorsNS + "'/></stream:error></stream:stream>"
}

// xmppEnd sends the last of a stream and closes the peer's side, then waits
// for the client to hang up: closing at once, with the client's bytes
// unread, would reset the connection and could destroy what was sent.
func xmppEnd(c net.Conn, last string) {
	if _, err := io.WriteString(c, last); err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	Stall(c)
}
