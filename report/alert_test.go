package report_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// TestAlertKey: what makes two findings the same finding for alerts.
func TestAlertKey(t *testing.T) {
	ep := hostileEndpoints()[0]
	ep.Protocol = "tls"
	expired := func(detail string) report.Finding {
		return report.Finding{Kind: report.KindExpired, Severity: report.SeverityCritical, Detail: detail}
	}
	key := report.AlertKey(ep, expired("expired 2026-10-30T12:00:00Z (2 days ago)"), 2)
	if got := report.AlertKey(ep, expired("expired 2026-10-30T12:00:00Z (9 days ago)"), 3); got != key {
		t.Errorf("a week later, in another sweep, the same expired leaf is another finding:\n%s\n%s", key, got)
	}
	renewed := ep
	renewed.Leaf.SHA256[5] ^= 1
	other := ep
	other.SNI = "www.example.com"
	proto := ep
	proto.Protocol = "smtp"
	for name, k := range map[string]string{
		"another kind":     report.AlertKey(ep, report.Finding{Kind: report.KindExpiring, Detail: "expires soon"}, 2),
		"another leaf":     report.AlertKey(renewed, expired("expired"), 2),
		"another SNI":      report.AlertKey(other, expired("expired"), 2),
		"another protocol": report.AlertKey(proto, expired("expired"), 2),
	} {
		if k == key {
			t.Errorf("%s: same key %s", name, k)
		}
	}
	var v []any
	if err := json.Unmarshal([]byte(key), &v); err != nil || len(v) != 7 || v[0] != "expired" || v[1] != ep.Leaf.Fingerprint() || v[2] != ep.IP {
		t.Errorf("key %s (%v): want a JSON array of kind, leaf, ip, port, sni, protocol, about", key, err)
	}

	// Sweep-wide findings: one per sweep.
	drop := report.Finding{Kind: report.KindCoverageDrop, Severity: report.SeverityCritical, Detail: "reached nothing"}
	if a, b := report.AlertKey(store.Endpoint{}, drop, 4), report.AlertKey(store.Endpoint{}, drop, 5); a == b || !strings.Contains(a, "sweep 4") {
		t.Errorf("coverage-drop keys of sweeps 4 and 5: %s, %s", a, b)
	}

	// Lints: one finding per lint.
	l1 := report.AlertKey(ep, report.Finding{Kind: report.KindLint, Detail: "e_sub_cert_aia_missing"}, 2)
	if l2 := report.AlertKey(ep, report.Finding{Kind: report.KindLint, Detail: "e_ext_san_missing"}, 2); l1 == l2 {
		t.Errorf("two lints share the key %s", l1)
	}
}

// TestAlertKeyChain: an expired intermediate is its own finding, beside
// the leaf's, keyed by the intermediate's fingerprint. This keeps
// AlertKey in step with the detail CertFindings writes for chain
// certificates.
func TestAlertKeyChain(t *testing.T) {
	ca, err := scannertest.NewCA("alerts")
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-400 * 24 * time.Hour)
	leafDER, err := ca.Leaf(scannertest.CertOptions{CommonName: "leaf.test", NotBefore: old, NotAfter: old.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	interDER, err := ca.Leaf(scannertest.CertOptions{CommonName: "Expired Intermediate", IsCA: true, NotBefore: old, NotAfter: old.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	leaf := store.Certificate{Cert: scanner.ParseCert(leafDER.Certificate[0])}
	inter := store.Certificate{Cert: scanner.ParseCert(interDER.Certificate[0])}
	ep := store.Endpoint{IP: "127.0.0.1", Port: 443, Protocol: "tls", Leaf: leaf,
		Chain: []string{leaf.Fingerprint(), store.Certificate{Cert: scanner.ParseCert(ca.Intermediate.DER)}.Fingerprint(), inter.Fingerprint()}}
	p := report.DefaultPolicy(time.Now())
	leafFs, chainFs := report.CertFindings(leaf, 0, p), report.CertFindings(inter, 2, p)
	if len(leafFs) == 0 || len(chainFs) == 0 || leafFs[0].Kind != report.KindExpired || chainFs[0].Kind != report.KindExpired {
		t.Fatalf("findings: leaf %v, chain %v; want expired for both", leafFs, chainFs)
	}
	lk, ck := report.AlertKey(ep, leafFs[0], 1), report.AlertKey(ep, chainFs[0], 1)
	if lk == ck || !strings.Contains(ck, `"chain `+inter.Fingerprint()+`"`) {
		t.Errorf("leaf key %s, chain key %s: want the chain's keyed by the intermediate's fingerprint (detail %q)", lk, ck, chainFs[0].Detail)
	}
}

// hostileAlert is an alert whose certificates carry text aimed at chat
// markup, spreadsheets and terminals.
func hostileAlert() report.Alert {
	eps := hostileEndpoints()
	eps[1].Leaf.Subject = "CN=<script>alert(1)</script> <!channel> `code` [x](http://evil.example) @all"
	eps[2].Leaf.Subject = "CN=Zürich Straße " + strings.Repeat("long ", 300)
	var items []report.AlertItem
	for _, ep := range eps {
		f := report.Finding{Kind: report.KindExpired, Severity: report.SeverityCritical, Detail: "expired; names " + ep.Leaf.Subject}
		items = append(items, report.AlertItem{Endpoint: ep, Finding: f, Key: report.AlertKey(ep, f, 7)})
	}
	weak := report.Finding{Kind: report.KindWeakKey, Severity: report.SeverityHigh, Detail: "RSA key of 1024 bits"}
	items = append([]report.AlertItem{{Endpoint: eps[0], Finding: weak, Key: report.AlertKey(eps[0], weak, 7)}}, items...)
	items = append(items, items[1]) // a duplicate, sent once
	return report.NewAlert(store.Sweep{ID: 7, Name: "weekly\r\nBcc: victim@example.com"}, items)
}

// TestAlertTexts: each medium gets certificate text in a form it cannot
// act on, and the structured data keeps it exact.
func TestAlertTexts(t *testing.T) {
	a := hostileAlert()
	if len(a.Items) != 8 || a.Items[0].Finding.Kind != report.KindExpired || a.Items[7].Finding.Kind != report.KindWeakKey {
		t.Fatalf("NewAlert: %d items, first %s, last %s; want 8 (the duplicate dropped), most severe first", len(a.Items), a.Items[0].Finding.Kind, a.Items[7].Finding.Kind)
	}

	chat := a.ChatText()
	for _, bad := range []string{"<script>", "<!channel>", "\x1b", "\u202e", "\r", "\nBcc:"} {
		if strings.Contains(chat, bad) {
			t.Errorf("chat text holds %q:\n%s", bad, chat)
		}
	}
	for _, want := range []string{"&lt;script&gt;", "`CN=&lt;script&gt;alert(1)&lt;/script&gt; &lt;!channel&gt; 'code' [x](http://evil.example) @all`", "certsweep: 8 new findings in sweep 7", "7 critical, 1 high"} {
		if !strings.Contains(chat, want) {
			t.Errorf("chat text lacks %q:\n%s", want, chat)
		}
	}
	// Every finding line holds certificate text only inside code spans.
	for _, line := range strings.Split(chat, "\n")[1:] {
		if strings.Count(line, "`")%2 != 0 {
			t.Errorf("unbalanced code span in %q", line)
		}
	}

	text := a.MailText()
	for _, r := range text {
		if r < 0x20 && r != '\n' || r == 0x7f || r == 0x202e {
			t.Errorf("mail text holds control character %U:\n%s", r, text)
		}
	}
	if !strings.Contains(text, "CN=<script>alert(1)</script>") || !strings.Contains(text, `\x1b[31mRED`) {
		t.Errorf("mail text should show subjects as text, control characters escaped:\n%s", text)
	}

	body, err := a.WebhookBody()
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Text     string
		Sweep    int64
		Counts   map[string]int
		Findings []map[string]any
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatalf("webhook body is not JSON: %v\n%s", err, body)
	}
	if msg.Text != chat || msg.Sweep != 7 || msg.Counts["critical"] != 7 || msg.Counts["high"] != 1 || len(msg.Findings) != 8 {
		t.Errorf("webhook body: sweep %d counts %v, %d findings, text as ChatText %v", msg.Sweep, msg.Counts, len(msg.Findings), msg.Text == chat)
	}
	if got := msg.Findings[1]["subject"]; got != a.Items[1].Endpoint.Leaf.Subject {
		t.Errorf("structured subject %q, want exactly %q", got, a.Items[1].Endpoint.Leaf.Subject)
	}
	for _, bad := range []string{"<", "\x1b", "\u202e"} {
		if bytes.Contains(body, []byte(bad)) {
			t.Errorf("webhook body holds %q raw", bad)
		}
	}
}

// TestAlertMailMessage: the mail parses as MIME, its headers cannot be
// forged through a sweep name, and the attached CSV is formula-safe.
func TestAlertMailMessage(t *testing.T) {
	m, err := report.NewMailer(report.MailSettings{Server: "mail.test:25", From: "certsweep <certsweep@corp.test>",
		To: []string{"pki@corp.test", "Ops <ops@corp.test>"}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID() != "mail ops@corp.test,pki@corp.test" {
		t.Errorf("ID() = %q: want the recipients, sorted", m.ID())
	}
	a := hostileAlert()
	raw, err := m.Prepare(a)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not a mail: %v\n%s", err, raw)
	}
	if msg.Header.Get("Bcc") != "" || len(msg.Header["Subject"]) != 1 {
		t.Errorf("headers %v: a sweep name forged a header", msg.Header)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || !strings.HasPrefix(subject, `8 new certsweep findings in sweep 7 (weekly\x0d\x0aBcc:`) {
		t.Errorf("Subject %q (%v)", subject, err)
	}
	if msg.Header.Get("To") != "pki@corp.test, ops@corp.test" || msg.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("To %q, Auto-Submitted %q", msg.Header.Get("To"), msg.Header.Get("Auto-Submitted"))
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	parts := multipart.NewReader(msg.Body, params["boundary"])
	text, err := parts.NextPart() // decodes quoted-printable
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := text.Header["Content-Transfer-Encoding"]; ok {
		t.Errorf("multipart kept the encoding header: it did not decode the part")
	}
	body, _ := io.ReadAll(text)
	if !strings.Contains(string(body), "Zürich Straße long long") || !strings.Contains(string(body), "…\r\n") {
		t.Errorf("text part lacks the UTF-8 subject, shortened:\n%s", body)
	}
	if want := strings.ReplaceAll(a.MailText(), "\n", "\r\n"); string(body) != want {
		t.Errorf("text part:\n%q\nwant\n%q", body, want)
	}
	att, err := parts.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if att.FileName() != "certsweep-sweep-7.csv" || att.Header.Get("Content-Transfer-Encoding") != "base64" {
		t.Errorf("attachment %q, %v", att.FileName(), att.Header)
	}
	b64, _ := io.ReadAll(att)
	data, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b64), "\r\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(rows) != 9 || strings.Join(rows[0], ",") != strings.Join(report.FindingColumns, ",") {
		t.Fatalf("attachment: %d rows (%v), header %v", len(rows), err, rows[0])
	}
	for _, r := range rows[1:] {
		if s := r[6]; s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			t.Errorf("subject cell %q can start a formula", s)
		}
	}
	if !strings.Contains(string(data), `'=HYPERLINK(`) {
		t.Errorf("the =HYPERLINK subject is not escaped:\n%s", data)
	}
}

// flaky is a destination that fails its first attempts.
type flaky struct {
	fails    int32
	err      error
	attempts atomic.Int32
}

func (f *flaky) ID() string                           { return "flaky" }
func (f *flaky) String() string                       { return "flaky" }
func (f *flaky) Prepare(report.Alert) ([]byte, error) { return []byte("x"), nil }
func (f *flaky) Send(context.Context, []byte) error {
	if n := f.attempts.Add(1); n <= f.fails || f.fails < 0 {
		return f.err
	}
	return nil
}

// TestAlertDeliver: retryable failures are retried until --retry-for,
// permanent ones are not.
func TestAlertDeliver(t *testing.T) {
	ctx := context.Background()
	quick := report.Retry{For: 10 * time.Second, First: time.Millisecond, Max: 2 * time.Millisecond}
	f := &flaky{fails: 2, err: errors.New("HTTP 500")}
	var notes []string
	if err := report.Deliver(ctx, f, nil, quick, func(s string) { notes = append(notes, s) }); err != nil || f.attempts.Load() != 3 || len(notes) != 2 {
		t.Errorf("two failures, then success: %v after %d attempts, notes %q", err, f.attempts.Load(), notes)
	}
	f = &flaky{fails: -1, err: errors.New("HTTP 500")}
	err := report.Deliver(ctx, f, nil, report.Retry{For: 30 * time.Millisecond, First: time.Millisecond, Max: 4 * time.Millisecond}, nil)
	if err == nil || f.attempts.Load() < 2 || !strings.Contains(err.Error(), "attempts failed") || !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("persistent failure: %v after %d attempts", err, f.attempts.Load())
	}
	f = &flaky{fails: -1, err: errors.New("HTTP 500")}
	if err := report.Deliver(ctx, f, nil, report.Retry{For: 0, First: time.Millisecond}, nil); err == nil || f.attempts.Load() != 1 {
		t.Errorf("--retry-for 0: %v after %d attempts, want 1", err, f.attempts.Load())
	}
	// A permanent error (a 404 from a real webhook) is not retried.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	defer srv.Close()
	w, err := report.NewWebhook(srv.URL+"/hooks/secret-token", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = report.Deliver(ctx, w, []byte("{}"), quick, nil)
	if err == nil || !report.IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("404: %v, want a permanent HTTP 404", err)
	}
}

// TestWebhookSend: one attempt against a real HTTP server, for each kind
// of answer.
func TestWebhookSend(t *testing.T) {
	ctx := context.Background()
	var got atomic.Value
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a redirect to another host was followed: %s %s", r.Method, r.URL)
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			b, _ := io.ReadAll(r.Body)
			got.Store(r.Method + " " + r.Header.Get("Content-Type") + " " + string(b))
			fmt.Fprint(w, "ok")
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusPermanentRedirect) // same host, keeps the POST
		case "/away":
			http.Redirect(w, r, elsewhere.URL+"/ok", http.StatusTemporaryRedirect)
		case "/get":
			http.Redirect(w, r, "/ok", http.StatusFound) // would turn the POST into a GET
		case "/busy":
			http.Error(w, "try later", http.StatusServiceUnavailable)
		case "/huge":
			w.WriteHeader(http.StatusInternalServerError)
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for range 160 { // 10 MiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/slow":
			io.Copy(io.Discard, r.Body) // then the server notices the client leave
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}))
	defer srv.Close()
	send := func(path string, timeout time.Duration) error {
		w, err := report.NewWebhook(srv.URL+path+"?token=s3cret", timeout, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := w.String(); strings.Contains(s, "s3cret") || strings.Contains(w.ID(), "s3cret") {
			t.Errorf("String %q, ID %q: the URL's secret shows", s, w.ID())
		}
		err = w.Send(ctx, []byte(`{"text":"hi"}`))
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the URL's secret: %v", path, err)
		}
		return err
	}
	if err := send("/ok", time.Second); err != nil || got.Load() != `POST application/json {"text":"hi"}` {
		t.Errorf("/ok: %v, received %v", err, got.Load())
	}
	got.Store("")
	if err := send("/moved", time.Second); err != nil || got.Load() != `POST application/json {"text":"hi"}` {
		t.Errorf("308 to the same host: %v, received %v; want the POST followed", err, got.Load())
	}
	for _, path := range []string{"/away", "/get"} {
		if err := send(path, time.Second); err == nil || !report.IsPermanent(err) || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("%s: %v, want a permanent error about the redirect", path, err)
		}
	}
	if err := send("/busy", time.Second); err == nil || report.IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 503: try later") {
		t.Errorf("/busy: %v, want a retryable HTTP 503 with the server's words", err)
	}
	if err := send("/huge", 5*time.Second); err == nil || report.IsPermanent(err) || len(err.Error()) > 400 {
		t.Errorf("/huge: a %d-byte error (%.80v), want a short retryable one", len(err.Error()), err)
	}
	if err := send("/slow", 100*time.Millisecond); err == nil || report.IsPermanent(err) || !strings.Contains(err.Error(), "within --timeout") {
		t.Errorf("/slow: %v, want a retryable timeout", err)
	}
	for _, bad := range []string{"ftp://x/y", "hooks.slack.com/services/x", "http://", "://"} {
		if _, err := report.NewWebhook(bad, time.Second, nil); err == nil {
			t.Errorf("NewWebhook(%q) accepted it", bad)
		}
	}
}

// TestWebhookRetryAfter: a rate-limited receiver's Retry-After (seconds or
// an HTTP date) is waited for, never less; one beyond --retry-for ends
// delivery at once instead of retrying too early.
func TestWebhookRetryAfter(t *testing.T) {
	ctx := context.Background()
	for _, header := range []string{"1", time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)} {
		var calls atomic.Int64
		var first atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				first.Store(time.Now().UnixNano())
				w.Header().Set("Retry-After", header)
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			if gap := time.Since(time.Unix(0, first.Load())); gap < 900*time.Millisecond {
				t.Errorf("Retry-After %q: retried after %s", header, gap)
			}
			fmt.Fprint(w, "ok")
		}))
		w, err := report.NewWebhook(srv.URL, 5*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = report.Deliver(ctx, w, []byte(`{"text":"hi"}`), report.Retry{For: 10 * time.Second, First: time.Millisecond, Max: 30 * time.Second}, nil)
		if err != nil || calls.Load() != 2 {
			t.Errorf("Retry-After %q: %v after %d requests, want delivered on the second", header, err, calls.Load())
		}
		srv.Close()
	}

	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "come back in an hour", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	w, err := report.NewWebhook(srv.URL, 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = report.Deliver(ctx, w, []byte(`{}`), report.Retry{For: time.Minute, First: time.Millisecond, Max: 30 * time.Second}, nil)
	if err == nil || calls.Load() != 1 {
		t.Errorf("Retry-After beyond --retry-for: %v after %d requests, want a failure after one", err, calls.Load())
	}
}
