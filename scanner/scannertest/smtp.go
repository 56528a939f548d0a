package scannertest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

func init() {
	peers["smtp"] = func(cfg *tls.Config, b Behaviour) func(net.Conn) { return SMTPPeer(cfg, b) }
}

// SMTPPeer returns an SMTP server (RFC 5321, STARTTLS per RFC 3207) whose
// greeting is the given lines (a multi-line 220 reply if several; a default
// one-line greeting if none).
//
// Behaviours: NoUpgrade leaves STARTTLS out of the EHLO reply (and answers
// it 502), RefuseUpgrade answers STARTTLS 454, LongLine sends an endless
// greeting line, EndlessReply answers EHLO with 250- lines that never end,
// Garbage sends binary junk instead of a greeting.
//
// It checks an EHLO address literal against the client's address, and
// answers 501 if they differ: stricter than RFC 5321 §4.1.4 allows a real
// server to be, so that tests catch a wrong literal.
func SMTPPeer(cfg *tls.Config, b Behaviour, greeting ...string) func(net.Conn) {
	if len(greeting) == 0 {
		greeting = []string{"mail.peer.test ESMTP certsweep test peer"}
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
		}
		if t.send(textReply("220", greeting)...) != nil {
			return
		}
		if b == StallAfterGreeting {
			Stall(c)
			return
		}
		ehlo := false
		for {
			line, err := t.line()
			if err != nil {
				return
			}
			verb, arg, _ := strings.Cut(line, " ")
			switch strings.ToUpper(verb) {
			case "EHLO":
				if !validEHLO(arg, c.RemoteAddr()) {
					err = t.send("501 5.5.4 Invalid EHLO argument " + arg)
					break
				}
				if b == EndlessReply {
					textFloodLines(c, func(i int) string { return fmt.Sprintf("250-X-ENDLESS-%d\r\n", i) })
					return
				}
				ehlo = true
				exts := []string{"mail.peer.test", "PIPELINING", "SIZE 10240000"}
				if b != NoUpgrade {
					exts = append(exts, "STARTTLS")
				}
				err = t.send(textReply("250", append(exts, "8BITMIME"))...)
			case "HELO":
				err = t.send("250 mail.peer.test")
			case "STARTTLS":
				switch {
				case b == NoUpgrade:
					err = t.send("502 5.5.1 Error: command not implemented")
				case !ehlo:
					err = t.send("503 5.5.1 Error: send EHLO first")
				case b == RefuseUpgrade:
					err = t.send("454 4.7.0 TLS not available due to local problem")
				default:
					if t.send("220 2.0.0 Ready to start TLS") != nil {
						return
					}
					textUpgrade(c, cfg, b)
					return
				}
			case "NOOP", "RSET":
				err = t.send("250 2.0.0 Ok")
			case "QUIT":
				_ = t.send("221 2.0.0 Bye")
				return
			default:
				err = t.send("502 5.5.2 Error: command not recognized")
			}
			if err != nil {
				return
			}
		}
	}
}

// validEHLO accepts a domain, or an address literal that is the client's
// address: "[192.0.2.1]", "[IPv6:2001:db8::1]".
func validEHLO(arg string, client net.Addr) bool {
	if arg == "" || strings.ContainsAny(arg, " \t") {
		return false
	}
	lit, ok := strings.CutPrefix(arg, "[")
	if !ok {
		return true
	}
	lit, ok = strings.CutSuffix(lit, "]")
	if !ok {
		return false
	}
	v6, isV6 := strings.CutPrefix(lit, "IPv6:")
	ip, err := netip.ParseAddr(v6)
	if err != nil || ip.Is6() != isV6 || ip.Zone() != "" {
		return false
	}
	ap, err := netip.ParseAddrPort(client.String())
	return err == nil && ap.Addr().Unmap().WithZone("") == ip
}

// textReply formats an SMTP-style reply: "code-text" lines, the last one
// "code text".
func textReply(code string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		out[i] = code + sep + l
	}
	return out
}

// textUpgrade finishes an agreed upgrade: TLS, or silence for StallAfterUpgrade.
// Any plaintext the client pipelined after the upgrade command is dropped
// with the line reader, as a server must (CVE-2011-0411).
func textUpgrade(c net.Conn, cfg *tls.Config, b Behaviour) {
	if b == StallAfterUpgrade {
		Stall(c)
		return
	}
	serveTLS(c, cfg)
}

// textConn is the server side of a line-based protocol (SMTP, IMAP, POP3,
// FTP).
type textConn struct {
	c  net.Conn
	br *bufio.Reader
}

func newTextConn(c net.Conn) *textConn { return &textConn{c: c, br: bufio.NewReaderSize(c, 1024)} }

// textMaxLine bounds a client's line, so no client makes a peer buffer
// without limit.
const textMaxLine = 4 << 10

// line reads one command line without its CR LF.
func (t *textConn) line() (string, error) {
	var b []byte
	for {
		chunk, err := t.br.ReadSlice('\n')
		if len(b)+len(chunk) > textMaxLine {
			return "", errors.New("command line too long")
		}
		b = append(b, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}

// send writes lines, each ended by CR LF, in one write.
func (t *textConn) send(lines ...string) error {
	_, err := t.c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
	return err
}

// Hostile peers stop after this many bytes, so a client that never gives
// up cannot keep one writing for ever; it is well above any probe's cap.
const textFloodCap = 16 << 20

// textFloodLine sends prefix and then a line that never ends, until the client
// hangs up or textFloodCap bytes are sent.
func textFloodLine(c net.Conn, prefix string) {
	if _, err := c.Write([]byte(prefix)); err != nil {
		return
	}
	chunk := []byte(strings.Repeat("a", 64<<10))
	for sent := 0; sent < textFloodCap; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
	Stall(c)
}

// textFloodLines sends line(0), line(1), ... (each with its own line end) until
// the client hangs up or textFloodCap bytes are sent.
func textFloodLines(c net.Conn, line func(i int) string) {
	var buf []byte
	for i, sent := 0, 0; sent < textFloodCap; i++ {
		buf = append(buf, line(i)...)
		if len(buf) < 16<<10 {
			continue
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
		sent += len(buf)
		buf = buf[:0]
	}
	Stall(c)
}

// textGarbage is what a Garbage peer sends instead of its protocol: fixed,
// so a probe's outcome is deterministic. It is no protocol's greeting (no
// reply code, "*", "+", "<" or TLS record) and has a line end, so a line
// reader returns it at once rather than waiting for more.
var textGarbage = []byte("\x00\xff\xfe\x7f\x1b[31mGARBAGE\x1b[0m \x80\x81\x82\x83 not a protocol\r\n\x00\x01\x02\x03\x04\x05\x06\x07\r\n")

// sendTextGarbage sends textGarbage and waits for the client to hang up.
func sendTextGarbage(c net.Conn) {
	if _, err := c.Write(textGarbage); err == nil {
		Stall(c)
	}
}
