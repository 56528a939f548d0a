package report

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certsweep/certsweep/store"
)

// ReportColumns is the documented, stable column order of `certsweep
// report`: one row per endpoint and the certificate it presented.
var ReportColumns = []string{"ip", "port", "sni", "sha256", "subject", "issuer", "serial",
	"not_before", "not_after", "days_left", "key", "signature_algorithm", "findings", "severity",
	"owner", "first_seen", "last_seen"}

// ReportRow renders an endpoint and its findings in ReportColumns order.
func ReportRow(ep store.Endpoint, fs []Finding, now time.Time) []any {
	c := ep.Leaf
	var kinds []string
	for _, f := range fs {
		if k := string(f.Kind); !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	severity := ""
	if h := Highest(fs); h >= 0 {
		severity = h.String()
	}
	var daysLeft any
	if !c.NotAfter.IsZero() {
		daysLeft = DaysLeft(now, c.NotAfter)
	}
	key := ""
	if c.KeyType != "" {
		key = c.KeyType + "-" + strconv.Itoa(c.KeyBits)
	}
	return []any{ep.IP, ep.Port, ep.SNI, c.Fingerprint(), c.Subject, c.Issuer, c.Serial,
		c.NotBefore, c.NotAfter, daysLeft, key, c.SignatureAlgorithm, strings.Join(kinds, ";"),
		severity, ep.Owner, c.FirstSeen, c.LastSeen}
}

// FindingColumns is the column order of `certsweep findings`.
var FindingColumns = []string{"severity", "kind", "ip", "port", "sni", "sha256", "subject",
	"not_after", "owner", "detail"}

// FindingRow renders one finding of an endpoint in FindingColumns order.
func FindingRow(ep store.Endpoint, f Finding) []any {
	return []any{f.Severity.String(), string(f.Kind), ep.IP, ep.Port, ep.SNI, ep.Leaf.Fingerprint(),
		ep.Leaf.Subject, ep.Leaf.NotAfter, ep.Owner, f.Detail}
}

// DaysLeft is whole days from now until t, negative once t has passed
// (expired two hours ago is day -1, not day 0).
func DaysLeft(now, t time.Time) int {
	d := t.Sub(now)
	days := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		days--
	}
	return days
}
