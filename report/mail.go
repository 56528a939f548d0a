package report

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Mailer sends alerts as a plain-text mail with the findings attached as
// CSV, through an SMTP server (RFC 5321). It uses STARTTLS whenever the
// server offers it (RFC 3207), or implicit TLS on port 465 (RFC 8314),
// and verifies the server's certificate. It sends a password only over
// TLS.
type Mailer struct {
	addr, host string
	from       string // the From header: "certsweep <certsweep@corp.example>"
	sender     string // the envelope sender: certsweep@corp.example
	to         []string
	user, pass string
	roots      *x509.CertPool
	timeout    time.Duration
	hello      string
	now        func() time.Time
}

// MailSettings configure a Mailer.
type MailSettings struct {
	Server   string   // host:port
	From     string   // an address, optionally with a name: "certsweep <certsweep@corp.example>"
	To       []string // one or more addresses
	User     string   // AUTH when not empty
	Password string
	Roots    *x509.CertPool // verifies the server's certificate (nil: the system's roots)
	Timeout  time.Duration  // for each attempt, from connecting to the server's last answer (0: 30 s)
	Hello    string         // the name given in EHLO (default: localhost)
}

// NewMailer checks the settings and returns a mail destination.
func NewMailer(s MailSettings) (*Mailer, error) {
	host, port, err := net.SplitHostPort(s.Server)
	if err != nil || host == "" {
		return nil, fmt.Errorf("--smtp %q: want HOST:PORT, such as mail.corp.example:25", s.Server)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("--smtp %q: %q is not a port", s.Server, port)
	}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return nil, fmt.Errorf("--from %q: %w", s.From, err)
	}
	if len(s.To) == 0 {
		return nil, errors.New("--smtp needs at least one --to address")
	}
	m := &Mailer{addr: s.Server, host: host, from: from.String(), sender: from.Address, user: s.User, pass: s.Password,
		roots: s.Roots, timeout: s.Timeout, hello: s.Hello, now: time.Now}
	for _, t := range s.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("--to %q: %w", t, err)
		}
		m.to = append(m.to, a.Address)
	}
	if m.hello == "" {
		m.hello = "localhost"
	}
	if m.timeout <= 0 {
		m.timeout = defaultAttemptTimeout
	}
	return m, nil
}

// ID names the mail destination by its recipients: a change of relay does
// not send everything again, a change of recipients does.
func (m *Mailer) ID() string {
	to := make([]string, len(m.to))
	for i, a := range m.to {
		to[i] = strings.ToLower(a)
	}
	slices.Sort(to)
	return "mail " + strings.Join(slices.Compact(to), ",")
}

func (m *Mailer) String() string {
	return "mail to " + strings.Join(m.to, ", ") + " via " + m.addr
}

// Prepare renders the alert as an RFC 5322 message: the plain-text
// summary (Alert.MailText) and the findings as a CSV attachment.
func (m *Mailer) Prepare(a Alert) ([]byte, error) {
	attachment, err := a.CSV()
	if err != nil {
		return nil, err
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id) // never fails (crypto/rand)
	var msg bytes.Buffer
	body := multipart.NewWriter(&msg)
	subject := a.Summary() // escaped: no line ends
	headers := [][2]string{
		{"From", m.from},
		{"To", strings.Join(m.to, ", ")},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", m.now().Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id) + "@certsweep>"},
		{"Auto-Submitted", "auto-generated"}, // RFC 3834: no vacation replies
		{"MIME-Version", "1.0"},
		{"Content-Type", `multipart/mixed; boundary="` + body.Boundary() + `"`},
	}
	var head bytes.Buffer
	for _, h := range headers {
		head.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	head.WriteString("\r\n")

	// Plain ASCII as it is (every line is short: MailText clips values),
	// anything else quoted-printable.
	plain := strings.ReplaceAll(a.MailText(), "\n", "\r\n")
	encoding := "7bit"
	if !isPlain(strings.NewReplacer("\r", "", "\n", "").Replace(plain)) {
		encoding = "quoted-printable"
	}
	text, err := body.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {encoding},
	})
	if err != nil {
		return nil, err
	}
	if encoding == "7bit" {
		if _, err := text.Write([]byte(plain)); err != nil {
			return nil, err
		}
	} else {
		qp := quotedprintable.NewWriter(text)
		if _, err := qp.Write([]byte(plain)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	name := fmt.Sprintf("certsweep-sweep-%d.csv", a.Sweep.ID)
	csvPart, err := body.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {`text/csv; charset=utf-8; name="` + name + `"`},
		"Content-Disposition":       {`attachment; filename="` + name + `"`},
		"Content-Transfer-Encoding": {"base64"},
	})
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString(attachment)
	for len(enc) > 76 {
		fmt.Fprintf(csvPart, "%s\r\n", enc[:76])
		enc = enc[76:]
	}
	fmt.Fprintf(csvPart, "%s\r\n", enc)
	if err := body.Close(); err != nil {
		return nil, err
	}
	return append(head.Bytes(), msg.Bytes()...), nil
}

// Send delivers the message once. Network errors, timeouts and 4xx answers
// may be retried; 5xx answers, a certificate that does not verify and a
// password the server would get in clear are permanent.
func (m *Mailer) Send(ctx context.Context, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no connection within --timeout %s", m.timeout)
		}
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // the timeout, or Ctrl-C, mid-dialogue
	defer stop()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	tlsConfig := &tls.Config{ServerName: m.host, RootCAs: m.roots, MinVersion: tls.VersionTLS12}
	encrypted := false
	if _, port, _ := net.SplitHostPort(m.addr); port == "465" {
		conn = tls.Client(conn, tlsConfig)
		encrypted = true
	}
	err = m.dialogue(conn, encrypted, tlsConfig, msg)
	if err != nil && (ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)) {
		return fmt.Errorf("no answer within --timeout %s (%w)", m.timeout, err)
	}
	return err
}

func (m *Mailer) dialogue(conn net.Conn, encrypted bool, tlsConfig *tls.Config, msg []byte) error {
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return smtpError("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(m.hello); err != nil {
		return smtpError("EHLO", err)
	}
	if !encrypted {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConfig); err != nil {
				return smtpError("STARTTLS", err)
			}
			encrypted = true
		}
	}
	if m.user != "" {
		if !encrypted {
			return permanentf("%s offers no STARTTLS: certsweep will not send the password of --smtp-auth-file in clear", m.addr)
		}
		ok, mechanisms := c.Extension("AUTH")
		var auth smtp.Auth
		switch fields := strings.Fields(strings.ToUpper(mechanisms)); {
		case !ok:
			return permanentf("%s offers no AUTH, and --smtp-auth-file was given", m.addr)
		case slices.Contains(fields, "PLAIN"):
			auth = smtp.PlainAuth("", m.user, m.pass, m.host)
		case slices.Contains(fields, "LOGIN"):
			auth = loginAuth{m.user, m.pass}
		default:
			return permanentf("%s offers AUTH %s; certsweep speaks PLAIN and LOGIN", m.addr, Terminal(mechanisms))
		}
		if err := c.Auth(auth); err != nil {
			return smtpError("AUTH", err)
		}
	}
	if err := c.Mail(m.sender); err != nil {
		return smtpError("MAIL FROM", err)
	}
	for _, to := range m.to {
		if err := c.Rcpt(to); err != nil {
			return smtpError("RCPT TO:<"+to+">", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpError("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpError("DATA", err)
	}
	if err := w.Close(); err != nil { // the server's answer to the message
		return smtpError("the message", err)
	}
	_ = c.Quit() // delivered: the answer to QUIT changes nothing
	return nil
}

// smtpError words an SMTP failure at a stage of the dialogue: a 5xx
// answer and a certificate that does not verify are permanent, a 4xx
// answer or a network error may be retried.
func smtpError(stage string, err error) error {
	var reply *textproto.Error
	switch {
	case errors.As(err, &reply):
		err = fmt.Errorf("%s: the server answered %d %s", stage, reply.Code, clip(Terminal(reply.Msg), 200))
		if reply.Code >= 500 {
			return permanent(err)
		}
		return err
	case certificateError(err):
		return permanentf("%s: %w (give its CA with --ca-bundle)", stage, err)
	}
	return fmt.Errorf("%s: %w", stage, err)
}

// loginAuth is AUTH LOGIN, which servers that lack PLAIN (some Exchange
// setups) offer. Mailer uses it only over TLS.
type loginAuth struct{ user, pass string }

func (a loginAuth) Start(*smtp.ServerInfo) (string, []byte, error) { return "LOGIN", nil, nil }

func (a loginAuth) Next(challenge []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(challenge))) {
	case "username:", "user name", "username":
		return []byte(a.user), nil
	case "password:", "password":
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("unexpected AUTH LOGIN challenge %q", clip(Terminal(string(challenge)), 60))
}
