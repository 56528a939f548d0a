package main

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certsweep/certsweep/scanner/scannertest"
)

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// writeBundle writes the lab's root as the organisation's CA bundle.
func writeBundle(t *testing.T, lab *scannertest.Lab) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "corp-roots.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: lab.CA.Root.DER})
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func sweepLab(t *testing.T, db string, lab *scannertest.Lab) {
	t.Helper()
	stdout, stderr, code := run(t, context.Background(), "sweep", "--db", db, "--ports", fmt.Sprint(lab.Port),
		"--rate", "0", "--concurrency", "16", "--timeout", "3s", "--quiet", lab.Prefix.String())
	if code != 0 {
		t.Fatalf("sweep exit %d: %s %s", code, stdout, stderr)
	}
}

func csvRows(t *testing.T, s string) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, s)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out
}

func TestReportAndFindingsOnLab(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 16)
	db := filepath.Join(t.TempDir(), "certs.db")
	sweepLab(t, db, lab)
	bundle := writeBundle(t, lab)
	byKind := map[string]*scannertest.Endpoint{}
	for _, ep := range lab.Endpoints {
		byKind[ep.Kind] = ep
	}

	// Only the valid endpoint's certificate has an owner.
	owners := filepath.Join(t.TempDir(), "owners.csv")
	valid := byKind["valid"].Presents[0]
	body := "sha256,owner,note\n" + fingerprint(valid) + ",web-team,www\n"
	if err := os.WriteFile(owners, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, ctx, "track", "import", "--db", db, owners); code != 0 || !strings.Contains(out, "imported 1") {
		t.Fatalf("track import exit %d: %s %s", code, out, errOut)
	}

	out, errOut, code := run(t, ctx, "report", "--db", db, "--format", "csv", "--no-system-roots", "--ca-bundle", bundle)
	if code != 0 {
		t.Fatalf("report exit %d: %s", code, errOut)
	}
	rows := csvRows(t, out)
	if len(rows) != 14 { // 16 endpoints, minus the stalling one and the SNI-only one
		t.Errorf("report has %d rows, want 14", len(rows))
	}
	got := map[string]map[string]string{}
	for _, r := range rows {
		got[r["sha256"]] = r
	}
	want := map[string]struct{ findings, severity, owner string }{
		"valid":            {"new", "info", "web-team"},
		"expired":          {"expired;untracked;new", "critical", ""},
		"expiring-7d":      {"expiring;untracked;new", "high", ""},
		"self-signed":      {"untrusted;self-signed;untracked;new", "high", ""},
		"rsa-1024":         {"weak-key;untracked;new", "high", ""},
		"sha1-signature":   {"weak-signature;untrusted;self-signed;untracked;new", "high", ""},
		"incomplete-chain": {"incomplete-chain;untracked;new", "medium", ""},
		"full-chain":       {"untracked;new", "medium", ""},
	}
	for kind, w := range want {
		r := got[fingerprint(byKind[kind].Presents[0])]
		if r == nil {
			t.Errorf("%s endpoint missing from the report", kind)
			continue
		}
		if r["findings"] != w.findings || r["severity"] != w.severity || r["owner"] != w.owner {
			t.Errorf("%s: findings %q severity %q owner %q, want %q %q %q",
				kind, r["findings"], r["severity"], r["owner"], w.findings, w.severity, w.owner)
		}
	}

	// --fail-on: exit 3 at or above the threshold, 0 below it.
	// -o writes the file all the same: --fail-on only changes the status.
	outFile := filepath.Join(t.TempDir(), "r.csv")
	_, errOut, code = run(t, ctx, "report", "--db", db, "--no-system-roots", "--ca-bundle", bundle, "--format", "csv", "--fail-on", "critical", "-o", outFile)
	if code != exitFindings || !strings.Contains(errOut, "at or above critical") {
		t.Errorf("report --fail-on critical: exit %d (%s), want 3", code, errOut)
	}
	if b, err := os.ReadFile(outFile); err != nil || string(b) != out {
		t.Errorf("report -o %s wrote %d bytes (%v), want the %d bytes report printed", outFile, len(b), err, len(out))
	}
	_, _, code = run(t, ctx, "findings", "--db", db, "--no-system-roots", "--ca-bundle", bundle, "--kind", "weak-key", "--fail-on", "critical")
	if code != 0 {
		t.Errorf("findings --kind weak-key --fail-on critical: exit %d, want 0 (no critical weak-key)", code)
	}

	// findings filters.
	out, errOut, code = run(t, ctx, "findings", "--db", db, "--no-system-roots", "--ca-bundle", bundle, "--kind", "expired,expiring", "--format", "csv")
	if code != 0 {
		t.Fatalf("findings exit %d: %s", code, errOut)
	}
	var kinds []string
	for _, r := range csvRows(t, out) {
		kinds = append(kinds, r["kind"])
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"expired", "expiring"}) {
		t.Errorf("findings --kind expired,expiring = %v", kinds)
	}
	out, _, _ = run(t, ctx, "findings", "--db", db, "--no-system-roots", "--ca-bundle", bundle, "--min-severity", "critical", "--format", "json")
	if n := len(jsonLines(t, out)); n != 1 {
		t.Errorf("findings --min-severity critical listed %d, want 1 (the expired leaf)", n)
	}
	_, errOut, code = run(t, ctx, "findings", "--db", db, "--kind", "bogus")
	if code != exitUsage || !strings.Contains(errOut, `unknown finding kind "bogus"`) {
		t.Errorf("findings --kind bogus: exit %d %q", code, errOut)
	}
}

func TestHostnameMismatchOnRealListener(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("names")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(scannertest.CertOptions{CommonName: "other.example", DNSNames: []string{"other.example"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scannertest.NewTLSServer("127.0.0.1:0", scannertest.TLSConfig(cert, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	db := filepath.Join(t.TempDir(), "certs.db")
	if _, errOut, code := run(t, ctx, "sweep", "--db", db, "--quiet", fmt.Sprintf("localhost:%d", s.Addr.Port())); code != 0 {
		t.Fatalf("sweep exit %d: %s", code, errOut)
	}
	out, errOut, code := run(t, ctx, "findings", "--db", db, "--kind", "hostname-mismatch", "--format", "json")
	if code != 0 {
		t.Fatalf("findings exit %d: %s", code, errOut)
	}
	lines := jsonLines(t, out)
	if len(lines) != 1 || lines[0]["sni"] != "localhost" || !strings.Contains(lines[0]["detail"].(string), "other.example") {
		t.Errorf("hostname-mismatch findings = %v, want one for localhost", lines)
	}
}

// TestDiffOfChangingLab sweeps a lab, changes it (one endpoint rotates its
// certificate, one goes away, one appears) and sweeps again.
func TestDiffOfChangingLab(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 13)
	db := filepath.Join(t.TempDir(), "certs.db")
	sweepLab(t, db, lab)

	rotated, gone := lab.Endpoints[0], lab.Endpoints[9] // valid, full-chain
	oldLeaf, goneLeaf := fingerprint(rotated.Presents[0]), fingerprint(gone.Presents[0])
	rotated.Server.Close()
	gone.Server.Close()
	newCert, err := lab.CA.Leaf(scannertest.CertOptions{CommonName: "rotated.lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scannertest.NewTLSServer(rotated.Server.Addr.String(), scannertest.TLSConfig(newCert, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	// An address of the lab's subnet past its endpoints.
	addedAddr := netip.AddrPortFrom(netip.AddrFrom4([4]byte(append(lab.Prefix.Addr().AsSlice()[:3], 200))), lab.Port)
	addedCert, err := lab.CA.Leaf(scannertest.CertOptions{CommonName: "added.lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	added, err := scannertest.NewTLSServer(addedAddr.String(), scannertest.TLSConfig(addedCert, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(added.Close)
	sweepLab(t, db, lab)

	out, errOut, code := run(t, ctx, "diff", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("diff exit %d: %s", code, errOut)
	}
	var got []string
	for _, m := range jsonLines(t, out) {
		got = append(got, fmt.Sprintf("%s %s %s>%s", m["change"], m["ip"], short(m["old_sha256"]), short(m["new_sha256"])))
	}
	newLeaf, addedLeaf := fingerprint(newCert.Certificate[0]), fingerprint(addedCert.Certificate[0])
	// One row per change, endpoint rows first in address order: the rotation
	// is one row (its old and new leaf are not listed again as gone and
	// new), the gone endpoint carries its last leaf, and the root, which only
	// the gone full-chain endpoint sent, is the one certificate gone.
	want := []string{
		fmt.Sprintf("certificate-changed %s %s>%s", rotated.Server.Addr.Addr(), short(oldLeaf), short(newLeaf)),
		fmt.Sprintf("endpoint-gone %s %s>", gone.Server.Addr.Addr(), short(goneLeaf)),
		fmt.Sprintf("endpoint-new %s >%s", addedAddr.Addr(), short(addedLeaf)),
		fmt.Sprintf("certificate-gone %s %s>", gone.Server.Addr.Addr(), short(fingerprint(lab.CA.Root.DER))),
	}
	if !slices.Equal(got, want) {
		t.Errorf("diff:\n got  %q\n want %q", got, want)
	}
	// Unchanged: the 11 other endpoints, including the stalling and the
	// SNI-only ones, which answer without presenting a leaf both times.
	if !strings.Contains(errOut, "certsweep: diff sweep 1 → 2 (") ||
		!strings.Contains(errOut, "): 1 certificate-changed, 1 endpoint-gone, 1 endpoint-new, 0 certificate-new, 1 certificate-gone; 11 unchanged") {
		t.Errorf("diff summary on stderr = %q", errOut)
	}
}

func short(v any) string {
	s, _ := v.(string)
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func TestTrackCommands(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "certs.db")
	fp := strings.Repeat("ab", 32)
	if _, errOut, code := run(t, ctx, "track", "add", "--db", db, "--owner", "=ops", fp); code != 0 {
		t.Fatalf("track add exit %d: %s", code, errOut)
	}
	if _, errOut, code := run(t, ctx, "track", "issuer", "--db", db, "--owner", "pki", "CN=Corp CA"); code != 0 {
		t.Fatalf("track issuer exit %d: %s", code, errOut)
	}
	csvFile := filepath.Join(t.TempDir(), "owners.csv")
	if err := os.WriteFile(csvFile, []byte("\ufeffSerial,Issuer,Owner\n0A:1B,CN=Other CA,db-team\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, ctx, "track", "import", "--db", db, csvFile); code != 0 {
		t.Fatalf("track import exit %d: %s", code, errOut)
	}
	// The same rows again change nothing; another owner for them fails the
	// whole import unless --replace.
	if _, errOut, code := run(t, ctx, "track", "import", "--db", db, csvFile); code != 0 {
		t.Errorf("re-import of the same owners: exit %d %q", code, errOut)
	}
	other := filepath.Join(t.TempDir(), "other.csv")
	if err := os.WriteFile(other, []byte("serial,issuer,owner\n0A:1B,\"CN = Other CA\",web-team\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, ctx, "track", "import", "--db", db, other); code != exitUsage || !strings.Contains(errOut, "already tracked") {
		t.Errorf("import of another owner: exit %d %q, want 2 and 'already tracked'", code, errOut)
	}
	if _, errOut, code := run(t, ctx, "track", "import", "--replace", "--db", db, other); code != 0 {
		t.Errorf("import --replace: exit %d %q", code, errOut)
	}
	out, _, code := run(t, ctx, "track", "list", "--db", db, "--format", "csv")
	rows := csvRows(t, out)
	if code != 0 || len(rows) != 3 {
		t.Fatalf("track list = %d rows (exit %d):\n%s", len(rows), code, out)
	}
	if rows[0]["owner"] != "'=ops" || rows[1]["serial"] != "0a1b" || rows[1]["owner"] != "web-team" || rows[2]["type"] != "rule" || rows[2]["issuer"] != "CN=Corp CA" {
		t.Errorf("track list rows = %v", rows)
	}
	if _, _, code := run(t, ctx, "track", "rm", "--db", db, fp); code != 0 {
		t.Errorf("track rm exit %d", code)
	}
	if _, errOut, code := run(t, ctx, "track", "rm", "--db", db, fp); code != exitFailure || !strings.Contains(errOut, "not found") {
		t.Errorf("second track rm: exit %d %q", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("sha256,owner\nnot-hex,me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, ctx, "track", "import", "--db", db, bad); code != exitUsage || !strings.Contains(errOut, "line 2") {
		t.Errorf("bad import: exit %d %q, want 2 naming line 2", code, errOut)
	}
}
