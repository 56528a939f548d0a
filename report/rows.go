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
// Columns added later go at the end, so spreadsheets built on the old
// order keep working.
var ReportColumns = []string{"ip", "port", "sni", "sha256", "subject", "issuer", "serial",
	"not_before", "not_after", "days_left", "key", "signature_algorithm", "findings", "severity",
	"owner", "first_seen", "last_seen", "tls_version", "cipher", "sans", "note", "owner_source", "protocol",
	"versions", "weak_ciphers", "offer", "sni_source", "site"}

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
	notBefore, notAfter := Validity(c.Cert)
	var daysLeft any
	if notAfter != nil {
		daysLeft = DaysLeft(now, c.NotAfter)
	}
	key := ""
	if c.KeyType != "" {
		key = c.KeyType + "-" + strconv.Itoa(c.KeyBits)
	}
	versions, weak := PostureCells(ep.Posture, ep.Versions, ep.WeakCiphers)
	if !ep.HasLeaf() { // reached no certificate (plaintext-only): endpoint columns only
		return []any{ep.IP, ep.Port, ep.SNI, "", "", "", "", nil, nil, nil, "", "", strings.Join(kinds, ";"),
			severity, ep.Owner, nil, nil, ep.TLSVersion, ep.CipherSuite, []string{}, ep.OwnerNote, ep.OwnerVia, ep.Protocol,
			versions, weak, ep.Offer, ep.Source, ep.Site}
	}
	return []any{ep.IP, ep.Port, ep.SNI, c.Fingerprint(), c.Subject, c.Issuer, c.Serial,
		notBefore, notAfter, daysLeft, key, c.SignatureAlgorithm, strings.Join(kinds, ";"),
		severity, ep.Owner, c.FirstSeen, c.LastSeen, ep.TLSVersion, ep.CipherSuite, c.SANs,
		ep.OwnerNote, ep.OwnerVia, ep.Protocol, versions, weak, ep.Offer, ep.Source, ep.Site}
}

// PostureCells renders a TLS posture as the report's versions and
// weak_ciphers cells, each ";"-joined: "" when it was not measured, "none"
// for an empty list when it was, so a spreadsheet tells them apart.
func PostureCells(measured bool, versions, weak []string) (string, string) {
	if !measured {
		return "", ""
	}
	cell := func(l []string) string {
		if len(l) == 0 {
			return "none"
		}
		return strings.Join(l, ";")
	}
	return cell(versions), cell(weak)
}

// FindingColumns is the column order of `certsweep findings`.
var FindingColumns = []string{"severity", "kind", "ip", "port", "sni", "sha256", "subject",
	"not_after", "owner", "detail", "protocol", "offer", "site"}

// FindingRow renders one finding of an endpoint in FindingColumns order. A
// finding about a whole sweep (coverage-drop) has a zero endpoint and
// leaves the endpoint columns empty.
func FindingRow(ep store.Endpoint, f Finding) []any {
	if ep.IP == "" {
		return []any{f.Severity.String(), string(f.Kind), "", nil, "", "", "", nil, "", f.Detail, "", "", ""}
	}
	if !ep.HasLeaf() {
		return []any{f.Severity.String(), string(f.Kind), ep.IP, ep.Port, ep.SNI, "", "", nil, ep.Owner, f.Detail, ep.Protocol, ep.Offer, ep.Site}
	}
	_, notAfter := Validity(ep.Leaf.Cert)
	return []any{f.Severity.String(), string(f.Kind), ep.IP, ep.Port, ep.SNI, ep.Leaf.Fingerprint(),
		ep.Leaf.Subject, notAfter, ep.Owner, f.Detail, ep.Protocol, ep.Offer, ep.Site}
}

// DaysLeft is whole days from now until t: 30 for 30 days and some hours
// left; -5 for a certificate that expired 5 days and some hours ago, as
// the expired finding says; -1, never 0, within a day after expiry, so
// that "negative" always means "expired".
func DaysLeft(now, t time.Time) int {
	// Seconds, not a time.Duration: a Duration spans only ±292 years, and
	// certificates carry years 1 and 9999.
	days := int((t.Unix() - now.Unix()) / 86400) // truncates toward zero
	if t.Before(now) && days == 0 {
		days = -1
	}
	return days
}
