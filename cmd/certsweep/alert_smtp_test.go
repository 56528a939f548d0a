package main

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpSink is a small SMTP server (RFC 5321) on 127.0.0.1 for the alert
// tests, speaking EHLO/HELO, STARTTLS (RFC 3207) when it has a
// certificate, AUTH PLAIN and LOGIN (RFC 4954) when it has a user, MAIL,
// RCPT, DATA, RSET, NOOP and QUIT. It offers AUTH before STARTTLS too (as
// a careless server does), so that a test can see the client refuse it.
type smtpSink struct {
	Addr string

	tls          *tls.Config // nil: no STARTTLS
	user, pass   string      // AUTH offered (and required unless optionalAuth) when user is set
	optionalAuth bool
	stall        bool // accept connections, never greet

	mu          sync.Mutex
	dataReplies []string // answers to the next messages, then 250
	msgs        []sinkMsg
	auths       []string // "PLAIN tls", "LOGIN plaintext"...
	sessions    int

	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// sinkMsg is one message the sink accepted.
type sinkMsg struct {
	From string
	To   []string
	Data []byte // as received, dot-unstuffed, with LF line ends
	TLS  bool   // sent after STARTTLS
	User string // who authenticated, if anyone
}

// sinkOptions configure a sink.
type sinkOptions struct {
	TLS          *tls.Config // offer STARTTLS with this (nil: no STARTTLS)
	User, Pass   string      // offer AUTH, and require it, with these
	OptionalAuth bool        // offer AUTH but accept mail without it
	Stall        bool        // accept connections, never greet
}

// newSMTPSink starts a sink on 127.0.0.1, stopped when the test ends.
func newSMTPSink(t testing.TB, o sinkOptions) *smtpSink {
	t.Helper()
	s, err := startSMTPSink(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// startSMTPSink starts a sink on 127.0.0.1; Close stops it.
func startSMTPSink(o sinkOptions) (*smtpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &smtpSink{Addr: ln.Addr().String(), tls: o.TLS, user: o.User, pass: o.Pass, optionalAuth: o.OptionalAuth,
		stall: o.Stall, ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	return s, nil
}

// Close stops the sink and ends the sessions in progress.
func (s *smtpSink) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Messages returns the accepted messages.
func (s *smtpSink) Messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMsg(nil), s.msgs...)
}

// Auths returns the AUTH commands received, with whether TLS was on.
func (s *smtpSink) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

// Sessions returns how many connections the sink took.
func (s *smtpSink) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// ReplyToData queues answers to the next messages' final dot, such as
// "451 4.3.0 try again later"; once they are used up, messages get 250.
func (s *smtpSink) ReplyToData(replies ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataReplies = append(s.dataReplies, replies...)
}

func (s *smtpSink) serve(c net.Conn) {
	defer func() { c.Close() }()
	s.mu.Lock()
	s.sessions++
	s.mu.Unlock()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if s.stall {
		io.Copy(io.Discard, c) // until the client gives up
		return
	}
	tp := textproto.NewConn(c)
	var (
		from      string
		to        []string
		encrypted bool
		user      string
	)
	if tp.PrintfLine("220 sink.test ESMTP certsweep test sink") != nil {
		return
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		var reply []string
		switch strings.ToUpper(verb) {
		case "EHLO":
			reply = []string{"250-sink.test greets you", "250-8BITMIME"}
			if s.tls != nil && !encrypted {
				reply = append(reply, "250-STARTTLS")
			}
			if s.user != "" {
				reply = append(reply, "250-AUTH PLAIN LOGIN")
			}
			reply = append(reply, "250 SIZE 10485760")
		case "HELO", "NOOP":
			reply = []string{"250 2.0.0 ok"}
		case "STARTTLS":
			if s.tls == nil || encrypted {
				reply = []string{"502 5.5.1 no STARTTLS here"}
				break
			}
			if tp.PrintfLine("220 2.0.0 ready to start TLS") != nil {
				return
			}
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			c, tp, encrypted = tc, textproto.NewConn(tc), true
			from, to, user = "", nil, "" // RFC 3207: forget everything
			continue
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			mech = strings.ToUpper(mech)
			state := "plaintext"
			if encrypted {
				state = "tls"
			}
			s.mu.Lock()
			s.auths = append(s.auths, mech+" "+state)
			s.mu.Unlock()
			u, p, ok := s.authenticate(tp, mech, initial)
			if !ok {
				reply = []string{"535 5.7.8 authentication failed"}
				break
			}
			if u != s.user || p != s.pass {
				reply = []string{"535 5.7.8 bad credentials"}
				break
			}
			user = u
			reply = []string{"235 2.7.0 authenticated"}
		case "MAIL":
			if s.user != "" && user == "" && !s.optionalAuth {
				reply = []string{"530 5.7.0 authentication required"}
				break
			}
			from, to = firstField(strings.TrimPrefix(arg, "FROM:")), nil
			reply = []string{"250 2.1.0 ok"}
		case "RCPT":
			to = append(to, firstField(strings.TrimPrefix(arg, "TO:")))
			reply = []string{"250 2.1.5 ok"}
		case "DATA":
			if from == "" || len(to) == 0 {
				reply = []string{"503 5.5.1 MAIL and RCPT first"}
				break
			}
			if tp.PrintfLine("354 end with <CRLF>.<CRLF>") != nil {
				return
			}
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.mu.Lock()
			answer := "250 2.0.0 queued"
			if len(s.dataReplies) > 0 {
				answer, s.dataReplies = s.dataReplies[0], s.dataReplies[1:]
			}
			if strings.HasPrefix(answer, "250") {
				s.msgs = append(s.msgs, sinkMsg{From: from, To: to, Data: data, TLS: encrypted, User: user})
			}
			s.mu.Unlock()
			from, to = "", nil
			reply = []string{answer}
		case "RSET":
			from, to = "", nil
			reply = []string{"250 2.0.0 ok"}
		case "QUIT":
			tp.PrintfLine("221 2.0.0 bye")
			return
		default:
			reply = []string{"502 5.5.2 unknown command"}
		}
		for _, r := range reply {
			if tp.PrintfLine("%s", r) != nil {
				return
			}
		}
	}
}

// authenticate runs AUTH PLAIN or LOGIN and returns the credentials given.
func (s *smtpSink) authenticate(tp *textproto.Conn, mech, initial string) (user, pass string, ok bool) {
	ask := func(challenge string) (string, bool) {
		if tp.PrintfLine("334 %s", base64.StdEncoding.EncodeToString([]byte(challenge))) != nil {
			return "", false
		}
		line, err := tp.ReadLine()
		if err != nil {
			return "", false
		}
		b, err := base64.StdEncoding.DecodeString(line)
		return string(b), err == nil
	}
	switch mech {
	case "PLAIN":
		resp := initial
		if resp == "" {
			r, ok := ask("")
			if !ok {
				return "", "", false
			}
			resp = base64.StdEncoding.EncodeToString([]byte(r))
		}
		b, err := base64.StdEncoding.DecodeString(resp)
		parts := bytes.Split(b, []byte{0})
		if err != nil || len(parts) != 3 {
			return "", "", false
		}
		return string(parts[1]), string(parts[2]), true
	case "LOGIN":
		u, ok1 := ask("Username:")
		p, ok2 := ask("Password:")
		return u, p, ok1 && ok2
	}
	return "", "", false
}

// firstField drops the ESMTP parameters after an address (BODY=8BITMIME).
func firstField(s string) string {
	f, _, _ := strings.Cut(s, " ")
	return f
}
