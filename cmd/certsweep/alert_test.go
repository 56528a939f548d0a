package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// The alert tests run certsweep alert in-process against real sweeps of a
// loopback lab, a real HTTP receiver (httptest) and a real SMTP server
// (smtpSink), all on loopback. Retries are exercised with short
// --retry-for values; nothing asserts on timing.

// Hostile names the fixture's expired certificates carry, and their
// subjects as certsweep stores them (RFC 4514: < > ; , " escaped with a
// backslash, control characters as they are).
const (
	scriptCN       = "<script>alert(1)</script> <!channel> \x1b]0;pwned\x07"
	formulaCN      = `=HYPERLINK("http://evil.test/","click")`
	scriptSubject  = `CN=\<script\>alert(1)\</script\> \<!channel\> ` + "\x1b]0\\;pwned\x07"
	formulaSubject = `CN==HYPERLINK(\"http://evil.test/\"\,\"click\")`
)

// alertFixture is a swept lab with three expired certificates (the only
// critical findings): the lab's own, and two with hostile subjects.
type alertFixture struct {
	lab *scannertest.Lab
	db  string // swept once, as "weekly"
}

func newAlertFixture(t *testing.T) *alertFixture {
	t.Helper()
	lab := newLab(t, 14)
	for i, cn := range []string{scriptCN, formulaCN} {
		serveExpired(t, lab, byte(100+i), cn)
	}
	fx := &alertFixture{lab: lab, db: filepath.Join(t.TempDir(), "certs.db")}
	weeklySweep(t, fx.db, lab, "--quiet")
	return fx
}

// serveExpired serves an expired certificate named cn at address .n of the
// lab, on its port, and returns the leaf's fingerprint.
func serveExpired(t *testing.T, lab *scannertest.Lab, n byte, cn string) string {
	t.Helper()
	at := time.Now().Add(-90 * 24 * time.Hour)
	cert, err := lab.CA.Leaf(scannertest.CertOptions{CommonName: cn, NotBefore: at, NotAfter: at.Add(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scannertest.NewTLSServer(fmt.Sprintf("%s:%d", labAddr(lab, n), lab.Port), scannertest.TLSConfig(cert, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return fingerprint(cert.Certificate[0])
}

// copyDB gives a subtest its own copy of the fixture's database.
func (fx *alertFixture) copyDB(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(fx.db)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "certs.db")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// alert runs certsweep alert on db.
func alert(t *testing.T, db string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return run(t, context.Background(), append([]string{"alert", "--db", db}, args...)...)
}

// sentTo returns the findings marked sent to a destination in db.
func sentTo(t *testing.T, db string, d report.AlertDestination) map[string]bool {
	t.Helper()
	ctx := context.Background()
	s, err := store.OpenExisting(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sent, err := s.AlertsSent(ctx, d.ID())
	if err != nil {
		t.Fatal(err)
	}
	return sent
}

func webhookDest(t *testing.T, url string) report.AlertDestination {
	t.Helper()
	w, err := report.NewWebhook(url, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// hookReceiver is an incoming webhook on 127.0.0.1 that records every
// request; answer picks the status of the n-th (from 1): 0 stalls until
// the client leaves.
type hookReceiver struct {
	URL string

	mu       sync.Mutex
	answer   func(n int) int
	requests []hookRequest
}

type hookRequest struct {
	status      int
	contentType string
	body        []byte
}

// hookMessage is the JSON certsweep posts.
type hookMessage struct {
	Text      string           `json:"text"`
	Sweep     int64            `json:"sweep"`
	SweepName string           `json:"sweep_name"`
	Counts    map[string]int   `json:"counts"`
	Findings  []map[string]any `json:"findings"`
}

func newHookReceiver(t *testing.T, answer func(n int) int) *hookReceiver {
	t.Helper()
	h := &hookReceiver{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		status := 200
		if h.answer != nil {
			status = h.answer(len(h.requests) + 1)
		}
		h.requests = append(h.requests, hookRequest{status: status, contentType: r.Header.Get("Content-Type"), body: body})
		h.mu.Unlock()
		if status == 0 {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(status)
		fmt.Fprint(w, http.StatusText(status))
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/hooks/T0000/B0000/s3cret"
	return h
}

func (h *hookReceiver) setAnswer(answer func(n int) int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answer = answer
}

// Requests is how many requests came.
func (h *hookReceiver) Requests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.requests)
}

// Accepted decodes the messages the receiver answered with a 2xx.
func (h *hookReceiver) Accepted(t *testing.T) []hookMessage {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookMessage
	for _, r := range h.requests {
		if r.status < 200 || r.status > 299 {
			continue
		}
		var m hookMessage
		if err := json.Unmarshal(r.body, &m); err != nil || r.contentType != "application/json" {
			t.Fatalf("a webhook request (%s) is not JSON: %v\n%s", r.contentType, err, r.body)
		}
		out = append(out, m)
	}
	return out
}

// kindsAndFPs returns the kinds and leaf fingerprints of a message's findings.
func kindsAndFPs(m hookMessage) (kinds, fps []string) {
	for _, f := range m.Findings {
		kinds = append(kinds, fmt.Sprint(f["kind"]))
		fps = append(fps, fmt.Sprint(f["sha256"]))
	}
	return kinds, fps
}

// TestAlertWebhook: the first run sends the critical findings, the second
// sends nothing, and a finding that appears in a later sweep is sent alone.
func TestAlertWebhook(t *testing.T) {
	fx := newAlertFixture(t)
	h := newHookReceiver(t, nil)
	db := fx.db

	stdout, stderr, code := alert(t, db, "--webhook", h.URL, "--min-severity", "critical")
	if code != 0 || !strings.Contains(stdout, "sent 3 new certsweep findings in sweep 1 (weekly): 3 critical") {
		t.Fatalf("first alert: exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "s3cret") {
		t.Errorf("the output shows the webhook's secret path:\n%s%s", stdout, stderr)
	}
	msgs := h.Accepted(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	kinds, _ := kindsAndFPs(m)
	if strings.Join(kinds, ",") != "expired,expired,expired" || m.Counts["critical"] != 3 || m.Sweep != 1 || m.SweepName != "weekly" {
		t.Errorf("message: kinds %v counts %v sweep %d %q; want 3 expired of sweep 1 (weekly)", kinds, m.Counts, m.Sweep, m.SweepName)
	}
	// The structured subject is exact; the chat text shows it inert.
	subjects := ""
	for _, f := range m.Findings {
		subjects += fmt.Sprint(f["subject"]) + "\n"
	}
	if !strings.Contains(subjects, scriptSubject+"\n") || !strings.Contains(subjects, formulaSubject+"\n") {
		t.Errorf("structured subjects:\n%q\nwant the hostile names exactly", subjects)
	}
	for _, bad := range []string{"<script>", "<!channel>", "\x1b", "\x07"} {
		if strings.Contains(m.Text, bad) {
			t.Errorf("the chat text holds %q:\n%s", bad, m.Text)
		}
	}
	if !strings.Contains(m.Text, "`CN=\\&lt;script\\&gt;alert(1)\\&lt;/script\\&gt; \\&lt;!channel\\&gt; \\x1b]0\\;pwned\\x07`") {
		t.Errorf("the chat text should show the hostile subject escaped:\n%s", m.Text)
	}

	// The same findings next time: nothing is sent.
	stdout, stderr, code = alert(t, db, "--webhook", h.URL, "--min-severity", "critical")
	if code != 0 || h.Requests() != 1 || !strings.Contains(stdout, "nothing new to send") {
		t.Errorf("second alert: exit %d, %d requests in all (want 1)\n%s%s", code, h.Requests(), stdout, stderr)
	}

	// A week later: the expired certificates are still there, and one more.
	newFP := serveExpired(t, fx.lab, 102, "new-expired.lab.test")
	weeklySweep(t, db, fx.lab, "--quiet")
	stdout, stderr, code = alert(t, db, "--webhook", h.URL, "--min-severity", "critical")
	msgs = h.Accepted(t)
	if code != 0 || len(msgs) != 2 {
		t.Fatalf("alert after sweep 2: exit %d, %d messages (want 2)\n%s%s", code, len(msgs), stdout, stderr)
	}
	if kinds, fps := kindsAndFPs(msgs[1]); len(fps) != 1 || fps[0] != newFP || kinds[0] != "expired" || msgs[1].Sweep != 2 {
		t.Errorf("alert after sweep 2 sent %v %v of sweep %d, want only the new expired %s", kinds, fps, msgs[1].Sweep, newFP)
	}

	// Sweep 1 again: all of its findings were sent.
	if stdout, _, code = alert(t, db, "--webhook", h.URL, "--min-severity", "critical", "--sweep", "1"); code != 0 || !strings.Contains(stdout, "nothing new") {
		t.Errorf("--sweep 1: exit %d %s", code, stdout)
	}
	// A lower threshold sends the rest, and nothing already sent.
	if stdout, stderr, code = alert(t, db, "--webhook", h.URL, "--min-severity", "high"); code != 0 {
		t.Fatalf("--min-severity high: exit %d\n%s%s", code, stdout, stderr)
	}
	msgs = h.Accepted(t)
	if len(msgs) != 3 || len(msgs[2].Findings) == 0 || msgs[2].Counts["critical"] != 0 || msgs[2].Counts["high"] != len(msgs[2].Findings) {
		t.Errorf("--min-severity high after critical: %d messages, the last with counts %v; want the high findings only", len(msgs), msgs[len(msgs)-1].Counts)
	}
	if n := len(sentTo(t, db, webhookDest(t, h.URL))); n != 4+len(msgs[2].Findings) {
		t.Errorf("%d findings marked sent, want %d", n, 4+len(msgs[2].Findings))
	}
}

// TestAlertWebhookRetry: a 500, then success within --retry-for: the
// alert is retried, delivered and marked once.
func TestAlertWebhookRetry(t *testing.T) {
	fx := newAlertFixture(t)
	h := newHookReceiver(t, func(n int) int {
		if n == 1 {
			return 500
		}
		return 200
	})
	stdout, stderr, code := alert(t, fx.db, "--webhook", h.URL, "--min-severity", "critical", "--retry-for", "1m")
	if code != 0 || h.Requests() != 2 || len(h.Accepted(t)) != 1 {
		t.Fatalf("exit %d, %d requests (want 2: a 500, then a 200)\n%s%s", code, h.Requests(), stdout, stderr)
	}
	if !strings.Contains(stderr, "attempt 1 failed: HTTP 500") || !strings.Contains(stderr, "retrying in") {
		t.Errorf("stderr should tell of the retry:\n%s", stderr)
	}
	h.mu.Lock()
	same := bytes.Equal(h.requests[0].body, h.requests[1].body)
	h.mu.Unlock()
	if !same {
		t.Errorf("the retry sent another body")
	}
	if n := len(sentTo(t, fx.db, webhookDest(t, h.URL))); n != 3 {
		t.Errorf("%d findings marked sent, want 3", n)
	}
	if _, _, code := alert(t, fx.db, "--webhook", h.URL, "--min-severity", "critical"); code != 0 || h.Requests() != 2 {
		t.Errorf("the next run: exit %d, %d requests in all; want nothing sent", code, h.Requests())
	}
}

// TestAlertWebhookFailures: a delivery that does not succeed within
// --retry-for, or cannot, exits 1 and marks nothing, so the next run sends
// it all.
func TestAlertWebhookFailures(t *testing.T) {
	fx := newAlertFixture(t)
	always := func(status int) func(int) int { return func(int) int { return status } }
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr + "/hooks/x"
	}()
	other := newHookReceiver(t, nil)
	redirect := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	for _, tc := range []struct {
		name   string
		answer func(int) int
		url    string // instead of the receiver's: nothing to recover
		args   []string
		stderr string
		tries  func(n int) bool // requests the receiver got
	}{
		{name: "persistent 500", answer: always(500), args: []string{"--retry-for", "1s"},
			stderr: "attempts failed", tries: func(n int) bool { return n >= 2 }},
		{name: "timeout", answer: always(0), args: []string{"--timeout", "200ms", "--retry-for", "300ms"},
			stderr: "no answer within --timeout 200ms", tries: func(n int) bool { return n >= 1 }},
		{name: "connection refused", url: closed, args: []string{"--retry-for", "600ms"},
			stderr: "connection refused"},
		{name: "404 is not retried", answer: always(404), args: []string{"--retry-for", "1m"},
			stderr: "HTTP 404", tries: func(n int) bool { return n == 1 }},
		{name: "redirect to another host", url: redirect.URL + "/hooks/x", args: []string{"--retry-for", "1m"},
			stderr: "a redirect to http://127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := fx.copyDB(t)
			h := newHookReceiver(t, tc.answer)
			url := h.URL
			if tc.url != "" {
				url = tc.url
			}
			stdout, stderr, code := alert(t, db, append([]string{"--webhook", url, "--min-severity", "critical"}, tc.args...)...)
			if code != exitFailure || !strings.Contains(stderr, tc.stderr) || !strings.Contains(stderr, "nothing was marked sent") {
				t.Errorf("exit %d, want 1 with %q in stderr\n%s%s", code, tc.stderr, stdout, stderr)
			}
			if tc.tries != nil && !tc.tries(h.Requests()) {
				t.Errorf("%d requests", h.Requests())
			}
			if other.Requests() != 0 {
				t.Errorf("the redirect was followed to another host")
			}
			if sent := sentTo(t, db, webhookDest(t, url)); len(sent) != 0 {
				t.Errorf("marked sent after a failure: %v", sent)
			}
			if tc.url != "" {
				return
			}
			// The receiver recovers: the next run sends everything.
			h.setAnswer(nil)
			if _, stderr, code := alert(t, db, "--webhook", url, "--min-severity", "critical"); code != 0 {
				t.Fatalf("after recovery: exit %d %s", code, stderr)
			}
			if msgs := h.Accepted(t); len(msgs) != 1 || len(msgs[0].Findings) != 3 {
				t.Errorf("after recovery: %d messages, want 1 with the 3 findings", len(msgs))
			}
		})
	}
}

// mailSetup is a sink with STARTTLS and AUTH, its CA bundle and an auth file.
type mailSetup struct {
	sink             *smtpSink
	bundle, authFile string
}

func newMailSetup(t *testing.T, o sinkOptions, withTLS bool) *mailSetup {
	t.Helper()
	ca, err := scannertest.NewCA("mail")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ms := &mailSetup{bundle: filepath.Join(dir, "mail-ca.pem"), authFile: filepath.Join(dir, "smtp-auth")}
	if err := os.WriteFile(ms.bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.DER}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ms.authFile, []byte("certsweep:pa:ss word\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if withTLS {
		cert, err := ca.Leaf(scannertest.CertOptions{CommonName: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
		if err != nil {
			t.Fatal(err)
		}
		o.TLS = scannertest.TLSConfig(cert, 0, 0)
	}
	ms.sink = newSMTPSink(t, o)
	return ms
}

func (ms *mailSetup) args(extra ...string) []string {
	return append([]string{"--smtp", ms.sink.Addr, "--from", "certsweep <certsweep@corp.test>", "--to", "pki@corp.test,ops@corp.test",
		"--min-severity", "critical"}, extra...)
}

func mailDest(t *testing.T) report.AlertDestination {
	t.Helper()
	m, err := report.NewMailer(report.MailSettings{Server: "x:25", From: "a@b.test", To: []string{"pki@corp.test", "ops@corp.test"}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// parseAlertMail returns a received alert's subject, text and CSV rows.
func parseAlertMail(t *testing.T, data []byte) (subject, text string, rows [][]string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a mail: %v\n%s", err, data)
	}
	subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	parts := multipart.NewReader(msg.Body, params["boundary"])
	p, err := parts.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(p)
	text = string(b)
	if p, err = parts.NextPart(); err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
	if rows, err = csv.NewReader(bytes.NewReader(b)).ReadAll(); err != nil {
		t.Fatalf("attachment is not CSV: %v\n%s", err, b)
	}
	return subject, text, rows
}

// TestAlertMail: a mail over STARTTLS with AUTH, the CSV attached, and
// nothing the second time.
func TestAlertMail(t *testing.T) {
	fx := newAlertFixture(t)
	ms := newMailSetup(t, sinkOptions{User: "certsweep", Pass: "pa:ss word"}, true)
	args := ms.args("--smtp-auth-file", ms.authFile, "--ca-bundle", ms.bundle)
	stdout, stderr, code := alert(t, fx.db, args...)
	msgs := ms.sink.Messages()
	if code != 0 || len(msgs) != 1 {
		t.Fatalf("exit %d, %d messages (want 1)\n%s%s", code, len(msgs), stdout, stderr)
	}
	m := msgs[0]
	if !m.TLS || m.User != "certsweep" || strings.Join(ms.sink.Auths(), ",") != "PLAIN tls" {
		t.Errorf("STARTTLS %v, user %q, AUTH %q: want PLAIN after STARTTLS", m.TLS, m.User, ms.sink.Auths())
	}
	if m.From != "<certsweep@corp.test>" || strings.Join(m.To, ",") != "<pki@corp.test>,<ops@corp.test>" {
		t.Errorf("envelope from %q to %q", m.From, m.To)
	}
	subject, text, rows := parseAlertMail(t, m.Data)
	if subject != "3 new certsweep findings in sweep 1 (weekly): 3 critical" {
		t.Errorf("Subject %q", subject)
	}
	if !strings.Contains(text, `subject:  CN=\<script\>alert(1)\</script\> \<!channel\> \x1b]0\;pwned\x07`) || strings.ContainsAny(text, "\x1b\x07") {
		t.Errorf("mail text should show the hostile subject with its control characters escaped:\n%s", text)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(report.FindingColumns, ",") {
		t.Fatalf("attachment: %d rows, header %v", len(rows), rows[0])
	}
	found := false
	for _, r := range rows[1:] {
		for _, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("CSV cell %q can start a formula", cell)
			}
		}
		found = found || r[6] == formulaSubject
	}
	if !found {
		t.Errorf("no subject cell holds %s: %v", formulaCN, rows)
	}

	stdout, _, code = alert(t, fx.db, args...)
	if code != 0 || len(ms.sink.Messages()) != 1 || !strings.Contains(stdout, "nothing new") {
		t.Errorf("second alert: exit %d, %d messages in all (want 1): %s", code, len(ms.sink.Messages()), stdout)
	}
	if n := len(sentTo(t, fx.db, mailDest(t))); n != 3 {
		t.Errorf("%d findings marked sent, want 3", n)
	}
}

// TestAlertMailFailures: what the mail sender refuses, retries and gives
// up on; every failure exits 1 and marks nothing.
func TestAlertMailFailures(t *testing.T) {
	fx := newAlertFixture(t)
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	for _, tc := range []struct {
		name     string
		opts     sinkOptions
		tls      bool
		replies  []string
		args     func(ms *mailSetup) []string
		code     int
		stderr   string
		messages int
		sessions func(n int) bool
		auths    string
	}{
		{name: "no STARTTLS: no password in clear", opts: sinkOptions{User: "certsweep", Pass: "pa:ss word"},
			args: func(ms *mailSetup) []string { return ms.args("--smtp-auth-file", ms.authFile, "--retry-for", "1m") },
			code: exitFailure, stderr: "will not send the password", sessions: func(n int) bool { return n == 1 }},
		{name: "no STARTTLS, no password: sent in clear", args: func(ms *mailSetup) []string { return ms.args() },
			messages: 1},
		{name: "451 then accepted", tls: true, replies: []string{"451 4.3.0 try again later"},
			args:     func(ms *mailSetup) []string { return ms.args("--ca-bundle", ms.bundle, "--retry-for", "1m") },
			messages: 1, stderr: "451 4.3.0 try again later; retrying", sessions: func(n int) bool { return n == 2 }},
		{name: "554 is not retried", tls: true, replies: []string{"554 5.7.1 rejected"},
			args: func(ms *mailSetup) []string { return ms.args("--ca-bundle", ms.bundle, "--retry-for", "1m") },
			code: exitFailure, stderr: "554 5.7.1 rejected", sessions: func(n int) bool { return n == 1 }},
		{name: "STARTTLS certificate not trusted", tls: true,
			args: func(ms *mailSetup) []string { return ms.args("--retry-for", "1m") },
			code: exitFailure, stderr: "certificate", sessions: func(n int) bool { return n == 1 }},
		{name: "connection refused",
			args: func(ms *mailSetup) []string { return append(ms.args("--retry-for", "600ms"), "--smtp", closed) },
			code: exitFailure, stderr: "connection refused"},
		{name: "no greeting: timeout", opts: sinkOptions{Stall: true},
			args: func(ms *mailSetup) []string { return ms.args("--timeout", "200ms", "--retry-for", "300ms") },
			code: exitFailure, stderr: "no answer within --timeout 200ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := fx.copyDB(t)
			ms := newMailSetup(t, tc.opts, tc.tls)
			ms.sink.ReplyToData(tc.replies...)
			stdout, stderr, code := alert(t, db, tc.args(ms)...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, want %d with %q in stderr\n%s%s", code, tc.code, tc.stderr, stdout, stderr)
			}
			if n := len(ms.sink.Messages()); n != tc.messages {
				t.Errorf("%d messages accepted, want %d", n, tc.messages)
			}
			if tc.sessions != nil && !tc.sessions(ms.sink.Sessions()) {
				t.Errorf("%d SMTP sessions", ms.sink.Sessions())
			}
			if a := ms.sink.Auths(); tc.opts.User != "" && len(a) > 0 {
				t.Errorf("AUTH was sent: %q", a)
			}
			want := 0
			if tc.code == 0 {
				want = 3
			}
			if n := len(sentTo(t, db, mailDest(t))); n != want {
				t.Errorf("%d findings marked sent, want %d", n, want)
			}
		})
	}
}

// TestAlertBothDestinations: a webhook that fails does not stop the mail,
// nor repeat it; each destination keeps its own state.
func TestAlertBothDestinations(t *testing.T) {
	fx := newAlertFixture(t)
	h := newHookReceiver(t, func(int) int { return 503 })
	ms := newMailSetup(t, sinkOptions{}, true)
	args := append(ms.args("--ca-bundle", ms.bundle, "--retry-for", "700ms"), "--webhook", h.URL)
	stdout, stderr, code := alert(t, fx.db, args...)
	if code != exitFailure || !strings.Contains(stderr, "webhook http://127.0.0.1") || len(ms.sink.Messages()) != 1 {
		t.Fatalf("webhook failing: exit %d (want 1), %d mails (want 1)\n%s%s", code, len(ms.sink.Messages()), stdout, stderr)
	}
	if len(sentTo(t, fx.db, mailDest(t))) != 3 || len(sentTo(t, fx.db, webhookDest(t, h.URL))) != 0 {
		t.Errorf("marked: mail %d (want 3), webhook %d (want 0)", len(sentTo(t, fx.db, mailDest(t))), len(sentTo(t, fx.db, webhookDest(t, h.URL))))
	}
	h.setAnswer(nil)
	stdout, stderr, code = alert(t, fx.db, args...)
	if code != 0 || len(ms.sink.Messages()) != 1 {
		t.Fatalf("webhook back: exit %d, %d mails in all (want 1)\n%s%s", code, len(ms.sink.Messages()), stdout, stderr)
	}
	if msgs := h.Accepted(t); len(msgs) != 1 || len(msgs[0].Findings) != 3 {
		t.Errorf("webhook back: %d messages, want 1 with the 3 findings", len(msgs))
	}
}

// TestAlertDryRun: --dry-run prints both payloads, sends and marks nothing.
func TestAlertDryRun(t *testing.T) {
	fx := newAlertFixture(t)
	h := newHookReceiver(t, nil)
	ms := newMailSetup(t, sinkOptions{}, true)
	stdout, stderr, code := alert(t, fx.db, append(ms.args("--ca-bundle", ms.bundle, "--dry-run"), "--webhook", h.URL)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"--- dry run: would send 3 new certsweep findings", `{"text":"certsweep: 3 new findings in sweep 1`,
		"Subject: 3 new certsweep findings", "Content-Disposition: attachment; filename=\"certsweep-sweep-1.csv\""} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.ContainsAny(stdout, "\x1b\x07") {
		t.Errorf("dry run output holds control characters")
	}
	if h.Requests() != 0 || ms.sink.Sessions() != 0 {
		t.Errorf("dry run: %d webhook requests, %d SMTP sessions; want none", h.Requests(), ms.sink.Sessions())
	}
	if len(sentTo(t, fx.db, mailDest(t)))+len(sentTo(t, fx.db, webhookDest(t, h.URL))) != 0 {
		t.Errorf("dry run marked findings sent")
	}
}

// TestAlertUsage: mistakes in the flags are usage errors, before anything
// is judged or sent.
func TestAlertUsage(t *testing.T) {
	db := filepath.Join(t.TempDir(), "none.db")
	auth := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(auth, []byte("no-colon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "alert needs a destination"},
		{[]string{"--webhook", "ftp://x/y"}, "not an http:// or https:// URL"},
		{[]string{"--smtp", "mail.test:25", "--to", "a@b.test"}, "--smtp needs --from"},
		{[]string{"--smtp", "mail.test", "--from", "a@b.test", "--to", "a@b.test"}, "want HOST:PORT"},
		{[]string{"--smtp", "mail.test:25", "--from", "a@b.test"}, "at least one --to"},
		{[]string{"--smtp", "mail.test:25", "--from", "a@b.test", "--to", "not an address"}, "--to"},
		{[]string{"--to", "a@b.test", "--webhook", "http://127.0.0.1:1/"}, "need --smtp"},
		{[]string{"--smtp", "mail.test:25", "--from", "a@b.test", "--to", "a@b.test", "--smtp-auth-file", auth}, "not USER:PASSWORD"},
		{[]string{"--webhook", "http://127.0.0.1:1/", "--min-severity", "severe"}, "--min-severity"},
		{[]string{"--webhook", "http://127.0.0.1:1/", "--retry-for", "-1s"}, "--retry-for"},
		{[]string{"--webhook", "http://127.0.0.1:1/"}, "no database"},
	} {
		_, stderr, code := alert(t, db, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("alert %q: exit %d %q, want 2 with %q", tc.args, code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("alert created %s", db)
	}
}
