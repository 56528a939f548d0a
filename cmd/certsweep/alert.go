package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

func alertCommand() *cli.Command {
	var flags []cli.Flag
	for _, f := range findingFlags() {
		switch f.Names()[0] {
		case "format", "output", "fail-on":
		default:
			flags = append(flags, f)
		}
	}
	flags = append(flags,
		&cli.StringFlag{Name: "min-severity", Value: "high", Usage: "send findings at or above `SEVERITY` (info, low, medium, high, critical)"},
		&cli.StringSliceFlag{Name: "kind", Usage: "send only findings of this `KIND` (repeatable, or comma-separated)"},
		&cli.StringSliceFlag{Name: "webhook", Usage: "post the findings as JSON to this incoming-webhook `URL` (Slack, Mattermost, Teams; repeatable)"},
		&cli.StringFlag{Name: "smtp", Usage: "mail the findings through the SMTP server at `HOST:PORT` (with --from and --to)"},
		&cli.StringFlag{Name: "from", Usage: "the mail's sender `ADDRESS`"},
		&cli.StringSliceFlag{Name: "to", Usage: "a mail recipient `ADDRESS` (repeatable, or comma-separated)"},
		&cli.StringFlag{Name: "smtp-auth-file", Usage: "`FILE` holding USER:PASSWORD on its first line, for SMTP AUTH (sent only over TLS)"},
		&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "`DURATION` of each delivery attempt"},
		&cli.DurationFlag{Name: "retry-for", Value: time.Minute, Usage: "retry a failed delivery with backoff for at most `DURATION`, then exit 1 with nothing marked sent"},
		&cli.BoolFlag{Name: "dry-run", Usage: "print what would be sent to each destination; send nothing, mark nothing"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success (failures and warnings still go to stderr)"},
	)
	return &cli.Command{
		Name:  "alert",
		Usage: "send the findings not sent before to a webhook or by mail (after a sweep, from cron)",
		Description: `Judges a sweep (default: the latest complete one) like certsweep findings, and
sends each destination the findings at or above --min-severity (default high)
that it has not received before. The database remembers, for each destination,
which findings it accepted, so a weekly cron never repeats an alert and a new
finding is never skipped.

A finding is its kind, the leaf certificate's SHA-256 and the endpoint (ip,
port, sni, protocol), plus the chain certificate or lint it is about; its
wording is not part of it. The same expired certificate still in place next
week is not sent again; a renewed certificate with a problem of its own, an
expiring certificate that has now expired, or one certificate showing up on
another endpoint is sent. A sweep that reached too little (a critical
coverage-drop) is sent once per such sweep.

Destinations (at least one; each keeps its own sent-state, so one that fails
neither blocks nor repeats another):
   --webhook URL       a JSON POST: "text" (a summary and the most severe findings,
                       which Slack, Mattermost and Teams incoming webhooks show as
                       the message), "sweep", "sweep_name", "counts" (by severity)
                       and "findings" (objects with the keys of certsweep findings
                       --format json). Redirects are followed to the same host
                       only; proxies come from HTTPS_PROXY/NO_PROXY. A webhook's
                       sent-state is keyed by its URL.
   --smtp HOST:PORT    a plain-text mail from --from to every --to, with the
                       findings attached as CSV. STARTTLS whenever the server offers
                       it (implicit TLS on port 465); the server's certificate must
                       verify (system roots, plus --ca-bundle). --smtp-auth-file
                       holds USER:PASSWORD; it is never sent over plaintext. A mail's
                       sent-state is keyed by its recipients.

Delivery is at-least-once: findings are marked sent only after the receiver
accepted them (HTTP 2xx; 250 after the message). A failed attempt (timeout,
connection refused, HTTP 5xx, 408 or 429, SMTP 4xx) is retried with backoff
(0.5 s, 1 s, 2 s... up to 30 s) for at most --retry-for; then alert exits 1
and marks nothing for that destination. Other answers (HTTP 4xx, SMTP 5xx, a
certificate that does not verify) fail at once. Certificate text is escaped
for every medium: inline code with & < > as entities in chat text, control
characters escaped in mail text, formula-safe cells in the CSV.

Examples:
   certsweep alert --dry-run --webhook https://chat.corp.example/hooks/certsweep
   certsweep alert --webhook https://chat.corp.example/hooks/certsweep --min-severity critical
   certsweep alert --smtp mail.corp.example:587 --from certsweep@corp.example --to pki@corp.example \
       --smtp-auth-file /etc/certsweep/smtp-auth --ca-bundle /etc/pki/corp-roots.pem
   certsweep alert --sweep 12 --kind expired,expiring --webhook https://chat.corp.example/hooks/certsweep`,
		Flags:  flags,
		Action: alertAction,
	}
}

// alertSettings is what alert reads from its flags besides the judging
// settings.
type alertSettings struct {
	minSeverity report.Severity
	kinds       []report.Kind
	dests       []report.AlertDestination
	retry       report.Retry
	dryRun      bool
	quiet       bool
}

func alertAction(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	js, err := judgeSettingsFrom(c)
	if err != nil {
		return err
	}
	as, err := alertSettingsFrom(c)
	if err != nil {
		return err
	}
	return withDB(c, false, func(db *store.DB) error {
		ctx := c.Context
		if js.sweepID, err = pickSweep(ctx, db, js.sweepID); err != nil {
			return err
		}
		sweep, err := db.FindSweep(ctx, js.sweepID)
		if err != nil {
			return failure(err, "")
		}
		alert, err := gatherAlert(c, db, js, as, sweep)
		if err != nil {
			return err
		}
		var failed []error
		for _, d := range as.dests {
			if err := alertOne(c, db, as, d, alert); err != nil {
				if ctx.Err() != nil {
					return err
				}
				failed = append(failed, err)
			}
		}
		if len(failed) > 0 {
			return failure(errors.Join(failed...), "nothing was marked sent to a destination that failed: the next run sends it those findings again")
		}
		return nil
	})
}

// gatherAlert judges the sweep and keeps the findings the flags select.
func gatherAlert(c *cli.Context, db *store.DB, js judgeSettings, as alertSettings, sweep store.Sweep) (report.Alert, error) {
	want := func(f report.Finding) bool {
		return f.Severity >= as.minSeverity && (len(as.kinds) == 0 || slices.Contains(as.kinds, f.Kind))
	}
	var items []report.AlertItem
	warning, err := coverage(c.Context, db, sweep.ID)
	if err != nil {
		return report.Alert{}, err
	}
	if warning != "" {
		fmt.Fprintf(c.App.ErrWriter, "certsweep: warning: %s\n", warning)
		f := report.Finding{Kind: report.KindCoverageDrop, Severity: report.KindSeverity(report.KindCoverageDrop), Detail: warning}
		if want(f) {
			items = append(items, report.AlertItem{Finding: f, Key: report.AlertKey(store.Endpoint{}, f, sweep.ID)})
		}
	}
	err = judge(c.Context, db, js, func(ep store.Endpoint, fs []report.Finding) error {
		for _, f := range fs {
			if want(f) {
				items = append(items, report.AlertItem{Endpoint: ep, Finding: f, Key: report.AlertKey(ep, f, sweep.ID)})
			}
		}
		return nil
	})
	return report.NewAlert(sweep, items), err
}

// alertOne sends one destination the findings it has not accepted before,
// and marks them once it has.
func alertOne(c *cli.Context, db *store.DB, as alertSettings, d report.AlertDestination, all report.Alert) error {
	ctx, out := c.Context, c.App.Writer
	sent, err := db.AlertsSent(ctx, d.ID())
	if err != nil {
		return err
	}
	alert := all.Without(sent)
	if len(alert.Items) == 0 {
		switch {
		case as.quiet && !as.dryRun:
		case len(all.Items) == 0:
			fmt.Fprintf(out, "%s: nothing to send: sweep %d has no finding at or above %s\n", d, all.Sweep.ID, as.minSeverity)
		default:
			fmt.Fprintf(out, "%s: nothing new to send: the %d findings selected in sweep %d were all sent before\n", d, len(all.Items), all.Sweep.ID)
		}
		return nil
	}
	payload, err := d.Prepare(alert)
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	if as.dryRun {
		fmt.Fprintf(out, "--- dry run: would send %s (%d sent before) to %s:\n", alert.Summary(), len(all.Items)-len(alert.Items), d)
		out.Write(payload)
		if len(payload) > 0 && payload[len(payload)-1] != '\n' {
			fmt.Fprintln(out)
		}
		return nil
	}
	note := func(s string) {
		if !as.quiet {
			fmt.Fprintf(c.App.ErrWriter, "certsweep: %s\n", s)
		}
	}
	if err := report.Deliver(ctx, d, payload, as.retry, note); err != nil {
		return err
	}
	marks := make([]store.SentAlert, len(alert.Items))
	for i, it := range alert.Items {
		marks[i] = store.SentAlert{Finding: it.Key, Kind: string(it.Finding.Kind)}
	}
	// Delivered: record it even if Ctrl-C comes now, or it is sent again.
	if err := db.MarkAlertsSent(context.WithoutCancel(ctx), d.ID(), all.Sweep.ID, time.Now(), marks); err != nil {
		return fmt.Errorf("%s accepted %d findings, but they could not be marked sent (the next run sends them again): %w", d, len(marks), err)
	}
	if !as.quiet {
		fmt.Fprintf(out, "%s: sent %s\n", d, alert.Summary())
	}
	return nil
}

func alertSettingsFrom(c *cli.Context) (alertSettings, error) {
	as := alertSettings{dryRun: c.Bool("dry-run"), quiet: c.Bool("quiet")}
	var err error
	if as.minSeverity, err = report.ParseSeverity(c.String("min-severity")); err != nil {
		return as, usageError(fmt.Errorf("--min-severity: %w", err), "")
	}
	for _, v := range c.StringSlice("kind") {
		for _, k := range splitList(v) {
			kind, err := report.ParseKind(k)
			if err != nil {
				return as, usageError(fmt.Errorf("--kind: %w", err), "")
			}
			as.kinds = append(as.kinds, kind)
		}
	}
	timeout, retryFor := c.Duration("timeout"), c.Duration("retry-for")
	if timeout <= 0 {
		return as, usagef("--timeout %s: want a positive duration, such as 30s", timeout)
	}
	if retryFor < 0 {
		return as, usagef("--retry-for %s: want 0 (no retry) or more, such as 1m", retryFor)
	}
	as.retry = report.RetryFor(retryFor)
	roots, err := deliveryRoots(c)
	if err != nil {
		return as, err
	}
	for _, u := range c.StringSlice("webhook") {
		w, err := report.NewWebhook(u, timeout, roots)
		if err != nil {
			return as, usageError(fmt.Errorf("--webhook: %w", err), "give the incoming webhook's URL, such as https://hooks.slack.com/services/...")
		}
		as.dests = append(as.dests, w)
	}
	var to []string
	for _, v := range c.StringSlice("to") {
		to = append(to, splitList(v)...)
	}
	switch server := c.String("smtp"); {
	case server != "":
		ms := report.MailSettings{Server: server, From: c.String("from"), To: to, Roots: roots, Timeout: timeout}
		if ms.From == "" {
			return as, usagef("--smtp needs --from ADDRESS, the mail's sender")
		}
		if f := c.String("smtp-auth-file"); f != "" {
			if ms.User, ms.Password, err = readAuthFile(f); err != nil {
				return as, usageError(fmt.Errorf("--smtp-auth-file: %w", err), "write USER:PASSWORD on its first line, readable by certsweep only (chmod 600)")
			}
		}
		if h, err := os.Hostname(); err == nil && h != "" {
			ms.Hello = h
		}
		m, err := report.NewMailer(ms)
		if err != nil {
			return as, usageError(err, "")
		}
		as.dests = append(as.dests, m)
	case c.String("from") != "" || len(to) > 0 || c.String("smtp-auth-file") != "":
		return as, usagef("--from, --to and --smtp-auth-file need --smtp HOST:PORT")
	}
	if len(as.dests) == 0 {
		return as, usageError(errors.New("alert needs a destination"), "give --webhook URL, or --smtp HOST:PORT with --from and --to")
	}
	return as, nil
}

// deliveryRoots is the CA pool that verifies the webhook's and the mail
// server's certificates: the system's roots (unless --no-system-roots)
// and --ca-bundle, the organisation's own CAs, which sign its internal chat
// and mail servers too. nil means the system's roots alone.
func deliveryRoots(c *cli.Context) (*x509.CertPool, error) {
	bundles := c.StringSlice("ca-bundle")
	if len(bundles) == 0 && !c.Bool("no-system-roots") {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !c.Bool("no-system-roots") {
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, failure(fmt.Errorf("load the system's root certificates: %w", err), "pass --no-system-roots with --ca-bundle")
		}
		pool = sys
	}
	for _, f := range bundles {
		if err := addBundle(pool, f); err != nil {
			return nil, usageError(fmt.Errorf("--ca-bundle: %w", err), "give a PEM file of CA certificates")
		}
	}
	return pool, nil
}

// readAuthFile reads USER:PASSWORD from the first line of a file.
func readAuthFile(path string) (user, pass string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	user, pass, ok := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
	if !ok || user == "" || pass == "" {
		return "", "", fmt.Errorf("%s: the first line is not USER:PASSWORD", path)
	}
	return user, pass, nil
}
