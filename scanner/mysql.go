package scanner

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
)

func init() { upgraders[ProtoMySQL] = upgradeMySQL }

// Capability flags of the MySQL client/server protocol.
const (
	mysqlProtocol41       = 0x0200
	mysqlSSL              = 0x0800
	mysqlSecureConnection = 0x8000
)

// upgradeMySQL reads the server's greeting (Protocol::HandshakeV10) and,
// if it offers CLIENT_SSL, answers with Protocol::SSLRequest, the first 32
// bytes of a HandshakeResponse41, after which TLS starts (MariaDB alike).
func upgradeMySQL(s *session) (net.Conn, error) {
	hdr, err := s.ReadFull(4) // 3-byte little-endian length, sequence id
	if err != nil {
		return nil, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if hdr[3] != 0 || n == 0 {
		return nil, unexpected("a MySQL greeting packet", string(hdr))
	}
	if n == 0xffffff {
		// A maximum-length packet continues in the next one.
		return nil, boundError(fmt.Sprintf("peer announced a MySQL greeting of 16 MiB or more; the limit is %d", maxPacket))
	}
	p, err := readAnnounced(s, n, maxPacket, "MySQL greeting")
	if err != nil {
		return nil, err
	}
	switch p[0] {
	case 0xff:
		// An ERR packet: the server speaks MySQL but will not serve us
		// ("Host ... is not allowed to connect", "Too many connections").
		if len(p) < 3 {
			return nil, unexpected("a MySQL ERR packet", string(p))
		}
		msg := p[3:]
		if len(msg) >= 6 && msg[0] == '#' {
			msg = msg[6:] // SQL state marker and SQLSTATE
		}
		return nil, noStartTLS(ProtoMySQL, fmt.Sprintf("refused the connection: error %d %s", binary.LittleEndian.Uint16(p[1:]), quote(string(msg))))
	case 9:
		return nil, noStartTLS(ProtoMySQL, "speaks protocol 9 (MySQL 3.21 and older), which has no SSL")
	case 10:
	default:
		return nil, unexpected("a MySQL greeting (protocol 10)", string(p))
	}
	// protocol version, server version NUL-terminated, thread id (4),
	// auth-plugin-data part 1 (8), filler (1), capability flags low (2),
	// then optionally charset (1), status (2), capability flags high (2)...
	end := bytes.IndexByte(p[1:], 0)
	pos := 1 + end + 1 + 4 + 8 + 1
	if end < 0 || len(p) < pos+2 {
		return nil, unexpected("a MySQL greeting (protocol 10)", string(p))
	}
	version := string(p[1 : 1+end])
	if binary.LittleEndian.Uint16(p[pos:])&mysqlSSL == 0 {
		return nil, noStartTLS(ProtoMySQL, "does not offer SSL (no CLIENT_SSL in its greeting, version "+quote(version)+")")
	}
	charset := byte(0x21) // utf8_general_ci
	if len(p) > pos+2 && p[pos+2] != 0 {
		charset = p[pos+2]
	}
	req := make([]byte, 4+32)
	req[0], req[3] = 32, 1 // length 32, sequence id 1
	binary.LittleEndian.PutUint32(req[4:], mysqlSSL|mysqlProtocol41|mysqlSecureConnection)
	binary.LittleEndian.PutUint32(req[8:], 1<<24) // max packet size
	req[12] = charset                             // then 23 zero bytes
	if err := s.Write(req); err != nil {
		return nil, err
	}
	return s.TLSConn(), nil
}
