package scanner

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
)

func init() { upgraders[ProtoPostgres] = upgradePostgres }

// pgSSLRequest is the SSLRequest message: length 8, code 80877103.
var pgSSLRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// upgradePostgres sends an SSLRequest and reads the one-byte answer
// ("Message Flow: SSL Session Encryption" in the PostgreSQL protocol docs).
func upgradePostgres(s *session) (net.Conn, error) {
	if err := s.Write(pgSSLRequest); err != nil {
		return nil, err
	}
	b, err := s.ReadFull(1)
	if err != nil {
		return nil, err
	}
	switch b[0] {
	case 'S':
		return s.TLSConn(), nil
	case 'N':
		return nil, noStartTLS(ProtoPostgres, "does not accept SSL (answered N to SSLRequest)")
	case 'E':
		// A failure such as "too many clients", or a server without SSL
		// support; the server closes the connection after it.
		msg, err := readPgError(s)
		if err != nil {
			return nil, err
		}
		return nil, noStartTLS(ProtoPostgres, "answered SSLRequest with an error: "+quote(msg))
	}
	return nil, unexpected("a PostgreSQL SSL answer (S or N)", string(b))
}

// readPgError reads the body of an ErrorResponse whose 'E' was read. Before
// PostgreSQL 14, errors before startup came in protocol 2 form, a
// NUL-terminated string; as libpq does, a length that reads as text (no
// real error is 500 MB long) means protocol 2.
func readPgError(s *session) (string, error) {
	head, err := s.Reader().Peek(4)
	if err != nil {
		return "", err
	}
	n := int(binary.BigEndian.Uint32(head))
	if n >= 0x20000000 {
		return readCString(s)
	}
	switch {
	case n < 5:
		return "", unexpected("a PostgreSQL ErrorResponse", string(head))
	case n > maxPacket:
		return "", oversize(n, maxPacket, "PostgreSQL error message")
	}
	_, _ = s.Reader().Discard(4)
	body, err := s.ReadFull(n - 4)
	if err != nil {
		return "", err
	}
	// Fields: a type byte and a NUL-terminated string each (S severity,
	// C SQLSTATE, M message, ...).
	var sev, msg string
	for _, f := range bytes.Split(body, []byte{0}) {
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case 'S':
			sev = string(f[1:])
		case 'M':
			msg = string(f[1:])
		}
	}
	if msg == "" {
		return "", unexpected("a PostgreSQL ErrorResponse", string(body))
	}
	return strings.TrimSpace(sev + " " + msg), nil
}

// readCString reads a NUL-terminated string of at most maxLine bytes; a
// peer that closes instead of sending the NUL ends the string.
func readCString(s *session) (string, error) {
	var b []byte
	for {
		chunk, err := s.Reader().ReadSlice(0)
		if len(b)+len(chunk) > maxLine {
			return "", errLineTooLong
		}
		b = append(b, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && (err != io.EOF || len(b) == 0) {
			return "", err
		}
		return strings.TrimRight(string(b), "\x00\r\n"), nil
	}
}
