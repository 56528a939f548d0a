package scanner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Discovery names how a sweep finds the endpoints that answer.
type Discovery string

const (
	// DiscoveryConnect opens a TCP connection to every target, up to
	// Config.ConnectConcurrency at once; it needs no privileges.
	DiscoveryConnect Discovery = "connect"
	// DiscoverySYN sends one SYN per target from a raw socket at Config.Rate
	// and keeps no connection per target: only the targets that answer
	// SYN-ACK get a connection and a handshake. It needs raw sockets (root
	// or CAP_NET_RAW).
	DiscoverySYN Discovery = "syn"
)

// SYN discovery defaults: one retry (a SYN lost on the way is common; two
// are rare), a retry one second after a SYN (TCP's own initial retransmission
// timeout, RFC 6298), and three seconds after a target's last SYN before it
// counts as silent.
const (
	DefaultSYNRetries = 1
	DefaultCooldown   = 3 * time.Second
	synRetryAfter     = time.Second
)

// synPending is a target whose SYN is out and unanswered. Several targets
// can share one address and port (two host names of one address, each
// with its SNI): one SYN answers for all of them.
type synPending struct {
	key     netip.AddrPort // the address (IPv4 unmapped) and port the SYNs go to
	targets []posTarget
	last    time.Time // when its latest SYN went out
	tries   int       // SYNs sent
	done    bool      // answered: the queue skips it
}

type posTarget struct {
	pos uint64
	t   Target
}

// synAnswer is a target that answered: open (SYN-ACK) or closed (RST).
type synAnswer struct {
	posTarget
	open bool
}

// sweepSYN is Sweep with SYN discovery. One goroutine sends SYNs in the
// plan's order (cfg.Shard's part of it) at cfg.Rate; one reads the
// socket's validated replies; one resends unanswered SYNs and declares
// targets silent after the cooldown; cfg.Concurrency workers handshake with the open endpoints (while SYNs are
// still going out) and record the closed ones. Only unanswered targets are
// held, so memory grows with rate × (retries + cooldown), not with the plan.
func sweepSYN(ctx context.Context, plan *Plan, cfg Config, sock synSocket, sink Sink) error {
	g, ctx := errgroup.WithContext(ctx)
	lim := newLimiter(ctx, cfg.Rate)
	defer lim.Stop()
	retries, cooldown := cfg.SYNRetries, cfg.Cooldown
	if cooldown <= 0 {
		cooldown = DefaultCooldown
	}

	var (
		mu      sync.Mutex
		pending = map[netip.AddrPort]*synPending{}
		queue   []*synPending // in order of each entry's latest SYN
		sending = true
	)
	answers := newUnboundedQueue[synAnswer]()
	// send sends one SYN. A full interface queue (ENOBUFS) is waited out; an
	// error that belongs to the target (no route, a local firewall, an
	// address SYNs may not go to) ends that target as a failed probe; only
	// a closed socket ends the sweep.
	send := func(dst netip.AddrPort) error {
		for try := 0; ; try++ {
			err := sock.Send(dst)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, net.ErrClosed):
				return fmt.Errorf("send a SYN to %s: %w", dst, err)
			case errors.Is(err, syscall.ENOBUFS) && try < 100:
				select {
				case <-time.After(10 * time.Millisecond):
					continue
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			mu.Lock()
			p := pending[dst]
			if p != nil {
				delete(pending, dst)
				p.done = true
			}
			mu.Unlock()
			if p != nil {
				for _, pt := range p.targets {
					r := cfg.Prober.unconnected(pt.t, classify(err), "SYN not sent: "+err.Error())
					if err := sink(ctx, pt.pos, r); err != nil {
						return fmt.Errorf("record %s: %w", dst, err)
					}
				}
			}
			return nil
		}
	}

	// Sender: the plan's order, at the rate.
	g.Go(func() error {
		defer func() {
			mu.Lock()
			sending = false
			mu.Unlock()
		}()
		for pos, t := range plan.ShardTargets(cfg.Seed, cfg.Shard) {
			if cfg.Skip != nil && cfg.Skip(pos) {
				continue
			}
			// Replies name IPv4 targets by their plain IPv4 address.
			key := netip.AddrPortFrom(t.Addr.Addr().Unmap(), t.Addr.Port())
			mu.Lock()
			if p := pending[key]; p != nil && !p.done {
				p.targets = append(p.targets, posTarget{pos, t})
				mu.Unlock()
				continue
			}
			mu.Unlock()
			lim.Take()
			if err := ctx.Err(); err != nil {
				return err
			}
			p := &synPending{key: key, targets: []posTarget{{pos, t}}, tries: 1}
			mu.Lock()
			p.last = time.Now()
			pending[key] = p
			queue = append(queue, p)
			mu.Unlock()
			if err := send(key); err != nil {
				return err
			}
		}
		return nil
	})

	// Receiver: validated replies; late and duplicate ones find nothing.
	// It stops once every target is answered or silent.
	replies := sock.Replies()
	recvCtx, stopReceiving := context.WithCancel(ctx)
	defer stopReceiving()
	g.Go(func() error {
		for {
			select {
			case <-recvCtx.Done():
				return ctx.Err()
			case rep, ok := <-replies:
				if !ok {
					return nil
				}
				mu.Lock()
				p := pending[rep.Addr]
				if p != nil {
					delete(pending, rep.Addr)
					p.done = true
				}
				mu.Unlock()
				if p == nil {
					continue
				}
				for _, pt := range p.targets {
					answers.push(synAnswer{pt, rep.Open})
				}
			}
		}
	})

	// Retries and silence, oldest SYN first.
	g.Go(func() error {
		defer answers.close()
		defer stopReceiving()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
			now := time.Now()
			var resend []netip.AddrPort
			var silent []posTarget
			mu.Lock()
			for len(queue) > 0 {
				p := queue[0]
				if p.done {
					queue = queue[1:]
					continue
				}
				wait := cooldown
				if p.tries <= retries {
					wait = synRetryAfter
				}
				if now.Sub(p.last) < wait {
					break
				}
				queue = queue[1:]
				if p.tries <= retries {
					p.tries++
					p.last = now
					queue = append(queue, p)
					resend = append(resend, p.key)
					continue
				}
				delete(pending, p.key)
				p.done = true
				silent = append(silent, p.targets...)
			}
			finished := !sending && len(pending) == 0
			mu.Unlock()
			for _, dst := range resend {
				lim.Take() // retries count against the rate too
				if err := send(dst); err != nil {
					return err
				}
			}
			for _, pt := range silent {
				r := cfg.Prober.unconnected(pt.t, StatusSilent, fmt.Sprintf("no answer to %d SYNs", retries+1))
				if err := sink(ctx, pt.pos, r); err != nil {
					return fmt.Errorf("record %s: %w", pt.t.Addr, err)
				}
			}
			if finished {
				return nil
			}
		}
	})

	// Handshakes with the open endpoints; closed ones are recorded as such.
	gate := newHostGate(ctx, cfg.PerHost)
	take := takeFrom(lim)
	for range cfg.Concurrency {
		g.Go(func() error {
			for {
				a, ok := answers.pop(ctx)
				if !ok {
					return ctx.Err()
				}
				var r Result
				if a.open {
					if err := gate.acquire(ctx, a.t.Addr.Addr()); err != nil {
						return err
					}
					r = cfg.Prober.Probe(ctx, a.t)
					r = cfg.Prober.Expand(ctx, r, take)
					gate.release(a.t.Addr.Addr())
				} else {
					r = cfg.Prober.unconnected(a.t, StatusRefused, "RST in answer to a SYN")
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := sink(ctx, a.pos, r); err != nil {
					return fmt.Errorf("record %s: %w", a.t.Addr, err)
				}
			}
		})
	}
	return g.Wait()
}

// unconnected is the result of a target SYN discovery settled without a
// connection: closed (RST), silent, or not sent to.
func (p *Prober) unconnected(t Target, st Status, why string) Result {
	now := time.Now()
	return Result{Target: t, Protocol: p.protocolFor(t.Addr.Port()), Status: st, Start: now, End: now, Err: why}
}

// synSocket is what sweepSYN needs of a SYNSocket.
type synSocket interface {
	Send(dst netip.AddrPort) error
	Replies() <-chan SYNReply
}

// unboundedQueue hands answers from the receiver to the workers without
// ever blocking the receiver: a reader that blocks lets the kernel's socket
// buffer fill and drop replies. It holds only answered targets.
type unboundedQueue[T any] struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []T
	closed bool
}

func newUnboundedQueue[T any]() *unboundedQueue[T] {
	q := &unboundedQueue[T]{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *unboundedQueue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.cond.Signal()
}

// close ends the queue: pop drains what is left, then reports false.
func (q *unboundedQueue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// pop waits for an item; false once the queue is closed and empty, or ctx ends.
func (q *unboundedQueue[T]) pop(ctx context.Context) (T, bool) {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock() // so that no waiter is between its check and its Wait
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed && ctx.Err() == nil {
		q.cond.Wait()
	}
	var zero T
	if len(q.items) == 0 || ctx.Err() != nil {
		return zero, false
	}
	v := q.items[0]
	q.items = q.items[1:]
	return v, true
}

// CheckSYN reports whether this process may use SYN discovery: nil, or
// why not (an error wrapping ErrNoRawSockets when it lacks privileges).
func CheckSYN() error {
	s, err := NewSYNSocket(SYNConfig{})
	if err != nil {
		return err
	}
	return s.Close()
}
