package scanner

import (
	"encoding/binary"
	"fmt"
	"net"
)

func init() { upgraders[ProtoRDP] = upgradeRDP }

// rdpConnectionRequest is a TPKT (RFC 1006, version 3, length 19) holding
// an X.224 Connection Request (MS-RDPBCGR §2.2.1.1) with an RDP_NEG_REQ
// asking for PROTOCOL_SSL | PROTOCOL_HYBRID. No routing token or cookie:
// servers accept a request without one.
var rdpConnectionRequest = []byte{
	0x03, 0x00, 0x00, 0x13, // TPKT
	0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, // LI 14, CR, DST-REF, SRC-REF, class 0
	0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00, // RDP_NEG_REQ, flags, length 8, requestedProtocols
}

// maxTPKT bounds the Connection Confirm, which is 19 bytes in practice.
const maxTPKT = 1 << 10

// RDP_NEG_FAILURE codes (MS-RDPBCGR §2.2.1.2.2).
var rdpFailures = map[uint32]string{
	1: "SSL_REQUIRED_BY_SERVER", 2: "SSL_NOT_ALLOWED_BY_SERVER", 3: "SSL_CERT_NOT_ON_SERVER",
	4: "INCONSISTENT_FLAGS", 5: "HYBRID_REQUIRED_BY_SERVER", 6: "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER",
}

// upgradeRDP sends the Connection Request and reads the Connection Confirm
// (§2.2.1.2); TLS starts right after it when the server selected TLS or
// CredSSP (which also runs over TLS).
func upgradeRDP(s *session) (net.Conn, error) {
	if err := s.Write(rdpConnectionRequest); err != nil {
		return nil, err
	}
	hdr, err := s.ReadFull(4)
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if hdr[0] != 3 || n < 4+7 {
		return nil, unexpected("a TPKT with an X.224 Connection Confirm", string(hdr))
	}
	if n > maxTPKT {
		return nil, oversize(n, maxTPKT, "TPKT")
	}
	tpdu, err := s.ReadFull(n - 4)
	if err != nil {
		return nil, err
	}
	if tpdu[1]&0xf0 != 0xd0 || int(tpdu[0]) > len(tpdu)-1 {
		return nil, unexpected("an X.224 Connection Confirm", string(tpdu))
	}
	neg := tpdu[7:] // after LI, CC, DST-REF, SRC-REF, class
	if len(neg) < 8 {
		return nil, noStartTLS(ProtoRDP, "offers only standard RDP security")
	}
	v := binary.LittleEndian.Uint32(neg[4:])
	switch {
	case neg[0] == 0x02 && (v == 1 || v == 2 || v == 8): // RDP_NEG_RSP: SSL, HYBRID, HYBRID_EX
		return s.TLSConn(), nil
	case neg[0] == 0x02 && v == 0:
		return nil, noStartTLS(ProtoRDP, "offers only standard RDP security")
	case neg[0] == 0x03: // RDP_NEG_FAILURE
		name, ok := rdpFailures[v]
		if !ok {
			name = fmt.Sprintf("failure code %d", v)
		}
		return nil, noStartTLS(ProtoRDP, "refused TLS: "+name)
	case neg[0] == 0x02:
		return nil, unexpected("SSL or HYBRID in the RDP_NEG_RSP", fmt.Sprintf("protocol 0x%x", v))
	}
	return nil, unexpected("an RDP_NEG_RSP or RDP_NEG_FAILURE", string(neg))
}
