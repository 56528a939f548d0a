package scannertest

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
)

// The RDP peer (MS-RDPBCGR §2.2.1.1-2): it answers an X.224 Connection
// Request with a Connection Confirm selecting PROTOCOL_SSL, then TLS. The
// client speaks first, so StallAfterGreeting reads the request and never
// answers. NoUpgrade confirms without RDP_NEG_RSP (standard RDP security
// only, as servers before RDP 5.2 do); RefuseUpgrade answers
// RDP_NEG_FAILURE SSL_CERT_NOT_ON_SERVER. LongLine announces a 65535-byte
// TPKT and sends endless bytes. RDP's answer is one fixed-size packet, so
// EndlessReply sends endless short X.224 Data TPDUs (as if the server had
// skipped negotiation), which no client waiting for a Connection Confirm
// accepts.
func init() {
	peers["rdp"] = func(cfg *tls.Config, b Behaviour) func(net.Conn) { return RDPPeer(cfg, b, 1) }
}

// RDPPeer returns an RDP peer handler for NewServer that selects the
// given protocol (1 PROTOCOL_SSL, 2 PROTOCOL_HYBRID, 8 PROTOCOL_HYBRID_EX)
// when b is Normal or StallAfterUpgrade.
func RDPPeer(cfg *tls.Config, b Behaviour, selected uint32) func(net.Conn) {
	return func(c net.Conn) {
		if !readRDPRequest(c) {
			return
		}
		switch b {
		case Normal, StallAfterUpgrade:
			if _, err := c.Write(rdpConfirm(0x02, selected)); err != nil {
				return
			}
			if b == Normal {
				serveTLS(c, cfg)
				return
			}
		case NoUpgrade:
			_, _ = c.Write([]byte{0x03, 0x00, 0x00, 0x0b, 0x06, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00})
		case RefuseUpgrade:
			_, _ = c.Write(rdpConfirm(0x03, 3)) // SSL_CERT_NOT_ON_SERVER
			return
		case LongLine:
			if _, err := c.Write([]byte{0x03, 0x00, 0xff, 0xff, 0x0e, 0xd0}); err == nil {
				binRepeat(c, make([]byte, 1024))
			}
			return
		case EndlessReply:
			binRepeat(c, []byte{0x03, 0x00, 0x00, 0x0c, 0x02, 0xf0, 0x80, 0x7f, 0x66, 0x00, 0x00, 0x00})
			return
		case Garbage:
			_, _ = c.Write(binGarbage)
		}
		Stall(c)
	}
}

// readRDPRequest reads a TPKT holding an X.224 Connection Request.
func readRDPRequest(c net.Conn) bool {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 3 {
		return false
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if n < 4+7 {
		return false
	}
	tpdu := make([]byte, n-4)
	_, err := io.ReadFull(c, tpdu)
	return err == nil && tpdu[1]&0xf0 == 0xe0
}

// rdpConfirm is a TPKT holding an X.224 Connection Confirm with an
// RDP_NEG_RSP (typ 2, value the selected protocol) or RDP_NEG_FAILURE
// (typ 3, value the failure code).
func rdpConfirm(typ byte, value uint32) []byte {
	flags := byte(0)
	if typ == 0x02 {
		flags = 0x1f // EXTENDED_CLIENT_DATA_SUPPORTED and friends, as Windows sends
	}
	b := []byte{0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, typ, flags, 0x08, 0x00}
	return binary.LittleEndian.AppendUint32(b, value)
}
