package report

import (
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Inventory is what one collection of metrics reads: a sweep and a walk
// over its judged endpoints.
type Inventory struct {
	Sweep store.Sweep // the sweep described; ID 0 when there is none yet
	Now   time.Time   // x509_cert_expired compares not_after with it
	// SweepFindings are findings about the sweep as a whole (coverage-drop).
	SweepFindings []Finding
	// Endpoints calls each with every endpoint of the sweep and its
	// findings, and returns the first error each returns. It may be nil
	// when Sweep.ID is 0.
	Endpoints func(each func(store.Endpoint, []Finding) error) error
}

// Metric and label names. The x509_cert_* names and labels are those of
// enix/x509-certificate-exporter, so its dashboards and alert rules work on
// certsweep's metrics; ip, port, sni and site (empty, so absent, without
// --site) say which endpoint presented the certificate.
var (
	certLabels = []string{"subject_CN", "issuer_CN", "serial_number", "ip", "port", "sni", "site"}

	descNotAfter = prometheus.NewDesc("x509_cert_not_after",
		"The certificate's notAfter date, in seconds since the Unix epoch (leaf certificates of the latest complete sweep).", certLabels, nil)
	descNotBefore = prometheus.NewDesc("x509_cert_not_before",
		"The certificate's notBefore date, in seconds since the Unix epoch.", certLabels, nil)
	descExpired = prometheus.NewDesc("x509_cert_expired",
		"1 if the certificate has expired, else 0.", certLabels, nil)
	descFindings = prometheus.NewDesc("certsweep_findings",
		"Findings of each kind in the latest complete sweep (one per endpoint and kind; see certsweep findings).", []string{"kind", "severity"}, nil)
	descLastComplete = prometheus.NewDesc("certsweep_sweep_last_complete_timestamp_seconds",
		"When the latest complete sweep finished, in seconds since the Unix epoch.", nil, nil)
	descProbes = prometheus.NewDesc("certsweep_sweep_probes",
		"Probes of the latest complete sweep by outcome (ok, refused, timeout, ...).", []string{"outcome"}, nil)
	descError = prometheus.NewDesc("certsweep_inventory_error", "The inventory could not be read.", nil, nil)
)

// collector is a prometheus.Collector that reads the inventory anew at
// every collection, so the metrics are never older than the database.
type collector struct {
	load func() (Inventory, error)
}

// NewCollector returns a collector whose every Collect calls load and
// reports what it read. load carries its own context (Collect has none) and
// should read one consistent sweep. When load or the walk fails, the
// collection reports the error, and Gather fails with it: no partial
// metrics.
func NewCollector(load func() (Inventory, error)) prometheus.Collector {
	return &collector{load: load}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNotAfter, descNotBefore, descExpired, descFindings, descLastComplete, descProbes} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	inv, err := c.load()
	if err == nil {
		err = collect(inv, ch)
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descError, err)
	}
}

func collect(inv Inventory, ch chan<- prometheus.Metric) error {
	if inv.Sweep.ID == 0 {
		return nil // nothing swept yet: no series rather than made-up zeros
	}
	if !inv.Sweep.FinishedAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(descLastComplete, prometheus.GaugeValue, float64(inv.Sweep.FinishedAt.UnixMilli())/1000)
	}
	for outcome, n := range inv.Sweep.Stats {
		ch <- prometheus.MustNewConstMetric(descProbes, prometheus.GaugeValue, float64(n), outcome)
	}
	// Every kind is reported, zeros included, so that an alert comparing a
	// count with its past finds a series on both sides.
	counts := map[Kind]int{}
	for _, f := range inv.SweepFindings {
		counts[f.Kind]++
	}
	seen := map[string]bool{}
	if inv.Endpoints == nil {
		inv.Endpoints = func(func(store.Endpoint, []Finding) error) error { return nil }
	}
	err := inv.Endpoints(func(ep store.Endpoint, fs []Finding) error {
		kinds := map[Kind]bool{}
		for _, f := range fs {
			if !kinds[f.Kind] {
				kinds[f.Kind] = true
				counts[f.Kind]++
			}
		}
		if !ep.HasLeaf() || ep.Leaf.ParseError != "" {
			return nil // no certificate, or no dates to report
		}
		labels := []string{commonName(ep.Leaf.Subject), commonName(ep.Leaf.Issuer), serialDecimal(ep.Leaf.Serial),
			ep.IP, strconv.Itoa(ep.Port), Terminal(ep.SNI), ep.Site}
		// One series per endpoint: an endpoint reached twice (a resumed
		// sweep, another protocol) would be a duplicate the registry refuses.
		key := strings.Join(labels[3:], "\x00")
		if seen[key] {
			return nil
		}
		seen[key] = true
		expired := 0.0
		if ep.Leaf.NotAfter.Before(inv.Now) {
			expired = 1
		}
		ch <- prometheus.MustNewConstMetric(descNotAfter, prometheus.GaugeValue, float64(ep.Leaf.NotAfter.Unix()), labels...)
		ch <- prometheus.MustNewConstMetric(descNotBefore, prometheus.GaugeValue, float64(ep.Leaf.NotBefore.Unix()), labels...)
		ch <- prometheus.MustNewConstMetric(descExpired, prometheus.GaugeValue, expired, labels...)
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range Kinds {
		ch <- prometheus.MustNewConstMetric(descFindings, prometheus.GaugeValue, float64(counts[k.Kind]), string(k.Kind), k.Severity.String())
	}
	return nil
}

// commonName is the last CN of a distinguished name as certsweep stores it,
// made inert and valid UTF-8 (Prometheus refuses other label values);
// "" when there is none.
func commonName(dn string) string {
	d, err := scanner.ParseDN(dn)
	if err != nil {
		return ""
	}
	cn := ""
	for _, a := range d {
		switch strings.ToLower(a.Type) {
		case "cn", "commonname", "2.5.4.3":
			cn = a.Value
		}
	}
	return Terminal(cn)
}

// serialDecimal writes a stored (hex) serial in decimal, as
// x509-certificate-exporter's serial_number label does.
func serialDecimal(hex string) string {
	n, ok := new(big.Int).SetString(strings.ReplaceAll(hex, ":", ""), 16)
	if !ok {
		return Terminal(hex)
	}
	return n.String()
}

// WriteMetrics gathers g and writes the metrics in the Prometheus text
// exposition format. It writes nothing when gathering fails.
func WriteMetrics(w io.Writer, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("collect metrics: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	return nil
}
