package scanner

import (
	"fmt"
	"net"
)

func init() { upgraders[ProtoLDAP] = upgradeLDAP }

// ldapStartTLS is the ExtendedRequest of RFC 4511 §4.14.1, messageID 1:
// LDAPMessage SEQUENCE { INTEGER 1, [APPLICATION 23] { [0] "1.3.6.1.4.1.1466.20037" } }.
var ldapStartTLS = append([]byte{0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16}, "1.3.6.1.4.1.1466.20037"...)

// LDAP result codes (RFC 4511 §4.1.9) a StartTLS refusal is likely to carry.
var ldapResultNames = map[int]string{
	1: "operationsError", 2: "protocolError", 3: "timeLimitExceeded", 7: "authMethodNotSupported",
	8: "strongerAuthRequired", 12: "unavailableCriticalExtension", 13: "confidentialityRequired",
	48: "inappropriateAuthentication", 49: "invalidCredentials", 50: "insufficientAccessRights",
	51: "busy", 52: "unavailable", 53: "unwillingToPerform", 80: "other",
}

// upgradeLDAP sends the StartTLS extended operation (RFC 4511 §4.14) and
// reads its ExtendedResponse.
func upgradeLDAP(s *session) (net.Conn, error) {
	if err := s.Write(ldapStartTLS); err != nil {
		return nil, err
	}
	for {
		msg, err := readBERMessage(s)
		if err != nil {
			return nil, err
		}
		// LDAPMessage ::= SEQUENCE { messageID INTEGER, protocolOp, controls [0] OPTIONAL }
		tag, id, rest, ok := berNext(msg)
		if !ok || tag != 0x02 || len(id) == 0 || len(id) > 4 {
			return nil, unexpected("an LDAPMessage", string(msg))
		}
		op, body, _, ok := berNext(rest)
		if !ok {
			return nil, unexpected("an LDAP response", string(rest))
		}
		switch {
		case op == 0x79 && berInt(id) == 1:
			// An IntermediateResponse (§4.13); StartTLS defines none, skip it.
			continue
		case op != 0x78:
			return nil, unexpected("an LDAP ExtendedResponse", string(rest))
		}
		// ExtendedResponse: resultCode ENUMERATED, matchedDN, diagnosticMessage, ...
		t1, code, body, ok1 := berNext(body)
		t2, _, body, ok2 := berNext(body)
		t3, diag, _, ok3 := berNext(body)
		if !ok1 || !ok2 || !ok3 || t1 != 0x0a || t2 != 0x04 || t3 != 0x04 || len(code) == 0 || len(code) > 4 {
			return nil, unexpected("an LDAP ExtendedResponse", string(rest))
		}
		rc := berInt(code)
		switch {
		case berInt(id) == 0:
			// An unsolicited notification: the Notice of Disconnection (§4.4.1).
			return nil, noStartTLS(ProtoLDAP, "disconnected instead of answering StartTLS: "+ldapResult(rc, diag))
		case berInt(id) != 1:
			return nil, unexpected("a response to message 1", fmt.Sprintf("message %d", berInt(id)))
		case rc != 0:
			return nil, noStartTLS(ProtoLDAP, "refused StartTLS: "+ldapResult(rc, diag))
		}
		return s.TLSConn(), nil
	}
}

// ldapResult names a result code and quotes the diagnostic message, if any.
func ldapResult(code int, diag []byte) string {
	r := fmt.Sprintf("resultCode %d", code)
	if name, ok := ldapResultNames[code]; ok {
		r = fmt.Sprintf("%s (%d)", name, code)
	}
	if len(diag) > 0 {
		r += " " + quote(string(diag))
	}
	return r
}

// readBERMessage reads one LDAPMessage: a SEQUENCE with a definite length
// (RFC 4511 §5.1), returning its contents. Long-form lengths need not be
// minimal: Active Directory always uses four length bytes.
func readBERMessage(s *session) ([]byte, error) {
	hdr, err := s.ReadFull(2)
	if err != nil {
		return nil, err
	}
	if hdr[0] != 0x30 || hdr[1] == 0x80 || hdr[1] > 0x84 {
		return nil, unexpected("an LDAPMessage", string(hdr))
	}
	n := int(hdr[1])
	if n > 0x80 {
		b, err := s.ReadFull(n - 0x80)
		if err != nil {
			return nil, err
		}
		n = 0
		for _, c := range b {
			n = n<<8 | int(c)
		}
	}
	return readAnnounced(s, n, maxPacket, "LDAP message")
}

// berNext splits the first BER TLV (single-byte tag, definite length) off b.
func berNext(b []byte) (tag byte, content, rest []byte, ok bool) {
	if len(b) < 2 || b[0]&0x1f == 0x1f {
		return 0, nil, nil, false
	}
	tag, n, b := b[0], int(b[1]), b[2:]
	if n >= 0x80 {
		k := n - 0x80
		if k == 0 || k > 4 || len(b) < k {
			return 0, nil, nil, false
		}
		n = 0
		for _, c := range b[:k] {
			n = n<<8 | int(c)
		}
		b = b[k:]
	}
	if n < 0 || n > len(b) {
		return 0, nil, nil, false
	}
	return tag, b[:n], b[n:], true
}

// berInt reads a BER INTEGER or ENUMERATED of at most four bytes.
func berInt(b []byte) int {
	v := int(int8(b[0]))
	for _, c := range b[1:] {
		v = v<<8 | int(c)
	}
	return v
}
