package scannertest

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
)

// The MySQL peer: a HandshakeV10 greeting offering CLIENT_SSL, then TLS
// after the client's SSLRequest. The server speaks first:
// StallAfterGreeting greets and never answers the ClientHello. NoUpgrade
// greets without CLIENT_SSL; RefuseUpgrade greets with an ERR packet (1130,
// "Host '...' is not allowed to connect"), the refusal a MySQL server sends
// before any negotiation. LongLine announces a greeting of 0xfffffe bytes
// and sends endless bytes; EndlessReply announces a greeting of maximum
// packets (length 0xffffff: another packet follows) and never finishes it.
func init() { peers["mysql"] = mysqlPeer }

const mysqlSSL = 0x0800 // CLIENT_SSL

func mysqlPeer(cfg *tls.Config, b Behaviour) func(net.Conn) {
	return func(c net.Conn) {
		var greeting []byte
		switch b {
		case Normal, StallAfterGreeting, StallAfterUpgrade:
			greeting = mysqlGreeting(true)
		case NoUpgrade:
			greeting = mysqlGreeting(false)
		case RefuseUpgrade:
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			msg := "Host '" + host + "' is not allowed to connect to this MySQL server"
			_, _ = c.Write(mysqlPacket(0, append([]byte{0xff, 0x6a, 0x04}, msg...)))
			return
		case LongLine:
			if _, err := c.Write([]byte{0xfe, 0xff, 0xff, 0}); err == nil {
				binRepeat(c, []byte("8.4.0\x00"))
			}
			return
		case EndlessReply:
			g := mysqlGreeting(true)
			if _, err := c.Write(append([]byte{0xff, 0xff, 0xff, 0}, g[4:]...)); err == nil {
				binRepeat(c, g[4:])
			}
			return
		case Garbage:
			_, _ = c.Write(binGarbage)
			Stall(c)
			return
		}
		if _, err := c.Write(greeting); err != nil || b == StallAfterGreeting || b == NoUpgrade {
			Stall(c)
			return
		}
		// The SSLRequest: capability flags, max packet, charset, 23 zeros.
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		if n < 32 || n > 64<<10 || hdr[3] != 1 {
			return
		}
		req := make([]byte, n)
		if _, err := io.ReadFull(c, req); err != nil || binary.LittleEndian.Uint32(req)&mysqlSSL == 0 {
			return
		}
		if b == StallAfterUpgrade {
			Stall(c)
			return
		}
		serveTLS(c, cfg)
	}
}

// mysqlPacket frames payload: 3-byte little-endian length, sequence id.
func mysqlPacket(seq byte, payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// mysqlGreeting is a Protocol::HandshakeV10 packet as MySQL 8.4 sends it.
func mysqlGreeting(ssl bool) []byte {
	caps := uint32(0xdfffffff) // everything MySQL 8.4 offers, CLIENT_SSL included
	if !ssl {
		caps &^= mysqlSSL
	}
	p := []byte{10}
	p = append(p, "8.4.0-certsweep-test\x00"...)
	p = binary.LittleEndian.AppendUint32(p, 42) // connection id
	p = append(p, "12345678\x00"...)            // auth-plugin-data part 1, filler
	p = binary.LittleEndian.AppendUint16(p, uint16(caps))
	p = append(p, 0xff)                             // utf8mb4_0900_ai_ci
	p = binary.LittleEndian.AppendUint16(p, 0x0002) // SERVER_STATUS_AUTOCOMMIT
	p = binary.LittleEndian.AppendUint16(p, uint16(caps>>16))
	p = append(p, 21)                  // auth-plugin-data length
	p = append(p, make([]byte, 10)...) // reserved
	p = append(p, "123456789012\x00caching_sha2_password\x00"...)
	return mysqlPacket(0, p)
}
