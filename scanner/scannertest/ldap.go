package scannertest

import (
	"bytes"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
)

// The LDAP peer (RFC 4511 §4.14). The client speaks first, so
// StallAfterGreeting reads the StartTLS request and never answers.
// NoUpgrade answers protocolError "StartTLS not supported" (a server that
// does not know the operation); RefuseUpgrade answers unwillingToPerform.
// LongLine announces a 2 GiB LDAPMessage and sends endless bytes;
// EndlessReply sends IntermediateResponses for the request without end.
func init() { peers["ldap"] = ldapPeer }

const ldapStartTLSOID = "1.3.6.1.4.1.1466.20037"

func ldapPeer(cfg *tls.Config, b Behaviour) func(net.Conn) {
	return func(c net.Conn) {
		id, ok := readLDAPStartTLS(c)
		if !ok {
			return
		}
		respond := func(code byte, diag string) []byte {
			// ExtendedResponse: resultCode, matchedDN, diagnosticMessage, responseName.
			op := ber(0x78, ber(0x0a, []byte{code}), ber(0x04), ber(0x04, []byte(diag)), ber(0x8a, []byte(ldapStartTLSOID)))
			return ber(0x30, ber(0x02, id), op)
		}
		switch b {
		case Normal, StallAfterUpgrade:
			if _, err := c.Write(respond(0, "")); err != nil {
				return
			}
			if b == Normal {
				serveTLS(c, cfg)
				return
			}
		case NoUpgrade:
			_, _ = c.Write(respond(2, "StartTLS not supported"))
		case RefuseUpgrade:
			_, _ = c.Write(respond(53, "TLS is not configured on this server"))
		case LongLine:
			if _, err := c.Write([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}); err == nil {
				binRepeat(c, bytes.Repeat([]byte{0x04}, 1024))
			}
			return
		case EndlessReply:
			binRepeat(c, ber(0x30, ber(0x02, id), ber(0x79, ber(0x80, []byte(ldapStartTLSOID)))))
			return
		case Garbage:
			_, _ = c.Write(binGarbage)
		}
		Stall(c)
	}
}

// readLDAPStartTLS reads one LDAPMessage and returns its messageID if it
// is a StartTLS ExtendedRequest.
func readLDAPStartTLS(c net.Conn) (id []byte, ok bool) {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 0x30 {
		return nil, false
	}
	n := int(hdr[1])
	if n > 0x80 {
		if n > 0x84 {
			return nil, false
		}
		lb := make([]byte, n-0x80)
		if _, err := io.ReadFull(c, lb); err != nil {
			return nil, false
		}
		n = 0
		for _, v := range lb {
			n = n<<8 | int(v)
		}
	}
	if n > 64<<10 || n == 0x80 {
		return nil, false
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(c, msg); err != nil {
		return nil, false
	}
	// messageID INTEGER, then [APPLICATION 23] { [0] requestName }
	tag, id, rest := berSplit(msg)
	if tag != 0x02 {
		return nil, false
	}
	tag, op, _ := berSplit(rest)
	if tag != 0x77 {
		return nil, false
	}
	tag, name, _ := berSplit(op)
	return id, tag == 0x80 && string(name) == ldapStartTLSOID
}

// berSplit splits the first TLV off b (short or long definite length); a
// zero tag means b does not start with one.
func berSplit(b []byte) (tag byte, content, rest []byte) {
	if len(b) < 2 {
		return 0, nil, nil
	}
	n, hl := int(b[1]), 2
	if n > 0x80 && n <= 0x84 && len(b) >= 2+n-0x80 {
		hl = 2 + n - 0x80
		n = 0
		for _, v := range b[2:hl] {
			n = n<<8 | int(v)
		}
	} else if n >= 0x80 {
		return 0, nil, nil
	}
	if n > len(b)-hl {
		return 0, nil, nil
	}
	return b[0], b[hl : hl+n], b[hl+n:]
}

// ber encodes a TLV with a definite, minimal length.
func ber(tag byte, content ...[]byte) []byte {
	body := bytes.Join(content, nil)
	n := len(body)
	switch {
	case n < 0x80:
		return append([]byte{tag, byte(n)}, body...)
	case n < 0x100:
		return append([]byte{tag, 0x81, byte(n)}, body...)
	}
	return append([]byte{tag, 0x82, byte(n >> 8), byte(n)}, body...)
}

// Shared by the binary-protocol peers (LDAP, PostgreSQL, MySQL, TDS, RDP).

// binGarbage is what a Garbage peer sends: 64 KiB of fixed pseudo-random
// bytes, so a test's outcome does not depend on chance. Its first bytes
// (54 ab d9 13) start no LDAPMessage, PostgreSQL answer, MySQL greeting
// (sequence id 0x13), TDS packet or TPKT.
var binGarbage = func() []byte {
	b := make([]byte, 64<<10)
	_, _ = rand.NewChaCha8([32]byte{'c', 'e', 'r', 't', 's', 'w', 'e', 'e', 'p'}).Read(b)
	return b
}()

// binRepeat sends msg again and again until the client hangs up, but
// no more than 10 MiB, so the peer itself stays bounded.
func binRepeat(c net.Conn, msg []byte) {
	buf := bytes.Repeat(msg, max(1, (32<<10)/len(msg)))
	for sent := 0; sent < 10<<20; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}
