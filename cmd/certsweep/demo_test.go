package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certsweep/certsweep/scanner/scannertest"
)

// demoPlace picks a random 127.x.y.0/24 and an unprivileged port outside the
// ephemeral range that are free right now, so that demo tests never collide
// with each other, with other tests' labs or with a running `certsweep demo`
// (127.77.0.0/24 port 8443). It returns them as demo flags.
func demoPlace(t *testing.T) []string {
	t.Helper()
	for range 50 {
		a, b := rand.IntN(254)+1, rand.IntN(256)
		if a == 77 {
			continue
		}
		prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(a), byte(b), 0}), 24)
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", netip.AddrPortFrom(prefix.Addr().Next(), uint16(port)).String())
		if err != nil {
			continue
		}
		ln.Close()
		return []string{"--subnet", prefix.String(), "--port", fmt.Sprint(port)}
	}
	t.Fatal("no free loopback subnet and port for the demo")
	return nil
}

// runDemoOK runs `certsweep demo` with args and fails the test unless it
// exits 0.
func runDemoOK(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := run(t, context.Background(), append([]string{"demo", "--quiet"}, args...)...)
	if code != 0 {
		t.Fatalf("certsweep demo %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout, stderr
}

// shellSplit splits a command line as a POSIX shell would for the quoting
// the demo prints: blanks separate words, '...' is literal, "..." allows
// backslash escapes of " \ $ and `, a backslash outside quotes escapes the
// next character.
func shellSplit(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated ' in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(line[i])
			}
			if i == len(line) {
				t.Fatalf("unterminated \" in %q", line)
			}
			inWord = true
		case ch == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestDemoShellSplit(t *testing.T) {
	got := shellSplit(t, `certsweep track add 3f2a --owner web-team --note "lab \"www\"" --db '/tmp/a b/it'\''s.db' x\ y`)
	want := []string{"certsweep", "track", "add", "3f2a", "--owner", "web-team", "--note", `lab "www"`, "--db", "/tmp/a b/it's.db", "x y"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("shellSplit = %q, want %q", got, want)
	}
	for _, s := range []string{"plain.db", "/tmp/a b.db", "it's", `$HOME "x"`} {
		if w := shellSplit(t, shellQuote(s)); len(w) != 1 || w[0] != s {
			t.Errorf("shellQuote(%q) = %s splits into %q", s, shellQuote(s), w)
		}
	}
}

// demoNextCommands returns the command lines of the "Next:" block the demo
// printed, in order, as words without the leading "certsweep".
func demoNextCommands(t *testing.T, stdout string) [][]string {
	t.Helper()
	var cmds [][]string
	seen := false
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Next:") {
			seen = true
			continue
		}
		if seen && strings.HasPrefix(strings.TrimSpace(line), "certsweep ") {
			cmds = append(cmds, shellSplit(t, strings.TrimSpace(line))[1:])
		}
	}
	if !seen {
		t.Fatalf("no Next: block in the demo's output:\n%s", stdout)
	}
	return cmds
}

// TestDemoRefusesNonLoopbackSubnet: anything but an IPv4 subnet of
// 127.0.0.0/8 that fits the lab is a usage error, and nothing is written.
func TestDemoRefusesNonLoopbackSubnet(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "demo.db")
	for _, tc := range []struct{ subnet, want string }{
		{"10.0.0.0/24", "the demo only ever listens on and sweeps loopback"},
		{"192.168.1.0/24", "the demo only ever listens on and sweeps loopback"},
		{"::1/128", "the demo only ever listens on and sweeps loopback"},
		{"::ffff:127.77.0.0/120", "the demo only ever listens on and sweeps loopback"},
		{"0.0.0.0/0", "the demo only ever listens on and sweeps loopback"},
		{"127.77.0.1", "the demo only ever listens on and sweeps loopback"},
		{"lab", "the demo only ever listens on and sweeps loopback"},
		{"127.0.0.0/8", "want a /16 to /29"},
		{"127.77.0.0/30", "want a /16 to /29"},
		{"127.77.0.5/24", "did you mean --subnet 127.77.0.0/24"},
		{"127.77.0.0/29", "use a /27 or larger"}, // the default --lab-size 24 needs 24 hosts
	} {
		stdout, stderr, code := run(t, context.Background(), "demo", "--db", db, "--subnet", tc.subnet)
		if code != exitUsage || !strings.HasPrefix(stderr, "certsweep: ") || !strings.Contains(stderr, tc.want) {
			t.Errorf("demo --subnet %s: exit %d, stderr %q; want exit 2 and %q", tc.subnet, code, stderr, tc.want)
		}
		if strings.Contains(stdout+stderr, "starting a lab") {
			t.Errorf("demo --subnet %s started a lab", tc.subnet)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused demos wrote %v", entries)
	}
}

// TestDemoLabSize: the range is len(DemoKinds)-250, in the help and the
// check; the smallest lab fits a /28 and runs; --write-ca writes the lab's
// root, which turns blanket untrusted findings into real ones.
func TestDemoLabSize(t *testing.T) {
	n := len(scannertest.DemoKinds)
	rng := fmt.Sprintf("%d-250", n)
	help, _, _ := run(t, context.Background(), "demo", "--help")
	if !strings.Contains(help, "("+rng+")") {
		t.Errorf("demo --help does not give the lab size range %s:\n%s", rng, help)
	}
	dir := t.TempDir()
	for _, size := range []int{n - 1, 251} {
		_, stderr, code := run(t, context.Background(), "demo", "--db", filepath.Join(dir, "x.db"), "--lab-size", fmt.Sprint(size))
		if code != exitUsage || !strings.Contains(stderr, fmt.Sprintf("--lab-size %d: must be %s", size, rng)) {
			t.Errorf("demo --lab-size %d: exit %d, stderr %q; want exit 2 and the range %s", size, code, stderr, rng)
		}
	}

	place := demoPlace(t)
	prefix := netip.MustParsePrefix(place[1])
	place[1] = netip.PrefixFrom(prefix.Addr(), 28).String() // 14 hosts: just enough
	db := filepath.Join(dir, "small.db")
	ca := filepath.Join(dir, "lab-root.pem")
	stdout, stderr := runDemoOK(t, append([]string{"--db", db, "--lab-size", fmt.Sprint(n), "--write-ca", ca}, place...)...)
	out, _, _ := run(t, context.Background(), "sweeps", "--db", db, "--format", "json")
	ports := strings.Count(demoPorts(defaultDemoPort), ",") + 1 // the TLS port and each protocol peer's
	if s := jsonLines(t, out); len(s) != 1 || s[0]["probes_total"] != float64(16*ports) {
		t.Errorf("a demo on a /28 should sweep its 16 addresses on %d ports: %v\n%s", ports, s, stdout)
	}
	if !strings.Contains(stderr, "wrote the lab's root CA to "+ca) {
		t.Errorf("stderr does not say where the CA went:\n%s", stderr)
	}

	// The CA file: 0644, one PEM certificate, a self-signed CA, and the very
	// root the full-chain endpoint presented in this sweep.
	fi, err := os.Stat(ca)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("%s has mode %v, want 0644", ca, fi.Mode().Perm())
	}
	data, _ := os.ReadFile(ca)
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("%s is not one PEM certificate:\n%s", ca, data)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !root.IsCA || root.CheckSignatureFrom(root) != nil {
		t.Errorf("%s holds %s, not a self-signed CA", ca, root.Subject)
	}
	out, _, _ = run(t, context.Background(), "certs", "--db", db, "--format", "json")
	var roots []string
	for _, c := range jsonLines(t, out) {
		if c["is_ca"] == true && c["self_signed"] == true {
			roots = append(roots, c["sha256"].(string))
		}
	}
	if len(roots) != 1 || roots[0] != fingerprint(block.Bytes) {
		t.Errorf("the lab root in the database is %v, the CA file holds %s", roots, fingerprint(block.Bytes))
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".lab-root.pem.*")); len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	// With the CA as --ca-bundle, the valid endpoint is trusted; without it,
	// it is untrusted like everything else.
	valid := prefix.Addr().Next().String()
	untrusted := func(args ...string) bool {
		out, stderr, code := run(t, context.Background(), append([]string{"findings", "--db", db, "--format", "json", "--kind", "untrusted"}, args...)...)
		if code != 0 {
			t.Fatalf("findings exit %d: %s", code, stderr)
		}
		for _, f := range jsonLines(t, out) {
			if f["ip"] == valid {
				return true
			}
		}
		return false
	}
	if untrusted("--ca-bundle", ca) {
		t.Errorf("the valid endpoint %s is untrusted with --ca-bundle %s", valid, ca)
	}
	if !untrusted("--no-system-roots", "--ca-bundle", writeTempPEM(t)) {
		t.Errorf("the valid endpoint %s is trusted under an unrelated CA", valid)
	}
}

// writeTempPEM writes an unrelated CA, for a --ca-bundle that trusts nothing
// of the lab.
func writeTempPEM(t *testing.T) string {
	t.Helper()
	other, err := scannertest.NewCA("unrelated")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Root.DER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDemoSubnetBusy: when the lab's addresses are taken the demo says so,
// hints at --subnet, and writes nothing.
func TestDemoSubnetBusy(t *testing.T) {
	place := demoPlace(t)
	prefix := netip.MustParsePrefix(place[1])
	var port uint16
	fmt.Sscan(place[3], &port)
	squatter, err := scannertest.NewLabAt(prefix, port, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	dir := t.TempDir()
	_, stderr, code := run(t, context.Background(), append([]string{"demo", "--db", filepath.Join(dir, "demo.db")}, place...)...)
	if code != exitFailure || !strings.Contains(stderr, "in use") || !strings.Contains(stderr, "hint: pass another loopback subnet, e.g. --subnet ") {
		t.Errorf("demo on a busy subnet: exit %d, stderr %q; want exit 1, \"in use\" and a --subnet hint", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a demo that could not start wrote %v", entries)
	}
}

// TestDemoTwiceDiff runs the demo twice into one database on one subnet: two
// complete sweeps named demo, and every endpoint that answered both times
// shows up in diff as certificate-changed, since each run renews everything.
func TestDemoTwiceDiff(t *testing.T) {
	ctx := context.Background()
	place := demoPlace(t)
	db := filepath.Join(t.TempDir(), "weekly.db")
	runDemoOK(t, append([]string{"--db", db}, place...)...)
	runDemoOK(t, append([]string{"--db", db}, place...)...)

	out, _, _ := run(t, ctx, "sweeps", "--db", db, "--format", "json")
	sweeps := jsonLines(t, out)
	if len(sweeps) != 2 {
		t.Fatalf("want 2 sweeps, got %v", sweeps)
	}
	for _, s := range sweeps {
		if s["name"] != "demo" || s["state"] != "complete" {
			t.Errorf("sweep %v: want a complete sweep named demo", s)
		}
	}

	leaves := func(sweep any) map[string]string {
		out, stderr, code := run(t, ctx, "report", "--db", db, "--sweep", fmt.Sprint(sweep), "--format", "json")
		if code != 0 {
			t.Fatalf("report --sweep %v: exit %d: %s", sweep, code, stderr)
		}
		m := map[string]string{}
		for _, r := range jsonLines(t, out) {
			if fp, _ := r["sha256"].(string); fp != "" {
				m[fmt.Sprintf("%v:%v", r["ip"], r["port"])] = fp
			}
		}
		return m
	}
	before, after := leaves(sweeps[0]["id"]), leaves(sweeps[1]["id"])

	out, stderr, code := run(t, ctx, "diff", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("diff exit %d: %s", code, stderr)
	}
	changed := map[string]map[string]any{}
	for _, r := range jsonLines(t, out) {
		if r["change"] == "certificate-changed" {
			changed[fmt.Sprintf("%v:%v", r["ip"], r["port"])] = r
		}
	}
	both := 0
	for ep, old := range before {
		cur, ok := after[ep]
		if !ok {
			continue
		}
		both++
		r, ok := changed[ep]
		if !ok {
			t.Errorf("endpoint %s answered both times (leaf %.12s, then %.12s) but diff has no certificate-changed row for it", ep, old, cur)
			continue
		}
		if r["old_sha256"] != old || r["new_sha256"] != cur {
			t.Errorf("endpoint %s: diff says %v -> %v, the sweeps say %s -> %s", ep, r["old_sha256"], r["new_sha256"], old, cur)
		}
	}
	if both < len(scannertest.DemoKinds)-2 { // all but the stalling and the SNI-only endpoints, normally
		t.Errorf("only %d endpoints answered in both sweeps:\nbefore %v\nafter %v", both, before, after)
	}
}

// TestDemoNextSteps runs the demo and then every command of its "Next:"
// block, as printed and in order; each must exit 0. The CA file defaults to
// <db without extension>-ca.pem beside the database.
func TestDemoNextSteps(t *testing.T) {
	ctx := context.Background()
	place := demoPlace(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "loop.db")
	ca := filepath.Join(dir, "loop-ca.pem")
	stdout, stderr := runDemoOK(t, append([]string{"--db", db}, place...)...)
	if !strings.Contains(stderr, "wrote the lab's root CA to "+ca) {
		t.Errorf("stderr does not name the default CA file %s:\n%s", ca, stderr)
	}
	if !strings.Contains(stdout, "High and critical findings") {
		t.Errorf("the findings table is missing:\n%s", stdout)
	}
	cmds := demoNextCommands(t, stdout)
	var names []string
	for _, c := range cmds {
		names = append(names, strings.Join(c[:min(2, len(c))], " "))
	}
	want := []string{"findings --db", "track add", "demo --db", "diff --db", "report --db"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("Next commands are %q, want %q:\n%s", names, want, stdout)
	}
	for _, c := range cmds {
		if !strings.Contains(strings.Join(c, " "), "--db "+db) {
			t.Errorf("next step %q does not name the demo's database", c)
		}
	}
	if fp := cmds[1][2]; len(fp) != 12 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Errorf("track add takes %q, want a 12-digit fingerprint prefix", fp)
	}
	for i, args := range cmds {
		out, stderr, code := run(t, ctx, args...)
		if code != 0 {
			t.Errorf("next step %d, certsweep %s: exit %d\nstdout:\n%s\nstderr:\n%s", i+1, strings.Join(args, " "), code, out, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "demo-report.csv")); err != nil {
		t.Errorf("the report step wrote no demo-report.csv beside the database: %v", err)
	}
}
