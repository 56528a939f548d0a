package scannertest

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
)

func init() {
	peers["ftp"] = func(cfg *tls.Config, b Behaviour) func(net.Conn) { return FTPPeer(cfg, b) }
}

// FTPPeer returns an FTP server (RFC 959, AUTH TLS per RFC 4217). Its
// greeting is the given lines (default: one line naming FTP): several make
// a multi-line 220 reply whose first line is "220-" and last "220 ", and
// whose inner lines are sent as they are, free text as RFC 959 §4.2 allows.
//
// Behaviours: NoUpgrade answers AUTH 502 (a server without RFC 2228),
// RefuseUpgrade answers AUTH TLS 431, LongLine sends an endless greeting
// line, EndlessReply sends a greeting banner that never ends, Garbage sends
// binary junk instead of a greeting.
func FTPPeer(cfg *tls.Config, b Behaviour, greeting ...string) func(net.Conn) {
	if len(greeting) == 0 {
		greeting = []string{"peer.test FTP server ready"}
	}
	reply := []string{"220 " + greeting[0]}
	if n := len(greeting); n > 1 {
		reply = append([]string{"220-" + greeting[0]}, greeting[1:n-1]...)
		reply = append(reply, "220 "+greeting[n-1])
	}
	return func(c net.Conn) {
		t := newTextConn(c)
		switch b {
		case LongLine:
			textFloodLine(c, "220 ")
			return
		case Garbage:
			sendTextGarbage(c)
			return
		case EndlessReply:
			_ = t.send("220-Welcome to the peer.test FTP banner")
			textFloodLines(c, func(i int) string { return fmt.Sprintf("  banner line %d\r\n", i) })
			return
		}
		if t.send(reply...) != nil {
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
			cmd, arg, _ := strings.Cut(line, " ")
			switch strings.ToUpper(cmd) {
			case "AUTH":
				switch {
				case b == NoUpgrade:
					err = t.send("502 Command not implemented.")
				case !strings.EqualFold(arg, "TLS"):
					err = t.send("504 Security mechanism not understood.")
				case b == RefuseUpgrade:
					err = t.send("431 Need some unavailable resource to process security.")
				default:
					if t.send("234 AUTH TLS successful") != nil {
						return
					}
					textUpgrade(c, cfg, b)
					return
				}
			case "FEAT":
				feats := []string{"211-Features:", " UTF8", " EPSV"}
				if b != NoUpgrade {
					feats = append(feats, " AUTH TLS", " PBSZ", " PROT")
				}
				err = t.send(append(feats, "211 End")...)
			case "NOOP":
				err = t.send("200 NOOP ok.")
			case "QUIT":
				_ = t.send("221 Goodbye.")
				return
			default:
				err = t.send("500 Unknown command.")
			}
			if err != nil {
				return
			}
		}
	}
}
