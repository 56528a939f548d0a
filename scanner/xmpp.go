package scanner

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

func init() {
	upgraders[ProtoXMPP] = xmppUpgrader(ProtoXMPP, "jabber:client")
	upgraders[ProtoXMPPServer] = xmppUpgrader(ProtoXMPPServer, "jabber:server")
}

// XMPP namespaces (RFC 6120).
const (
	nsXMPPStreams = "http://etherx.jabber.org/streams"
	nsXMPPTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsXMPPErrors  = "urn:ietf:params:xml:ns:xmpp-streams"
)

// maxXMLTokens bounds the XML a server may send before <proceed/>: a real
// stream header and feature list are a few dozen tokens, and the byte cap
// alone would let a peer send a million empty elements.
const maxXMLTokens = 10000

// xmppUpgrader speaks RFC 6120 up to TLS (§5.4): open a stream to s.Name in
// namespace ns, read the server's stream header and features, and send
// <starttls/> if offered.
func xmppUpgrader(proto Protocol, ns string) upgrader {
	return func(s *session) (net.Conn, error) {
		var to strings.Builder
		_ = xml.EscapeText(&to, []byte(xmppDomain(s.Name)))
		open := fmt.Sprintf("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' to='%s' version='1.0'>",
			ns, nsXMPPStreams, to.String())
		if err := s.Write([]byte(open)); err != nil {
			return nil, err
		}
		if err := xmppFirstTag(s); err != nil {
			return nil, err
		}
		// Given an io.ByteReader the decoder reads through it without a
		// buffer of its own, so it never consumes bytes beyond the element
		// it returns: nothing of the server's TLS is lost.
		x := &xmppStream{proto: proto, r: byteReader{Reader: s.Reader()}}
		x.d = xml.NewDecoder(&x.r)
		el, err := x.element()
		if err != nil {
			return nil, err
		}
		if el.Name.Local != "stream" || el.Name.Space != nsXMPPStreams {
			return nil, x.unexpected("an XMPP stream header", el)
		}
		if el, err = x.element(); err != nil {
			return nil, err
		}
		if el.Name.Local != "features" || el.Name.Space != nsXMPPStreams {
			return nil, x.unexpected("<stream:features>", el)
		}
		offered, err := x.offersStartTLS()
		if err != nil {
			return nil, err
		}
		if !offered {
			return nil, noStartTLS(proto, "does not offer <starttls/> in its stream features")
		}
		if err := s.Write([]byte("<starttls xmlns='" + nsXMPPTLS + "'/>")); err != nil {
			return nil, err
		}
		if el, err = x.element(); err != nil {
			return nil, err
		}
		switch {
		case el.Name.Local == "proceed" && el.Name.Space == nsXMPPTLS:
			return s.TLSConn(), nil
		case el.Name.Local == "failure" && el.Name.Space == nsXMPPTLS:
			return nil, noStartTLS(proto, "refused <starttls/> with <failure/>")
		}
		return nil, x.unexpected("<proceed/>", el)
	}
}

// xmppFirstTag reads up to the server's first '<'. The decoder reports text
// only once a '<' ends it, so a server that is not XMPP (an SMTP greeting on
// 5222, binary junk) would otherwise hold the probe until its deadline.
func xmppFirstTag(s *session) error {
	br := s.Reader()
	for {
		b, err := br.Peek(1)
		if err != nil {
			return err
		}
		switch b[0] {
		case '<':
			return nil
		case ' ', '\t', '\r', '\n':
			_, _ = br.ReadByte()
			continue
		}
		got, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(got, '\n'); i >= 0 {
			got = got[:i]
		}
		return unexpected("an XMPP stream header", string(got))
	}
}

// xmppDomain is the stream's "to" for name: an IPv6 address goes in
// brackets, as the domainpart of an XMPP address (RFC 7622 §3.2).
func xmppDomain(name string) string {
	ip, err := netip.ParseAddr(name)
	switch {
	case err != nil:
		return name
	case ip.Unmap().Is4():
		return ip.Unmap().String()
	}
	return "[" + ip.WithZone("").String() + "]"
}

// xmppStream reads the server's side of the stream, at most maxXMLTokens
// tokens.
type xmppStream struct {
	proto  Protocol
	r      byteReader
	d      *xml.Decoder
	tokens int
}

// byteReader keeps the last read error, which tells a failed read (timeout,
// byte cap, hang-up) from XML the decoder rejects.
type byteReader struct {
	*bufio.Reader
	err error
}

func (r *byteReader) ReadByte() (byte, error) {
	b, err := r.Reader.ReadByte()
	if err != nil {
		r.err = err
	}
	return b, err
}

func (x *xmppStream) token() (xml.Token, error) {
	if x.tokens++; x.tokens > maxXMLTokens {
		return nil, boundError(fmt.Sprintf("%s server sent more than %d XML tokens before TLS", x.proto, maxXMLTokens))
	}
	t, err := x.d.Token()
	switch {
	case err == nil:
		return t, nil
	case x.r.err != nil:
		// The decoder turns a hang-up inside the stream into a syntax
		// error; the read's own error classifies it right.
		return nil, x.r.err
	}
	return nil, &protocolError{msg: fmt.Sprintf("%s server sent malformed XML: %s", x.proto, quote(err.Error()))}
}

// element returns the next element start, skipping text between elements
// (whitespace keepalives), comments and processing instructions (the XML
// declaration). A </stream:stream> ends the search.
func (x *xmppStream) element() (xml.StartElement, error) {
	for {
		t, err := x.token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if t.Name.Local == "error" && t.Name.Space == nsXMPPStreams {
				return xml.StartElement{}, x.streamError()
			}
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, noStartTLS(x.proto, "closed the stream before TLS")
		}
	}
}

// offersStartTLS reads the children of <stream:features> up to its end and
// reports whether one is <starttls/>.
func (x *xmppStream) offersStartTLS() (bool, error) {
	offered := false
	for depth := 0; ; {
		t, err := x.token()
		if err != nil {
			return false, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if depth == 0 && t.Name.Local == "starttls" && t.Name.Space == nsXMPPTLS {
				offered = true
			}
			depth++
		case xml.EndElement:
			if depth == 0 {
				return offered, nil
			}
			depth--
		}
	}
}

// streamError reads a <stream:error> and reports its condition (RFC 6120
// §4.9.3): the server speaks XMPP but will not go on with this stream.
func (x *xmppStream) streamError() error {
	cond := ""
	for depth := 0; ; {
		t, err := x.token()
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if depth == 0 && cond == "" && t.Name.Space == nsXMPPErrors && t.Name.Local != "text" {
				cond = t.Name.Local
			}
			depth++
		case xml.EndElement:
			if depth > 0 {
				depth--
				continue
			}
			why := "ended the stream with an error"
			if cond != "" {
				why = "sent stream error " + quote(cond)
			}
			if cond == "host-unknown" {
				why += ": it does not serve the domain sent as the stream's 'to' (the SNI name, else the address)"
			}
			return noStartTLS(x.proto, why)
		}
	}
}

// unexpected reports an element other than the one the stream needs next.
func (x *xmppStream) unexpected(want string, got xml.StartElement) error {
	return unexpected(want, "<"+got.Name.Local+" xmlns='"+got.Name.Space+"'>")
}
