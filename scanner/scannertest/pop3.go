package scannertest

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
)

func init() {
	peers["pop3"] = func(cfg *tls.Config, b Behaviour) func(net.Conn) { return POP3Peer(cfg, b, true) }
}

// POP3Peer returns a POP3 server (RFC 1939, STLS per RFC 2595). With capa
// it answers CAPA (RFC 2449); without, it answers CAPA -ERR as servers
// older than RFC 2449 do, but still knows STLS (unless NoUpgrade).
//
// Behaviours: NoUpgrade leaves STLS out of CAPA and answers it -ERR,
// RefuseUpgrade answers STLS -ERR, LongLine sends an endless greeting line,
// EndlessReply answers CAPA with a list that never ends, Garbage sends
// binary junk instead of a greeting.
func POP3Peer(cfg *tls.Config, b Behaviour, capa bool) func(net.Conn) {
	caps := []string{"+OK Capability list follows", "TOP", "UIDL", "RESP-CODES", "PIPELINING"}
	if b != NoUpgrade {
		caps = append(caps, "STLS")
	}
	caps = append(caps, ".")
	return func(c net.Conn) {
		t := newTextConn(c)
		switch b {
		case LongLine:
			textFloodLine(c, "+OK ")
			return
		case Garbage:
			sendTextGarbage(c)
			return
		}
		if t.send("+OK POP3 peer.test ready") != nil {
			return
		}
		if b == StallAfterGreeting {
			Stall(c)
			return
		}
		for {
			line, err := t.line()
			if err != nil {
				return
			}
			cmd, _, _ := strings.Cut(line, " ")
			switch strings.ToUpper(cmd) {
			case "CAPA":
				switch {
				case b == EndlessReply:
					_ = t.send("+OK Capability list follows")
					textFloodLines(c, func(i int) string { return fmt.Sprintf("X-ENDLESS-%d\r\n", i) })
					return
				case capa:
					err = t.send(caps...)
				default:
					err = t.send("-ERR unknown command")
				}
			case "STLS":
				switch b {
				case NoUpgrade:
					err = t.send("-ERR unknown command")
				case RefuseUpgrade:
					err = t.send("-ERR [SYS/TEMP] TLS not available")
				default:
					if t.send("+OK Begin TLS negotiation") != nil {
						return
					}
					textUpgrade(c, cfg, b)
					return
				}
			case "NOOP":
				err = t.send("+OK")
			case "QUIT":
				_ = t.send("+OK Bye")
				return
			default:
				err = t.send("-ERR unknown command")
			}
			if err != nil {
				return
			}
		}
	}
}
