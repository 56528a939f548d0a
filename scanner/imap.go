package scanner

import (
	"net"
	"slices"
	"strings"
)

func init() { upgraders[ProtoIMAP] = upgradeIMAP }

// upgradeIMAP speaks IMAP (RFC 3501, RFC 9051) up to STARTTLS: greeting,
// CAPABILITY unless the greeting carries it, then STARTTLS.
func upgradeIMAP(s *session) (net.Conn, error) {
	greeting, err := s.ReadLine()
	if err != nil {
		return nil, err
	}
	f := strings.SplitN(greeting, " ", 3)
	if len(f) < 2 || f[0] != "*" {
		return nil, unexpected("an IMAP greeting (* OK)", greeting)
	}
	switch strings.ToUpper(f[1]) {
	case "OK":
	case "PREAUTH":
		// STARTTLS is only valid before authentication (RFC 9051 §6.2.1),
		// but asking costs one line and a lax server may still agree.
	case "BYE":
		return nil, noStartTLS(ProtoIMAP, "refuses service: "+quote(greeting))
	default:
		return nil, unexpected("an IMAP greeting (* OK)", greeting)
	}
	var caps []string
	if len(f) == 3 && len(f[2]) > len("[CAPABILITY ") && strings.EqualFold(f[2][:len("[CAPABILITY ")], "[CAPABILITY ") {
		if end := strings.IndexByte(f[2], ']'); end > 0 {
			caps = strings.Fields(f[2][len("[CAPABILITY "):end])
		}
	}
	if caps == nil {
		status, line, untagged, err := imapCommand(s, "a001", "CAPABILITY")
		if err != nil {
			return nil, err
		}
		if status != "OK" {
			return nil, noStartTLS(ProtoIMAP, "refused CAPABILITY: "+quote(line))
		}
		caps = untagged
	}
	if !slices.ContainsFunc(caps, func(c string) bool { return strings.EqualFold(c, "STARTTLS") }) {
		return nil, noStartTLS(ProtoIMAP, "does not advertise STARTTLS")
	}
	status, line, _, err := imapCommand(s, "a002", "STARTTLS")
	if err != nil {
		return nil, err
	}
	if status != "OK" {
		return nil, noStartTLS(ProtoIMAP, "refused STARTTLS: "+quote(line))
	}
	return s.TLSConn(), nil
}

// imapCommand sends a tagged command and reads up to its tagged completion,
// at most maxReplyLines lines. It returns the completion's status (OK, NO or
// BAD, upper-cased), the completion line, and the capabilities listed by
// any untagged CAPABILITY response.
func imapCommand(s *session, tag, cmd string) (status, line string, caps []string, err error) {
	if err := s.WriteLine(tag + " " + cmd); err != nil {
		return "", "", nil, err
	}
	for range maxReplyLines {
		line, err := s.ReadLine()
		if err != nil {
			return "", "", nil, err
		}
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == tag:
			return strings.ToUpper(f[1]), line, caps, nil
		case len(f) >= 2 && f[0] == "*" && strings.EqualFold(f[1], "CAPABILITY"):
			caps = append(caps, f[2:]...)
		case len(f) >= 2 && f[0] == "*" && strings.EqualFold(f[1], "BYE"):
			return "", "", nil, noStartTLS(ProtoIMAP, "closed the connection: "+quote(line))
		case len(f) >= 1 && f[0] == "*":
			// Other untagged data (OK [ALERT], ...) does not concern us.
		default:
			return "", "", nil, unexpected("an IMAP response to "+cmd, line)
		}
	}
	return "", "", nil, tooManyLines(ProtoIMAP)
}
