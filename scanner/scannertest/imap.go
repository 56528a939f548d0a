package scannertest

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
)

func init() {
	peers["imap"] = func(cfg *tls.Config, b Behaviour) func(net.Conn) { return IMAPPeer(cfg, b, true) }
}

// IMAPPeer returns an IMAP server (RFC 9051, STARTTLS §6.2.1). With
// capsInGreeting its greeting carries a [CAPABILITY ...] response code, as
// Dovecot's does; without, a client must send CAPABILITY to learn of
// STARTTLS.
//
// Behaviours: NoUpgrade leaves STARTTLS out of the capabilities (and answers
// it BAD), RefuseUpgrade answers STARTTLS NO, LongLine sends an endless
// greeting line, EndlessReply answers any command with untagged lines that
// never end, Garbage sends binary junk instead of a greeting.
func IMAPPeer(cfg *tls.Config, b Behaviour, capsInGreeting bool) func(net.Conn) {
	caps := "IMAP4rev2 IMAP4rev1 SASL-IR LOGINDISABLED"
	if b != NoUpgrade {
		caps = "IMAP4rev2 IMAP4rev1 SASL-IR STARTTLS LOGINDISABLED"
	}
	greeting := "* OK IMAP peer.test ready"
	if capsInGreeting {
		greeting = "* OK [CAPABILITY " + caps + "] IMAP peer.test ready"
	}
	return func(c net.Conn) {
		t := newTextConn(c)
		switch b {
		case LongLine:
			textFloodLine(c, "* OK ")
			return
		case Garbage:
			sendTextGarbage(c)
			return
		}
		if t.send(greeting) != nil {
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
			tag, cmd, _ := strings.Cut(line, " ")
			if b == EndlessReply {
				textFloodLines(c, func(i int) string { return fmt.Sprintf("* OK still working %d\r\n", i) })
				return
			}
			switch strings.ToUpper(cmd) {
			case "CAPABILITY":
				err = t.send("* CAPABILITY "+caps, tag+" OK CAPABILITY completed")
			case "STARTTLS":
				switch b {
				case NoUpgrade:
					err = t.send(tag + " BAD Unknown command")
				case RefuseUpgrade:
					err = t.send(tag + " NO [UNAVAILABLE] TLS not available")
				default:
					if t.send(tag+" OK Begin TLS negotiation now") != nil {
						return
					}
					textUpgrade(c, cfg, b)
					return
				}
			case "NOOP":
				err = t.send(tag + " OK NOOP completed")
			case "LOGOUT":
				_ = t.send("* BYE IMAP peer.test logging out", tag+" OK LOGOUT completed")
				return
			default:
				err = t.send(tag + " BAD Unknown command")
			}
			if err != nil {
				return
			}
		}
	}
}
