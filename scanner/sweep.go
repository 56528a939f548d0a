package scanner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/projectdiscovery/ratelimit"
	"golang.org/x/sync/errgroup"
)

// Config controls a sweep's pace. The zero value is not useful; start from
// DefaultConfig.
type Config struct {
	Prober      *Prober
	Rate        int // connection attempts (or SYNs) per second across the sweep; 0 = unlimited
	Concurrency int // handshakes in flight
	// ConnectConcurrency is how many TCP connects may be pending at once
	// (connect discovery). A silent address holds one for the whole
	// connect timeout, so this, not Concurrency, bounds how fast silent
	// space is crossed. Values below Concurrency are raised to it.
	ConnectConcurrency int
	PerHost            int    // probes in flight against any one address
	Seed               uint64 // probe order; the same seed gives the same order
	// Discovery is how answering endpoints are found; "" is DiscoveryConnect.
	Discovery Discovery
	// SYN discovery: SYNs resent to a silent target, the wait after its
	// last SYN before it counts as silent, and the raw socket's settings.
	SYNRetries int
	Cooldown   time.Duration
	SYN        SYNConfig
	// SYNDone, if set, receives the raw socket's counters when a SYN sweep
	// ends (replies dropped by a full buffer among them).
	SYNDone func(SYNStats)
	// Skip, if set, reports positions (as yielded by Plan.ShardTargets for
	// Shard) that are already done, for resuming a sweep. Skipped targets
	// are not probed.
	Skip func(pos uint64) bool
	// Shard, if set, sweeps only that part of the plan; the positions
	// handed to Skip and to the Sink are then the shard's own.
	Shard Shard
}

// DefaultConfig returns the defaults the CLI documents.
func DefaultConfig() Config {
	return Config{Prober: NewProber(), Rate: 1000, Concurrency: 256, ConnectConcurrency: 256, PerHost: 4,
		Discovery: DiscoveryConnect, SYNRetries: DefaultSYNRetries, Cooldown: DefaultCooldown}
}

// Sink receives each finished probe. It is called from many goroutines at
// once; an error from it stops the sweep and is returned by Sweep.
type Sink func(ctx context.Context, pos uint64, r Result) error

// Sweep probes every target of plan, at most cfg.Rate connection attempts
// (or SYNs) per second, and hands each Result to sink. It returns when all
// targets are done, when ctx ends (returning ctx's error) or when sink
// fails. Probes cut short by ctx ending are not handed to sink: they say
// nothing about the endpoint.
//
// With connect discovery, connects and handshakes run in separate pools:
// up to cfg.ConnectConcurrency connects pending, each connected endpoint
// then waiting for one of cfg.Concurrency handshake workers (its handshake
// deadline starts then). With SYN discovery, see sweepSYN.
func Sweep(ctx context.Context, plan *Plan, cfg Config, sink Sink) error {
	if cfg.Prober == nil || cfg.Concurrency < 1 || cfg.PerHost < 1 || cfg.Rate < 0 || cfg.SYNRetries < 0 {
		return errors.New("sweep: invalid config: need a prober, concurrency >= 1, per-host >= 1, rate >= 0, SYN retries >= 0")
	}
	if err := cfg.Shard.check(); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	switch cfg.Discovery {
	case DiscoverySYN:
		sock, err := NewSYNSocket(cfg.SYN)
		if err != nil {
			return err
		}
		defer sock.Close()
		err = sweepSYN(ctx, plan, cfg, sock, sink)
		if cfg.SYNDone != nil {
			cfg.SYNDone(sock.Stats())
		}
		return err
	case DiscoveryConnect, "":
		return sweepConnect(ctx, plan, cfg, sink)
	}
	return fmt.Errorf("sweep: unknown discovery %q", cfg.Discovery)
}

// sweepConnect is Sweep with connect discovery.
func sweepConnect(ctx context.Context, plan *Plan, cfg Config, sink Sink) error {
	g, ctx := errgroup.WithContext(ctx)
	type job struct {
		pos uint64
		t   Target
	}
	jobs := make(chan job, cfg.Concurrency)
	g.Go(func() error {
		defer close(jobs)
		for pos, t := range plan.ShardTargets(cfg.Seed, cfg.Shard) {
			if cfg.Skip != nil && cfg.Skip(pos) {
				continue
			}
			select {
			case jobs <- job{pos, t}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})

	type open struct {
		pos  uint64
		conn net.Conn
		r    Result
	}
	opened := make(chan open, cfg.Concurrency)
	// Connections accepted into opened but never finished (the sweep was
	// cancelled) are closed here.
	defer func() {
		for o := range opened {
			o.conn.Close()
		}
	}()
	lim := newLimiter(ctx, cfg.Rate)
	defer lim.Stop()
	gate := newHostGate(ctx, cfg.PerHost)
	take := takeFrom(lim)
	connect := func(j job) error {
		if err := gate.acquire(ctx, j.t.Addr.Addr()); err != nil {
			return err
		}
		conn, r := cfg.Prober.Connect(ctx, j.t)
		if conn != nil {
			select {
			case opened <- open{j.pos, conn, r}: // the gate is released once it is finished
				return nil
			case <-ctx.Done():
				conn.Close()
				gate.release(j.t.Addr.Addr())
				return ctx.Err()
			}
		}
		gate.release(j.t.Addr.Addr())
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := sink(ctx, j.pos, r); err != nil {
			return fmt.Errorf("record %s: %w", j.t.Addr, err)
		}
		return nil
	}
	// The connect pool grows with need: Concurrency workers at first, and
	// one more whenever a job waited a millisecond and no worker came free,
	// up to ConnectConcurrency. Silent space (connects pending for the
	// whole timeout) grows it to the full size within seconds; where every
	// port answers at once (dead space, TLS labs) it stays small, as
	// thousands of workers would only cost their stacks and contend.
	work := make(chan job)
	var connecting sync.WaitGroup
	g.Go(func() error {
		defer func() {
			close(work)
			connecting.Wait()
			close(opened)
		}()
		workers, most := 0, max(cfg.ConnectConcurrency, cfg.Concurrency)
		spawn := func(j job) {
			workers++
			connecting.Add(1)
			g.Go(func() error {
				defer connecting.Done()
				for ok := true; ok; j, ok = <-work {
					if err := connect(j); err != nil {
						return err
					}
				}
				return nil
			})
		}
		wait := time.NewTimer(time.Hour)
		defer wait.Stop()
		for j := range jobs {
			lim.Take() // the rate counts connection attempts
			if err := ctx.Err(); err != nil {
				return err
			}
			select {
			case work <- j:
				continue
			default:
			}
			if workers < cfg.Concurrency {
				spawn(j)
				continue
			}
			wait.Reset(time.Millisecond)
			select {
			case work <- j:
				continue
			case <-wait.C:
			case <-ctx.Done():
				return ctx.Err()
			}
			if workers < most {
				spawn(j)
				continue
			}
			select {
			case work <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range cfg.Concurrency {
		g.Go(func() error {
			for o := range opened {
				r := cfg.Prober.Finish(ctx, o.conn, o.r)
				r = cfg.Prober.Expand(ctx, r, take)
				gate.release(r.Target.Addr.Addr())
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := sink(ctx, o.pos, r); err != nil {
					return fmt.Errorf("record %s: %w", r.Target.Addr, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// takeFrom returns a function that waits for one of lim's tokens, for the
// extra probes of Prober.Expand; it fails once ctx has ended.
func takeFrom(lim *ratelimit.Limiter) func(context.Context) error {
	return func(ctx context.Context) error {
		lim.Take()
		return ctx.Err()
	}
}

// newLimiter spreads rate tokens evenly: instead of releasing a whole second's
// worth at once, it refills k tokens every k/rate seconds, with k chosen so
// the refill period is about 10 ms. The limiter's goroutine ends with ctx.
func newLimiter(ctx context.Context, rate int) *ratelimit.Limiter {
	if rate <= 0 {
		return ratelimit.NewUnlimited(ctx)
	}
	k := max(1, rate/100)
	return ratelimit.New(ctx, uint(k), time.Duration(k)*time.Second/time.Duration(rate))
}

// hostGate caps the probes in flight per address, so that many ports of one
// box are not hit at once. Its map only holds addresses with probes in
// flight, so it stays as small as the concurrency.
type hostGate struct {
	limit    int
	mu       sync.Mutex
	cond     *sync.Cond
	inflight map[netip.Addr]int
}

func newHostGate(ctx context.Context, limit int) *hostGate {
	g := &hostGate{limit: limit, inflight: make(map[netip.Addr]int)}
	g.cond = sync.NewCond(&g.mu)
	// Wake waiters when the sweep is cancelled so they can return.
	context.AfterFunc(ctx, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	return g
}

func (g *hostGate) acquire(ctx context.Context, a netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.inflight[a] >= g.limit {
		if err := ctx.Err(); err != nil {
			return err
		}
		g.cond.Wait()
	}
	g.inflight[a]++
	return nil
}

func (g *hostGate) release(a netip.Addr) {
	g.mu.Lock()
	if g.inflight[a]--; g.inflight[a] <= 0 {
		delete(g.inflight, a)
	}
	g.mu.Unlock()
	g.cond.Broadcast()
}
