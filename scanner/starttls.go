package scanner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Protocol names how a probe reaches TLS on an endpoint: "tls" sends a
// ClientHello as soon as TCP connects (implicit TLS); every other protocol
// first speaks its own plaintext preamble (STARTTLS, an SSL request, a
// negotiation packet) and then runs the same TLS handshake.
type Protocol string

// The protocols certsweep speaks. Each one's upgrade lives in its own file.
const (
	ProtoTLS        Protocol = "tls"
	ProtoSMTP       Protocol = "smtp"        // RFC 3207 STARTTLS
	ProtoIMAP       Protocol = "imap"        // RFC 3501 / 9051 STARTTLS
	ProtoPOP3       Protocol = "pop3"        // RFC 2595 STLS
	ProtoFTP        Protocol = "ftp"         // RFC 4217 AUTH TLS
	ProtoLDAP       Protocol = "ldap"        // RFC 4511 StartTLS extended operation
	ProtoXMPP       Protocol = "xmpp"        // RFC 6120 <starttls/>, client-to-server stream
	ProtoXMPPServer Protocol = "xmpp-server" // RFC 6120 <starttls/>, server-to-server stream
	ProtoPostgres   Protocol = "postgres"    // SSLRequest
	ProtoMySQL      Protocol = "mysql"       // SSL request in the handshake response (MariaDB too)
	ProtoMSSQL      Protocol = "mssql"       // MS-TDS PRELOGIN, TLS inside TDS packets
	ProtoRDP        Protocol = "rdp"         // X.224 Connection Request with RDP_NEG_REQ
)

// ProtocolInfo describes one protocol for help text and documentation.
type ProtocolInfo struct {
	Protocol Protocol
	Ports    []uint16 // the ports that speak it by default
	Aliases  []string // other names accepted in a port spec
	Summary  string
}

// Protocols lists every protocol certsweep speaks, with its default ports.
// Implicit TLS's default ports are DefaultPorts.
var Protocols = []ProtocolInfo{
	{ProtoTLS, nil, []string{"implicit"}, "TLS from the first byte (HTTPS, LDAPS, IMAPS, ...)"},
	{ProtoSMTP, []uint16{25, 587}, nil, "SMTP, EHLO then STARTTLS (RFC 3207)"},
	{ProtoIMAP, []uint16{143}, nil, "IMAP STARTTLS (RFC 3501, RFC 9051)"},
	{ProtoPOP3, []uint16{110}, []string{"pop"}, "POP3 STLS (RFC 2595)"},
	{ProtoFTP, []uint16{21}, nil, "FTP AUTH TLS (RFC 4217)"},
	{ProtoLDAP, []uint16{389, 3268}, nil, "LDAP StartTLS extended operation (RFC 4511)"},
	{ProtoXMPP, []uint16{5222}, []string{"xmpp-client", "jabber"}, "XMPP client stream <starttls/> (RFC 6120)"},
	{ProtoXMPPServer, []uint16{5269}, nil, "XMPP server-to-server stream <starttls/> (RFC 6120)"},
	{ProtoPostgres, []uint16{5432}, []string{"postgresql", "pg"}, "PostgreSQL SSLRequest"},
	{ProtoMySQL, []uint16{3306}, []string{"mariadb"}, "MySQL/MariaDB SSL request"},
	{ProtoMSSQL, []uint16{1433}, []string{"sqlserver", "tds"}, "SQL Server TDS PRELOGIN (MS-TDS)"},
	{ProtoRDP, []uint16{3389}, nil, "Remote Desktop X.224 negotiation (MS-RDPBCGR)"},
}

// ParseProtocol reads a protocol name or alias, case-insensitively.
func ParseProtocol(s string) (Protocol, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, pi := range Protocols {
		if s == string(pi.Protocol) || slices.Contains(pi.Aliases, s) {
			return pi.Protocol, nil
		}
	}
	names := make([]string, len(Protocols))
	for i, pi := range Protocols {
		names[i] = string(pi.Protocol)
	}
	return "", fmt.Errorf("unknown protocol %q; want one of %s", s, strings.Join(names, ", "))
}

// DefaultProtocols maps each port that does not speak implicit TLS to its
// protocol. Ports not in the map get implicit TLS.
func DefaultProtocols() map[uint16]Protocol {
	m := make(map[uint16]Protocol)
	for _, pi := range Protocols {
		for _, p := range pi.Ports {
			m[p] = pi.Protocol
		}
	}
	return m
}

// upgrader speaks a protocol's plaintext preamble over s until the peer is
// ready for a ClientHello and returns the connection to run TLS over
// (usually s.TLSConn(); MS-TDS wraps it). An upgrader returns errNoStartTLS
// (via noStartTLS) when the peer speaks the protocol but does not offer or
// refuses TLS, and a protocolError (via unexpected) when the peer does not
// speak the protocol at all. It never needs its own timeout: the probe's
// deadline is set on the connection and covers the whole probe.
type upgrader func(s *session) (net.Conn, error)

// upgraders holds every protocol but implicit TLS; each protocol's file
// adds itself in an init function.
var upgraders = map[Protocol]upgrader{}

// Bounds on a plaintext preamble. The byte cap of the probe bounds the total.
const (
	maxLine       = 8 << 10 // one protocol line; RFC 5321 allows 512 octets, IMAP capabilities run longer
	maxReplyLines = 256     // lines of one multi-line reply
	maxPacket     = 64 << 10
)

// session is the plaintext conversation before TLS, with bounded reads.
type session struct {
	conn net.Conn // deadline and byte cap already applied
	br   *bufio.Reader
	// Name is the server name the probe was asked to reach: the SNI when
	// there is one, else the address. XMPP sends it as the stream's "to".
	Name string
	// Port is the endpoint's port, for protocols that vary by it.
	Port uint16
}

func newSession(c net.Conn, name string, port uint16) *session {
	return &session{conn: c, br: bufio.NewReaderSize(c, 4096), Name: name, Port: port}
}

// boundError ends a preamble that passes one of its bounds below the byte
// cap (a line, the lines of a reply, an announced message length, XML
// tokens). Like the byte cap it classifies as too-large: the peer sent
// more than a probe accepts.
type boundError string

func (e boundError) Error() string      { return string(e) }
func (boundError) Is(target error) bool { return target == errTooLarge }

// errLineTooLong ends a probe whose peer sends a line over maxLine bytes.
var errLineTooLong = boundError(fmt.Sprintf("peer sent a line longer than %d bytes", maxLine))

// tooManyLines is the boundError for a reply of more than maxReplyLines.
func tooManyLines(proto Protocol) error {
	return boundError(fmt.Sprintf("%s server sent a reply of more than %d lines", proto, maxReplyLines))
}

// oversize is the boundError for an announced message over limit bytes.
func oversize(n, limit int, what string) error {
	return boundError(fmt.Sprintf("peer announced a %d-byte %s; the limit is %d", n, what, limit))
}

// readAnnounced reads an n-byte message whose length the peer announced,
// refusing more than limit before allocating.
func readAnnounced(s *session, n, limit int, what string) ([]byte, error) {
	if n < 0 || n > limit {
		return nil, oversize(n, limit, what)
	}
	return s.ReadFull(n)
}

// ReadLine reads one line, without its CR LF (or bare LF), of at most
// maxLine bytes.
func (s *session) ReadLine() (string, error) {
	var line []byte
	for {
		chunk, err := s.br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine {
			return "", errLineTooLong
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(line), "\r\n"), nil
	}
}

// ReadReply reads one SMTP- or FTP-style reply (RFC 5321 §4.2, RFC 959 §4.2):
// a first line "NNN-text" opens a multi-line reply that ends at the first
// line "NNN text" with the same code (FTP lets the lines between be free
// text). It returns the code and the lines' text.
func (s *session) ReadReply() (int, []string, error) {
	first, err := s.ReadLine()
	if err != nil {
		return 0, nil, err
	}
	code, ok := replyCode(first)
	if !ok {
		return 0, nil, unexpected("a reply code", first)
	}
	lines := []string{replyText(first)}
	if len(first) == 3 || first[3] == ' ' {
		return code, lines, nil
	}
	if first[3] != '-' {
		return 0, nil, unexpected("a reply code", first)
	}
	end := first[:3] + " "
	for {
		line, err := s.ReadLine()
		if err != nil {
			return 0, lines, err
		}
		if len(lines) >= maxReplyLines {
			return 0, lines, boundError(fmt.Sprintf("peer sent a reply of more than %d lines", maxReplyLines))
		}
		if _, ok := replyCode(line); ok {
			lines = append(lines, replyText(line))
		} else {
			lines = append(lines, line)
		}
		if strings.HasPrefix(line, end) || line == first[:3] {
			return code, lines, nil
		}
	}
}

func replyCode(line string) (int, bool) {
	if len(line) < 3 || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
		return 0, false
	}
	code, err := strconv.Atoi(line[:3])
	return code, err == nil && code >= 100 && code <= 599
}

func replyText(line string) string {
	if len(line) > 4 {
		return line[4:]
	}
	return ""
}

// WriteLine sends line followed by CR LF.
func (s *session) WriteLine(line string) error {
	_, err := io.WriteString(s.conn, line+"\r\n")
	return err
}

// Write sends b as is.
func (s *session) Write(b []byte) error {
	_, err := s.conn.Write(b)
	return err
}

// ReadFull reads exactly n bytes; n above maxPacket is refused before any
// allocation, since lengths come from the peer.
func (s *session) ReadFull(n int) ([]byte, error) {
	if n < 0 || n > maxPacket {
		return nil, oversize(n, maxPacket, "message")
	}
	b := make([]byte, n)
	_, err := io.ReadFull(s.br, b)
	return b, err
}

// Reader is the session's buffered reader, for protocols that parse their
// own framing (XMPP's XML stream). Reads through it count against the
// probe's byte cap.
func (s *session) Reader() *bufio.Reader { return s.br }

// LocalAddr is the probe's own address, for an SMTP EHLO address literal.
func (s *session) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// TLSConn returns the connection to run TLS over once the upgrade is
// agreed, starting with any bytes already buffered.
func (s *session) TLSConn() net.Conn {
	if s.br.Buffered() == 0 {
		return s.conn
	}
	rest, _ := s.br.Peek(s.br.Buffered())
	return &prefixedConn{Conn: s.conn, prefix: bytes.Clone(rest)}
}

// prefixedConn reads prefix before the connection's own bytes.
type prefixedConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixedConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// errNoStartTLS marks a peer that speaks the protocol but does not offer
// TLS or refuses it: the probe ends StatusNoStartTLS.
var errNoStartTLS = errors.New("no STARTTLS")

// noStartTLS reports that the peer speaks proto but did not agree to TLS;
// why is shown to the user, so peer text in it must be quoted (see quote).
func noStartTLS(proto Protocol, why string) error {
	return &noStartTLSError{msg: fmt.Sprintf("%s server %s", proto, why)}
}

// noStartTLSError reads "smtp server does not advertise STARTTLS": the
// observation's error and the plaintext-only finding's detail.
type noStartTLSError struct{ msg string }

func (e *noStartTLSError) Error() string { return e.msg }
func (e *noStartTLSError) Unwrap() error { return errNoStartTLS }

// protocolError marks a peer that does not speak the expected protocol:
// the probe ends StatusNotTLS, as for a peer that does not speak TLS.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

// unexpected reports a peer that sent got where want was expected.
func unexpected(want, got string) error {
	return &protocolError{msg: fmt.Sprintf("expected %s, got %s", want, quote(got))}
}

// quote shows up to 80 bytes of peer-sent text, escaped, for error details:
// the text is attacker-controlled and ends up in terminals and reports.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// sniff recognises the greeting of a protocol with a TLS upgrade in the
// first bytes a peer sent; "" if there is none. Only protocols whose server
// speaks first (or answers a ClientHello in its own framing) can be
// recognised: SMTP, FTP, IMAP, POP3, XMPP and MySQL.
func sniff(head []byte, port uint16) Protocol {
	upper := bytes.ToUpper(head)
	switch {
	case bytes.HasPrefix(head, []byte("220 ")), bytes.HasPrefix(head, []byte("220-")):
		// SMTP and FTP greet alike; the greeting nearly always names one.
		if bytes.Contains(upper, []byte("FTP")) && !bytes.Contains(upper, []byte("SMTP")) {
			return ProtoFTP
		}
		return ProtoSMTP
	case bytes.HasPrefix(upper, []byte("* OK")), bytes.HasPrefix(upper, []byte("* PREAUTH")):
		return ProtoIMAP
	case bytes.HasPrefix(upper, []byte("+OK")):
		return ProtoPOP3
	case bytes.HasPrefix(head, []byte("<?xml")), bytes.HasPrefix(head, []byte("<stream:stream")):
		if port == 5269 {
			return ProtoXMPPServer
		}
		return ProtoXMPP
	case len(head) >= 5 && head[3] == 0 && head[4] == 10:
		// A MySQL/MariaDB greeting: a 3-byte length, sequence 0, protocol 10.
		return ProtoMySQL
	}
	return ""
}
