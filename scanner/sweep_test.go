package scanner_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

// closedSubnet returns a random 127.x.y.0/24 where nothing listens on port.
func closedSubnet() string {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), 0}), 24).String()
}

func TestSweepRate(t *testing.T) {
	// 400 probes of closed loopback ports (each refused in microseconds) at
	// 200 attempts/s: the limiter, not the probes, sets the pace.
	const rate, probes = 200, 400
	p, _, err := scanner.NewPlan(context.Background(), mustInputs(t, closedSubnet()), nil, []uint16{1, 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() < probes {
		t.Fatalf("plan has %d probes, want >= %d", p.Len(), probes)
	}
	cfg := scanner.DefaultConfig()
	cfg.Rate, cfg.Concurrency = rate, 64
	var mu sync.Mutex
	var starts []time.Time
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = scanner.Sweep(ctx, p, cfg, func(_ context.Context, _ uint64, r scanner.Result) error {
		if r.Status != scanner.StatusRefused {
			t.Errorf("probe of %v = %q, want refused", r.Target, r.Status)
		}
		mu.Lock()
		defer mu.Unlock()
		if starts = append(starts, r.Start); len(starts) == probes {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Sweep = %v, want it cancelled after %d probes", err, probes)
	}
	first, last := starts[0], starts[0]
	for _, s := range starts {
		if s.Before(first) {
			first = s
		}
		if s.After(last) {
			last = s
		}
	}
	// The limiter refills k = rate/100 tokens every k/rate seconds, so N
	// attempts need at least (N-k)/rate seconds. A loaded machine can only
	// make the sweep slower, so the upper bound on rate is a hard property;
	// the lower bound only catches a limiter that throttles far too hard
	// (it is not a performance assertion: refused probes cost microseconds).
	span := last.Sub(first).Seconds()
	minSpan := float64(probes-rate/100-1) / rate
	achieved := float64(len(starts)-1) / span
	t.Logf("%d attempts in %.2fs: %.0f attempts/s (--rate %d)", len(starts), span, achieved, rate)
	if span < minSpan*0.98 {
		t.Errorf("%d attempts took %.2fs, want >= %.2fs at --rate %d (achieved %.0f/s)", len(starts), span, minSpan, rate, achieved)
	}
	if achieved < rate/10 {
		t.Errorf("achieved %.0f attempts/s, want close to %d", achieved, rate)
	}
}

func TestSweepPerHostCap(t *testing.T) {
	host := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
	var inflight, peak atomic.Int32
	hold := func(c net.Conn) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		inflight.Add(-1)
	}
	var ports []uint16
	for range 24 {
		s, err := scannertest.NewServer(netip.AddrPortFrom(host, 0).String(), hold)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		ports = append(ports, s.Addr.Port())
	}
	p, _, err := scanner.NewPlan(context.Background(), mustInputs(t, host.String()), nil, ports, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := scanner.DefaultConfig()
	cfg.Rate, cfg.Concurrency, cfg.PerHost = 0, 24, 3
	var count atomic.Int32
	err = scanner.Sweep(context.Background(), p, cfg, func(_ context.Context, _ uint64, r scanner.Result) error {
		count.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count.Load() != 24 {
		t.Errorf("sweep reported %d results, want 24", count.Load())
	}
	if got := peak.Load(); got > 3 || got < 1 {
		t.Errorf("peak connections to one host = %d, want 1-3 (--per-host 3)", got)
	}
}

func TestSweepSinkErrorStops(t *testing.T) {
	p, _, err := scanner.NewPlan(context.Background(), mustInputs(t, closedSubnet()), nil, []uint16{1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := scanner.DefaultConfig()
	cfg.Rate = 0
	boom := errors.New("disk full")
	var calls atomic.Int32
	err = scanner.Sweep(context.Background(), p, cfg, func(context.Context, uint64, scanner.Result) error {
		if calls.Add(1) == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("Sweep = %v, want the sink's error", err)
	}
	if n := calls.Load(); n >= 256 {
		t.Errorf("sink called %d times after failing, want the sweep to stop", n)
	}
}
