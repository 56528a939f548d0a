// Package report turns stored inventory into what people read: tables for
// the terminal, RFC 4180 CSV for spreadsheets and JSON Lines for programs.
// Certificate fields are attacker-controlled text, so every encoder renders
// them inert for its medium: CSV cells cannot start a formula, terminal text
// carries no control characters, JSON is escaped by encoding/json.
package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"unicode/utf8"
)

// Formats a list command can produce. "html" is one self-contained page
// (NewHTML).
var Formats = []string{"table", "csv", "json", "html"}

// Encoder writes records with a fixed set of columns. Values may be string,
// int, int64, uint64, bool, []string or time.Time (rendered ISO-8601 UTC,
// empty when zero). Encoders are not safe for concurrent use.
type Encoder interface {
	Encode(values ...any) error
	// Close flushes buffered output and reports any write error.
	Close() error
}

// NewEncoder returns an encoder for format ("table", "csv", "json" or
// "html") with the given column names (CSV header, JSON keys, table
// heading).
func NewEncoder(w io.Writer, format string, columns []string) (Encoder, error) {
	switch format {
	case "table":
		return newTable(w, columns), nil
	case "csv":
		return newCSV(w, columns)
	case "json":
		return &jsonlEncoder{w: w, columns: columns}, nil
	case "html":
		return NewHTML(w, columns, HTMLOptions{})
	}
	return nil, fmt.Errorf("unknown format %q: use table, csv, json or html", format)
}

// TimeLayout is how times are written: RFC 3339 / ISO-8601 in UTC.
const TimeLayout = "2006-01-02T15:04:05Z"

// Date is a certificate's validity bound: always written, even the zero
// time, which is a real date (0001-01-01T00:00:00Z) that certificates
// carry. A time.Time that is zero means "none" and is written empty.
type Date time.Time

// Validity returns a parsed certificate's bounds as Dates, or nils for a
// certificate that did not parse (it has none; its parse error says why).
func Validity(c scanner.Cert) (notBefore, notAfter any) {
	if c.ParseError != "" {
		return nil, nil
	}
	return Date(c.NotBefore), Date(c.NotAfter)
}

// Text renders a value as the CSV and table encoders do: times as ISO-8601
// UTC (empty when zero), lists joined with ";". It does not escape.
func Text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []string:
		return strings.Join(v, ";")
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format(TimeLayout)
	case Date:
		return time.Time(v).UTC().Format(TimeLayout)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// csvEncoder writes RFC 4180 CSV (CRLF line ends, a header row).
type csvEncoder struct {
	w *csv.Writer
}

func newCSV(w io.Writer, columns []string) (*csvEncoder, error) {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(columns); err != nil {
		return nil, err
	}
	return &csvEncoder{w: cw}, nil
}

func (e *csvEncoder) Encode(values ...any) error {
	rec := make([]string, len(values))
	for i, v := range values {
		s := Text(v)
		switch v.(type) {
		case string, []string:
			s = CSVSafe(cellText(s))
		}
		rec[i] = s
	}
	return e.w.Write(rec)
}

func (e *csvEncoder) Close() error {
	e.w.Flush()
	return e.w.Error()
}

// CSVSafe neutralises spreadsheet formula injection (OWASP "CSV
// injection"): a cell starting with = + - @ tab or CR is prefixed with a
// single quote, which spreadsheets show but do not evaluate. Text fields
// only: numbers we produce ourselves are left alone.
func CSVSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// jsonlEncoder writes JSON Lines: one object a line, keys in column order.
type jsonlEncoder struct {
	w       io.Writer
	columns []string
	buf     bytes.Buffer
}

func (e *jsonlEncoder) Encode(values ...any) error {
	e.buf.Reset()
	e.buf.WriteByte('{')
	for i, v := range values {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		k, _ := json.Marshal(e.columns[i])
		e.buf.Write(k)
		e.buf.WriteByte(':')
		if t, ok := v.(time.Time); ok {
			if t.IsZero() {
				v = nil
			} else {
				v = t.UTC().Format(TimeLayout)
			}
		}
		if d, ok := v.(Date); ok {
			v = time.Time(d).UTC().Format(TimeLayout)
		}
		if s, ok := v.([]string); ok && s == nil {
			v = []string{}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", e.columns[i], err)
		}
		e.buf.Write(jsonInert(b))
	}
	e.buf.WriteString("}\n")
	_, err := e.w.Write(e.buf.Bytes())
	return err
}

func (e *jsonlEncoder) Close() error { return nil }

// tableEncoder aligns columns for the terminal. It flushes every few hundred
// rows so that memory stays bounded on huge listings (column widths may then
// shift between blocks).
type tableEncoder struct {
	tw   *tabwriter.Writer
	rows int
}

const tableBlock = 500

func newTable(w io.Writer, columns []string) *tableEncoder {
	e := &tableEncoder{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(e.tw, strings.ToUpper(strings.Join(columns, "\t")))
	return e
}

func (e *tableEncoder) Encode(values ...any) error {
	cells := make([]string, len(values))
	for i, v := range values {
		cells[i] = Terminal(Text(v))
	}
	fmt.Fprintln(e.tw, strings.Join(cells, "\t"))
	if e.rows++; e.rows%tableBlock == 0 {
		return e.tw.Flush()
	}
	return nil
}

func (e *tableEncoder) Close() error { return e.tw.Flush() }

// jsonInert escapes what encoding/json leaves raw but a terminal may act on:
// DEL, the C1 controls (U+0080-U+009F; U+009B is an 8-bit CSI) and bidi
// overrides. Escaping them as \uXXXX keeps the JSON equivalent.
func jsonInert(b []byte) []byte {
	if isPlain(string(b)) {
		return b
	}
	var out bytes.Buffer
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0x7f || r >= 0x80 && r <= 0x9f || isBidiControl(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[i : i+size])
		}
		i += size
	}
	return out.Bytes()
}
