package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

// listRows runs a listing command and returns its CSV rows without the
// header, each joined with "|", sorted, keeping only the named columns
// (all when none are named).
func listRows(t *testing.T, args []string, keep ...string) []string {
	t.Helper()
	out, stderr, code := run(t, context.Background(), append(args, "--format", "csv")...)
	if code != 0 && code != exitFindings {
		t.Fatalf("certsweep %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("certsweep %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	cols := make([]int, 0, len(keep))
	for _, k := range keep {
		i := slices.Index(recs[0], k)
		if i < 0 {
			t.Fatalf("certsweep %s has no column %q: %v", strings.Join(args, " "), k, recs[0])
		}
		cols = append(cols, i)
	}
	var rows []string
	for _, r := range recs[1:] {
		if len(cols) > 0 {
			var v []string
			for _, i := range cols {
				v = append(v, r[i])
			}
			r = v
		}
		rows = append(rows, strings.Join(r, "|"))
	}
	slices.Sort(rows)
	return rows
}

// runMain runs certsweep as its own process (this test binary, see TestMain).
func runMain(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CERTSWEEP_TEST_RUN_MAIN=1")
	return cmd
}

// TestMergeShardsEqualsWhole sweeps a 2,000-endpoint loopback lab once in
// one process and once as 4 shards in 4 processes at once, each into its
// own database, then merges the shard databases: the merged inventory is
// one sweep with the whole sweep's statistics, certificates, endpoints,
// report rows and findings. Merging the same files again changes nothing.
func TestMergeShardsEqualsWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("sweeps a 2,000-endpoint lab 5 times")
	}
	ctx := context.Background()
	lab := newLab(t, 2000)
	dir := t.TempDir()
	// The lab's 2,000 hosts are the first of its /16: a /21 holds them.
	target := netip.PrefixFrom(lab.Prefix.Addr(), 21).String()
	common := []string{"--ports", fmt.Sprint(lab.Port), "--rate", "0", "--concurrency", "32", "--timeout", "5s",
		"--discovery", "connect", "--seed", "2026", "--name", "weekly", "--site", "dc1", "--quiet", target}

	whole := filepath.Join(dir, "whole.db")
	if out, stderr, code := run(t, ctx, append([]string{"sweep", "--db", whole}, common...)...); code != 0 {
		t.Fatalf("whole sweep: exit %d\n%s%s", code, out, stderr)
	}

	var shards []string
	var wg sync.WaitGroup
	errs := make([]error, 4)
	outs := make([][]byte, 4)
	for i := range 4 {
		db := filepath.Join(dir, fmt.Sprintf("shard-%d.db", i))
		shards = append(shards, db)
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = runMain(append([]string{"sweep", "--db", db, "--shard", fmt.Sprintf("%d/4", i)}, common...)...).CombinedOutput()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d/4 process: %v\n%s", i, err, outs[i])
		}
	}

	central := filepath.Join(dir, "certs.db")
	out, stderr, code := run(t, ctx, append([]string{"merge", "--db", central}, shards...)...)
	if code != 0 {
		t.Fatalf("merge: exit %d\n%s%s", code, out, stderr)
	}
	if strings.Count(out, "→ new sweep 1") != 1 || strings.Count(out, "→ joined sweep 1") != 3 ||
		!strings.Contains(out, "4 sweeps imported into 1") {
		t.Errorf("merge output: want one new sweep joined by 3 shards:\n%s", out)
	}

	wantSweep, gotSweep := findSweep(t, whole, 1), findSweep(t, central, 1)
	if gotSweep.State != "complete" || gotSweep.ProbesTotal != wantSweep.ProbesTotal || gotSweep.Done() != wantSweep.Done() ||
		gotSweep.Site != "dc1" || gotSweep.Shard != "" || gotSweep.Seed != 2026 || gotSweep.Name != "weekly" {
		t.Errorf("merged sweep: %s, %d of %d probes, site %q, shard %q, seed %d, name %q; want complete, %d of %d, dc1, whole, 2026, weekly",
			gotSweep.State, gotSweep.Done(), gotSweep.ProbesTotal, gotSweep.Site, gotSweep.Shard, gotSweep.Seed, gotSweep.Name,
			wantSweep.Done(), wantSweep.ProbesTotal)
	}
	for st, n := range wantSweep.Stats {
		if gotSweep.Stats[st] != n {
			t.Errorf("outcome %s: %d merged, %d in the whole sweep", st, gotSweep.Stats[st], n)
		}
	}
	if gotSweep.NewCerts != wantSweep.NewCerts {
		t.Errorf("new certificates: %d merged, %d in the whole sweep", gotSweep.NewCerts, wantSweep.NewCerts)
	}

	compare := func(what string, args []string, keep ...string) {
		t.Helper()
		want := listRows(t, append(slices.Clone(args), "--db", whole), keep...)
		got := listRows(t, append(slices.Clone(args), "--db", central), keep...)
		if len(want) < 1990 && what != "certificates" {
			t.Errorf("%s: the whole sweep has only %d rows", what, len(want))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s differ: merged %d rows, whole %d; first differences:\n%s", what, len(got), len(want), firstDiff(got, want))
		}
	}
	compare("certificates", []string{"certs"}, "sha256", "subject", "not_after")
	compare("endpoints", []string{"endpoints"}, "ip", "port", "sni", "outcome", "protocol", "sha256", "offer", "site")
	compare("report rows", []string{"report", "--no-system-roots"}, "ip", "port", "sni", "sha256", "findings", "severity", "owner", "protocol", "site")
	compare("findings", []string{"findings", "--no-system-roots"})

	// Merging again: nothing imported, nothing changed.
	before := tableCounts(t, central)
	listing := listRows(t, []string{"sweeps", "--db", central})
	out, stderr, code = run(t, ctx, append([]string{"merge", "--db", central}, shards...)...)
	if code != 0 || !strings.Contains(out, "0 sweeps imported") || strings.Count(out, "merged before (sweep 1)") != 4 {
		t.Errorf("second merge: exit %d, want 4 sweeps merged before, none imported\n%s%s", code, out, stderr)
	}
	if after := tableCounts(t, central); after != before {
		t.Errorf("a second merge changed the row counts:\n%s\n→\n%s", before, after)
	}
	if again := listRows(t, []string{"sweeps", "--db", central}); !slices.Equal(again, listing) {
		t.Errorf("a second merge changed the sweeps:\n%v\n→\n%v", listing, again)
	}
	compare("findings after a second merge", []string{"findings", "--no-system-roots"})

	// The merged sweep is no shard: it cannot be resumed.
	if _, stderr, code := run(t, ctx, "sweep", "--db", central, "--resume", "1"); code != exitUsage || !strings.Contains(stderr, "merged from other databases") {
		t.Errorf("--resume of a merged sweep: exit %d, %q; want a usage error", code, stderr)
	}
}

// firstDiff lists up to 5 rows in one list and not the other.
func firstDiff(got, want []string) string {
	var b strings.Builder
	n := 0
	for _, r := range got {
		if _, found := slices.BinarySearch(want, r); !found && n < 5 {
			fmt.Fprintf(&b, "  only merged: %s\n", r)
			n++
		}
	}
	for _, r := range want {
		if _, found := slices.BinarySearch(got, r); !found && n < 10 {
			fmt.Fprintf(&b, "  only whole:  %s\n", r)
			n++
		}
	}
	return b.String()
}

// tableCounts is the row count of every table of a database, and a hash of
// the sweeps, certificates and observations, as one text.
func tableCounts(t *testing.T, path string) string {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var b strings.Builder
	for _, q := range []string{
		`SELECT count(*) FROM sweeps`, `SELECT count(*) FROM sweep_stats`, `SELECT count(*) FROM certificates`,
		`SELECT count(*) FROM observations`, `SELECT count(*) FROM observation_chain`, `SELECT count(*) FROM merge_imports`,
		`SELECT group_concat(id || name || started_at || finished_at || probes_total || options || site || shard, ';') FROM sweeps`,
		`SELECT group_concat(sha256 || first_seen || last_seen || coalesce(first_sweep_id, '-'), ';') FROM certificates`,
		`SELECT sum(id * 31 + position + port + coalesce(leaf_id, 0)) FROM observations`,
		`SELECT group_concat(sweep_id || status || count, ';') FROM sweep_stats`,
	} {
		var v sql.NullString
		if err := raw.QueryRow(q).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		sum := sha256.Sum256([]byte(v.String))
		fmt.Fprintf(&b, "%.40s: %x\n", q, sum[:6])
	}
	return b.String()
}

// TestMergeSitesStayApart: two sites sweep the same loopback addresses
// and ports, each finding its own certificates (two labs on the same
// addresses, one after the other), twice. Merged, every address is two
// endpoints, one per site, in findings, report and endpoints; the two
// sites' sweeps of each round are one logical sweep; and diff compares
// each site's endpoint with its own previous certificate.
func TestMergeSitesStayApart(t *testing.T) {
	ctx := context.Background()
	first := newLab(t, 12)
	prefix, port := first.Prefix, first.Port
	dir := t.TempDir()
	sweep := func(db, site string) {
		t.Helper()
		out, stderr, code := run(t, ctx, "sweep", "--db", db, "--site", site, "--name", "weekly", "--ports", fmt.Sprint(port),
			"--rate", "0", "--timeout", "3s", "--quiet", netip.PrefixFrom(prefix.Addr(), 28).String())
		if code != 0 {
			t.Fatalf("sweep --site %s: exit %d\n%s%s", site, code, out, stderr)
		}
	}
	relab := func() *scannertest.Lab {
		t.Helper()
		l, err := scannertest.NewLabAt(prefix, port, 12)
		if err != nil {
			t.Fatalf("lab on the same addresses: %v", err)
		}
		t.Cleanup(l.Close)
		return l
	}
	fra, dal := filepath.Join(dir, "fra.db"), filepath.Join(dir, "dal.db")
	central := filepath.Join(dir, "certs.db")
	merge := func(wantImported string) {
		t.Helper()
		out, stderr, code := run(t, ctx, "merge", "--db", central, fra, dal)
		if code != 0 || !strings.Contains(out, wantImported) {
			t.Fatalf("merge: exit %d, want %q\n%s%s", code, wantImported, out, stderr)
		}
	}
	sweep(fra, "fra") // round 1: fra sees the first lab's certificates
	first.Close()
	second := relab()
	sweep(dal, "dal") // dal sees the second lab's, on the same addresses
	merge("2 sweeps imported into 1 ")
	second.Close()
	relab()
	sweep(fra, "fra") // round 2, merged as a weekly job would: both see a third lab
	sweep(dal, "dal")
	merge("2 sweeps imported into 1 ")
	for id, want := range map[int64]string{1: "", 2: ""} {
		sw := findSweep(t, central, id)
		if sw.Site != want || sw.Options["merged"] == nil || len(sw.Options["merged"].([]any)) != 2 {
			t.Errorf("merged sweep %d: site %q, parts %v; want a sweep of both sites (site %q)", id, sw.Site, sw.Options["merged"], want)
		}
	}

	// Round 1: each address twice, with each site's own certificate.
	perSite := func(rows []string) map[string]map[string]string { // site → ip → sha256
		m := map[string]map[string]string{}
		for _, r := range rows {
			f := strings.Split(r, "|") // site|ip|sha256
			if m[f[0]] == nil {
				m[f[0]] = map[string]string{}
			}
			m[f[0]][f[1]] = f[2]
		}
		return m
	}
	r1 := perSite(listRows(t, []string{"report", "--db", central, "--sweep", "1", "--no-system-roots"}, "site", "ip", "sha256"))
	if len(r1) != 2 || len(r1["fra"]) < 8 || len(r1["fra"]) != len(r1["dal"]) {
		t.Fatalf("report of merged round 1: sites %d, endpoints fra %d, dal %d; want the same addresses at both sites", len(r1), len(r1["fra"]), len(r1["dal"]))
	}
	for ip, fp := range r1["fra"] {
		if other, ok := r1["dal"][ip]; !ok || other == fp && fp != "" {
			t.Errorf("%s: fra %s, dal %q: want two endpoints with different certificates", ip, fp, other)
		}
	}
	e1 := listRows(t, []string{"endpoints", "--db", central, "--sweep", "1"}, "site", "ip", "port")
	if len(e1) != 2*12 || len(slices.Compact(slices.Clone(e1))) != len(e1) || strings.Count(strings.Join(e1, "\n"), "fra|") != 12 {
		t.Errorf("endpoints of round 1: %q, want the lab's 12 endpoints at each site, each once", e1)
	}
	f1 := listRows(t, []string{"findings", "--db", central, "--sweep", "1", "--kind", "new", "--no-system-roots"}, "site", "ip", "sha256")
	if len(f1) < 2*8 {
		t.Errorf("new findings of round 1: %d, want one per site and endpoint", len(f1))
	}

	// diff round 1 → round 2: each site's rotation names that site's old
	// certificate.
	out, stderr, code := run(t, ctx, "diff", "--db", central, "--from", "1", "--to", "2", "--format", "csv")
	if code != 0 {
		t.Fatalf("diff: exit %d %s", code, stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int { return slices.Index(recs[0], name) }
	changed := map[string]int{}
	for _, r := range recs[1:] {
		if r[col("change")] != "certificate-changed" {
			continue
		}
		site, ip := r[col("site")], r[col("ip")]
		changed[site]++
		if r[col("old_sha256")] != r1[site][ip] {
			t.Errorf("diff at %s %s: old %s, want that site's round-1 certificate %s", site, ip, r[col("old_sha256")], r1[site][ip])
		}
	}
	if changed["fra"] < 8 || changed["fra"] != changed["dal"] {
		t.Errorf("certificate-changed rows by site: %v; want every endpoint at each site", changed)
	}
	table, _, _ := run(t, ctx, "diff", "--db", central, "--from", "1", "--to", "2")
	if !strings.Contains(table, "fra:"+prefix.Addr().Next().String()+":") || !strings.Contains(table, "dal:") {
		t.Errorf("diff table shows no site prefix:\n%s", table)
	}
}

// TestMergeRefusals: a file that is not SQLite, another application's
// SQLite file, a database of a newer certsweep, an empty file, a missing
// one, --db itself and a copy of it are refused with exit 2, and the
// central database is left byte for byte as it was.
func TestMergeRefusals(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 4)
	dir := t.TempDir()
	central, good := filepath.Join(dir, "certs.db"), filepath.Join(dir, "good.db")
	for _, db := range []string{central, good} {
		if out, stderr, code := run(t, ctx, "sweep", "--db", db, "--ports", fmt.Sprint(lab.Port), "--rate", "0", "--quiet", lab.Prefix.String()); code != 0 {
			t.Fatalf("sweep: exit %d\n%s%s", code, out, stderr)
		}
	}
	notSQLite := filepath.Join(dir, "notes.db")
	os.WriteFile(notSQLite, bytes.Repeat([]byte("not a database\n"), 300), 0o644)
	foreign := filepath.Join(dir, "foreign.db")
	newer := filepath.Join(dir, "newer.db")
	empty := filepath.Join(dir, "empty.db")
	os.WriteFile(empty, nil, 0o644)
	exCopyFile(t, good, newer)
	copyOf := filepath.Join(dir, "copy.db")
	exCopyFile(t, central, copyOf)
	for path, q := range map[string]string{
		foreign: `CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine')`,
		newer:   `PRAGMA user_version = 99`,
	} {
		raw, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
		raw.Close()
	}
	want, err := os.ReadFile(central)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ path, msg string }{
		"not SQLite":         {notSQLite, "not a SQLite file"},
		"foreign":            {foreign, "another application"},
		"newer schema":       {newer, "schema version 99"},
		"empty":              {empty, "is empty"},
		"missing":            {filepath.Join(dir, "none.db"), "no database at"},
		"itself":             {central, "is --db itself"},
		"itself, other path": {dir + "/./certs.db", "is --db itself"},
		"a copy":             {copyOf, "is a copy of --db"},
	} {
		// The good database first: refusing any of them must write nothing.
		out, stderr, code := run(t, ctx, "merge", "--db", central, good, tc.path)
		if code != exitUsage || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%s: merge exit %d, %q; want exit %d and %q\n%s", name, code, stderr, exitUsage, tc.msg, out)
		}
		if got, _ := os.ReadFile(central); !bytes.Equal(got, want) {
			t.Errorf("%s: the refused merge changed %s", name, central)
		}
		if fi, err := os.Stat(central + "-wal"); err == nil && fi.Size() > 0 {
			t.Errorf("%s: the refused merge wrote to %s's WAL (%d bytes)", name, central, fi.Size())
		}
	}
	if _, stderr, code := run(t, ctx, "merge", "--db", central); code != exitUsage {
		t.Errorf("merge without databases: exit %d %q, want a usage error", code, stderr)
	}
	// The foreign file is untouched too: still not certsweep's.
	if info, err := store.Inspect(ctx, foreign); err == nil {
		t.Errorf("after merge, the foreign file reads as a certsweep database: %+v", info)
	}
}
