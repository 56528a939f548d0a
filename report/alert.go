package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/certsweep/certsweep/store"
)

// This file is the heart of `certsweep alert`: which findings an alert
// holds, what identifies a finding across sweeps, the texts people read,
// and delivery with retries. The senders are in webhook.go and mail.go.

// AlertItem is one finding of an alert.
type AlertItem struct {
	Endpoint store.Endpoint // zero for a finding about the whole sweep (coverage-drop)
	Finding  Finding
	Key      string // AlertKey: what a destination's sent-state remembers
}

// AlertKey identifies a finding across sweeps, so that a destination gets
// each finding once. It is the finding's kind, the leaf's fingerprint and
// the endpoint (ip, port, sni, protocol), plus what the finding is about
// when a kind can name several things at one endpoint: a certificate of
// the chain (by fingerprint) or a lint (by name). The detail's wording is
// left out: "expired 5 days ago" next week is "expired 12 days ago", the
// same finding. So:
//
//   - the same expired certificate still at its endpoint next week is the
//     same finding, not sent again;
//   - a renewal (a new leaf) with a problem of its own is a new finding;
//   - expiring becoming expired is a new finding (another kind);
//   - the same certificate on another endpoint is a new finding;
//   - an expired intermediate is its own finding, beside its leaf's.
//
// A finding about the whole sweep (coverage-drop: the sweep reached too
// little) is keyed by its sweep, so every such sweep alerts once.
// The key is a JSON array, readable at the sqlite3 prompt. An endpoint's
// site (sweep --site) is its last element, only when there is one: the
// keys that destinations accepted before sites existed stay the same.
func AlertKey(ep store.Endpoint, f Finding, sweepID int64) string {
	var v []any
	if ep.IP == "" {
		v = []any{string(f.Kind), "sweep " + strconv.FormatInt(sweepID, 10)}
	} else {
		leaf := ""
		if ep.HasLeaf() {
			leaf = ep.Leaf.Fingerprint()
		}
		v = []any{string(f.Kind), leaf, ep.IP, ep.Port, ep.SNI, ep.Protocol, findingAbout(ep, f)}
		if ep.Site != "" {
			v = append(v, ep.Site)
		}
	}
	b, _ := json.Marshal(v) // strings and ints only
	return string(b)
}

// findingAbout names what a finding is about when it is not the leaf or
// the endpoint as a whole: "chain <fingerprint>" for a finding on a chain
// certificate (CertFindings prefixes those with "chain certificate N (";
// TestAlertKeyChain keeps the two in step), "lint <name>" for a lint.
func findingAbout(ep store.Endpoint, f Finding) string {
	if f.Kind == KindLint {
		return "lint " + f.Detail
	}
	rest, ok := strings.CutPrefix(f.Detail, "chain certificate ")
	if !ok {
		return ""
	}
	num, rest, ok := strings.Cut(rest, " (")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n <= 0 {
		return ""
	}
	if n < len(ep.Chain) {
		return "chain " + ep.Chain[n]
	}
	return "chain certificate " + num
}

// Alert is what one run of `certsweep alert` sends to one destination:
// findings of one sweep, most severe first.
type Alert struct {
	Sweep store.Sweep
	Items []AlertItem
}

// NewAlert gathers the items of a sweep: each finding once (by key), most
// severe first, otherwise in the order given.
func NewAlert(sweep store.Sweep, items []AlertItem) Alert {
	seen := map[string]bool{}
	var out []AlertItem
	for _, it := range items {
		if seen[it.Key] {
			continue
		}
		seen[it.Key] = true
		out = append(out, it)
	}
	slices.SortStableFunc(out, func(a, b AlertItem) int { return int(b.Finding.Severity - a.Finding.Severity) })
	return Alert{Sweep: sweep, Items: out}
}

// Without returns the alert without the findings whose keys are in sent.
func (a Alert) Without(sent map[string]bool) Alert {
	out := Alert{Sweep: a.Sweep}
	for _, it := range a.Items {
		if !sent[it.Key] {
			out.Items = append(out.Items, it)
		}
	}
	return out
}

// Counts returns how many findings of each severity the alert holds.
func (a Alert) Counts() map[string]int {
	counts := map[string]int{}
	for _, it := range a.Items {
		counts[it.Finding.Severity.String()]++
	}
	return counts
}

// countText is "1 critical, 2 high", most severe first.
func (a Alert) countText() string {
	counts := a.Counts()
	var parts []string
	for s := SeverityCritical; s >= SeverityInfo; s-- {
		if n := counts[s.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return strings.Join(parts, ", ")
}

// sweepLabel is "sweep 12 (weekly)", safe to print: a sweep's name is
// whatever --name was given.
func (a Alert) sweepLabel() string {
	label := "sweep " + strconv.FormatInt(a.Sweep.ID, 10)
	if a.Sweep.Name != "" {
		label += " (" + clip(Terminal(a.Sweep.Name), 80) + ")"
	}
	return label
}

// Summary is the alert in one line: "3 new certsweep findings in sweep 12
// (weekly): 1 critical, 2 high".
func (a Alert) Summary() string {
	noun := "findings"
	if len(a.Items) == 1 {
		noun = "finding"
	}
	return fmt.Sprintf("%d new certsweep %s in %s: %s", len(a.Items), noun, a.sweepLabel(), a.countText())
}

// clip shortens s to at most n runes, marking the cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// endpointLabel is "10.0.0.5:443", "[2001:db8::1]:443/smtp" or
// "10.0.0.5:443 www.example.com": the endpoint as diff prints it, with
// the SNI it was reached by. Not escaped.
func endpointLabel(ep store.Endpoint) string {
	host := ep.IP
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	s := host + ":" + strconv.Itoa(ep.Port)
	if ep.Protocol != "" && ep.Protocol != "tls" {
		s += "/" + ep.Protocol
	}
	if ep.SNI != "" {
		s += " " + ep.SNI
	}
	return s
}

// ---- delivery ----

// AlertDestination is a receiver of alerts: a webhook or a mail.
type AlertDestination interface {
	// ID names who receives, for the sent-state in the database: the same
	// channel or the same recipients keep the same ID.
	ID() string
	// String names the destination in messages, without secrets.
	String() string
	// Prepare renders the alert as this destination's payload: the JSON
	// body of a webhook, the RFC 5322 message of a mail.
	Prepare(a Alert) ([]byte, error)
	// Send makes one attempt to deliver a prepared payload. It returns nil
	// only once the receiver has accepted it. An error that another
	// attempt cannot cure (a 404, a refused recipient, a certificate that
	// does not verify) is permanent (IsPermanent).
	Send(ctx context.Context, payload []byte) error
}

// permanentError marks a delivery failure that retrying cannot cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err: err} }

func permanentf(format string, args ...any) error { return permanent(fmt.Errorf(format, args...)) }

// retryLater is a failure whose receiver said when to try again (HTTP
// Retry-After, as Slack's and Teams' rate limits send it).
type retryLater struct {
	err   error
	after time.Duration
}

func (e *retryLater) Error() string { return e.err.Error() }
func (e *retryLater) Unwrap() error { return e.err }

// IsPermanent reports whether a delivery error is one retrying cannot cure.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Retry says how long delivery keeps trying.
type Retry struct {
	For   time.Duration // no attempt starts later than this after the first
	First time.Duration // the wait after the first failure, doubled after each
	Max   time.Duration // the longest wait
}

// RetryFor is the backoff certsweep alert uses: 500 ms after the first
// failure, then 1 s, 2 s... up to 30 s between attempts, for at most total.
func RetryFor(total time.Duration) Retry {
	return Retry{For: total, First: 500 * time.Millisecond, Max: 30 * time.Second}
}

// Deliver sends a prepared payload to d, retrying failures other than
// permanent ones with backoff until r.For has passed; a receiver that says
// when to come back (Retry-After) is waited for that long, or given up on
// at once when that is beyond r.For.
// note, if not nil, is told about each failed attempt that will be retried.
func Deliver(ctx context.Context, d AlertDestination, payload []byte, r Retry, note func(string)) error {
	start := time.Now()
	wait := r.First
	for attempt := 1; ; attempt++ {
		err := d.Send(ctx, payload)
		next := wait
		if rl := (*retryLater)(nil); errors.As(err, &rl) && rl.after > next {
			next = rl.after // the receiver's word, over our own backoff
		}
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w", d, ctx.Err())
		case IsPermanent(err):
			return fmt.Errorf("%s: %w", d, err)
		case time.Since(start)+next > r.For:
			if attempt == 1 {
				return fmt.Errorf("%s: %w (not retried: --retry-for %s)", d, err, r.For)
			}
			return fmt.Errorf("%s: %d attempts failed in %s (--retry-for %s), the last: %w",
				d, attempt, time.Since(start).Round(100*time.Millisecond), r.For, err)
		}
		if note != nil {
			note(fmt.Sprintf("%s: attempt %d failed: %v; retrying in %s", d, attempt, err, next))
		}
		t := time.NewTimer(next)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", d, ctx.Err())
		}
		wait = min(2*wait, r.Max)
	}
}

// ---- texts ----

// Lines of findings the texts list; the structured findings (webhook) and
// the CSV attachment (mail) always hold all of them.
const (
	chatLines = 20
	mailLines = 200
	mailField = 400 // runes of one value in the mail text: lines stay far below SMTP's 998 bytes
)

// chatCode renders certificate-derived text for a chat message (Slack
// mrkdwn, Mattermost and Teams markdown): control characters escaped,
// shortened, as inline code so that markdown in it is shown, not applied,
// with backticks replaced (they would end the code span) and & < >
// written as entities, which Slack requires (<!channel> would notify the
// whole channel, <http://x|text> would disguise a link).
func chatCode(s string, n int) string {
	s = clip(strings.ReplaceAll(Terminal(s), "`", "'"), n)
	if s == "" {
		return ""
	}
	s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	return "`" + s + "`"
}

// ChatText is the webhook's text: a summary line, then one line for each
// of the most severe findings. Every certificate-derived value is inline
// code (chatCode).
func (a Alert) ChatText() string {
	var b strings.Builder
	// The summary holds the sweep's name: escaped like certificate text.
	fmt.Fprintf(&b, "certsweep: %d new %s in sweep %d", len(a.Items), plural(len(a.Items), "finding"), a.Sweep.ID)
	if a.Sweep.Name != "" {
		b.WriteString(" " + chatCode(a.Sweep.Name, 80))
	}
	b.WriteString(": " + a.countText())
	for i, it := range a.Items {
		if i == chatLines {
			fmt.Fprintf(&b, "\n… and %d more (all %d are in the findings field; `certsweep findings --sweep %d` lists them)",
				len(a.Items)-chatLines, len(a.Items), a.Sweep.ID)
			break
		}
		f, ep := it.Finding, it.Endpoint
		fmt.Fprintf(&b, "\n• %s %s", f.Severity, f.Kind)
		if ep.IP != "" {
			b.WriteString(" " + chatCode(endpointLabel(ep), 120))
		}
		if ep.HasLeaf() {
			b.WriteString(" " + chatCode(ep.Leaf.Subject, 120))
		}
		if f.Detail != "" {
			b.WriteString(" " + chatCode(f.Detail, 200))
		}
		if ep.Owner != "" {
			b.WriteString(" owner " + chatCode(ep.Owner, 60))
		}
	}
	return b.String()
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// MailText is the plain-text body of an alert mail: the summary, then each
// finding (up to mailLines) on a few indented lines. Certificate-derived
// text is escaped for a terminal (Terminal): no control characters, so
// nothing in it can end a line or forge a header; long values are
// shortened (the attached CSV has them whole).
func (a Alert) MailText() string {
	var b strings.Builder
	b.WriteString(a.Summary() + ".\n")
	if !a.Sweep.FinishedAt.IsZero() {
		fmt.Fprintf(&b, "The sweep finished at %s.\n", a.Sweep.FinishedAt.UTC().Format(TimeLayout))
	}
	b.WriteString("These findings were not sent to these recipients before. The attached CSV lists\n" +
		"them all, with the columns of `certsweep findings`.\n")
	for i, it := range a.Items {
		if i == mailLines {
			fmt.Fprintf(&b, "\n… and %d more in the attached CSV.\n", len(a.Items)-mailLines)
			break
		}
		f, ep := it.Finding, it.Endpoint
		fmt.Fprintf(&b, "\n%s %s", strings.ToUpper(f.Severity.String()), f.Kind)
		if ep.IP != "" {
			b.WriteString(" at " + clip(Terminal(endpointLabel(ep)), mailField))
		}
		b.WriteString("\n")
		if f.Detail != "" {
			b.WriteString("  " + clip(Terminal(f.Detail), mailField) + "\n")
		}
		if ep.HasLeaf() {
			fmt.Fprintf(&b, "  subject:  %s\n", clip(Terminal(ep.Leaf.Subject), mailField))
			fmt.Fprintf(&b, "  sha256:   %s\n", ep.Leaf.Fingerprint())
			if _, na := Validity(ep.Leaf.Cert); na != nil {
				fmt.Fprintf(&b, "  expires:  %s\n", Text(na))
			}
		}
		if ep.IP != "" {
			owner := "none (a shadow certificate)"
			if ep.Owner != "" {
				owner = clip(Terminal(ep.Owner), mailField)
			}
			fmt.Fprintf(&b, "  owner:    %s\n", owner)
		}
	}
	return b.String()
}

// writeFindings writes the alert's findings with an encoder of format
// ("csv" or "json"), in FindingColumns.
func (a Alert) writeFindings(w io.Writer, format string) error {
	enc, err := NewEncoder(w, format, FindingColumns)
	if err != nil {
		return err
	}
	for _, it := range a.Items {
		if err := enc.Encode(FindingRow(it.Endpoint, it.Finding)...); err != nil {
			return err
		}
	}
	return enc.Close()
}

// CSV is the alert's findings as `certsweep findings --format csv` writes
// them: RFC 4180, with cells that cannot start a spreadsheet formula.
func (a Alert) CSV() ([]byte, error) {
	var b bytes.Buffer
	err := a.writeFindings(&b, "csv")
	return b.Bytes(), err
}

// WebhookBody is the JSON a webhook receives: text (the summary and the
// most severe findings, which Slack, Mattermost and Teams incoming webhooks
// show as the message), and the structured data: sweep, sweep_name,
// counts (by severity) and findings, one object per finding with the keys
// of `certsweep findings --format json`.
func (a Alert) WebhookBody() ([]byte, error) {
	var rows bytes.Buffer
	if err := a.writeFindings(&rows, "json"); err != nil {
		return nil, err
	}
	findings := []json.RawMessage{}
	for _, line := range bytes.Split(bytes.TrimSpace(rows.Bytes()), []byte("\n")) {
		if len(line) > 0 {
			findings = append(findings, line)
		}
	}
	body, err := json.Marshal(struct {
		Text      string            `json:"text"`
		Sweep     int64             `json:"sweep"`
		SweepName string            `json:"sweep_name"`
		Counts    map[string]int    `json:"counts"`
		Findings  []json.RawMessage `json:"findings"`
	}{a.ChatText(), a.Sweep.ID, a.Sweep.Name, a.Counts(), findings})
	if err != nil {
		return nil, fmt.Errorf("encode the webhook message: %w", err)
	}
	return jsonInert(body), nil
}
