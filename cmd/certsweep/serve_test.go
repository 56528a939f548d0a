package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"html"
	"html/template"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"
)

// xssSubject is the common name of a lab certificate that must render as
// text on every page. certsweep shows subjects as RFC 4514 names, which
// escape < and > with a backslash: xssShown, still markup if not escaped.
const (
	xssSubject = "<script>alert(1)</script>"
	xssShown   = `CN=\<script\>alert(1)\</script\>`
)

// webLab is a swept lab for the web view: the demo kinds plus one endpoint
// whose certificate's subject is markup.
type webLab struct {
	lab    *scannertest.Lab
	db     string
	xssFP  string // fingerprint of the markup certificate
	prefix string // what was swept
}

func newWebLab(t *testing.T, n int) *webLab {
	t.Helper()
	lab := newLab(t, n)
	cert, err := lab.CA.Leaf(scannertest.CertOptions{CommonName: xssSubject, DNSNames: []string{"xss.lab.test"}})
	if err != nil {
		t.Fatal(err)
	}
	a := lab.Prefix.Masked().Addr().As4()
	a[3] = byte(n + 1)
	srv, err := scannertest.NewTLSServer(netip.AddrPortFrom(netip.AddrFrom4(a), lab.Port).String(), scannertest.TLSConfig(cert, 0, 0))
	if err != nil {
		t.Fatalf("markup endpoint: %v", err)
	}
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(cert.Certificate[0])
	w := &webLab{lab: lab, db: filepath.Join(t.TempDir(), "certs.db"), xssFP: hex.EncodeToString(sum[:]),
		prefix: netip.PrefixFrom(lab.Prefix.Masked().Addr(), 26).String()}
	w.sweep(t)
	return w
}

// sweep sweeps the lab once more into its database.
func (w *webLab) sweep(t *testing.T) {
	t.Helper()
	out, errOut, code := run(t, context.Background(), "sweep", "--db", w.db, "--quiet", "--name", "web", "--rate", "0",
		"--timeout", "2s", "--ports", fmt.Sprint(w.lab.Port), w.prefix)
	if code != 0 {
		t.Fatalf("sweep: exit %d\n%s%s", code, out, errOut)
	}
}

// startServe runs `certsweep serve` in-process on a free loopback port and
// returns its base URL; stop ends it and returns its exit status.
func startServe(t *testing.T, args ...string) (base string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var out strings.Builder
	done := make(chan int, 1)
	go func() {
		app := newApp(&out, pw)
		err := app.RunContext(ctx, normalizeArgs(app, append([]string{"certsweep", "serve", "--listen", "127.0.0.1:0"}, args...)))
		code := exitStatus(pw, err)
		pw.Close()
		done <- code
	}()
	url := regexp.MustCompile(`serving (http://\S+/) `)
	sc := bufio.NewScanner(pr)
	var stderr []string
	for sc.Scan() {
		stderr = append(stderr, sc.Text())
		if m := url.FindStringSubmatch(sc.Text()); m != nil {
			base = strings.TrimSuffix(m[1], "/")
			break
		}
	}
	go io.Copy(io.Discard, pr) // the rest of stderr
	if base == "" {
		cancel()
		t.Fatalf("serve did not start: exit %d\n%s", <-done, strings.Join(stderr, "\n"))
	}
	var once sync.Once
	code := 0
	stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { stop() })
	return base, stop
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, method, url string, setup ...func(*http.Request)) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

func TestServePages(t *testing.T) {
	w := newWebLab(t, 14)
	base, stop := startServe(t, "--db", w.db)

	// The CLI's own report of the same sweep is what every page must agree with.
	out, errOut, code := run(t, context.Background(), "report", "--db", w.db, "--format", "csv")
	if code != 0 {
		t.Fatalf("report: exit %d %s", code, errOut)
	}
	want, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(want) < 10 {
		t.Fatalf("report --format csv: %v, %d rows", err, len(want))
	}

	home := get(t, "GET", base+"/")
	if home.status != 200 || !strings.HasPrefix(home.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q\n%s", home.status, home.header.Get("Content-Type"), home.body)
	}
	for name, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": "frame-ancestors 'none'",
	} {
		if got := home.header.Get(name); !strings.Contains(got, want) {
			t.Errorf("GET / header %s = %q, want %q in it", name, got, want)
		}
	}
	if strings.Contains(home.body, xssShown) || !strings.Contains(home.body, template.HTMLEscapeString(xssShown)) {
		t.Errorf("the dashboard does not escape the subject %q:\n%s", xssShown, home.body)
	}
	if rows := strings.Count(home.body, "<tr data-sev="); rows != len(want)-1 {
		t.Errorf("the dashboard lists %d endpoints, the CSV report %d", rows, len(want)-1)
	}
	if !strings.Contains(home.body, `href="/certs/`+w.xssFP+`"`) {
		t.Errorf("the dashboard does not link the certificate page of %s", w.xssFP)
	}

	csvAnswer := get(t, "GET", base+"/report.csv")
	got, err := csv.NewReader(strings.NewReader(csvAnswer.body)).ReadAll()
	if csvAnswer.status != 200 || err != nil {
		t.Fatalf("GET /report.csv = %d, %v", csvAnswer.status, err)
	}
	// Whole rows but days_left, which may tick between the two reads.
	key := func(rows [][]string) []string {
		var keys []string
		days := slices.Index(rows[0], "days_left")
		for _, r := range rows {
			keys = append(keys, strings.Join(slices.Delete(slices.Clone(r), days, days+1), ","))
		}
		return keys
	}
	if !slices.Equal(key(got), key(want)) {
		t.Errorf("GET /report.csv differs from certsweep report --format csv:\n%s\nwant\n%s", csvAnswer.body, out)
	}

	cert := get(t, "GET", base+"/certs/"+w.xssFP)
	if cert.status != 200 {
		t.Fatalf("GET /certs/%s = %d\n%s", w.xssFP, cert.status, cert.body)
	}
	block, _ := pem.Decode([]byte(html.UnescapeString(cert.body[max(0, strings.Index(cert.body, "-----BEGIN")):])))
	if block == nil {
		t.Fatalf("the certificate page has no PEM:\n%s", cert.body)
	}
	if sum := sha256.Sum256(block.Bytes); hex.EncodeToString(sum[:]) != w.xssFP {
		t.Errorf("the PEM on the page is not certificate %s", w.xssFP)
	}
	if c, err := x509.ParseCertificate(block.Bytes); err != nil || c.Subject.CommonName != xssSubject {
		t.Errorf("the PEM's subject = %v, %v", c, err)
	}
	if strings.Contains(cert.body, xssShown) || !strings.Contains(cert.body, template.HTMLEscapeString(xssShown)) ||
		!strings.Contains(cert.body, ":"+fmt.Sprint(w.lab.Port)) {
		t.Errorf("the certificate page must show the subject escaped and the endpoint that presented it:\n%s", cert.body)
	}

	metrics := get(t, "GET", base+"/metrics")
	if metrics.status != 200 {
		t.Fatalf("GET /metrics = %d\n%s", metrics.status, metrics.body)
	}
	checkMetrics(t, metrics.body, len(want)-1, w.xssFP)

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/?sweep=99", 404},
		{"GET", "/?sweep=x", 400},
		{"GET", "/certs/not-hex", 404},
		{"GET", "/certs/" + strings.Repeat("0", 64), 404},
		{"GET", "/nothing", 404},
		{"POST", "/", 405},
		{"DELETE", "/metrics", 405},
		{"PUT", "/report.csv", 405},
	} {
		a := get(t, tc.method, base+tc.path)
		if a.status != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, a.status, tc.status)
		}
		if a.status == 405 && !strings.Contains(a.header.Get("Allow"), "GET") {
			t.Errorf("%s %s: Allow = %q", tc.method, tc.path, a.header.Get("Allow"))
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d on cancel, want 0", code)
	}
}

// checkMetrics parses an exposition with the client library's own parser
// and checks it against the lab: one series of each x509 metric per
// endpoint with a certificate, the markup subject as a label value, the
// expired lab certificate, and the sweep's own metrics.
func checkMetrics(t *testing.T, text string, endpoints int, xssFP string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, text)
	}
	labels := func(m *dto.Metric) map[string]string {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		return l
	}
	for _, name := range []string{"x509_cert_not_after", "x509_cert_not_before", "x509_cert_expired"} {
		f := fams[name]
		if f == nil || f.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s missing or not a gauge", name)
			continue
		}
		// The plaintext-only rows (no certificate) have no x509 series.
		if n := len(f.GetMetric()); n == 0 || n > endpoints {
			t.Errorf("%s has %d series for %d endpoints", name, n, endpoints)
		}
		for _, m := range f.GetMetric() {
			l := labels(m)
			for _, want := range []string{"subject_CN", "issuer_CN", "serial_number", "ip", "port", "sni"} {
				if _, ok := l[want]; !ok {
					t.Errorf("%s series %v lacks label %s", name, l, want)
				}
			}
		}
	}
	// x509_cert_expired agrees with x509_cert_not_after, series by series.
	notAfter := map[string]float64{}
	key := func(m *dto.Metric) string { return fmt.Sprint(labels(m)) }
	for _, m := range fams["x509_cert_not_after"].GetMetric() {
		notAfter[key(m)] = m.GetGauge().GetValue()
	}
	var xss bool
	expired := 0
	for _, m := range fams["x509_cert_expired"].GetMetric() {
		xss = xss || labels(m)["subject_CN"] == xssSubject
		na, ok := notAfter[key(m)]
		past := float64(time.Now().Unix()) > na
		if v := m.GetGauge().GetValue(); !ok || (v == 1) != past {
			t.Errorf("x509_cert_expired%v = %v, but x509_cert_not_after = %v (%v)", labels(m), v, na, ok)
		}
		if past {
			expired++
		}
	}
	if !xss {
		t.Errorf("no series has subject_CN=%q", xssSubject)
	}
	if expired == 0 {
		t.Errorf("the lab's expired certificate has no x509_cert_expired 1 series")
	}
	findings := map[string]float64{}
	for _, m := range fams["certsweep_findings"].GetMetric() {
		findings[labels(m)["kind"]+"/"+labels(m)["severity"]] = m.GetGauge().GetValue()
	}
	if findings["expired/critical"] < 1 || findings["self-signed/medium"] < 1 {
		t.Errorf("certsweep_findings = %v, want expired and self-signed findings", findings)
	}
	if _, ok := findings["coverage-drop/critical"]; !ok {
		t.Errorf("certsweep_findings has no coverage-drop series (every kind is reported, zeros too): %v", findings)
	}
	probes := map[string]float64{}
	for _, m := range fams["certsweep_sweep_probes"].GetMetric() {
		probes[labels(m)["outcome"]] = m.GetGauge().GetValue()
	}
	if probes["ok"] < float64(endpoints)/2 {
		t.Errorf("certsweep_sweep_probes = %v", probes)
	}
	ts := fams["certsweep_sweep_last_complete_timestamp_seconds"].GetMetric()
	if len(ts) != 1 || time.Since(time.Unix(int64(ts[0].GetGauge().GetValue()), 0)) > time.Hour {
		t.Errorf("certsweep_sweep_last_complete_timestamp_seconds = %v, want the sweep just finished", ts)
	}
	// promtool's lint, where Debian's prometheus package is installed.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool is not installed: make e2e installs it and checks the metrics with it")
	}
	return fams
}

func TestServeBasicAuth(t *testing.T) {
	w := newWebLab(t, 2)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "web.yml")
	// Prometheus' web config form: a basic_auth_users section.
	if err := os.WriteFile(users, []byte("# who may read\nbasic_auth_users:\n  alice: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, _ := startServe(t, "--db", w.db, "--basic-auth-file", users)
	for _, tc := range []struct {
		user, pass string
		status     int
	}{{"", "", 401}, {"alice", "wrong", 401}, {"bob", "s3cret", 401}, {"alice", "s3cret", 200}} {
		a := get(t, "GET", base+"/metrics", func(r *http.Request) {
			if tc.user != "" {
				r.SetBasicAuth(tc.user, tc.pass)
			}
		})
		if a.status != tc.status {
			t.Errorf("GET /metrics as %q/%q = %d, want %d", tc.user, tc.pass, a.status, tc.status)
		}
		if a.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("401 without a Basic challenge: %q", a.header.Get("WWW-Authenticate"))
		}
	}
}

func TestServeRefuses(t *testing.T) {
	dir := t.TempDir()
	notBcrypt := filepath.Join(dir, "users")
	os.WriteFile(notBcrypt, []byte("alice: plaintext\n"), 0o600)
	notDB := filepath.Join(dir, "notes.txt")
	os.WriteFile(notDB, []byte("not a database, not SQLite either"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:0"}, "reachable from other hosts"},
		{[]string{"--listen", ":0"}, "reachable from other hosts"},
		{[]string{"--listen", "[::]:0"}, "reachable from other hosts"},
		{[]string{"--listen", "nonsense"}, "--listen"},
		{[]string{"--basic-auth-file", notBcrypt}, "not bcrypt"},
		{[]string{"--basic-auth-file", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"--db", notDB}, "not a certsweep database"},
	} {
		_, stderr, code := run(t, context.Background(), append([]string{"serve"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want exit 2 saying %q", tc.args, code, stderr, tc.want)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:9793": true, "[::1]:1": true, "localhost:1": true, "127.8.9.10:1": true,
		"0.0.0.0:1": false, ":1": false, "10.0.0.1:1": false, "[::ffff:127.0.0.1]:1": true, "example.com:1": false} {
		if got, err := isLoopbackListen(addr); got != want || err != nil {
			t.Errorf("isLoopbackListen(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
}

// TestServeRecovers replaces, removes and locks the database under a
// running serve: each answers 503 with the reason, and serve recovers by
// itself once the database is back.
func TestServeRecovers(t *testing.T) {
	w := newWebLab(t, 3)
	other := newWebLab(t, 3)
	other.sweep(t) // two sweeps: its dashboard is sweep 2's
	live := filepath.Join(t.TempDir(), "live.db")
	copyDB(t, w.db, live)
	base, _ := startServe(t, "--db", live)

	expect := func(status int, want string) {
		t.Helper()
		a := get(t, "GET", base+"/")
		if a.status != status || !strings.Contains(a.body, want) {
			t.Errorf("GET / = %d %.300q; want %d with %q", a.status, a.body, status, want)
		}
		if status == 503 && a.header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
	}
	expect(200, "certsweep: sweep 1 (web)")

	if err := os.Rename(live, live+".moved"); err != nil {
		t.Fatal(err)
	}
	expect(503, "no database at "+live)
	if a := get(t, "GET", base+"/metrics"); a.status != 503 {
		t.Errorf("GET /metrics without a database = %d, want 503", a.status)
	}

	copyDB(t, other.db, live) // a new file in its place
	expect(200, "certsweep: sweep 2 (web)")

	// A database in rollback-journal mode (a restored backup, say) whose
	// writer holds the exclusive lock shuts readers out: 503, until it
	// commits.
	restored := filepath.Join(t.TempDir(), "restored.db")
	copyDB(t, other.db, restored)
	lock, err := sql.Open("sqlite3", "file:"+restored)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "PRAGMA journal_mode=DELETE"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(restored, live); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE; UPDATE sweeps SET name = name"); err != nil {
		t.Fatalf("take an exclusive lock: %v", err)
	}
	expect(503, "locked")
	if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	lock.Close()
	expect(200, "certsweep: sweep 2 (web)")
}

// TestServeWhileSweeping reads every page over and over while a sweep
// writes: the sweep completes, and the pages never fail.
func TestServeWhileSweeping(t *testing.T) {
	w := newWebLab(t, 20)
	base, _ := startServe(t, "--db", w.db)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				for _, p := range []string{"/", "/metrics", "/report.csv"} {
					resp, err := http.Get(base + p)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					statuses[resp.StatusCode]++
					mu.Unlock()
				}
			}
		}()
	}
	// A slow sweep (--rate 40), so that its batches commit while pages read.
	out, errOut, code := run(t, context.Background(), "sweep", "--db", w.db, "--quiet", "--name", "web", "--rate", "40",
		"--timeout", "2s", "--ports", fmt.Sprint(w.lab.Port), w.prefix)
	cancel()
	wg.Wait()
	if code != 0 {
		t.Fatalf("sweep beside serve: exit %d\n%s%s", code, out, errOut)
	}
	if len(statuses) != 1 || statuses[200] == 0 {
		t.Errorf("answers during the sweep: %v, want only 200", statuses)
	}
	if a := get(t, "GET", base+"/"); !strings.Contains(a.body, "certsweep: sweep 2 (web)") {
		t.Errorf("after the sweep the dashboard does not show sweep 2:\n%.300s", a.body)
	}
}

func TestMetricsCommand(t *testing.T) {
	w := newWebLab(t, 14)
	dir := t.TempDir()
	prom := filepath.Join(dir, "certsweep.prom")
	for range 2 { // the second run replaces the file
		if out, errOut, code := run(t, context.Background(), "metrics", "--db", w.db, "-o", prom); code != 0 {
			t.Fatalf("metrics -o: exit %d\n%s%s", code, out, errOut)
		}
	}
	data, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ := run(t, context.Background(), "report", "--db", w.db, "--format", "json")
	checkMetrics(t, string(data), len(jsonLines(t, out)), w.xssFP)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%s holds %d files, want only certsweep.prom (no temporary file left)", dir, len(entries))
	}

	// Failures write nothing.
	missing := filepath.Join(dir, "none.prom")
	if _, stderr, code := run(t, context.Background(), "metrics", "--db", filepath.Join(dir, "no.db"), "-o", missing); code != exitUsage || !strings.Contains(stderr, "no database") {
		t.Errorf("metrics on a missing database: exit %d, %q", code, stderr)
	}
	empty := filepath.Join(dir, "empty.db")
	if d, err := store.Open(context.Background(), empty); err == nil {
		d.Close()
	}
	if _, stderr, code := run(t, context.Background(), "metrics", "--db", empty, "-o", missing); code != exitUsage || !strings.Contains(stderr, "no complete sweep") {
		t.Errorf("metrics before any sweep: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("a failed metrics run wrote %s", missing)
	}
}

func TestReadBasicAuthFile(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for name, tc := range map[string]struct {
		text  string
		users []string
		err   string
	}{
		"htpasswd":        {"alice:" + string(hash) + "\nbob:" + string(hash) + "\n", []string{"alice", "bob"}, ""},
		"web config":      {"basic_auth_users:\n  alice: '" + string(hash) + "'\n", []string{"alice"}, ""},
		"plaintext":       {"alice: hunter2\n", nil, "not bcrypt"},
		"no user":         {"# nobody\n", nil, "names no user"},
		"tls config line": {"tls_server_config:\n", nil, "want user: bcrypt-hash"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		os.WriteFile(p, []byte(tc.text), 0o600)
		users, err := readBasicAuthFile(p)
		var names []string
		for u := range users {
			names = append(names, u)
		}
		slices.Sort(names)
		if !slices.Equal(names, tc.users) || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: users %v, err %v; want %v, %q", name, names, err, tc.users, tc.err)
		}
	}
}

// copyDB copies a closed database file (its WAL checkpointed) to path,
// through a temporary name, as an operator replacing it would.
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(from + "-wal"); err == nil {
		t.Fatalf("%s-wal exists: the copy would miss committed data", from)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}
