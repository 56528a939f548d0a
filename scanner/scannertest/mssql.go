package scannertest

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"unicode/utf16"
)

// The SQL Server peer (MS-TDS): it answers PRELOGIN with ENCRYPT_ON and
// runs the server side of TLS inside TDS PRELOGIN packets, in packets of
// 512 bytes so that records straddle packets. The client speaks first, so
// StallAfterGreeting reads the PRELOGIN and never answers. NoUpgrade
// answers ENCRYPT_NOT_SUP; RefuseUpgrade answers with an ERROR token
// instead of a PRELOGIN response, with a made-up message (TDS has no
// refusal of its own: a server that cannot encrypt either says
// ENCRYPT_NOT_SUP or fails the request).
// LongLine announces a 65535-byte packet and sends endless bytes;
// EndlessReply sends response packets that never set end-of-message.
func init() {
	peers["mssql"] = func(cfg *tls.Config, b Behaviour) func(net.Conn) { return TDSPeer(cfg, b, 0x01) }
}

const tdsPeerPacket = 512

// TDSPeer returns a TDS peer handler for NewServer that answers PRELOGIN
// with the given ENCRYPTION value (0x00 ENCRYPT_OFF, 0x01 ENCRYPT_ON,
// 0x03 ENCRYPT_REQ) when b is Normal or StallAfterUpgrade.
func TDSPeer(cfg *tls.Config, b Behaviour, encryption byte) func(net.Conn) {
	return func(c net.Conn) {
		if _, ok := readTDS(c); !ok {
			return
		}
		switch b {
		case Normal, StallAfterUpgrade:
			if _, err := c.Write(tdsPacket(0x04, true, tdsPrelogin(encryption))); err != nil {
				return
			}
			if b == Normal {
				serveTLS(&tdsServerConn{Conn: c}, cfg)
				return
			}
		case NoUpgrade:
			_, _ = c.Write(tdsPacket(0x04, true, tdsPrelogin(0x02)))
		case RefuseUpgrade:
			_, _ = c.Write(tdsPacket(0x04, true, tdsError(50000, "Encryption is not available on this server")))
			return
		case LongLine:
			if _, err := c.Write([]byte{0x04, 0x00, 0xff, 0xff, 0, 0, 1, 0}); err == nil {
				binRepeat(c, tdsPrelogin(encryption))
			}
			return
		case EndlessReply:
			binRepeat(c, tdsPacket(0x04, false, tdsPrelogin(encryption)))
			return
		case Garbage:
			_, _ = c.Write(binGarbage)
		}
		Stall(c)
	}
}

// tdsPacket frames data in one TDS packet: type, status (end of message or
// not), length, SPID, packet id, window.
func tdsPacket(typ byte, eom bool, data []byte) []byte {
	status := byte(0)
	if eom {
		status = 0x01
	}
	n := 8 + len(data)
	return append([]byte{typ, status, byte(n >> 8), byte(n), 0, 0, 1, 0}, data...)
}

// tdsPrelogin is a server's PRELOGIN response: VERSION (16.0.1000.0),
// ENCRYPTION, INSTOPT (valid), THREADID (empty from a server), MARS off.
func tdsPrelogin(encryption byte) []byte {
	data := [][]byte{0x00: {16, 0, 0x03, 0xe8, 0, 0}, 0x01: {encryption}, 0x02: {0}, 0x03: {}, 0x04: {0}}
	off := 5*len(data) + 1
	var head, tail []byte
	for tok, d := range data {
		head = append(head, byte(tok), byte(off>>8), byte(off), 0, byte(len(d)))
		tail = append(tail, d...)
		off += len(d)
	}
	return append(append(head, 0xff), tail...)
}

// tdsError is an ERROR token (number, state 1, class 14, message, server
// name, no procedure, line 1) followed by a DONE token with DONE_ERROR.
func tdsError(number uint32, msg string) []byte {
	text := utf16.Encode([]rune(msg))
	server := utf16.Encode([]rune("PEER"))
	body := binary.LittleEndian.AppendUint32(nil, number)
	body = append(body, 1, 14)
	body = binary.LittleEndian.AppendUint16(body, uint16(len(text)))
	for _, u := range text {
		body = binary.LittleEndian.AppendUint16(body, u)
	}
	body = append(body, byte(len(server)))
	for _, u := range server {
		body = binary.LittleEndian.AppendUint16(body, u)
	}
	body = append(body, 0)
	body = binary.LittleEndian.AppendUint32(body, 1)
	tok := binary.LittleEndian.AppendUint16([]byte{0xaa}, uint16(len(body)))
	tok = append(tok, body...)
	return append(tok, 0xfd, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) // DONE: status, curcmd, rowcount
}

// readTDS reads one client message of PRELOGIN packets (up to
// end-of-message, 64 KiB at most).
func readTDS(r io.Reader) ([]byte, bool) {
	var msg []byte
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(hdr[2:]))
		if hdr[0] != 0x12 || n < 8 || len(msg)+n > 64<<10 {
			return nil, false
		}
		data := make([]byte, n-8)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, false
		}
		msg = append(msg, data...)
		if hdr[1]&0x01 != 0 {
			return msg, true
		}
	}
}

// tdsServerConn is the server side of TLS inside TDS: reads return the
// data of the client's PRELOGIN packets, writes go out in PRELOGIN packets
// of tdsPeerPacket bytes, the last of each write marked end-of-message.
type tdsServerConn struct {
	net.Conn
	pending []byte
}

func (c *tdsServerConn) Read(b []byte) (int, error) {
	for len(c.pending) == 0 {
		msg, ok := readTDS(c.Conn)
		if !ok {
			return 0, io.ErrUnexpectedEOF
		}
		c.pending = msg
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *tdsServerConn) Write(b []byte) (int, error) {
	sent := 0
	for sent < len(b) {
		chunk := b[sent:min(len(b), sent+tdsPeerPacket-8)]
		if _, err := c.Conn.Write(tdsPacket(0x12, sent+len(chunk) == len(b), chunk)); err != nil {
			return sent, err
		}
		sent += len(chunk)
	}
	return sent, nil
}
