package report_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
)

var hostile = []string{
	`=HYPERLINK("http://evil.example","click")`,
	"+cmd|' /C calc'!A0",
	"-2+3",
	"@SUM(A1:A2)",
	"\tTAB",
	"comma, \"quote\" and\nnewline",
	"\x1b[31mred\x1b[0m \x1b]0;title\x07",
	"bad utf8 \xff\xfe end",
	"rtl \u202egnp.exe",
	"plain CN=web.example",
}

func TestTerminal(t *testing.T) {
	for _, s := range hostile {
		got := report.Terminal(s)
		for _, r := range got {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x202e {
				t.Errorf("Terminal(%q) = %q, still contains %U", s, got, r)
			}
		}
		if !strings.Contains(got, "\\") && got != s {
			t.Errorf("Terminal(%q) = %q changed text without escaping it", s, got)
		}
	}
	if got, want := report.Terminal("\x1b[31mred"), `\x1b[31mred`; got != want {
		t.Errorf("Terminal(ESC) = %q, want %q", got, want)
	}
}

func TestCSVEncoder(t *testing.T) {
	var buf bytes.Buffer
	enc, err := report.NewEncoder(&buf, "csv", []string{"subject", "days_left", "seen"})
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2026, 11, 24, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, s := range hostile {
		if err := enc.Encode(s, -3, seen); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "\r\n") {
		t.Errorf("CSV lines do not end in CRLF (RFC 4180)")
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("output is not parseable CSV: %v", err)
	}
	if len(rows) != len(hostile)+1 {
		t.Fatalf("got %d rows, want header + %d", len(rows), len(hostile))
	}
	for i, row := range rows[1:] {
		cell := row[0]
		if strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
			t.Errorf("cell %q starts with a formula trigger", cell)
		}
		if !utf8.ValidString(cell) || strings.ContainsFunc(cell, func(r rune) bool {
			return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r == 0x202e
		}) {
			t.Errorf("cell %q carries raw control characters", cell)
		}
		// Text without control characters survives intact, bar the guard.
		if !strings.ContainsFunc(hostile[i], func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r > 0x7e }) &&
			strings.TrimPrefix(cell, "'") != hostile[i] {
			t.Errorf("cell %q does not round-trip %q", cell, hostile[i])
		}
		if row[1] != "-3" {
			t.Errorf("numeric cell = %q, want -3 (numbers are not quoted)", row[1])
		}
		if row[2] != "2026-11-24T09:00:00Z" {
			t.Errorf("time cell = %q, want UTC ISO-8601", row[2])
		}
	}
}

func TestJSONEncoder(t *testing.T) {
	var buf bytes.Buffer
	enc, err := report.NewEncoder(&buf, "json", []string{"subject", "sans", "n", "at"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hostile {
		if err := enc.Encode(s, []string(nil), 7, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(hostile) {
		t.Fatalf("got %d lines, want one per record (%d)", len(lines), len(hostile))
	}
	for _, line := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		if obj["at"] != nil || obj["n"] != float64(7) {
			t.Errorf("line %q: want at=null, n=7", line)
		}
		if sans, ok := obj["sans"].([]any); !ok || len(sans) != 0 {
			t.Errorf("line %q: want sans=[]", line)
		}
		if strings.ContainsRune(line, 0x1b) {
			t.Errorf("line %q contains a raw ESC", line)
		}
	}
}

func TestTableEncoder(t *testing.T) {
	var buf bytes.Buffer
	enc, err := report.NewEncoder(&buf, "table", []string{"subject", "n"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hostile {
		if err := enc.Encode(s, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.ContainsAny(out, "\x1b\x07\r\t") {
		t.Errorf("table output contains raw control characters: %q", out)
	}
	if got := strings.Count(out, "\n"); got != len(hostile)+1 {
		t.Errorf("table has %d lines, want %d (embedded newlines must be escaped)", got, len(hostile)+1)
	}
	if _, err := report.NewEncoder(&buf, "xml", nil); err == nil {
		t.Errorf("NewEncoder(xml) succeeded, want an error")
	}
}

// FuzzEncoders feeds arbitrary text through every encoder: the output must
// parse back (CSV, JSON), and no raw control character may survive in the
// table or the CSV.
func FuzzEncoders(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, int64(-3))
	}
	f.Add("", int64(0))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		for _, format := range report.Formats {
			var buf bytes.Buffer
			enc, err := report.NewEncoder(&buf, format, []string{"text", "n", "list"})
			if err != nil {
				t.Fatal(err)
			}
			if err := enc.Encode(s, n, []string{s, "x"}); err != nil {
				t.Fatalf("%s: Encode(%q): %v", format, s, err)
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			switch format {
			case "csv":
				rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
				if err != nil || len(rows) != 2 || len(rows[1]) != 3 {
					t.Fatalf("csv output %q does not parse back into one row: %v", out, err)
				}
				if c := rows[1][0]; c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
					t.Errorf("csv cell %q starts with a formula trigger", c)
				}
			case "json":
				var obj map[string]any
				if err := json.Unmarshal([]byte(out), &obj); err != nil || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
					t.Fatalf("json output %q is not one JSON line: %v", out, err)
				}
			case "table":
				if strings.Count(out, "\n") != 2 {
					t.Errorf("table output %q is not a header and one line", out)
				}
			}
			if format != "json" && strings.ContainsFunc(out, func(r rune) bool {
				return r < 0x20 && r != '\n' && r != '\t' && r != '\r' || r == 0x7f || r == 0x1b
			}) {
				t.Errorf("%s output %q carries raw control characters", format, out)
			}
		}
	})
}

// Year 1 is a date certificates carry, not "unknown": a parsed
// certificate's bounds are always written, and days left does not wrap.
func TestValidityOfExtremeDates(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := scanner.Cert{NotBefore: time.Time{}, NotAfter: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}
	nb, na := report.Validity(c)
	if got := report.Text(nb) + " " + report.Text(na); got != "0001-01-01T00:00:00Z 9999-12-31T23:59:59Z" {
		t.Errorf("validity = %s", got)
	}
	var buf bytes.Buffer
	enc, err := report.NewEncoder(&buf, "json", []string{"not_before"})
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Encode(nb); err != nil || enc.Close() != nil || buf.String() != `{"not_before":"0001-01-01T00:00:00Z"}`+"\n" {
		t.Errorf("json = %q, %v", buf.String(), err)
	}
	if d := report.DaysLeft(now, c.NotBefore); d != -741077 {
		t.Errorf("days from 2030 back to year 1 = %d, want -741077", d)
	}
	if d := report.DaysLeft(now, c.NotAfter); d != 2910981 {
		t.Errorf("days from 2030 to the end of 9999 = %d, want 2910981", d)
	}
	if nb, na := report.Validity(scanner.Cert{ParseError: "asn1: garbage"}); nb != nil || na != nil {
		t.Errorf("an unparsed certificate has bounds %v %v, want none", nb, na)
	}
}
