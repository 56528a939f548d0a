package scanner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// shardResolver answers from a table: name resolution without the network.
type shardResolver map[string][]netip.Addr

func (f shardResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

// randomPlan builds a plan from random inputs: IPv4 CIDRs and ranges that
// may overlap, sometimes an IPv6 range, named host:port and hostname
// targets (some inside the ranges), excludes, 1-5 ports. Some plans hold a
// single probe, so that most shards of them are empty.
func randomPlan(t *testing.T, rng *rand.Rand) *Plan {
	t.Helper()
	v4 := func() netip.Addr {
		return netip.AddrFrom4([4]byte{10, byte(rng.IntN(2)), byte(rng.IntN(4)), byte(rng.IntN(256))})
	}
	var toks, exTokens []string
	if rng.IntN(8) == 0 { // tiny: one address, one port
		toks = append(toks, v4().String())
	} else {
		for range 1 + rng.IntN(3) {
			switch rng.IntN(3) {
			case 0:
				toks = append(toks, netip.PrefixFrom(v4(), 24+rng.IntN(7)).Masked().String())
			case 1:
				a := v4()
				b := a
				for range rng.IntN(300) {
					b = b.Next()
				}
				toks = append(toks, a.String()+"-"+b.String())
			case 2:
				toks = append(toks, fmt.Sprintf("%s:%d", v4(), 1+rng.IntN(65535)))
			}
		}
		if rng.IntN(3) == 0 {
			toks = append(toks, fmt.Sprintf("2001:db8::%x/%d", rng.IntN(1<<16), 120+rng.IntN(9)))
		}
		for range rng.IntN(3) {
			toks = append(toks, fmt.Sprintf("host%d.test", rng.IntN(4)))
		}
		for range rng.IntN(3) {
			exTokens = append(exTokens, netip.PrefixFrom(v4(), 26+rng.IntN(7)).Masked().String())
		}
	}
	res := shardResolver{}
	for i := range 4 {
		res[fmt.Sprintf("host%d.test", i)] = []netip.Addr{v4(), v4()}
	}
	parse := func(ts []string) []Input {
		var out []Input
		for _, tok := range ts {
			in, err := ParseInput(tok, true)
			if err != nil {
				t.Fatalf("ParseInput(%q): %v", tok, err)
			}
			out = append(out, in)
		}
		return out
	}
	ports := []uint16{443}
	if len(toks) > 1 {
		ports = ports[:0]
		for range 1 + rng.IntN(5) {
			ports = append(ports, uint16(1+rng.IntN(65535)))
		}
	}
	ports, _, err := ParsePortSpec(portsText(ports)) // sorted, de-duplicated, as the CLI gives them
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := NewPlan(context.Background(), parse(toks), parse(exTokens), ports, res)
	if err != nil {
		t.Fatalf("NewPlan(%q excluding %q, ports %v): %v", toks, exTokens, ports, err)
	}
	return p
}

func portsText(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}

// TestShardUnion is the shard property, over random plans and seeds and
// every shard count from 1 to 64: the shards of a plan are disjoint, their
// union is exactly the unsharded sweep, each probe keeps its place in the
// sweep order (Global), each shard numbers its probes 0, 1, ... and
// ShardLen counts them.
func TestShardUnion(t *testing.T) {
	for round := range 40 {
		rng := rand.New(rand.NewPCG(uint64(round), 13))
		p := randomPlan(t, rng)
		seed := rng.Uint64()
		var all []Target
		for pos, tg := range p.Targets(seed) {
			if pos != uint64(len(all)) {
				t.Fatalf("round %d: Targets yielded position %d after %d targets", round, pos, len(all))
			}
			all = append(all, tg)
		}
		if uint64(len(all)) != p.Len() || p.ShardLen(Shard{}) != p.Len() {
			t.Fatalf("round %d: Targets yielded %d, Len() = %d, ShardLen(whole) = %d", round, len(all), p.Len(), p.ShardLen(Shard{}))
		}
		for n := uint64(1); n <= 64; n++ {
			covered := make([]bool, len(all))
			for i := range n {
				s := Shard{Index: i, Count: n}
				var count uint64
				for pos, tg := range p.ShardTargets(seed, s) {
					if pos != count {
						t.Fatalf("round %d shard %s: position %d after %d probes, want them numbered from 0", round, s, pos, count)
					}
					count++
					g := s.Global(pos)
					switch {
					case g >= uint64(len(all)):
						t.Fatalf("round %d shard %s: global position %d beyond the plan's %d", round, s, g, len(all))
					case covered[g]:
						t.Fatalf("round %d shard %s: global position %d (%v) is in another shard too", round, s, g, tg)
					case all[g] != tg:
						t.Fatalf("round %d shard %s: position %d is %v, the unsharded sweep has %v there", round, s, g, tg, all[g])
					}
					covered[g] = true
				}
				if count != p.ShardLen(s) {
					t.Errorf("round %d shard %s: yielded %d probes, ShardLen = %d", round, s, count, p.ShardLen(s))
				}
			}
			for g, ok := range covered {
				if !ok {
					t.Fatalf("round %d, %d shards: position %d (%v) is in no shard", round, n, g, all[g])
				}
			}
		}
	}
}

func TestParseShard(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	none := env(nil)
	for _, c := range []struct {
		spec string
		env  func(string) (string, bool)
		want Shard
	}{
		{"0/1", none, Shard{0, 1}},
		{"3/4", none, Shard{3, 4}},
		{" 0/64 ", none, Shard{0, 64}},
		{"auto/4", env(map[string]string{"JOB_COMPLETION_INDEX": "2"}), Shard{2, 4}},
		{"auto/1", env(map[string]string{"JOB_COMPLETION_INDEX": "0"}), Shard{0, 1}},
	} {
		got, err := ParseShard(c.spec, c.env)
		if err != nil || got != c.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", c.spec, got, err, c.want)
		}
	}
	for _, c := range []struct {
		spec string
		env  func(string) (string, bool)
		want string // in the error
	}{
		{"4/4", none, "from 0 to 3"},
		{"-1/4", none, "from 0 to 3"},
		{"1/0", none, "from 1 to 100000"},
		{"0/100001", none, "from 1 to 100000"},
		{"3", none, "INDEX/COUNT"},
		{"a/b", none, "shard count"},
		{"auto/4", none, "JOB_COMPLETION_INDEX is not set"},
		{"auto/4", env(map[string]string{"JOB_COMPLETION_INDEX": "4"}), `"4" (JOB_COMPLETION_INDEX) must be a number from 0 to 3`},
		{"auto/4", env(map[string]string{"JOB_COMPLETION_INDEX": ""}), "JOB_COMPLETION_INDEX"},
	} {
		if got, err := ParseShard(c.spec, c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseShard(%q) = %v, %v; want an error containing %q", c.spec, got, err, c.want)
		}
	}
	if s := (Shard{Index: 2, Count: 5}); s.String() != "2/5" || s.Whole() || !(Shard{}).Whole() || (Shard{}).String() != "0/1" {
		t.Errorf("Shard String/Whole: %q %v %v %q", s.String(), s.Whole(), (Shard{}).Whole(), (Shard{}).String())
	}
}

// TestShardSweepBothDiscoveries sweeps a loopback range in 3 shards with
// each discovery mode: every shard probes only its own targets (for SYN
// discovery, sends SYNs only to them), hands them to the sink under their
// shard positions, and the shards together probe the whole plan once.
// Nothing is meant to listen on the ports, so it goes quickly; the
// outcome does not matter here.
func TestShardSweepBothDiscoveries(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	base := netip.AddrFrom4([4]byte{127, byte(100 + rng.IntN(100)), byte(rng.IntN(256)), 0})
	in, err := ParseInput(base.String()+"/28", false)
	if err != nil {
		t.Fatal(err)
	}
	ports := []uint16{uint16(1 + rng.IntN(1000)), uint16(1001 + rng.IntN(1000))}
	plan, _, err := NewPlan(context.Background(), []Input{in}, nil, ports, nil)
	if err != nil {
		t.Fatal(err)
	}
	const seed = 42
	var all []Target
	for _, tg := range plan.Targets(seed) {
		all = append(all, tg)
	}
	for _, mode := range []Discovery{DiscoveryConnect, DiscoverySYN} {
		t.Run(string(mode), func(t *testing.T) {
			covered := map[uint64]bool{}
			for i := range uint64(3) {
				s := Shard{Index: i, Count: 3}
				cfg := DefaultConfig()
				cfg.Discovery, cfg.Rate, cfg.Seed, cfg.Shard = mode, 0, seed, s
				cfg.Cooldown = 300 * time.Millisecond
				cfg.Prober.ConnectTimeout, cfg.Prober.HandshakeTimeout = 2*time.Second, 2*time.Second
				var mu sync.Mutex
				got := map[uint64]Target{}
				sink := func(_ context.Context, pos uint64, r Result) error {
					mu.Lock()
					defer mu.Unlock()
					if _, dup := got[pos]; dup {
						t.Errorf("shard %s: position %d reported twice", s, pos)
					}
					got[pos] = r.Target
					return nil
				}
				var sent []netip.AddrPort
				if mode == DiscoverySYN {
					sock := newRecordingSocket(t)
					err = sweepSYN(context.Background(), plan, cfg, sock, sink)
					sent = sock.sent
				} else {
					err = Sweep(context.Background(), plan, cfg, sink)
				}
				if err != nil {
					t.Fatalf("shard %s: %v", s, err)
				}
				if uint64(len(got)) != plan.ShardLen(s) {
					t.Errorf("shard %s: %d results, want ShardLen %d", s, len(got), plan.ShardLen(s))
				}
				mine := map[netip.AddrPort]bool{}
				for pos, tg := range got {
					g := s.Global(pos)
					if g >= uint64(len(all)) || all[g] != tg || covered[g] {
						t.Errorf("shard %s: position %d (global %d) is %v: not this shard's probe, or another shard's too", s, pos, g, tg)
						continue
					}
					covered[g] = true
					mine[tg.Addr] = true
				}
				for _, dst := range sent {
					if !mine[dst] {
						t.Errorf("shard %s sent a SYN to %s, which is not one of its targets", s, dst)
					}
				}
			}
			if len(covered) != len(all) {
				t.Errorf("the 3 shards probed %d of the plan's %d targets", len(covered), len(all))
			}
		})
	}
}

// TestShardSkip resumes a shard: Skip takes shard positions, and the
// skipped ones are not probed.
func TestShardSkip(t *testing.T) {
	in, err := ParseInput("127.201.77.0/28", false)
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := NewPlan(context.Background(), []Input{in}, nil, []uint16{9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := Shard{Index: 1, Count: 4}
	cfg := DefaultConfig()
	cfg.Discovery, cfg.Rate, cfg.Seed, cfg.Shard = DiscoveryConnect, 0, 5, s
	cfg.Skip = func(pos uint64) bool { return pos%2 == 0 }
	var mu sync.Mutex
	var got []uint64
	err = Sweep(context.Background(), plan, cfg, func(_ context.Context, pos uint64, _ Result) error {
		mu.Lock()
		got = append(got, pos)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := int(plan.ShardLen(s) / 2); len(got) != want {
		t.Errorf("%d probes after skipping the even positions of a %d-probe shard, want %d", len(got), plan.ShardLen(s), want)
	}
	for _, pos := range got {
		if pos%2 == 0 || pos >= plan.ShardLen(s) {
			t.Errorf("probed shard position %d: skipped, or beyond the shard", pos)
		}
	}
	cfg.Shard = Shard{Index: 4, Count: 4}
	if err := Sweep(context.Background(), plan, cfg, nil); err == nil {
		t.Errorf("Sweep with shard 4/4 succeeded, want an invalid-config error")
	}
}
