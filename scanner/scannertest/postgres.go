package scannertest

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
)

// The PostgreSQL peer: it answers an SSLRequest with 'S' and TLS. The
// client speaks first, so StallAfterGreeting reads the SSLRequest and never
// answers. NoUpgrade answers 'N'; RefuseUpgrade answers an ErrorResponse
// ("sorry, too many clients already"), as a server does when it cannot take
// the connection. LongLine answers an ErrorResponse announcing 16 MiB and
// sends endless bytes; EndlessReply answers a protocol 2 error (a
// NUL-terminated string, as servers before 14 sent) of well-formed lines
// that never ends.
func init() { peers["postgres"] = pgPeer }

func pgPeer(cfg *tls.Config, b Behaviour) func(net.Conn) {
	return func(c net.Conn) {
		var req [8]byte
		if _, err := io.ReadFull(c, req[:]); err != nil {
			return
		}
		if binary.BigEndian.Uint32(req[:]) != 8 || binary.BigEndian.Uint32(req[4:]) != 80877103 {
			_, _ = c.Write(pgError("FATAL", "08P01", "expected an SSLRequest"))
			return
		}
		switch b {
		case Normal, StallAfterUpgrade:
			if _, err := c.Write([]byte{'S'}); err != nil {
				return
			}
			if b == Normal {
				serveTLS(c, cfg)
				return
			}
		case NoUpgrade:
			_, _ = c.Write([]byte{'N'}) // then it waits for a StartupMessage
		case RefuseUpgrade:
			_, _ = c.Write(pgError("FATAL", "53300", "sorry, too many clients already"))
			return
		case LongLine:
			if _, err := c.Write([]byte{'E', 0x01, 0x00, 0x00, 0x00}); err == nil {
				binRepeat(c, bytes.Repeat([]byte("SFATAL\x00"), 100))
			}
			return
		case EndlessReply:
			if _, err := c.Write([]byte{'E'}); err == nil {
				binRepeat(c, []byte("FATAL:  sorry, too many clients already\n"))
			}
			return
		case Garbage:
			_, _ = c.Write(binGarbage)
		}
		Stall(c)
	}
}

// pgError is a protocol 3 ErrorResponse: fields of a type byte and a
// NUL-terminated string, then a NUL.
func pgError(severity, code, msg string) []byte {
	fields := "S" + severity + "\x00V" + severity + "\x00C" + code + "\x00M" + msg + "\x00\x00"
	return append(binary.BigEndian.AppendUint32([]byte{'E'}, uint32(4+len(fields))), fields...)
}
