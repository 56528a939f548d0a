package main

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/certsweep/certsweep/scanner/scannertest"
)

// sweepNamed sweeps targets (on the lab's port unless args say otherwise)
// and fails the test unless the sweep completes.
func sweepNamed(t *testing.T, db string, args ...string) {
	t.Helper()
	stdout, stderr, code := run(t, context.Background(), append([]string{"sweep", "--db", db,
		"--rate", "0", "--concurrency", "16", "--timeout", "3s", "--quiet"}, args...)...)
	if code != 0 {
		t.Fatalf("sweep %q exit %d: %s %s", args, code, stdout, stderr)
	}
}

// diffRows runs diff --format json and renders each row as
// "change ip:port old12>new12".
func diffRows(t *testing.T, args ...string) (rows []string, stdout, stderr string) {
	t.Helper()
	out, errOut, code := run(t, context.Background(), append([]string{"diff", "--format", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("diff %q exit %d: %s", args, code, errOut)
	}
	for _, m := range jsonLines(t, out) {
		rows = append(rows, fmt.Sprintf("%s %s:%v %s>%s", m["change"], m["ip"], m["port"], short(m["old_sha256"]), short(m["new_sha256"])))
	}
	return rows, out, errOut
}

func epAddr(lab *scannertest.Lab, i int) netip.Addr { return lab.Endpoints[i].Server.Addr.Addr() }

// TestDiffComparesSweepsOfOneName: weekly sweeps of a lab with an ad-hoc
// sweep (another name) in between. Between the weekly sweeps one endpoint
// rotates to a leaf of another CA (a new intermediate), and the endpoints at
// .9 and .10 go away; .10 was the only one sending the root.
func TestDiffComparesSweepsOfOneName(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 11) // .1 to .11: no stalling endpoint, so sweeps are quick
	db := filepath.Join(t.TempDir(), "certs.db")
	port := fmt.Sprint(lab.Port)
	sweepNamed(t, db, "--name", "weekly", "--ports", port, lab.Prefix.String()) // sweep 1

	rotated := lab.Endpoints[0]
	oldLeaf := fingerprint(rotated.Presents[0])
	rotated.Server.Close()
	ca2, err := scannertest.NewCA("other corp")
	if err != nil {
		t.Fatal(err)
	}
	newCert, err := ca2.Leaf(scannertest.CertOptions{CommonName: "rotated.lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scannertest.NewTLSServer(rotated.Server.Addr.String(), scannertest.TLSConfig(newCert, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	gone9, gone10 := lab.Endpoints[8], lab.Endpoints[9] // 127.x.y.9 and 127.x.y.10 ("full-chain")
	gone9.Server.Close()
	gone10.Server.Close()

	// Ad hoc, under another name: one address.
	sweepNamed(t, db, rotated.Server.Addr.String())                             // sweep 2
	sweepNamed(t, db, "--name", "weekly", "--ports", port, lab.Prefix.String()) // sweep 3

	newLeaf := fingerprint(newCert.Certificate[0])
	ep := func(i int) string { return fmt.Sprintf("%s:%d", epAddr(lab, i), lab.Port) }
	want := []string{
		fmt.Sprintf("certificate-changed %s %s>%s", ep(0), short(oldLeaf), short(newLeaf)),
		// Numeric order: .9 before .10, which text order would reverse.
		fmt.Sprintf("endpoint-gone %s %s>", ep(8), short(fingerprint(gone9.Presents[0]))),
		fmt.Sprintf("endpoint-gone %s %s>", ep(9), short(fingerprint(gone10.Presents[0]))),
		fmt.Sprintf("certificate-new %s >%s", ep(0), short(fingerprint(ca2.Intermediate.DER))),
		fmt.Sprintf("certificate-gone %s %s>", ep(9), short(fingerprint(lab.CA.Root.DER))),
	}
	got, out, errOut := diffRows(t, "--db", db)
	if !slices.Equal(got, want) {
		t.Errorf("diff:\n got  %q\n want %q", got, want)
	}
	wantSummary := "certsweep: diff sweep 1 → 3 (weekly): 1 certificate-changed, 2 endpoint-gone, 0 endpoint-new, 1 certificate-new, 1 certificate-gone; 8 unchanged\n"
	if errOut != wantSummary {
		t.Errorf("diff stderr = %q, want only the summary %q", errOut, wantSummary)
	}
	for _, args := range [][]string{{"--to", "3"}, {"--from", "1"}, {"--from", "1", "--to", "3"}, {"--name", "weekly"}} {
		if got, _, _ := diffRows(t, append([]string{"--db", db}, args...)...); !slices.Equal(got, want) {
			t.Errorf("diff %q:\n got  %q\n want %q", args, got, want)
		}
	}

	// The table fits 120 columns and keeps numeric order.
	table, _, code := run(t, ctx, "diff", "--db", db)
	if code != 0 {
		t.Fatalf("diff exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 1+len(want) {
		t.Errorf("table has %d lines, want %d:\n%s", len(lines), 1+len(want), table)
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > 120 {
			t.Errorf("table line of %d runes:\n%s", n, l)
		}
	}
	if i9, i10 := strings.Index(table, ep(8)+" "), strings.Index(table, ep(9)+" "); i9 < 0 || i10 < 0 || i9 > i10 {
		t.Errorf("table does not list %s before %s:\n%s", ep(8), ep(9), table)
	}
	if !strings.Contains(table, short(newLeaf)) || strings.Contains(table, newLeaf) {
		t.Errorf("table does not show 12-hex fingerprints:\n%s", table)
	}

	// --fail-on: exit 3 only when a listed kind occurred, after writing everything.
	o, e, code := run(t, ctx, "diff", "--db", db, "--format", "json", "--fail-on", "endpoint-new")
	if code != 0 || o != out {
		t.Errorf("diff --fail-on endpoint-new: exit %d (%s), want 0 and the same output", code, e)
	}
	o, e, code = run(t, ctx, "diff", "--db", db, "--format", "json", "--fail-on", "endpoint-new,endpoint-gone")
	if code != exitFindings || o != out || !strings.Contains(e, "2 endpoint-gone") || !strings.Contains(e, wantSummary) {
		t.Errorf("diff --fail-on endpoint-new,endpoint-gone: exit %d, stderr %q; want 3, the summary and the same output", code, e)
	}
	// Flags after the command's (absent) arguments read the same.
	if _, _, code = run(t, ctx, "diff", "--format", "csv", "--db", db, "--fail-on", "certificate-gone"); code != exitFindings {
		t.Errorf("diff --fail-on certificate-gone: exit %d, want 3", code)
	}
	_, e, code = run(t, ctx, "diff", "--db", db, "--fail-on", "rotated")
	if code != exitUsage || !strings.Contains(e, `unknown change "rotated"`) || !strings.Contains(e, "certificate-changed, endpoint-gone, endpoint-new, certificate-new, certificate-gone") {
		t.Errorf("diff --fail-on rotated: exit %d %q, want 2 listing the kinds", code, e)
	}

	// Another ad-hoc sweep, now the latest: --name still finds the weekly
	// pair; the default diff, of the ad-hoc sweep's name, has no pair.
	sweepNamed(t, db, "--name", "adhoc", lab.Endpoints[1].Server.Addr.String()) // sweep 4
	if got, _, _ := diffRows(t, "--db", db, "--name", "weekly"); !slices.Equal(got, want) {
		t.Errorf("diff --name weekly after an ad-hoc sweep:\n got  %q\n want %q", got, want)
	}
	_, e, code = run(t, ctx, "diff", "--db", db)
	if code != exitUsage || !strings.Contains(e, `named "adhoc"`) || !strings.Contains(e, "certsweep sweeps") {
		t.Errorf("diff with one adhoc sweep: exit %d %q, want 2 naming adhoc and suggesting certsweep sweeps", code, e)
	}
	for _, args := range [][]string{{"--name", "nosuch"}, {"--name", "weekly", "--to", "3"}, {"--to", "99"}, {"--from", "3"}, {"--from", "2", "--to", "2"}} {
		if _, e, code := run(t, ctx, append([]string{"diff", "--db", db}, args...)...); code != exitUsage {
			t.Errorf("diff %q: exit %d (%s), want 2", args, code, e)
		}
	}
}

// TestDiffDifferentScope: the second sweep probes fewer addresses but one
// more port. Endpoints outside what both probed are neither gone nor new.
func TestDiffDifferentScope(t *testing.T) {
	lab := newLab(t, 11)
	db := filepath.Join(t.TempDir(), "certs.db")
	extraCert, err := lab.CA.Leaf(scannertest.CertOptions{CommonName: "extra.lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	extra, err := scannertest.NewTLSServer(netip.AddrPortFrom(epAddr(lab, 1), 0).String(), scannertest.TLSConfig(extraCert, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(extra.Close)

	sweepNamed(t, db, "--name", "weekly", "--ports", fmt.Sprint(lab.Port), lab.Prefix.String())
	narrow := fmt.Sprintf("%s-%s", epAddr(lab, 0), epAddr(lab, 4)) // .1 to .5
	sweepNamed(t, db, "--name", "weekly", "--ports", fmt.Sprintf("%d,%d", lab.Port, extra.Addr.Port()), narrow)

	for _, args := range [][]string{{}, {"--from", "2", "--to", "1"}} {
		got, _, errOut := diffRows(t, append([]string{"--db", db}, args...)...)
		if len(got) != 0 {
			t.Errorf("diff %q across scopes listed %q, want nothing", args, got)
		}
		// .6 to .11 on the lab port (6), and .2 on the extra port (1).
		from, to := 1, 2
		if len(args) > 0 {
			from, to = 2, 1
		}
		warning := fmt.Sprintf("certsweep: warning: sweeps %d and %d probed different targets or ports; endpoints outside the scope both probed are not compared (7 not probed)\n", from, to)
		if !strings.Contains(errOut, warning) || !strings.Contains(errOut, "; 5 unchanged") {
			t.Errorf("diff %q stderr = %q, want %q and 5 unchanged", args, errOut, warning)
		}
	}
}
