package scanner

import "net"

func init() { upgraders[ProtoFTP] = upgradeFTP }

// upgradeFTP speaks RFC 959 up to AUTH TLS (RFC 4217 §4): greeting, then
// AUTH TLS, which a willing server answers 234.
func upgradeFTP(s *session) (net.Conn, error) {
	code, lines, err := s.ReadReply()
	if err != nil {
		return nil, err
	}
	if code == 120 {
		// "Service ready in nnn minutes": 220 follows (RFC 959 §5.4).
		if code, lines, err = s.ReadReply(); err != nil {
			return nil, err
		}
	}
	if code != 220 {
		return nil, noStartTLS(ProtoFTP, "refuses service: "+replyQuote(code, lines))
	}
	if err := s.WriteLine("AUTH TLS"); err != nil {
		return nil, err
	}
	if code, lines, err = s.ReadReply(); err != nil {
		return nil, err
	}
	// 234 is the only success (RFC 4217 §4). RFC 2228's 334 asks for ADAT
	// security data, which TLS never uses, and 4xx/5xx refuse or do not
	// know AUTH: either way this server will not start TLS for us.
	if code != 234 {
		return nil, noStartTLS(ProtoFTP, "refused AUTH TLS: "+replyQuote(code, lines))
	}
	return s.TLSConn(), nil
}
