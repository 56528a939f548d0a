package scanner

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// recordingSocket is a real SYNSocket that also records every SYN sent.
type recordingSocket struct {
	*SYNSocket
	mu    sync.Mutex
	sent  []netip.AddrPort
	times []time.Time
}

func (r *recordingSocket) Send(dst netip.AddrPort) error {
	r.mu.Lock()
	r.sent, r.times = append(r.sent, dst), append(r.times, time.Now())
	r.mu.Unlock()
	return r.SYNSocket.Send(dst)
}

func newRecordingSocket(t *testing.T) *recordingSocket {
	t.Helper()
	s, err := NewSYNSocket(SYNConfig{})
	if err != nil {
		t.Skipf("SYN discovery unavailable here: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return &recordingSocket{SYNSocket: s}
}

// TestSYNSweepStaysInPlan is a property test over random plans: every SYN
// goes to a target of the plan, never to an excluded address, and every
// target gets exactly one result. Nothing listens on the chosen ports, so
// every target answers RST: refused.
func TestSYNSweepStaysInPlan(t *testing.T) {
	for round := range 6 {
		rng := rand.New(rand.NewPCG(uint64(round), 99))
		base := netip.AddrFrom4([4]byte{127, byte(100 + rng.IntN(100)), byte(rng.IntN(256)), 0})
		target := fmt.Sprintf("%s/%d", base, 24+rng.IntN(4))
		exclude := fmt.Sprintf("%s/%d", netip.AddrFrom4([4]byte{127, base.As4()[1], base.As4()[2], byte(16 * rng.IntN(4))}), 28+rng.IntN(3))
		ports := []uint16{uint16(1 + rng.IntN(1000)), uint16(1 + rng.IntN(1000))}
		t.Run(fmt.Sprintf("%s-x-%s", target, exclude), func(t *testing.T) {
			in, err := ParseInput(target, false)
			if err != nil {
				t.Fatal(err)
			}
			ex, err := ParseInput(exclude, false)
			if err != nil {
				t.Fatal(err)
			}
			plan, _, err := NewPlan(context.Background(), []Input{in}, []Input{ex}, ports, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := map[netip.AddrPort]bool{}
			for _, tg := range plan.Targets(1) {
				want[tg.Addr] = true
			}
			sock := newRecordingSocket(t)
			cfg := DefaultConfig()
			cfg.Discovery, cfg.Rate, cfg.Seed, cfg.Cooldown = DiscoverySYN, 0, uint64(round), 300*time.Millisecond
			var mu sync.Mutex
			results := map[netip.AddrPort]Status{}
			err = sweepSYN(context.Background(), plan, cfg, sock, func(_ context.Context, _ uint64, r Result) error {
				mu.Lock()
				defer mu.Unlock()
				if _, dup := results[r.Target.Addr]; dup {
					t.Errorf("%s reported twice", r.Target.Addr)
				}
				results[r.Target.Addr] = r.Status
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			excluded := netip.MustParsePrefix(exclude).Masked()
			for _, dst := range sock.sent {
				if !want[dst] || excluded.Contains(dst.Addr()) {
					t.Fatalf("a SYN went to %s, outside the plan (excluded %s)", dst, excluded)
				}
			}
			if len(results) != len(want) {
				t.Errorf("%d results for %d targets", len(results), len(want))
			}
			for ap, st := range results {
				if st != StatusRefused {
					t.Errorf("%s: %s, want refused (nothing listens)", ap, st)
				}
			}
		})
	}
}

// TestSYNRateCeiling counts the SYNs a sweep sends in every window of a
// quarter second: never more than the rate allows (the limiter refills
// every 10 ms, so a window may hold one refill more).
func TestSYNRateCeiling(t *testing.T) {
	const rate = 2000
	in, err := ParseInput("127.203.0.0/22", false)
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := NewPlan(context.Background(), []Input{in}, nil, []uint16{7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sock := newRecordingSocket(t)
	cfg := DefaultConfig()
	cfg.Discovery, cfg.Rate, cfg.Cooldown = DiscoverySYN, rate, 300*time.Millisecond
	err = sweepSYN(context.Background(), plan, cfg, sock, func(context.Context, uint64, Result) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	const window = 250 * time.Millisecond
	limit := rate*window.Seconds() + 2*rate/100
	for i, j := 0, 0; j < len(sock.times); j++ {
		for sock.times[j].Sub(sock.times[i]) >= window {
			i++
		}
		if n := j - i + 1; float64(n) > limit {
			t.Fatalf("%d SYNs within %s at --rate %d (at most %.0f allowed)", n, window, rate, limit)
		}
	}
	if len(sock.sent) < int(plan.Len()) {
		t.Errorf("%d SYNs sent for %d targets", len(sock.sent), plan.Len())
	}
}
