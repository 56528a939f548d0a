//go:build e2e && unix

package main

// The browser and Prometheus checks behind `make e2e`: the HTML report and
// serve's pages loaded in headless Chromium (Debian's chromium package)
// through the DevTools protocol, and the metrics and the README's
// Prometheus config and alert rules checked with promtool (Debian's
// prometheus package). Chromium is kept off the network: it resolves no
// name but 127.0.0.1, and its background services are off.
//
// CERTSWEEP_SCREENSHOTS=DIR keeps the screenshots there (make e2e
// SCREENSHOTS=docs refreshes the README's).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// browser is a headless Chromium driven over one DevTools websocket, with
// one page attached in flat mode.
type browser struct {
	cmd     *exec.Cmd
	ws      *websocket.Conn
	session string

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpMessage
	events  []cdpMessage // every event of the page, in order
	loaded  chan struct{}
}

type cdpMessage struct {
	ID        int                       `json:"id,omitempty"`
	Method    string                    `json:"method,omitempty"`
	Params    json.RawMessage           `json:"params,omitempty"`
	Result    json.RawMessage           `json:"result,omitempty"`
	Error     *struct{ Message string } `json:"error,omitempty"`
	SessionID string                    `json:"sessionId,omitempty"`
}

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: make e2e installs Debian's chromium package")
	return ""
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	args := []string{
		"--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
		"--remote-allow-origins=http://127.0.0.1", "--user-data-dir=" + t.TempDir(),
		// Nothing leaves the machine: no name resolves but loopback, and the
		// services that call home are off.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
		"--no-pings", "--metrics-recording-only", "--disable-features=Translate,OptimizationHints,MediaRouter",
		"--hide-scrollbars", "about:blank",
	}
	cmd := exec.Command(chromiumPath(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	wsURL := ""
	sc := bufio.NewScanner(stderr)
	var head []string
	for sc.Scan() {
		head = append(head, sc.Text())
		if u, ok := strings.CutPrefix(sc.Text(), "DevTools listening on "); ok {
			wsURL = u
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if wsURL == "" {
		t.Fatalf("chromium did not open its DevTools port:\n%s", strings.Join(head, "\n"))
	}
	ws, err := websocket.Dial(wsURL, "", "http://127.0.0.1")
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	ws.MaxPayloadBytes = 64 << 20 // screenshots
	t.Cleanup(func() { ws.Close() })
	b := &browser{cmd: cmd, ws: ws, waiting: map[int]chan cdpMessage{}, loaded: make(chan struct{}, 8)}
	go b.read()

	var target struct{ TargetID string }
	b.call(t, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct{ SessionID string }
	b.call(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	for _, domain := range []string{"Page", "Runtime", "Log"} {
		b.call(t, b.session, domain+".enable", nil, nil)
	}
	b.call(t, b.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

func (b *browser) read() {
	for {
		var m cdpMessage
		if err := websocket.JSON.Receive(b.ws, &m); err != nil {
			b.mu.Lock()
			for id, ch := range b.waiting {
				close(ch)
				delete(b.waiting, id)
			}
			b.mu.Unlock()
			return
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.waiting[m.ID]; ok {
				ch <- m
				delete(b.waiting, m.ID)
			}
		} else if m.SessionID == b.session {
			b.events = append(b.events, m)
			if m.Method == "Page.loadEventFired" {
				select {
				case b.loaded <- struct{}{}:
				default:
				}
			}
		}
		b.mu.Unlock()
	}
}

// call sends one DevTools command and decodes its result into out.
func (b *browser) call(t *testing.T, session, method string, params any, out any) {
	t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	if err := websocket.JSON.Send(b.ws, msg); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("%s: chromium closed the connection", method)
		}
		if m.Error != nil {
			t.Fatalf("%s: %s", method, m.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(m.Result, out); err != nil {
				t.Fatalf("%s: decode %s: %v", method, m.Result, err)
			}
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no answer from chromium in 60 s", method)
	}
}

// open loads url and waits for its load event; it returns the index of
// the page's first event.
func (b *browser) open(t *testing.T, url string) int {
	t.Helper()
	for len(b.loaded) > 0 {
		<-b.loaded
	}
	b.mu.Lock()
	from := len(b.events)
	b.mu.Unlock()
	var nav struct{ ErrorText string }
	b.call(t, b.session, "Page.navigate", map[string]any{"url": url}, &nav)
	if nav.ErrorText != "" {
		t.Fatalf("navigate to %s: %s", url, nav.ErrorText)
	}
	select {
	case <-b.loaded:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not load in 60 s", url)
	}
	return from
}

// eval runs a JavaScript expression in the page and decodes its value.
func (b *browser) eval(t *testing.T, expr string, out any) {
	t.Helper()
	var r struct {
		Result           struct{ Value json.RawMessage }
		ExceptionDetails *struct{ Text string }
	}
	b.call(t, b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		t.Fatalf("evaluate %s: %s", expr, r.ExceptionDetails.Text)
	}
	if err := json.Unmarshal(r.Result.Value, out); err != nil {
		t.Fatalf("evaluate %s: %s: %v", expr, r.Result.Value, err)
	}
}

// problems lists the console errors, uncaught exceptions, browser log
// errors (CSP violations are reported there) and dialogs since event from.
func (b *browser) problems(from int) []string {
	// Log entries may trail the load event by a moment; a round trip to
	// the page lets them arrive.
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.events[from:] {
		switch m.Method {
		case "Runtime.exceptionThrown", "Page.javascriptDialogOpening":
			out = append(out, m.Method+": "+string(m.Params))
		case "Runtime.consoleAPICalled":
			var p struct{ Type string }
			json.Unmarshal(m.Params, &p)
			if p.Type == "error" || p.Type == "assert" {
				out = append(out, m.Method+": "+string(m.Params))
			}
		case "Log.entryAdded":
			var p struct {
				Entry struct{ Level, Source, Text, URL string }
			}
			json.Unmarshal(m.Params, &p)
			if p.Entry.Level == "error" {
				out = append(out, fmt.Sprintf("log %s: %s %s", p.Entry.Source, p.Entry.Text, p.Entry.URL))
			}
		}
	}
	return out
}

// screenshot saves the viewport as name.png and checks it is a real
// picture: the viewport's size, and not one flat colour.
func (b *browser) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	var shot struct{ Data string }
	b.call(t, b.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	data, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	colours := map[uint32]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 7 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if bounds.Dx() != 1400 || bounds.Dy() != 1000 || len(colours) < 8 {
		t.Errorf("screenshot %s: %dx%d with %d colours, want 1400x1000 and a rendered page", name, bounds.Dx(), bounds.Dy(), len(colours))
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(data))
}

// checkDashboard checks a loaded report page: its rows, the markup subject
// as text, that filtering and sorting work, and that nothing went wrong.
func checkDashboard(t *testing.T, b *browser, from int, csvRows [][]string) {
	t.Helper()
	var n int
	b.eval(t, `document.querySelectorAll('#rows tbody tr').length`, &n)
	if n != len(csvRows)-1 {
		t.Errorf("the page has %d rows, the CSV report %d", n, len(csvRows)-1)
	}
	var xss bool
	b.eval(t, `[...document.querySelectorAll('#rows td')].some(td => td.textContent === `+jsString(xssShown)+`)`, &xss)
	if !xss {
		t.Errorf("no cell shows the subject %q as text", xssShown)
	}
	var scripts int
	b.eval(t, `document.scripts.length`, &scripts)
	if scripts != 1 {
		t.Errorf("the page has %d scripts, want only its own", scripts)
	}
	visible := func() int {
		var v int
		b.eval(t, `[...document.querySelectorAll('#rows tbody tr')].filter(r => !r.hidden).length`, &v)
		return v
	}
	var shown string
	b.eval(t, `document.getElementById('shown').textContent`, &shown)
	if want := fmt.Sprintf("%d of %d rows shown", n, n); shown != want {
		t.Errorf("the row count says %q, want %q (did the script run?)", shown, want)
	}
	b.eval(t, `(e => { e.value = 'xss.lab.test'; e.dispatchEvent(new Event('input')); return 0 })(document.getElementById('f-text'))`, new(int))
	if v := visible(); v != 1 {
		t.Errorf("filtering by text xss.lab.test shows %d rows, want 1", v)
	}
	b.eval(t, `(e => { e.value = ''; e.dispatchEvent(new Event('input')); return 0 })(document.getElementById('f-text'))`, new(int))
	sevCol := slices.Index(csvRows[0], "severity")
	critical := 0
	for _, r := range csvRows[1:] {
		if r[sevCol] == "critical" {
			critical++
		}
	}
	b.eval(t, `(e => { e.value = '4'; e.dispatchEvent(new Event('change')); return 0 })(document.getElementById('f-sev'))`, new(int))
	if v := visible(); v != critical || critical == 0 {
		t.Errorf("filtering by severity critical shows %d rows, the CSV has %d critical", v, critical)
	}
	b.eval(t, `(e => { e.value = '-1'; e.dispatchEvent(new Event('change')); return 0 })(document.getElementById('f-sev'))`, new(int))
	// Sorting by days_left puts the expired certificates first.
	var first []string
	b.eval(t, `(() => { const th = [...document.querySelectorAll('#rows th')].find(h => h.textContent === 'days_left');
		th.querySelector('button').click();
		const i = [...th.parentNode.children].indexOf(th);
		return [...document.querySelectorAll('#rows tbody tr')].slice(0, 3).map(r => r.children[i].textContent) })()`, &first)
	if len(first) == 0 || !strings.HasPrefix(first[0], "-") {
		t.Errorf("after sorting by days_left the first rows show %q, want the expired certificate (negative) first", first)
	}
	var rows int
	b.eval(t, `0`, &rows) // a round trip, so late log entries arrive
	if p := b.problems(from); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestE2E(t *testing.T) {
	shots := os.Getenv("CERTSWEEP_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("no promtool on PATH: make e2e installs Debian's prometheus package")
	}
	ctx := context.Background()
	w := newWebLab(t, 24)
	dir := t.TempDir()
	root := filepath.Join(dir, "lab-root.pem")
	if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.lab.CA.Root.DER}), 0o644); err != nil {
		t.Fatal(err)
	}
	// Owners, so that the owner filter and column have something to show.
	for _, args := range [][]string{
		{"track", "rule", "--db", w.db, "--owner", "web-team", "--cidr", w.prefix, "--port", fmt.Sprint(w.lab.Port), "--name-suffix", "lab.test"},
		{"track", "add", "--db", w.db, "--owner", "dc-team", w.xssFP},
	} {
		if out, errOut, code := run(t, ctx, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	out, errOut, code := run(t, ctx, "report", "--db", w.db, "--ca-bundle", root, "--format", "csv")
	if code != 0 {
		t.Fatalf("report csv: exit %d %s", code, errOut)
	}
	csvRows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	reportHTML := filepath.Join(dir, "report.html")
	if _, errOut, code := run(t, ctx, "report", "--db", w.db, "--ca-bundle", root, "--format", "html", "-o", reportHTML); code != 0 {
		t.Fatalf("report html: exit %d %s", code, errOut)
	}

	b := startBrowser(t)

	t.Run("the detector sees a CSP violation", func(t *testing.T) {
		bad := filepath.Join(dir, "violation.html")
		os.WriteFile(bad, []byte(`<!doctype html><meta http-equiv="Content-Security-Policy" content="script-src 'none'"><p>x</p><script>document.title='ran'</script>`), 0o644)
		from := b.open(t, "file://"+bad)
		var title string
		b.eval(t, `document.title`, &title)
		if p := b.problems(from); len(p) == 0 || title == "ran" {
			t.Errorf("a blocked inline script raised no console error (problems %q, title %q): the other checks could not see one either", p, title)
		}
	})

	t.Run("report.html", func(t *testing.T) {
		from := b.open(t, "file://"+reportHTML)
		checkDashboard(t, b, from, csvRows)
		b.eval(t, `(window.scrollTo(0, 0), 0)`, new(int))
		b.screenshot(t, shots, "report")
	})

	base, _ := startServe(t, "--db", w.db, "--ca-bundle", root)
	t.Run("serve dashboard", func(t *testing.T) {
		from := b.open(t, base+"/")
		checkDashboard(t, b, from, csvRows)
		b.eval(t, `(window.scrollTo(0, 0), 0)`, new(int))
		b.screenshot(t, shots, "dashboard")
	})

	t.Run("serve certificate page", func(t *testing.T) {
		from := b.open(t, base+"/certs/"+w.xssFP)
		var text string
		b.eval(t, `document.body.innerText`, &text)
		if !strings.Contains(text, xssShown) || !strings.Contains(text, "-----BEGIN CERTIFICATE-----") || !strings.Contains(text, "dc-team") {
			t.Errorf("the certificate page lacks the subject as text, the PEM or the owner:\n%s", text)
		}
		var scripts int
		b.eval(t, `document.scripts.length`, &scripts)
		if scripts != 0 {
			t.Errorf("the certificate page has %d scripts, want none", scripts)
		}
		if p := b.problems(from); len(p) > 0 {
			t.Errorf("the certificate page reported problems:\n%s", strings.Join(p, "\n"))
		}
	})

	t.Run("metrics and the README's Prometheus config", func(t *testing.T) {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		checkMetrics(t, body.String(), len(csvRows)-1, w.xssFP) // parses with expfmt and runs promtool check metrics
		checkREADMEPrometheus(t, promtool)
	})
}

// checkREADMEPrometheus checks the README's scrape config and alert rules
// as printed: promtool check config and check rules, then promtool test
// rules with series that should and should not fire them.
func checkREADMEPrometheus(t *testing.T, promtool string) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	var scrape, rules string
	for _, b := range blocks {
		switch {
		case strings.Contains(b[1], "scrape_configs:") && strings.Contains(b[1], "certsweep"):
			scrape = b[1]
		case strings.Contains(b[1], "groups:") && strings.Contains(b[1], "certsweep"):
			rules = b[1]
		}
	}
	if scrape == "" || rules == "" {
		t.Fatalf("README.md lacks the ```yaml scrape config or alert rules (found %d yaml blocks)", len(blocks))
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	promtoolRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
	}
	// The password file the config names lives in the test's directory.
	scrape = strings.ReplaceAll(scrape, "/etc/prometheus/certsweep.password", write("certsweep.password", "scrape\n"))
	write("rules.yml", rules)
	promtoolRun("check", "config", write("prometheus.yml", scrape+"rule_files:\n  - rules.yml\n"))
	promtoolRun("check", "rules", "rules.yml")
	promtoolRun("test", "rules", write("rules_test.yml", rulesTest))
}

// rulesTest feeds the README's rules series as certsweep's /metrics
// presents them: a certificate 10 days from expiry (fires), one 30 days
// away (does not), and an expired finding that appears after a day of
// zeros (fires the day it appears, not the day after).
const rulesTest = `rule_files:
  - rules.yml
evaluation_interval: 1m
tests:
  - interval: 1h
    input_series:
      - series: 'x509_cert_not_after{subject_CN="soon.corp.example",issuer_CN="Corp CA",serial_number="7",ip="10.0.0.5",port="443",sni=""}'
        values: '864000x60'
      - series: 'x509_cert_not_after{subject_CN="later.corp.example",issuer_CN="Corp CA",serial_number="8",ip="10.0.0.6",port="443",sni=""}'
        values: '2592000x60'
      - series: 'certsweep_findings{kind="expired",severity="critical"}'
        values: '0x24 1x30'
      - series: 'certsweep_findings{kind="coverage-drop",severity="critical"}'
        values: '0x54'
      - series: 'certsweep_findings{kind="untracked",severity="medium"}'
        values: '0x24 5x30'
    alert_rule_test:
      - eval_time: 1h
        alertname: CertificateExpiringSoon
        exp_alerts:
          - exp_labels: {severity: warning, subject_CN: soon.corp.example, issuer_CN: Corp CA, serial_number: "7", ip: 10.0.0.5, port: "443"}
            exp_annotations:
              summary: "soon.corp.example on 10.0.0.5:443 expires in 9d 23h 0m 0s"
      - eval_time: 12h
        alertname: NewCriticalCertificateFinding
        exp_alerts: []
      - eval_time: 26h
        alertname: NewCriticalCertificateFinding
        exp_alerts:
          - exp_labels: {severity: critical, kind: expired}
            exp_annotations:
              summary: "certsweep: expired findings rose to 1 within a day"
      - eval_time: 50h
        alertname: NewCriticalCertificateFinding
        exp_alerts: []
`
