package report_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func gatherText(t *testing.T, load func() (report.Inventory, error)) (string, error) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(report.NewCollector(load)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := report.WriteMetrics(&buf, reg)
	return buf.String(), err
}

func TestCollector(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	expired := htmlEndpoint(1, "10.0.0.1", "CN=old.example,O=Corp", now.AddDate(0, 0, -1), "")
	expired.Leaf.Serial, expired.Leaf.Issuer = "0a:ff", "CN=Corp CA 2,O=Corp"
	hostile := htmlEndpoint(2, "10.0.0.2", "CN=bad \xff\x1b[31m", now.AddDate(0, 1, 0), "")
	hostile.SNI = "a\xfeb"
	atSite := expired // the same address at another site: a series of its own
	atSite.Site = "fra"
	unparsed := htmlEndpoint(3, "10.0.0.3", "CN=x", now, "")
	unparsed.Leaf.ParseError = "asn1: garbage"
	f := func(k report.Kind) report.Finding { return report.Finding{Kind: k, Severity: report.KindSeverity(k)} }
	eps := []struct {
		ep store.Endpoint
		fs []report.Finding
	}{
		{expired, []report.Finding{f(report.KindExpired), f(report.KindExpired), f(report.KindUntracked)}},
		{hostile, nil},
		{hostile, nil}, // the same endpoint twice (a resumed sweep): one series
		{atSite, nil},
		{unparsed, []report.Finding{f(report.KindUnparsableValidity)}},
	}
	text, err := gatherText(t, func() (report.Inventory, error) {
		return report.Inventory{
			Sweep: store.Sweep{ID: 4, FinishedAt: now.Add(-time.Hour), Stats: map[string]int64{"ok": 3, "refused": 250}},
			Now:   now,
			Endpoints: func(each func(store.Endpoint, []report.Finding) error) error {
				for _, e := range eps {
					if err := each(e.ep, e.fs); err != nil {
						return err
					}
				}
				return nil
			},
		}, nil
	})
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	if n := len(fams["x509_cert_not_after"].GetMetric()); n != 3 {
		t.Errorf("x509_cert_not_after has %d series, want 3 (no duplicate, none for an unparsed certificate)\n%s", n, text)
	}
	for _, want := range []string{
		`x509_cert_expired{ip="10.0.0.1",issuer_CN="Corp CA 2",port="443",serial_number="2815",site="",sni="",subject_CN="old.example"} 1`,
		`x509_cert_expired{ip="10.0.0.1",issuer_CN="Corp CA 2",port="443",serial_number="2815",site="fra",sni="",subject_CN="old.example"} 1`,
		`x509_cert_expired{ip="10.0.0.2",issuer_CN="Lab CA",port="443",serial_number="",site="",sni="a\\xfeb",subject_CN="bad \\xff\\x1b[31m"} 0`,
		`certsweep_findings{kind="expired",severity="critical"} 1`,
		`certsweep_findings{kind="untracked",severity="medium"} 1`,
		`certsweep_findings{kind="unparsable-validity",severity="high"} 1`,
		`certsweep_findings{kind="coverage-drop",severity="critical"} 0`,
		`certsweep_sweep_probes{outcome="refused"} 250`,
		"certsweep_sweep_last_complete_timestamp_seconds 1.7724492e+09",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s\n%s", want, text)
		}
	}
	if n := len(fams["certsweep_findings"].GetMetric()); n != len(report.Kinds) {
		t.Errorf("certsweep_findings has %d series, want one per kind (%d)", n, len(report.Kinds))
	}

	// A failed read fails the whole collection: no partial metrics.
	for name, load := range map[string]func() (report.Inventory, error){
		"load": func() (report.Inventory, error) { return report.Inventory{}, errors.New("database is locked") },
		"walk": func() (report.Inventory, error) {
			return report.Inventory{Sweep: store.Sweep{ID: 1}, Endpoints: func(func(store.Endpoint, []report.Finding) error) error {
				return errors.New("database is locked")
			}}, nil
		},
	} {
		text, err := gatherText(t, load)
		if err == nil || !strings.Contains(err.Error(), "database is locked") || text != "" {
			t.Errorf("%s fails: err %v, wrote %q; want the error and nothing written", name, err, text)
		}
	}
}
