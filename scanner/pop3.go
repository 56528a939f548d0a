package scanner

import (
	"net"
	"strings"
)

func init() { upgraders[ProtoPOP3] = upgradePOP3 }

// upgradePOP3 speaks POP3 (RFC 1939) up to STLS (RFC 2595 §4): greeting,
// CAPA (RFC 2449), STLS.
func upgradePOP3(s *session) (net.Conn, error) {
	greeting, err := s.ReadLine()
	if err != nil {
		return nil, err
	}
	switch pop3Status(greeting) {
	case "+OK":
	case "-ERR":
		return nil, noStartTLS(ProtoPOP3, "refuses service: "+quote(greeting))
	default:
		return nil, unexpected("a POP3 greeting (+OK)", greeting)
	}
	if err := s.WriteLine("CAPA"); err != nil {
		return nil, err
	}
	reply, err := s.ReadLine()
	if err != nil {
		return nil, err
	}
	withCAPA := false
	switch pop3Status(reply) {
	case "+OK":
		withCAPA = true
		caps, err := pop3List(s)
		if err != nil {
			return nil, err
		}
		if !listsKeyword(caps, "STLS") {
			return nil, noStartTLS(ProtoPOP3, "does not advertise STLS")
		}
	case "-ERR":
		// RFC 2595 predates CAPA: a server without CAPA may still know STLS.
	default:
		return nil, unexpected("a POP3 reply to CAPA (+OK or -ERR)", reply)
	}
	if err := s.WriteLine("STLS"); err != nil {
		return nil, err
	}
	if reply, err = s.ReadLine(); err != nil {
		return nil, err
	}
	switch pop3Status(reply) {
	case "+OK":
		return s.TLSConn(), nil
	case "-ERR":
		why := "refused STLS: "
		if !withCAPA {
			why = "has no CAPA and refused STLS: "
		}
		return nil, noStartTLS(ProtoPOP3, why+quote(reply))
	}
	return nil, unexpected("a POP3 reply to STLS (+OK or -ERR)", reply)
}

// pop3Status is a reply's status indicator, "+OK" or "-ERR" (upper-cased),
// or "" if the line has none.
func pop3Status(line string) string {
	ind, _, _ := strings.Cut(line, " ")
	if ind = strings.ToUpper(ind); ind == "+OK" || ind == "-ERR" {
		return ind
	}
	return ""
}

// pop3List reads the rest of a multi-line reply, up to its "." line,
// undoing the dot-stuffing (RFC 1939 §3).
func pop3List(s *session) ([]string, error) {
	var lines []string
	for range maxReplyLines {
		line, err := s.ReadLine()
		if err != nil {
			return nil, err
		}
		if line == "." {
			return lines, nil
		}
		lines = append(lines, strings.TrimPrefix(line, "."))
	}
	return nil, tooManyLines(ProtoPOP3)
}
