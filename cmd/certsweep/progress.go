package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"golang.org/x/term"
)

// progress reports a running sweep: a live line redrawn in place on a
// terminal, or a plain log line every period otherwise (cron, CI, files).
type progress struct {
	w      io.Writer
	total  uint64
	tty    bool
	quiet  bool
	period time.Duration
	begin  time.Time
	done   atomic.Uint64
	ok     atomic.Uint64
	stopCh chan struct{}
	wg     sync.WaitGroup
}

func newProgress(w io.Writer, total uint64, quiet bool, period time.Duration) *progress {
	p := &progress{w: w, total: total, quiet: quiet, period: period, stopCh: make(chan struct{})}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty, p.period = true, 250*time.Millisecond
	}
	return p
}

// record counts one finished probe; safe for concurrent use.
func (p *progress) record(s scanner.Status) {
	p.done.Add(1)
	if s == scanner.StatusOK {
		p.ok.Add(1)
	}
}

func (p *progress) start() {
	p.begin = time.Now()
	if p.quiet {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.period)
		defer t.Stop()
		for {
			select {
			case <-p.stopCh:
				if p.tty {
					fmt.Fprint(p.w, "\r\x1b[K") // clear the live line
				}
				return
			case <-t.C:
				p.print()
			}
		}
	}()
}

func (p *progress) stop() {
	close(p.stopCh)
	p.wg.Wait()
}

func (p *progress) print() {
	done, ok := p.done.Load(), p.ok.Load()
	elapsed := time.Since(p.begin)
	rate := float64(done) / max(elapsed.Seconds(), 1e-3)
	eta := "?"
	if rate > 0 && done <= p.total {
		eta = (time.Duration(float64(p.total-done)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100 * float64(done) / float64(max(p.total, 1))
	line := fmt.Sprintf("%d/%d probes (%.1f%%), %d handshakes ok, %.0f/s, ETA %s", done, p.total, pct, ok, rate, eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	} else {
		fmt.Fprintf(p.w, "%s certsweep: progress: %s\n", time.Now().UTC().Format(time.RFC3339), line)
	}
}
