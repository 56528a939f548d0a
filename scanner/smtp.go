package scanner

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

func init() { upgraders[ProtoSMTP] = upgradeSMTP }

// upgradeSMTP speaks RFC 5321 up to STARTTLS (RFC 3207): greeting, EHLO,
// STARTTLS if the EHLO reply lists it.
func upgradeSMTP(s *session) (net.Conn, error) {
	code, lines, err := s.ReadReply()
	if err != nil {
		return nil, err
	}
	if code != 220 {
		// 554 (or 421) instead of 220: the server speaks SMTP but will not
		// serve us (RFC 5321 §3.1).
		return nil, noStartTLS(ProtoSMTP, "refuses service: "+replyQuote(code, lines))
	}
	if err := s.WriteLine("EHLO " + ehloLiteral(s.LocalAddr())); err != nil {
		return nil, err
	}
	if code, lines, err = s.ReadReply(); err != nil {
		return nil, err
	}
	if code != 250 {
		// A server that rejects EHLO predates ESMTP: HELO would work, but
		// STARTTLS is an extension, so it cannot be offered.
		return nil, noStartTLS(ProtoSMTP, "rejects EHLO, so has no extensions such as STARTTLS: "+replyQuote(code, lines))
	}
	if !listsKeyword(lines[1:], "STARTTLS") { // line 1 is the server's name
		return nil, noStartTLS(ProtoSMTP, "does not advertise STARTTLS")
	}
	if err := s.WriteLine("STARTTLS"); err != nil {
		return nil, err
	}
	if code, lines, err = s.ReadReply(); err != nil {
		return nil, err
	}
	if code != 220 {
		return nil, noStartTLS(ProtoSMTP, "refused STARTTLS: "+replyQuote(code, lines))
	}
	return s.TLSConn(), nil
}

// listsKeyword reports whether one of lines (an EHLO reply's keywords, a
// POP3 CAPA list) starts with keyword, case-insensitively.
func listsKeyword(lines []string, keyword string) bool {
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], keyword) {
			return true
		}
	}
	return false
}

// replyQuote shows an SMTP or FTP reply for an error: the code, and the
// peer's text quoted.
func replyQuote(code int, lines []string) string {
	return fmt.Sprintf("%d %s", code, quote(strings.Join(lines, " ")))
}

// ehloLiteral is the EHLO argument for a client without a domain name of
// its own: its address as an RFC 5321 §4.1.3 literal, "[192.0.2.1]" or
// "[IPv6:2001:db8::1]".
func ehloLiteral(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return "[127.0.0.1]" // not TCP: cannot happen for a probe
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is4() {
		return "[" + ip.String() + "]"
	}
	return "[IPv6:" + ip.String() + "]"
}
