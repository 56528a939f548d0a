package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// endpointsLabKinds are the peers TestEndpoints sweeps: each answers the TCP
// handshake, and each has one deterministic outcome.
var endpointsLabKinds = map[string]string{
	"valid":      "ok",
	"tls13-only": "ok",
	"plain-http": "not-tls",
	"reset":      "reset",
	"alert":      "handshake-error",
}

// TestEndpoints sweeps a loopback lab of well-behaved and hostile peers
// three times and lists what answered, in every format and filter.
func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	// Eleven peers on .1 to .11: .10 and .11 sort after .9 only numerically.
	kinds := []string{"valid", "plain-http", "reset", "alert", "tls13-only", "plain-http",
		"valid", "valid", "valid", "valid", "valid"}
	okPeers := 7
	lab, err := scannertest.NewLabOf(len(kinds), func(i int) string { return kinds[i] })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	db := filepath.Join(t.TempDir(), "certs.db")
	// Three sweeps, so that the help's `--sweep 3` example runs as printed.
	for i := 1; i <= 3; i++ {
		stdout, stderr, code := run(t, ctx, "sweep", "--db", db, "--quiet", "--rate", "0", "--timeout", "5s",
			"--ports", fmt.Sprint(lab.Port), lab.Prefix.String())
		if code != 0 {
			t.Fatalf("sweep %d exit %d:\n%s%s", i, code, stdout, stderr)
		}
	}
	d, err := store.OpenExisting(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := d.LatestSweeps(ctx, 3); err != nil || !slices.Equal(ids, []int64{3, 2, 1}) {
		t.Fatalf("complete sweeps %v, %v; want 3, 2, 1", ids, err)
	}
	// A later sweep that never completed is not the default.
	if _, err := d.CreateSweep(ctx, store.Sweep{Targets: []string{"127.0.0.1"}, Ports: "1", ProbesTotal: 1}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	// What each peer is, by address; the not-tls peers' error text, as a
	// probe of its own reports it.
	kindAt := map[string]string{}
	epAt := map[string]*scannertest.Endpoint{}
	notTLSErr := map[string]string{}
	for _, ep := range lab.Endpoints {
		ip := ep.Server.Addr.Addr().String()
		kindAt[ip], epAt[ip] = ep.Kind, ep
		if ep.Kind == "plain-http" {
			r := scanner.NewProber().Probe(ctx, scanner.Target{Addr: ep.Server.Addr})
			if r.Status != scanner.StatusNotTLS || r.Err == "" {
				t.Fatalf("probe of plain-http peer = %s %q, want not-tls with an error", r.Status, r.Err)
			}
			notTLSErr[ip] = r.Err
		}
	}
	endpoints := func(t *testing.T, args ...string) []map[string]any {
		t.Helper()
		out, errOut, code := run(t, ctx, append([]string{"endpoints", "--db", db, "--format", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("endpoints %v: exit %d: %s", args, code, errOut)
		}
		return jsonLines(t, out)
	}

	t.Run("JSON", func(t *testing.T) {
		rows := endpoints(t)
		if len(rows) != len(kinds) {
			t.Fatalf("endpoints listed %d rows, want %d (refused ports are not listed):\n%v", len(rows), len(kinds), rows)
		}
		var ips []string
		for _, row := range rows {
			for _, col := range endpointColumns {
				if _, ok := row[col]; !ok {
					t.Errorf("row lacks %q: %v", col, row)
				}
			}
			if len(row) != len(endpointColumns) {
				t.Errorf("row has %d keys, want %d: %v", len(row), len(endpointColumns), row)
			}
			ip, _ := row["ip"].(string)
			ips = append(ips, ip)
			kind := kindAt[ip]
			if row["outcome"] != endpointsLabKinds[kind] {
				t.Errorf("%s (%s): outcome %v, want %s", ip, kind, row["outcome"], endpointsLabKinds[kind])
			}
			if row["port"] != float64(lab.Port) || row["protocol"] != "tls" || row["sni"] != "" {
				t.Errorf("%s: port %v protocol %v sni %v, want %d, tls, empty", ip, row["port"], row["protocol"], row["sni"], lab.Port)
			}
			if at, _ := row["observed_at"].(string); !strings.HasSuffix(at, "Z") {
				t.Errorf("%s: observed_at %q, want RFC 3339 UTC", ip, at)
			}
			ep := epAt[ip]
			switch row["outcome"] {
			case "ok":
				if v, _ := row["tls_version"].(string); !strings.HasPrefix(v, "TLS 1.") || (kind == "tls13-only" && v != "TLS 1.3") {
					t.Errorf("%s (%s): tls_version %q, want the version negotiated", ip, kind, v)
				}
				if c, _ := row["cipher"].(string); c == "" {
					t.Errorf("%s (%s): no cipher", ip, kind)
				}
				if row["sha256"] != fingerprint(ep.Presents[0]) || row["subject"] == "" || row["error"] != "" {
					t.Errorf("%s (%s): sha256 %v subject %v error %v, want the leaf %s and no error",
						ip, kind, row["sha256"], row["subject"], row["error"], fingerprint(ep.Presents[0]))
				}
				if ms, ok := row["handshake_ms"].(float64); !ok || ms < 0 {
					t.Errorf("%s: handshake_ms %v, want a number", ip, row["handshake_ms"])
				}
			default:
				if row["error"] == "" || row["sha256"] != "" || row["subject"] != "" || row["cipher"] != "" {
					t.Errorf("%s (%s): error %q sha256 %q subject %q cipher %q, want an error and no certificate",
						ip, kind, row["error"], row["sha256"], row["subject"], row["cipher"])
				}
			}
		}
		if !slices.IsSortedFunc(ips, store.CompareIP) {
			t.Errorf("endpoints not ordered by ip: %v", ips)
		}
	})

	t.Run("OutcomeNotTLS", func(t *testing.T) {
		rows := endpoints(t, "--outcome", "not-tls")
		got := map[string]string{}
		for _, row := range rows {
			got[row["ip"].(string)], _ = row["error"].(string)
			if row["outcome"] != "not-tls" {
				t.Errorf("--outcome not-tls listed %v", row)
			}
		}
		if len(rows) != len(notTLSErr) {
			t.Errorf("--outcome not-tls listed %d rows, want the %d plain-http peers: %v", len(rows), len(notTLSErr), rows)
		}
		for ip, want := range notTLSErr {
			if got[ip] != want {
				t.Errorf("not-tls peer %s: error %q, want %q", ip, got[ip], want)
			}
		}
	})

	t.Run("OutcomeList", func(t *testing.T) {
		// Comma-separated and repeated flags add up.
		for _, args := range [][]string{
			{"--outcome", "not-tls,handshake-error", "--outcome", "reset"},
			{"--outcome", "reset, NOT-TLS", "--outcome", "handshake-error,reset"},
		} {
			var got []string
			for _, row := range endpoints(t, args...) {
				got = append(got, kindAt[row["ip"].(string)])
			}
			slices.Sort(got)
			if want := []string{"alert", "plain-http", "plain-http", "reset"}; !slices.Equal(got, want) {
				t.Errorf("endpoints %v listed %v, want %v", args, got, want)
			}
		}
	})

	t.Run("Sweep", func(t *testing.T) {
		for _, id := range []string{"1", "3"} {
			rows := endpoints(t, "--sweep", id)
			if len(rows) != len(kinds) {
				t.Errorf("--sweep %s listed %d rows, want %d", id, len(rows), len(kinds))
			}
		}
	})

	t.Run("CSV", func(t *testing.T) {
		out, errOut, code := run(t, ctx, "endpoints", "--db", db, "--format", "csv", "--outcome", "ok")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatalf("not CSV: %v\n%s", err, out)
		}
		if !slices.Equal(recs[0], endpointColumns) {
			t.Errorf("CSV header %v, want %v", recs[0], endpointColumns)
		}
		if len(recs) != 1+okPeers {
			t.Fatalf("CSV has %d records, want a header and the %d ok endpoints:\n%s", len(recs), okPeers, out)
		}
		col := func(rec []string, name string) string { return rec[slices.Index(endpointColumns, name)] }
		for _, rec := range recs[1:] {
			if col(rec, "outcome") != "ok" || col(rec, "protocol") != "tls" || len(col(rec, "sha256")) != 64 ||
				!strings.HasPrefix(col(rec, "tls_version"), "TLS 1.") || col(rec, "cipher") == "" {
				t.Errorf("CSV ok record %v lacks its version, cipher or fingerprint", rec)
			}
			if _, err := strconv.Atoi(col(rec, "handshake_ms")); err != nil {
				t.Errorf("CSV handshake_ms %q is not a number", col(rec, "handshake_ms"))
			}
		}
	})

	t.Run("Table", func(t *testing.T) {
		out, errOut, code := run(t, ctx, "endpoints", "--db", db)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"ENDPOINT", "SNI", "OUTCOME", "TLS_VERSION", "SHA256", "ERROR"}) {
			t.Errorf("table heading %q", lines[0])
		}
		if len(lines) != 1+len(kinds) {
			t.Fatalf("table has %d lines, want %d:\n%s", len(lines), 1+len(kinds), out)
		}
		valid := lab.Endpoints[slices.Index(kinds, "valid")]
		addr := net.JoinHostPort(valid.Server.Addr.Addr().String(), fmt.Sprint(lab.Port))
		fp := fingerprint(valid.Presents[0])
		found := false
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, addr+" ") {
				found = true
				if !strings.Contains(l, " "+fp[:12]+" ") || strings.Contains(l, fp[:13]) {
					t.Errorf("table row %q: want the 12-hex fingerprint %s", l, fp[:12])
				}
			}
			if len([]rune(l)) > 200 {
				t.Errorf("table row too wide for a terminal: %q", l)
			}
		}
		if !found {
			t.Errorf("table has no row for %s:\n%s", addr, out)
		}
	})

	t.Run("HelpExamples", func(t *testing.T) {
		out, _, code := run(t, ctx, "endpoints", "--help")
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "only counted") {
			t.Fatalf("endpoints --help (exit %d) lacks examples or the note on refused ports:\n%s", code, out)
		}
		_, examples, _ := strings.Cut(out, "Examples:\n")
		n := 0
		for line := range strings.Lines(examples) {
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			// The certsweep part of the pipeline, as a shell would split it.
			cmd, _, _ := strings.Cut(line, "|")
			cmd, _, _ = strings.Cut(cmd, ">")
			args := append(strings.Fields(cmd)[1:], "--db", db)
			stdout, stderr, code := run(t, ctx, args...)
			if code != 0 || stdout == "" {
				t.Errorf("example %q: exit %d: %s", line, code, stderr)
			}
			n++
		}
		if n < 3 {
			t.Errorf("endpoints --help has %d examples, want at least 3:\n%s", n, out)
		}
	})

	t.Run("UsageErrors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--outcome", "bogus"}, "not-tls"}, // the error lists the outcomes
			{[]string{"--outcome", "ok,handshake"}, "handshake-error"},
			{[]string{"--outcome", "refused"}, "certsweep sweeps"},
			{[]string{"--sweep", "99"}, "sweep 99"},
			{[]string{"--sweep", "0"}, "--sweep 0"},
			{[]string{"--format", "xml"}, "xml"},
			{[]string{"not-tls"}, "unexpected argument"},
		} {
			out, errOut, code := run(t, ctx, append([]string{"endpoints", "--db", db}, tc.args...)...)
			if code != exitUsage || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("endpoints %v: exit %d, stdout %q, stderr %q; want exit 2 mentioning %q", tc.args, code, out, errOut, tc.want)
			}
		}
	})
}

// TestEndpointsNoCompleteSweep: with nothing to list, endpoints says why.
func TestEndpointsNoCompleteSweep(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "certs.db")
	d, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateSweep(ctx, store.Sweep{StartedAt: time.Now(), Ports: "443"}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	_, errOut, code := run(t, ctx, "endpoints", "--db", path)
	if code != exitUsage || !strings.Contains(errOut, "no complete sweep") || !strings.Contains(errOut, "--sweep") {
		t.Errorf("endpoints without a complete sweep: exit %d, %q; want exit 2 and a hint", code, errOut)
	}
	// The running sweep can still be listed by its ID (it has nothing yet).
	out, errOut, code := run(t, ctx, "endpoints", "--db", path, "--sweep", "1", "--format", "csv")
	if code != 0 || out != strings.Join(endpointColumns, ",")+"\r\n" {
		t.Errorf("endpoints --sweep 1 of an empty sweep: exit %d, %q %q; want the header only", code, out, errOut)
	}
}
