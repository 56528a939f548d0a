package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// run executes the CLI in-process, as main would, and returns its output and
// exit status.
func run(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut)
	err := app.RunContext(ctx, normalizeArgs(app, append([]string{"certsweep"}, args...)))
	code = exitStatus(&errOut, err)
	return out.String(), errOut.String(), code
}

func newLab(t *testing.T, n int) *scannertest.Lab {
	t.Helper()
	lab, err := scannertest.NewLab(n)
	if err != nil {
		t.Fatalf("NewLab(%d): %v", n, err)
	}
	t.Cleanup(lab.Close)
	return lab
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestSweepLab sweeps a lab of 60 endpoints end to end through the CLI and
// checks that the stored fingerprints are exactly those the servers present.
func TestSweepLab(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 60)
	db := filepath.Join(t.TempDir(), "certs.db")
	stdout, stderr, code := run(t, ctx, "sweep", "--db", db, "--ports", fmt.Sprint(lab.Port),
		// Generous timeout: under -race on 2 cores a handshake can take 100x longer.
		"--rate", "0", "--concurrency", "16", "--timeout", "5s", "--name", "lab", lab.Prefix.String())
	if code != 0 {
		t.Fatalf("sweep exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "sweep 1 complete: 256 of 256 probes") {
		t.Errorf("summary missing or wrong:\n%s", stdout)
	}

	want := map[string]bool{}
	for _, ep := range lab.Endpoints {
		for _, der := range ep.Presents {
			sum := sha256.Sum256(der)
			want[hex.EncodeToString(sum[:])] = true
		}
	}
	out, errOut, code := run(t, ctx, "certs", "--db", db, "--sweep", "1", "--format", "json")
	if code != 0 {
		t.Fatalf("certs exit %d: %s", code, errOut)
	}
	got := map[string]bool{}
	for _, obj := range jsonLines(t, out) {
		for _, k := range []string{"sha256", "subject", "issuer", "serial", "not_before", "not_after",
			"key_type", "key_bits", "signature_algorithm", "sans", "self_signed", "first_seen", "last_seen"} {
			if _, ok := obj[k]; !ok {
				t.Errorf("certs JSON object lacks %q: %v", k, obj)
			}
		}
		if fs, _ := obj["first_seen"].(string); !strings.HasSuffix(fs, "Z") {
			t.Errorf("first_seen = %q, want RFC 3339 UTC", fs)
		}
		got[obj["sha256"].(string)] = true
	}
	if len(got) != len(want) {
		t.Errorf("stored %d certificates, servers present %d", len(got), len(want))
	}
	for fp := range want {
		if !got[fp] {
			t.Errorf("certificate %s presented but not stored", fp)
		}
	}
	for fp := range got {
		if !want[fp] {
			t.Errorf("certificate %s stored but never presented", fp)
		}
	}

	// Outcomes: 58 handshakes, the stalling peer times out, the SNI-only
	// host refuses a client without SNI, the other 196 addresses are closed.
	d, err := store.OpenExisting(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sw, err := d.FindSweep(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantStats := map[string]int64{"ok": 58, "timeout": 1, "handshake-error": 1, "refused": 196}
	for k, v := range wantStats {
		if sw.Stats[k] != v {
			t.Errorf("stats[%s] = %d, want %d (all %v)", k, sw.Stats[k], v, sw.Stats)
		}
	}
	if sw.State != store.StateComplete || sw.Name != "lab" {
		t.Errorf("sweep state %q name %q, want complete, lab", sw.State, sw.Name)
	}

	// The TLS 1.0-only endpoint was recorded with its version.
	tls10 := lab.Endpoints[slices.Index(scannertest.DemoKinds, "tls10-only")]
	sum := sha256.Sum256(tls10.Presents[0])
	for s, err := range d.Sightings(ctx, sum) {
		if err != nil {
			t.Fatal(err)
		}
		if s.TLSVersion != "TLS 1.0" || s.IP != tls10.Server.Addr.Addr().String() {
			t.Errorf("tls10-only endpoint seen as %s at %s, want TLS 1.0 at %s", s.TLSVersion, s.IP, tls10.Server.Addr.Addr())
		}
	}

	// show: details and a PEM that decodes to the same certificate.
	fp := hex.EncodeToString(sum[:])
	out, errOut, code = run(t, ctx, "show", "--db", db, fp[:12])
	if code != 0 {
		t.Fatalf("show exit %d: %s", code, errOut)
	}
	block, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN"):]))
	if block == nil || !bytes.Equal(block.Bytes, tls10.Presents[0]) {
		t.Errorf("show did not print the certificate's PEM:\n%s", out)
	}
	if !strings.Contains(out, "SHA-256:") || !strings.Contains(out, fp) {
		t.Errorf("show output lacks the fingerprint:\n%s", out)
	}

	// sweeps as CSV: a header and one row.
	out, _, code = run(t, ctx, "sweeps", "--db", db, "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != 2 || rows[0][0] != "id" || rows[1][2] != "complete" {
		t.Errorf("sweeps --format csv = %q (exit %d, %v)", out, code, err)
	}
}

func TestSweepHostnameSetsSNI(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("sni")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(scannertest.CertOptions{CommonName: "localhost", DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	// Answers only to SNI "localhost": proves the name was sent.
	s, err := scannertest.NewTLSServer("127.0.0.1:0", scannertest.SNIOnlyConfig(cert, "localhost"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	db := filepath.Join(t.TempDir(), "certs.db")
	target := fmt.Sprintf("localhost:%d", s.Addr.Port())
	stdout, stderr, code := run(t, ctx, "sweep", "--db", db, "--quiet", target)
	if code != 0 {
		t.Fatalf("sweep %s exit %d: %s %s", target, code, stdout, stderr)
	}
	d, err := store.OpenExisting(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	found := false
	for sg, err := range d.Sightings(ctx, sha256.Sum256(cert.Certificate[0])) {
		if err != nil {
			t.Fatal(err)
		}
		found = found || (sg.SNI == "localhost" && sg.IP == "127.0.0.1")
	}
	if !found {
		t.Errorf("no observation of the leaf with sni=localhost at 127.0.0.1")
	}
}

func TestSweepInterrupted(t *testing.T) {
	lab := newLab(t, 20)
	db := filepath.Join(t.TempDir(), "certs.db")
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once the first batch is committed, not after a fixed delay: on
	// a loaded machine the sweep may not have probed anything by then.
	go func() {
		defer cancel()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
			time.Sleep(50 * time.Millisecond)
			if d, err := store.OpenExisting(ctx, db); err == nil {
				sw, err := d.FindSweep(ctx, 1)
				d.Close()
				if err == nil && sw.Done() > 0 {
					return
				}
			}
		}
	}()
	// 20 probes a second over 256 addresses: cancelled long before the end.
	stdout, stderr, code := run(t, ctx, "sweep", "--db", db, "--ports", fmt.Sprint(lab.Port),
		"--rate", "20", "--quiet", lab.Prefix.String())
	if code != exitInterrupted {
		t.Fatalf("interrupted sweep exit %d, want %d\n%s%s", code, exitInterrupted, stdout, stderr)
	}
	if !strings.Contains(stderr, "interrupted") {
		t.Errorf("stderr = %q, want it to say the sweep was interrupted", stderr)
	}
	d, err := store.OpenExisting(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sw, err := d.FindSweep(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if sw.State != store.StateInterrupted || sw.Done() == 0 || sw.Done() >= 256 {
		t.Errorf("sweep after cancel: state %s, %d probes committed; want interrupted with some but not all", sw.State, sw.Done())
	}
}

func TestUsageErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.db")
	notes := []byte("these are not certificates\n")
	if err := os.WriteFile(notDB, notes, 0o644); err != nil {
		t.Fatal(err)
	}
	newDB := filepath.Join(dir, "new.db")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sweep", "--db", newDB, "10.0.0.0/33"}, `invalid CIDR "10.0.0.0/33": prefix length must be 0-32`},
		{[]string{"sweep", "--db", newDB, "10.0.0.9-10.0.0.1"}, "first address is after the last"},
		{[]string{"sweep", "--db", newDB, "--ports", "443,70000", "127.0.0.1"}, `port "70000" out of range 1-65535`},
		{[]string{"sweep", "--db", newDB, "--rate", "fast", "127.0.0.1"}, `invalid value "fast" for flag -rate`},
		{[]string{"sweep", "--db", newDB, "--concurrency", "0", "127.0.0.1"}, "--concurrency 0"},
		{[]string{"sweep", "--db", newDB, "--targets-file", filepath.Join(dir, "missing.txt")}, "cannot read"},
		{[]string{"sweep", "--db", newDB, "--exclude", "banana/8", "127.0.0.1"}, `--exclude: invalid CIDR "banana/8"`},
		{[]string{"sweep", "--db", newDB, "2001:db8::/64"}, "--allow-large-ipv6"},
		{[]string{"sweep", "--db", newDB}, "no targets given"},
		{[]string{"sweep", "--db", newDB, "--exclude", "127.0.0.0/8", "127.0.0.1"}, "nothing to sweep"},
		{[]string{"sweep", "--db", notDB, "127.0.0.1"}, "not a certsweep database"},
		{[]string{"certs", "--db", notDB}, "not a certsweep database"},
		{[]string{"certs", "--db", newDB}, "no database at"},
		{[]string{"certs", "--db", newDB, "--format", "xml"}, `unknown --format "xml"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		// Flags after positional arguments are read like any other.
		{[]string{"sweep", "127.0.0.1", "--ports", "443,70000", "--db", newDB}, `port "70000" out of range 1-65535`},
		{[]string{"show", "abc", "--db", newDB}, `no database at ` + newDB},
		{[]string{"track", "add", strings.Repeat("a", 64), "--bogus", "--db", newDB}, "flag provided but not defined: -bogus"},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus\nhint: see certsweep --help\n"},
		{[]string{"sweep", "--bogus"}, "hint: see certsweep sweep --help\n"},
		{[]string{"track", "rule", "--bogus"}, "hint: see certsweep track rule --help\n"},
		{[]string{"track", "add", "--db", newDB, strings.Repeat("a", 64)}, "track add needs --owner"},
	}
	for _, tc := range tests {
		_, stderr, code := run(t, ctx, tc.args...)
		if code != exitUsage {
			t.Errorf("certsweep %s: exit %d, want %d (stderr %q)", strings.Join(tc.args, " "), code, exitUsage, stderr)
		}
		if !strings.HasPrefix(stderr, "certsweep: ") || !strings.Contains(stderr, tc.want) {
			t.Errorf("certsweep %s: stderr %q, want %q", strings.Join(tc.args, " "), stderr, tc.want)
		}
	}
	if _, err := os.Stat(newDB); !os.IsNotExist(err) {
		t.Errorf("a usage error created %s", newDB)
	}
	if got, _ := os.ReadFile(notDB); !bytes.Equal(got, notes) {
		t.Errorf("a non-certsweep --db file was modified")
	}
}

func TestTargetsFileAndStdin(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 12)
	dir := t.TempDir()
	file := filepath.Join(dir, "targets.txt")
	first := lab.Endpoints[0].Server.Addr.Addr()
	content := fmt.Sprintf("# lab hosts\n%s  # the valid one\n\n%s\n", first, lab.Prefix)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	excl := filepath.Join(dir, "exclude.txt")
	if err := os.WriteFile(excl, []byte(first.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "certs.db")
	stdout, stderr, code := run(t, ctx, "sweep", "--db", db, "--rate", "0", "--timeout", "5s",
		"--ports", fmt.Sprint(lab.Port), "--targets-file", file, "--exclude-file", excl)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	// The /24 plus a duplicate of one of its hosts, minus that host: 255 probes.
	if !strings.Contains(stdout, "255 of 255 probes") {
		t.Errorf("summary = %q, want 255 probes (duplicates merged, exclusion applied)", stdout)
	}
}

// TestHelpHasExamples keeps every command's help complete.
func TestHelpHasExamples(t *testing.T) {
	for _, cmd := range []string{"sweep", "sweeps", "certs", "show", "demo"} {
		out, _, code := run(t, context.Background(), cmd, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "certsweep "+cmd) {
			t.Errorf("certsweep %s --help (exit %d) lacks examples:\n%s", cmd, code, out)
		}
	}
}

func TestSweepIPv6Loopback(t *testing.T) {
	ca, err := scannertest.NewCA("v6")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(scannertest.CertOptions{CommonName: "v6.test"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scannertest.NewTLSServer("[::1]:0", scannertest.TLSConfig(cert, 0, 0))
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	t.Cleanup(s.Close)
	db := filepath.Join(t.TempDir(), "certs.db")
	stdout, stderr, code := run(t, context.Background(), "sweep", "--db", db,
		"--ports", fmt.Sprint(s.Addr.Port()), "::1/128")
	if code != 0 || !strings.Contains(stdout, "ok 1,") {
		t.Fatalf("sweep ::1 exit %d:\n%s%s", code, stdout, stderr)
	}
	out, _, _ := run(t, context.Background(), "certs", "--db", db, "--format", "json")
	if lines := jsonLines(t, out); len(lines) != 2 || lines[0]["subject"] != "CN=v6.test" {
		t.Errorf("certs after an IPv6 sweep = %v", lines)
	}
}

// rawControl reports whether s carries a control character a terminal
// would act on (newlines aside).
func rawControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x202e
	})
}

// TestSweepHostileLab sweeps endpoints that stall, drip, send garbage,
// reset, alert, or present malformed and absurd certificates. The sweep must
// finish, keep every certificate that arrived, and every output format must
// render the attacker's text inert.
func TestSweepHostileLab(t *testing.T) {
	ctx := context.Background()
	lab, err := scannertest.NewLabOf(len(scannertest.HostileKinds), func(i int) string { return scannertest.HostileKinds[i] })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	db := filepath.Join(t.TempDir(), "certs.db")
	stdout, stderr, code := run(t, ctx, "sweep", "--db", db, "--rate", "0", "--timeout", "2s",
		"--ports", fmt.Sprint(lab.Port), lab.Prefix.String())
	if code != 0 || !strings.Contains(stdout, "256 of 256 probes") {
		t.Fatalf("sweep exit %d:\n%s%s", code, stdout, stderr)
	}
	d, err := store.OpenExisting(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, ep := range lab.Endpoints {
		for _, der := range ep.Presents[:min(1, len(ep.Presents))] {
			if ep.Kind == "huge-1mb" {
				continue // refused by the TLS layer before any certificate is read
			}
			c, err := d.FindCertificate(ctx, fingerprint(der))
			if err != nil {
				t.Errorf("%s: certificate not stored: %v", ep.Kind, err)
				continue
			}
			if !bytes.Equal(c.DER, der) {
				t.Errorf("%s: stored DER differs from the one presented", ep.Kind)
			}
		}
	}
	sw, err := d.FindSweep(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sw.Stats["refused"] != 256-int64(len(lab.Endpoints)) {
		t.Errorf("refused = %d, want %d (stats %v)", sw.Stats["refused"], 256-len(lab.Endpoints), sw.Stats)
	}

	for _, args := range [][]string{
		{"certs", "--format", "table"},
		{"certs", "--format", "csv"},
		{"certs", "--format", "json"},
		{"report", "--format", "table", "--no-system-roots"},
		{"report", "--format", "csv", "--no-system-roots"},
		{"report", "--format", "json", "--no-system-roots"},
		{"findings", "--format", "table", "--no-system-roots"},
	} {
		out, errOut, code := run(t, ctx, append(args, "--db", db)...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
			continue
		}
		if rawControl(strings.ReplaceAll(out, "\r\n", "\n")) || strings.Contains(out, "\x1b") {
			t.Errorf("%v: output carries raw control characters", args)
		}
		if args[len(args)-1] == "csv" || args[2] == "csv" {
			rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Errorf("%v: not CSV: %v", args, err)
			}
			for _, row := range rows {
				for _, cell := range row {
					if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
						t.Errorf("%v: cell %q can start a formula", args, cell)
					}
				}
			}
		}
	}
	ansi := lab.Endpoints[slices.Index(scannertest.HostileKinds, "subject-ansi")]
	out, _, code := run(t, ctx, "show", "--db", db, fingerprint(ansi.Presents[0]))
	if code != 0 || strings.Contains(out, "\x1b") || !strings.Contains(out, `\x1b[31mFAKE OK`) {
		t.Errorf("show of the ANSI subject is not escaped:\n%q", out)
	}
}
