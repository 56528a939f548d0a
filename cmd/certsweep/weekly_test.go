package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/certsweep/certsweep/scanner/scannertest"
)

// weeklySweep sweeps the lab the way the cron job does: a named sweep.
func weeklySweep(t *testing.T, db string, lab *scannertest.Lab, extra ...string) string {
	t.Helper()
	args := append([]string{"sweep", "--db", db, "--name", "weekly", "--ports", fmt.Sprint(lab.Port),
		"--rate", "0", "--concurrency", "16", "--timeout", "3s"}, extra...)
	stdout, stderr, code := run(t, context.Background(), append(args, lab.Prefix.String())...)
	if code != 0 {
		t.Fatalf("weekly sweep exit %d: %s %s", code, stdout, stderr)
	}
	return stdout
}

// renew replaces endpoint i's certificate with a new one for the same names
// and a new key, as a renewal would, at the same address.
func renew(t *testing.T, lab *scannertest.Lab, i int) string {
	t.Helper()
	ep := lab.Endpoints[i]
	addr := ep.Server.Addr
	ep.Server.Close()
	name := fmt.Sprintf("host-%d.lab.test", i)
	c, err := lab.CA.Leaf(scannertest.CertOptions{CommonName: name, DNSNames: []string{name}, IPs: []net.IP{addr.Addr().AsSlice()}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scannertest.NewTLSServer(addr.String(), scannertest.TLSConfig(c, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return fingerprint(c.Certificate[0])
}

// labAddr is address .n of the lab's subnet.
func labAddr(lab *scannertest.Lab, n byte) netip.Addr {
	a := lab.Prefix.Addr().As4()
	a[3] = n
	return netip.AddrFrom4(a)
}

// TestWeeklyLoop scripts two weeks of the loop a network team runs from
// cron: owners imported in week 1 survive renewals in week 2, an ad-hoc
// sweep in between does not disturb the diff, and the findings of week 2
// flag only what is really untracked.
func TestWeeklyLoop(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 18) // 13 demo kinds, then 5 plain valid endpoints
	dir := t.TempDir()
	db := filepath.Join(dir, "certs.db")
	out := weeklySweep(t, db, lab, "--quiet")
	if out != "" {
		t.Errorf("--quiet printed %q on success", out)
	}

	// Week 1: owners by fingerprint for three endpoints that will renew,
	// and for one that will go away.
	owned := []int{13, 14, 15}
	var csvText strings.Builder
	csvText.WriteString("sha256,owner,note\n")
	for _, i := range append(owned, 16) {
		fmt.Fprintf(&csvText, "%s,team-%d,host %d\n", fingerprint(lab.Endpoints[i].Presents[0]), i, i)
	}
	owners := filepath.Join(dir, "owners.csv")
	if err := os.WriteFile(owners, []byte(csvText.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, ctx, "track", "import", owners, "--db", db); code != 0 || errOut != "" {
		t.Fatalf("track import: exit %d, stderr %q", code, errOut)
	}

	// Between the weeks: renewals, an endpoint gone, one new, and an ad-hoc
	// sweep of one address into the same database.
	renewed := map[int]string{}
	for _, i := range owned {
		renewed[i] = renew(t, lab, i)
	}
	lab.Endpoints[16].Server.Close()
	newAddr := netip.AddrPortFrom(labAddr(lab, 200), lab.Port)
	newCert, err := lab.CA.Leaf(scannertest.CertOptions{CommonName: "new.lab.test", DNSNames: []string{"new.lab.test"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scannertest.NewTLSServer(newAddr.String(), scannertest.TLSConfig(newCert, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	adhoc := lab.Endpoints[0].Server.Addr.String()
	if _, errOut, code := run(t, ctx, "sweep", adhoc, "--db", db, "--quiet"); code != 0 {
		t.Fatalf("ad-hoc sweep exit %d: %s", code, errOut)
	}

	out = weeklySweep(t, db, lab)
	if !strings.Contains(out, "owners carried over to 3 renewed certificates") || !strings.Contains(out, "name: weekly") {
		t.Errorf("week 2 summary does not report the name and the 3 inherited owners:\n%s", out)
	}

	// Week 2's report: the renewed certificates keep their owners, recorded
	// as inherited; nothing renewed is untracked.
	stdout, errOut, code := run(t, ctx, "report", "--db", db, "--format", "csv")
	if code != 0 {
		t.Fatalf("report exit %d: %s", code, errOut)
	}
	rows := csvRows(t, stdout)
	byFP := map[string]map[string]string{}
	for _, r := range rows {
		byFP[r["sha256"]] = r
	}
	for _, i := range owned {
		r := byFP[renewed[i]]
		if r == nil {
			t.Fatalf("renewed certificate of endpoint %d not in the report", i)
		}
		wantVia := fmt.Sprintf("inherited from %.12s (endpoint %s)", fingerprint(lab.Endpoints[i].Presents[0]), lab.Endpoints[i].Server.Addr)
		if r["owner"] != fmt.Sprintf("team-%d", i) || r["note"] != fmt.Sprintf("host %d", i) ||
			!strings.HasPrefix(r["owner_source"], wantVia) || strings.Contains(r["findings"], "untracked") {
			t.Errorf("renewed endpoint %d: owner %q note %q source %q findings %q; want team-%d, inherited (%s)",
				i, r["owner"], r["note"], r["owner_source"], r["findings"], i, wantVia)
		}
		if r["tls_version"] == "" || r["cipher"] == "" || !strings.Contains(r["sans"], fmt.Sprintf("host-%d.lab.test", i)) {
			t.Errorf("renewed endpoint %d: tls_version %q cipher %q sans %q", i, r["tls_version"], r["cipher"], r["sans"])
		}
	}
	if r := byFP[fingerprint(newCert.Certificate[0])]; r == nil || r["owner"] != "" || !strings.Contains(r["findings"], "untracked") {
		t.Errorf("the new endpoint's certificate should be untracked: %v", r)
	}

	// show says where the owner came from.
	stdout, _, code = run(t, ctx, "show", renewed[13][:16], "--db", db)
	if code != 0 || !strings.Contains(stdout, "team-13 (inherited from "+fingerprint(lab.Endpoints[13].Presents[0])[:12]) {
		t.Errorf("show of a renewed certificate (exit %d):\n%s", code, stdout)
	}

	// The default diff compares the two weekly sweeps, not the ad-hoc one.
	stdout, errOut, code = run(t, ctx, "diff", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("diff exit %d: %s", code, errOut)
	}
	changes := map[string]int{}
	for _, m := range jsonLines(t, stdout) {
		changes[m["change"].(string)]++
		if m["change"] == "certificate-changed" && !strings.HasPrefix(m["owner"].(string), "team-") {
			t.Errorf("a renewal's diff row has owner %q, want its inherited team", m["owner"])
		}
	}
	if changes["certificate-changed"] != 3 || changes["endpoint-gone"] != 1 || changes["endpoint-new"] != 1 || len(changes) != 3 {
		t.Errorf("diff of the weekly sweeps: %v, want 3 certificate-changed, 1 endpoint-gone, 1 endpoint-new", changes)
	}

	// Removing an inherited owner sticks: the next sweep does not bring it back.
	if stdout, errOut, code := run(t, ctx, "track", "rm", renewed[13], "--db", db); code != 0 || !strings.Contains(stdout, "will not be inherited again") {
		t.Fatalf("track rm of an inherited owner: exit %d %q %q", code, stdout, errOut)
	}
	weeklySweep(t, db, lab, "--quiet")
	stdout, _, _ = run(t, ctx, "findings", "--db", db, "--kind", "untracked", "--format", "json")
	found := false
	for _, m := range jsonLines(t, stdout) {
		found = found || m["sha256"] == renewed[13]
	}
	if !found {
		t.Errorf("after track rm, the renewed certificate of endpoint 13 should be untracked again:\n%s", stdout)
	}
}

// TestIssuerSpellings: an issuer rule written in any of the three ways
// tools print a DN matches the certificates that CA issued; one that
// matches nothing is warned about.
func TestIssuerSpellings(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 14)
	db := filepath.Join(t.TempDir(), "certs.db")
	weeklySweep(t, db, lab, "--quiet")
	leaf := fingerprint(lab.Endpoints[0].Presents[0]) // "valid": issued by the intermediate
	spellings := []string{
		"CN=certsweep lab Intermediate CA,O=certsweep lab",      // RFC 4514 (openssl -nameopt RFC2253)
		"O = certsweep lab, CN = certsweep lab Intermediate CA", // openssl's default print
		"/O=certsweep lab/CN=certsweep lab Intermediate CA",     // openssl's legacy form
		"cn=CERTSWEEP LAB intermediate ca,  o=certsweep   lab",  // any case and spacing
	}
	for _, dn := range spellings {
		stdout, errOut, code := run(t, ctx, "track", "issuer", dn, "--owner", "pki", "--db", db)
		if code != 0 || errOut != "" {
			t.Errorf("track issuer %q: exit %d, stderr %q", dn, code, errOut)
		}
		out, _, _ := run(t, ctx, "report", "--db", db, "--format", "json")
		owner := ""
		for _, m := range jsonLines(t, out) {
			if m["sha256"] == leaf {
				owner = m["owner"].(string)
			}
		}
		if owner != "pki" {
			t.Errorf("issuer rule %q: the intermediate's leaf has owner %q, want pki", dn, owner)
		}
		// One rule whatever the spelling: track rm in another spelling removes it.
		if _, errOut, code := run(t, ctx, "track", "rm", spellings[0], "--db", db); code != 0 {
			t.Errorf("track rm %q after track issuer %q: exit %d %s (stdout %s)", spellings[0], dn, code, errOut, stdout)
		}
	}
	_, errOut, code := run(t, ctx, "track", "issuer", "CN=Nonexistent CA", "--owner", "x", "--db", db)
	if code != 0 || !strings.Contains(errOut, "warning: the rule (issuer CN=Nonexistent CA) matches no endpoint") {
		t.Errorf("an issuer rule matching nothing: exit %d, stderr %q; want a warning", code, errOut)
	}
	_, errOut, code = run(t, ctx, "track", "add", strings.Repeat("ab", 32), "--owner", "x", "--db", db)
	if code != 0 || !strings.Contains(errOut, "warning: 1 of 1 entries match no certificate") {
		t.Errorf("an entry matching nothing: exit %d, stderr %q; want a warning", code, errOut)
	}
}

// TestOwnerRulesOnLab: each selector of track rule, on real endpoints.
func TestOwnerRulesOnLab(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 14)
	db := filepath.Join(t.TempDir(), "certs.db")
	weeklySweep(t, db, lab, "--quiet")
	ep := func(i int) string { return lab.Endpoints[i].Server.Addr.Addr().String() }
	rules := [][]string{
		{"--owner", "all-lab", "--cidr", lab.Prefix.String()},
		{"--owner", "one-host", "--cidr", ep(2), "--port", fmt.Sprint(lab.Port)},
		{"--owner", "host-3", "--name-suffix", "host-3.lab.test"},
	}
	for _, r := range rules {
		if _, errOut, code := run(t, ctx, append([]string{"track", "rule", "--db", db}, r...)...); code != 0 || errOut != "" {
			t.Fatalf("track rule %v: exit %d %q", r, code, errOut)
		}
	}
	if _, errOut, code := run(t, ctx, "track", "rule", "--owner", "x", "--db", db); code != exitUsage || !strings.Contains(errOut, "needs at least one") {
		t.Errorf("a rule without selectors: exit %d %q", code, errOut)
	}
	out, _, _ := run(t, ctx, "report", "--db", db, "--format", "json")
	got := map[string]string{}
	for _, m := range jsonLines(t, out) {
		got[m["ip"].(string)] = m["owner"].(string) + " / " + m["owner_source"].(string)
	}
	for ip, want := range map[string]string{ep(0): "all-lab / rule 1", ep(2): "one-host / rule 2", ep(3): "host-3 / rule 3"} {
		if !strings.HasPrefix(got[ip], want) {
			t.Errorf("%s: owner %q, want %q", ip, got[ip], want)
		}
	}
	list, _, _ := run(t, ctx, "track", "list", "--db", db, "--format", "csv")
	if rows := csvRows(t, list); len(rows) != 3 || rows[1]["type"] != "rule" || rows[1]["cidr"] != ep(2)+"/32" || rows[1]["port"] != fmt.Sprint(lab.Port) {
		t.Errorf("track list:\n%s", list)
	}
	// track list's CSV re-imports, rules and all, into another database.
	file := filepath.Join(t.TempDir(), "owners.csv")
	if err := os.WriteFile(file, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	db2 := filepath.Join(t.TempDir(), "other.db")
	if out, errOut, code := run(t, ctx, "track", "import", file, "--db", db2); code != 0 || !strings.Contains(out, "3 owner rules") {
		t.Errorf("re-import of track list: exit %d %q %q", code, out, errOut)
	}
}

// TestImportOwnReport: the report CSV, with owners filled in by a person,
// imports; a certificate listed twice with two owners is refused, naming
// the lines.
func TestImportOwnReport(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 14)
	db := filepath.Join(t.TempDir(), "certs.db")
	weeklySweep(t, db, lab, "--quiet")
	fp := fingerprint(lab.Endpoints[0].Presents[0])
	header := "ip,port,sni,sha256,subject,owner,note\n"
	good := header + fmt.Sprintf("10.0.0.1,443,,%s,CN=a,web,lb\n10.0.0.2,443,,%s,CN=a,web,\n10.0.0.3,443,,%s,CN=b,,\n", fp, fp, strings.Repeat("cd", 32))
	bad := header + fmt.Sprintf("10.0.0.1,443,,%s,CN=a,web,\n10.0.0.2,443,,%s,CN=a,db,\n", fp, fp)
	dir := t.TempDir()
	for name, text := range map[string]string{"good.csv": good, "bad.csv": bad} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := run(t, ctx, "track", "import", filepath.Join(dir, "good.csv"), "--db", db)
	if code != 0 || !strings.Contains(out, "imported 1 tracked certificates (1 rows without an owner") {
		t.Errorf("import of a filled-in report: exit %d %q %q", code, out, errOut)
	}
	_, errOut, code = run(t, ctx, "track", "import", filepath.Join(dir, "bad.csv"), "--db", db)
	if code != exitUsage || !strings.Contains(errOut, `owner "web" on line 2 and "db" on line 3`) {
		t.Errorf("conflicting owners: exit %d %q", code, errOut)
	}
}

// TestEmptySweepAndCoverageDrop: cron must go red when the scanner reaches
// nothing, or much less than last week.
func TestEmptySweepAndCoverageDrop(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 14)
	dir := t.TempDir()
	db := filepath.Join(dir, "certs.db")
	weeklySweep(t, db, lab, "--quiet")

	// A subnet where nothing listens.
	empty := netip.PrefixFrom(labAddr(lab, 224), 28).String()
	stdout, errOut, code := run(t, ctx, "sweep", "--db", db, "--quiet", "--ports", fmt.Sprint(lab.Port), "--name", "empty", empty)
	if code != exitEmpty || !strings.Contains(errOut, "reached no TLS endpoint") || !strings.Contains(errOut, "firewalls") || !strings.Contains(stdout, "refused 16") {
		t.Errorf("empty sweep: exit %d, stdout %q, stderr %q; want exit 4, the outcomes and the likely causes", code, stdout, errOut)
	}
	if _, _, code := run(t, ctx, "sweep", "--db", db, "--quiet", "--allow-empty", "--ports", fmt.Sprint(lab.Port), "--name", "empty", empty); code != 0 {
		t.Errorf("--allow-empty: exit %d", code)
	}
	// report on the empty sweep: a warning, and --fail-on treats it as critical.
	_, errOut, code = run(t, ctx, "report", "--db", db, "--format", "csv", "--fail-on", "critical")
	if code != exitFindings || !strings.Contains(errOut, "warning: sweep") {
		t.Errorf("report of an empty sweep: exit %d, stderr %q", code, errOut)
	}

	// Week 2 of "weekly" reaches fewer than half of week 1's endpoints.
	for _, ep := range lab.Endpoints[2:] {
		ep.Server.Close()
	}
	weeklySweep(t, db, lab, "--quiet")
	stdout, errOut, code = run(t, ctx, "findings", "--db", db, "--format", "csv", "--kind", "expired", "--fail-on", "high")
	if code != exitFindings || !strings.Contains(errOut, "fewer than half") {
		t.Errorf("findings after a coverage drop: exit %d, stderr %q", code, errOut)
	}
	if rows := csvRows(t, stdout); len(rows) == 0 || rows[0]["kind"] != "coverage-drop" || rows[0]["severity"] != "critical" {
		t.Errorf("findings should list the coverage-drop first:\n%s", stdout)
	}
	if _, errOut, _ := run(t, ctx, "diff", "--db", db); !strings.Contains(errOut, "fewer than half") {
		t.Errorf("diff after a coverage drop should warn: %q", errOut)
	}
}

// TestForcedSNIStoredAndJudged: --sni is recorded with the observation and
// the hostname check runs against it.
func TestForcedSNIStoredAndJudged(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 14)
	db := filepath.Join(t.TempDir(), "certs.db")
	target := lab.Endpoints[0].Server.Addr.String() // "valid": names host-0.lab.test
	if _, errOut, code := run(t, ctx, "sweep", target, "--sni", "www.elsewhere.test", "--db", db, "--quiet"); code != 0 {
		t.Fatalf("sweep --sni: exit %d %s", code, errOut)
	}
	stdout, _, _ := run(t, ctx, "findings", "--db", db, "--kind", "hostname-mismatch", "--format", "json")
	lines := jsonLines(t, stdout)
	if len(lines) != 1 || lines[0]["sni"] != "www.elsewhere.test" {
		t.Errorf("hostname-mismatch findings for a forced SNI: %v", lines)
	}
}

// TestOutputFileMode: -o writes a file readable as the umask allows, like
// any other program's output, not 0600.
func TestOutputFileMode(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 14)
	dir := t.TempDir()
	db := filepath.Join(dir, "certs.db")
	weeklySweep(t, db, lab, "--quiet")
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	out := filepath.Join(dir, "report.csv")
	if _, errOut, code := run(t, ctx, "report", "--db", db, "--format", "csv", "-o", out); code != 0 {
		t.Fatalf("report -o: exit %d %s", code, errOut)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("report -o under umask 022: %v %v, want 0644", fi.Mode(), err)
	}
	// An existing file keeps its mode.
	if err := os.Chmod(out, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, ctx, "report", "--db", db, "--format", "csv", "-o", out); code != 0 {
		t.Fatalf("report -o again: exit %d %s", code, errOut)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("report -o over a 0640 file: %v %v, want 0640", fi.Mode(), err)
	}
}

// TestVersion: --version names certsweep, zcrypto and SQLite.
func TestVersion(t *testing.T) {
	out, _, code := run(t, context.Background(), "--version")
	for _, want := range []string{"certsweep ", "zcrypto v", "SQLite 3."} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("--version (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
}
