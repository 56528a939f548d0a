package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
)

// findSweep reads sweep id of the database at path.
func findSweep(t *testing.T, path string, id int64) store.Sweep {
	t.Helper()
	d, err := store.OpenExisting(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sw, err := d.FindSweep(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sw
}

// endpointRows lists the endpoints of the database's latest sweep, one
// "ip port outcome protocol sha256" line each, sorted.
func endpointRows(t *testing.T, db string) []string {
	t.Helper()
	out, stderr, code := run(t, context.Background(), "endpoints", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("endpoints --db %s: exit %d: %s", db, code, stderr)
	}
	var rows []string
	for _, r := range jsonLines(t, out) {
		rows = append(rows, fmt.Sprint(r["ip"], " ", r["port"], " ", r["outcome"], " ", r["protocol"], " ", r["sha256"]))
	}
	slices.Sort(rows)
	return rows
}

// TestShardedSweepEqualsWhole sweeps a loopback lab once whole and once as
// 3 shards into 3 databases, as 3 hosts would: together the shards store
// exactly the whole sweep's endpoints (no endpoint twice), their outcome
// counts add up to the whole sweep's, and each sweep row records its shard
// and its own share of the probes. Shard 1 takes its index from
// JOB_COMPLETION_INDEX, as in a Kubernetes Indexed Job; with raw sockets,
// shards 0 and 2 use SYN discovery, so both modes honour the shard.
func TestShardedSweepEqualsWhole(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, 40)
	dir := t.TempDir()
	// Generous timeout: under -race on 2 cores a handshake can take 100x longer.
	common := []string{"--ports", fmt.Sprint(lab.Port), "--rate", "0", "--concurrency", "16", "--timeout", "3s",
		"--seed", "99", "--name", "lab", "--quiet", lab.Prefix.String()}
	sweep := func(db string, args ...string) {
		t.Helper()
		stdout, stderr, code := run(t, ctx, append(append([]string{"sweep", "--db", db}, args...), common...)...)
		if code != 0 {
			t.Fatalf("sweep %v exit %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
		}
	}
	whole := filepath.Join(dir, "whole.db")
	sweep(whole, "--discovery", "connect")
	want := endpointRows(t, whole)
	wholeSweep := findSweep(t, whole, 1)
	if len(want) != len(lab.Endpoints) || wholeSweep.Options["shard"] != "0/1" {
		t.Fatalf("the unsharded sweep stored %d endpoints of the lab's %d, shard %v", len(want), len(lab.Endpoints), wholeSweep.Options["shard"])
	}

	synMode := "connect"
	if scanner.CheckSYN() == nil {
		synMode = "syn"
	}
	var got []string
	stats := map[string]int64{}
	var total uint64
	for i := range uint64(3) {
		db := filepath.Join(dir, fmt.Sprintf("shard-%d.db", i))
		switch i {
		case 1:
			t.Setenv(scanner.JobCompletionIndexEnv, "1")
			sweep(db, "--shard", "auto/3", "--discovery", "connect")
		default:
			sweep(db, "--shard", fmt.Sprintf("%d/3", i), "--discovery", synMode)
		}
		sw := findSweep(t, db, 1)
		wantTotal := (wholeSweep.ProbesTotal + 2 - i) / 3 // positions i, i+3, ... of the whole sweep
		if sw.State != store.StateComplete || sw.ProbesTotal != wantTotal || uint64(sw.Done()) != wantTotal {
			t.Errorf("shard %d/3: %s, %d of %d probes; want complete, %d of %d", i, sw.State, sw.Done(), sw.ProbesTotal, wantTotal, wantTotal)
		}
		if s := fmt.Sprintf("%d/3", i); sw.Options["shard"] != s || sw.Seed != 99 || sw.Name != "lab" {
			t.Errorf("shard %d/3 recorded shard %v, seed %d, name %q; want %s, 99, lab", i, sw.Options["shard"], sw.Seed, sw.Name, s)
		}
		total += sw.ProbesTotal
		for st, n := range sw.Stats {
			stats[st] += n
		}
		rows := endpointRows(t, db)
		if len(rows) == 0 || len(rows) == len(want) {
			t.Errorf("shard %d/3 stored %d of the %d endpoints: a shard should hold a part", i, len(rows), len(want))
		}
		got = append(got, rows...)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the 3 shards stored, together:\n  %s\nthe whole sweep:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if total != wholeSweep.ProbesTotal {
		t.Errorf("the shards planned %d probes together, the whole sweep %d", total, wholeSweep.ProbesTotal)
	}
	for _, st := range scanner.Statuses {
		if stats[string(st)] != wholeSweep.Stats[string(st)] {
			t.Errorf("outcome %s: %d in the shards together, %d in the whole sweep", st, stats[string(st)], wholeSweep.Stats[string(st)])
		}
	}
}

// TestShardResume interrupts a shard and resumes it: the resumed sweep
// keeps its shard, probes nothing twice (its outcome counts add up to the
// shard's probes exactly) and ends with exactly the lab endpoints that
// fall in that shard.
func TestShardResume(t *testing.T) {
	lab := newLab(t, 20)
	db := filepath.Join(t.TempDir(), "certs.db")
	const seed = 5
	shard := scanner.Shard{Index: 2, Count: 3}
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once the first batch is committed (see TestSweepInterrupted).
	go func() {
		defer cancel()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
			time.Sleep(50 * time.Millisecond)
			if d, err := store.OpenExisting(ctx, db); err == nil {
				sw, err := d.FindSweep(ctx, 1)
				d.Close()
				if err == nil && sw.Done() > 0 {
					return
				}
			}
		}
	}()
	// 20 probes a second over 86 positions: cancelled long before the end.
	stdout, stderr, code := run(t, ctx, "sweep", "--db", db, "--ports", fmt.Sprint(lab.Port), "--shard", shard.String(),
		"--seed", fmt.Sprint(seed), "--discovery", "connect", "--rate", "20", "--timeout", "3s", "--quiet", lab.Prefix.String())
	if code != exitInterrupted {
		t.Fatalf("interrupted shard exit %d, want %d\n%s%s", code, exitInterrupted, stdout, stderr)
	}
	if sw := findSweep(t, db, 1); sw.Done() == 0 || uint64(sw.Done()) >= sw.ProbesTotal {
		t.Fatalf("interrupted shard committed %d of %d probes, want some but not all", sw.Done(), sw.ProbesTotal)
	}

	if _, stderr, code := run(t, context.Background(), "sweep", "--db", db, "--resume", "1", "--shard", "0/3"); code != exitUsage || !strings.Contains(stderr, "--shard cannot change it") {
		t.Errorf("--resume with --shard: exit %d, %q; want a usage error", code, stderr)
	}
	stdout, stderr, code = run(t, context.Background(), "sweep", "--db", db, "--resume", "1", "--rate", "0")
	if code != 0 {
		t.Fatalf("resume exit %d\n%s%s", code, stdout, stderr)
	}
	sw := findSweep(t, db, 1)
	ports, _, err := scanner.ParsePortSpec(fmt.Sprint(lab.Port))
	if err != nil {
		t.Fatal(err)
	}
	in, err := scanner.ParseInput(lab.Prefix.String(), false)
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := scanner.NewPlan(context.Background(), []scanner.Input{in}, nil, ports, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sw.State != store.StateComplete || sw.ProbesTotal != plan.ShardLen(shard) || uint64(sw.Done()) != sw.ProbesTotal || sw.Options["shard"] != shard.String() {
		t.Errorf("resumed shard: %s, %d of %d probes, shard %v; want complete, %d of %d, %s",
			sw.State, sw.Done(), sw.ProbesTotal, sw.Options["shard"], plan.ShardLen(shard), plan.ShardLen(shard), shard)
	}
	labAddrs := map[netip.AddrPort]bool{}
	for _, ep := range lab.Endpoints {
		labAddrs[ep.Server.Addr] = true
	}
	var want []string
	for _, tg := range plan.ShardTargets(seed, shard) {
		if labAddrs[tg.Addr] {
			want = append(want, tg.Addr.Addr().String())
		}
	}
	slices.Sort(want)
	var got []string
	for _, row := range endpointRows(t, db) {
		got = append(got, strings.Fields(row)[0])
	}
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("resumed shard %s stored endpoints %v, want the lab endpoints of that shard %v", shard, got, want)
	}
}

// TestShardUsageErrors: a bad --shard fails before anything is written.
func TestShardUsageErrors(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "new.db")
	t.Setenv(scanner.JobCompletionIndexEnv, "")
	os.Unsetenv(scanner.JobCompletionIndexEnv) // restored by t.Setenv's cleanup
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--shard", "3/3", "--seed", "1"}, `--shard "3/3": the shard index "3" must be a number from 0 to 2`},
		{[]string{"--shard", "1/3"}, "--shard 1/3 needs --seed"},
		{[]string{"--shard", "auto/3", "--seed", "1"}, "JOB_COMPLETION_INDEX is not set"},
		{[]string{"--shard", "0/0", "--seed", "1"}, "shard count"},
		{[]string{"--shard", "half", "--seed", "1"}, "INDEX/COUNT"},
		{[]string{"--shard", "4/5", "--seed", "1", "--ports", "443"}, "shard 4/5 is empty: the sweep has only 4 probes"},
	} {
		args := append(append([]string{"sweep", "--db", db}, tc.args...), "127.0.0.1-127.0.0.4")
		_, stderr, code := run(t, ctx, args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("certsweep %s: exit %d, %q; want exit %d and %q", strings.Join(args, " "), code, stderr, exitUsage, tc.want)
		}
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("a --shard usage error created %s", db)
	}
}
