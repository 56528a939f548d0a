package scanner

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"unicode/utf16"
)

func init() { upgraders[ProtoMSSQL] = upgradeMSSQL }

// MS-TDS packet types and bounds (§2.2.3.1).
const (
	tdsReply        = 0x04 // tabular result: the PRELOGIN response
	tdsPrelogin     = 0x12 // PRELOGIN, and TLS handshake records in TDS 7.x
	tdsEOM          = 0x01 // status: last packet of the message
	tdsMaxPacket    = 32 << 10
	tdsClientPacket = 4096 // the default packet size; nothing larger is negotiated before login
)

// tdsPreloginRequest is a PRELOGIN message (§2.2.6.5): VERSION (offset 11,
// 6 bytes), ENCRYPTION (offset 17, 1 byte), TERMINATOR, then the data:
// version 9.0.0.0, ENCRYPT_ON.
var tdsPreloginRequest = []byte{
	tdsPrelogin, tdsEOM, 0x00, 0x1a, 0x00, 0x00, 0x01, 0x00, // header: length 26, SPID 0, packet 1
	0x00, 0x00, 0x0b, 0x00, 0x06,
	0x01, 0x00, 0x11, 0x00, 0x01,
	0xff,
	0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01,
}

// TDS ENCRYPTION option values; ENCRYPT_CLIENT_CERT (0x80) may be or'ed in.
const (
	tdsEncryptOff    = 0x00
	tdsEncryptOn     = 0x01
	tdsEncryptNotSup = 0x02
	tdsEncryptReq    = 0x03
)

// upgradeMSSQL sends PRELOGIN asking for encryption and reads the server's
// PRELOGIN response. TDS 7.x then runs the TLS handshake inside PRELOGIN
// packets (§3.2.5.2), so the returned conn wraps and unwraps them.
func upgradeMSSQL(s *session) (net.Conn, error) {
	if err := s.Write(tdsPreloginRequest); err != nil {
		return nil, err
	}
	msg, err := readTDSMessage(s)
	if err != nil {
		return nil, err
	}
	if msg[0] == 0xaa {
		return nil, tdsErrorToken(msg)
	}
	enc := -1
	for i := 0; ; i += 5 {
		if i >= len(msg) || (msg[i] != 0xff && i+5 > len(msg)) {
			return nil, unexpected("a TDS PRELOGIN response", string(msg))
		}
		if msg[i] == 0xff {
			break
		}
		off, n := int(binary.BigEndian.Uint16(msg[i+1:])), int(binary.BigEndian.Uint16(msg[i+3:]))
		if off+n > len(msg) {
			return nil, unexpected("a TDS PRELOGIN response", string(msg))
		}
		if msg[i] == 0x01 && n >= 1 {
			enc = int(msg[off] &^ 0x80)
		}
	}
	switch enc {
	case tdsEncryptNotSup:
		return nil, noStartTLS(ProtoMSSQL, "does not support encryption (PRELOGIN answered ENCRYPT_NOT_SUP)")
	case tdsEncryptOff, tdsEncryptOn, tdsEncryptReq:
		// ENCRYPT_OFF still encrypts the login packet, so TLS runs anyway.
		return &tdsConn{Conn: s.conn, r: s.br, id: 1}, nil
	case -1:
		return nil, unexpected("a TDS PRELOGIN response with an ENCRYPTION option", string(msg))
	}
	return nil, unexpected("a TDS ENCRYPTION value", fmt.Sprintf("0x%02x", enc))
}

// readTDSMessage reads the packets of one response message up to the one
// marked end-of-message, returning their data.
func readTDSMessage(s *session) ([]byte, error) {
	var msg []byte
	for {
		hdr, err := s.ReadFull(8)
		if err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(hdr[2:]))
		if hdr[0] != tdsReply || n < 8 {
			return nil, unexpected("a TDS response packet", string(hdr))
		}
		if n > tdsMaxPacket {
			return nil, oversize(n, tdsMaxPacket, "TDS packet")
		}
		if len(msg)+n-8 > maxPacket {
			return nil, boundError(fmt.Sprintf("peer sent a TDS PRELOGIN response of more than %d bytes", maxPacket))
		}
		body, err := s.ReadFull(n - 8)
		if err != nil {
			return nil, err
		}
		msg = append(msg, body...)
		if hdr[1]&tdsEOM != 0 {
			if len(msg) == 0 {
				return nil, unexpected("a TDS PRELOGIN response", "an empty message")
			}
			return msg, nil
		}
	}
}

// tdsErrorToken reads an ERROR token (§2.2.7.10) sent instead of the
// PRELOGIN response: Length, Number, State, Class, MsgText (UTF-16LE).
func tdsErrorToken(msg []byte) error {
	if len(msg) < 11 || len(msg) < 11+2*int(binary.LittleEndian.Uint16(msg[9:])) {
		return unexpected("a TDS ERROR token", string(msg))
	}
	text := make([]uint16, binary.LittleEndian.Uint16(msg[9:]))
	for i := range text {
		text[i] = binary.LittleEndian.Uint16(msg[11+2*i:])
	}
	return noStartTLS(ProtoMSSQL, fmt.Sprintf("answered PRELOGIN with error %d: %s",
		binary.LittleEndian.Uint32(msg[3:]), quote(string(utf16.Decode(text)))))
}

// tdsConn carries the TLS handshake in TDS packets: each write goes out in
// PRELOGIN packets of at most the default packet size, and reads return the
// data of the server's packets. The probe ends with the handshake, so it
// never switches to raw TLS as a full client would after login.
type tdsConn struct {
	net.Conn               // writes, deadlines, close
	r        *bufio.Reader // the session's reader, byte-capped
	left     int           // data bytes left in the current packet
	id       byte          // last packet id sent
}

func (c *tdsConn) Read(b []byte) (int, error) {
	for c.left == 0 {
		var hdr [8]byte
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			return 0, err
		}
		n := int(binary.BigEndian.Uint16(hdr[2:]))
		// Servers use PRELOGIN packets; some use the pre-7.2 tabular type.
		if (hdr[0] != tdsPrelogin && hdr[0] != tdsReply) || n < 8 {
			return 0, unexpected("a TDS packet carrying TLS", string(hdr[:]))
		}
		if n > tdsMaxPacket {
			return 0, oversize(n, tdsMaxPacket, "TDS packet")
		}
		c.left = n - 8
	}
	n, err := c.r.Read(b[:min(len(b), c.left)])
	c.left -= n
	return n, err
}

func (c *tdsConn) Write(b []byte) (int, error) {
	sent := 0
	for sent < len(b) {
		chunk := b[sent:min(len(b), sent+tdsClientPacket-8)]
		status := byte(0)
		if sent+len(chunk) == len(b) {
			status = tdsEOM
		}
		c.id++
		n := 8 + len(chunk)
		pkt := append([]byte{tdsPrelogin, status, byte(n >> 8), byte(n), 0, 0, c.id, 0}, chunk...)
		if _, err := c.Conn.Write(pkt); err != nil {
			return sent, err
		}
		sent += len(chunk)
	}
	return sent, nil
}
