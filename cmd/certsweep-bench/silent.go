//go:build linux

package main

// The silent-network scenario: a loopback /16 × 3 ports in a network
// namespace of its own, where about 2,000 addresses serve TLS, one port is
// closed everywhere (RST) and every other address × port is silent (the SYN
// is dropped, as by a firewall), swept by each discovery mode.
//
// Silence without a firewall module: on Linux a listener on INADDR_ANY:PORT
// whose accept queue is full drops every SYN for that port that no more
// specific listener takes, without a reply. Listeners bound to specific
// addresses on the same port still answer, as long as every listener on the
// port has SO_REUSEPORT (without it the specific binds get EADDRINUSE). So
// each TLS port has one wildcard listener with a backlog of 0, filled by one
// connection and never accepted, and a TLS listener on each of its
// endpoints' addresses. Nothing listens on the closed port.
//
// Process layout, so that each certsweep run's rusage (CPU, peak RSS) is its
// own and traffic cannot leave the namespace:
//
//	certsweep-bench silent | run                outside; starts:
//	  certsweep-bench silent-inner              in a new network namespace (only lo); starts:
//	    certsweep-bench silent-lab              the listeners, until its stdin closes
//	    certsweep sweep ...                     one child per mode, measured
//
// The inner process stays small: Linux carries a parent's RSS high-water
// mark into a child it forks and execs (see measureTo), so the lab runs in a
// process of its own rather than in the one that starts certsweep.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/certsweep/certsweep/scanner/scannertest"
)

// soReusePort is SO_REUSEPORT as asm-generic defines it (amd64, arm64, 386,
// arm, riscv64, ppc64, s390x, loong64); package syscall does not export it.
// On an architecture where it differs, the lab's binds fail and the
// scenario reports that, rather than measuring something else.
const soReusePort = 0xf

// silentLayout says where the lab's endpoints are. Endpoint k of n is at
// host offset 1 + k·size/n of the prefix, so any aligned sub-prefix holds
// its share of them (the old behaviour's sample relies on it). Every fourth
// endpoint serves on the second TLS port, the rest on the first.
type silentLayout struct {
	Prefix     netip.Prefix `json:"prefix"`
	N          int          `json:"n"`
	TLSPorts   []uint16     `json:"tls_ports"`
	ClosedPort uint16       `json:"closed_port"`
}

func (l silentLayout) size() int { return 1 << (32 - l.Prefix.Bits()) }

func (l silentLayout) endpoint(k int) netip.AddrPort {
	off := 1 + k*l.size()/l.N
	a := l.Prefix.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(off)
	port := l.TLSPorts[0]
	if k%4 == 3 && len(l.TLSPorts) > 1 {
		port = l.TLSPorts[1]
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), port)
}

func (l silentLayout) ports() string {
	var ps []string
	for _, p := range append(slices.Clone(l.TLSPorts), l.ClosedPort) {
		ps = append(ps, strconv.Itoa(int(p)))
	}
	return strings.Join(ps, ",")
}

// expect counts the probes of a sweep of sub (a sub-prefix of the lab's, or
// the lab's own) by what they should meet.
func (l silentLayout) expect(sub netip.Prefix) (tls, closed, silent, probes int) {
	addrs := 1 << (32 - sub.Bits())
	for k := range l.N {
		if sub.Contains(l.endpoint(k).Addr()) {
			tls++
		}
	}
	nPorts := len(l.TLSPorts) + 1
	return tls, addrs, addrs*len(l.TLSPorts) - tls, addrs * nPorts
}

func (l silentLayout) validate() error {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	switch {
	case !l.Prefix.IsValid() || !l.Prefix.Addr().Is4() || l.Prefix.Bits() < 9 || !loopback.Contains(l.Prefix.Addr()) || l.Prefix != l.Prefix.Masked():
		return fmt.Errorf("lab prefix %s: want an IPv4 subnet of 127.0.0.0/8, smaller than it, without host bits", l.Prefix)
	case l.N < 1 || l.N > l.size()/2:
		return fmt.Errorf("lab of %d TLS endpoints in %s: want 1 to half its addresses", l.N, l.Prefix)
	case len(l.TLSPorts) == 0 || slices.Contains(l.TLSPorts, 0) || l.ClosedPort == 0 || slices.Contains(l.TLSPorts, l.ClosedPort):
		return errors.New("want at least one TLS port and a distinct closed port, all non-zero")
	}
	return nil
}

// silentOptions are the scenario's knobs, shared by silent and run.
type silentOptions struct {
	Layout     silentLayout  `json:"layout"`
	Rate       int           `json:"rate"`        // --rate for every mode
	Cooldown   time.Duration `json:"cooldown"`    // --cooldown for syn
	ConnectTO  time.Duration `json:"connect_to"`  // --connect-timeout for every mode
	OldSample  int           `json:"old_sample"`  // prefix length of the old behaviour's sample
	CapSyn     time.Duration `json:"cap_syn"`     // wall-clock caps: SIGINT, then the sweep's own counts
	CapConnect time.Duration `json:"cap_connect"` //
	CapOld     time.Duration `json:"cap_old"`     //
	Modes      []string      `json:"modes"`       // syn, connect, old
}

func silentFlags(fs *flag.FlagSet) *silentOptions {
	o := &silentOptions{Layout: silentLayout{Prefix: netip.MustParsePrefix("127.90.0.0/16"), TLSPorts: []uint16{443, 8443}, ClosedPort: 9443}}
	fs.Func("silent-prefix", "silent scenario: the lab's loopback subnet (default 127.90.0.0/16)", func(s string) (err error) {
		o.Layout.Prefix, err = netip.ParsePrefix(s)
		return err
	})
	fs.IntVar(&o.Layout.N, "silent-tls", 2000, "silent scenario: addresses serving TLS")
	fs.IntVar(&o.Rate, "silent-rate", 20000, "silent scenario: --rate for every mode")
	fs.DurationVar(&o.Cooldown, "silent-cooldown", 3*time.Second, "silent scenario: --cooldown for --discovery syn")
	fs.DurationVar(&o.ConnectTO, "silent-connect-timeout", 3*time.Second, "silent scenario: --connect-timeout for every mode")
	fs.IntVar(&o.OldSample, "silent-old-sample", 22, "silent scenario: the old behaviour sweeps the first /N of the lab and is extrapolated (N = the lab's prefix length: no sample)")
	fs.DurationVar(&o.CapSyn, "silent-cap-syn", 45*time.Second, "silent scenario: wall-clock cap of --discovery syn")
	fs.DurationVar(&o.CapConnect, "silent-cap-connect", 120*time.Second, "silent scenario: wall-clock cap of --discovery connect (then extrapolated)")
	fs.DurationVar(&o.CapOld, "silent-cap-old", 45*time.Second, "silent scenario: wall-clock cap of the old behaviour")
	fs.Func("silent-modes", "silent scenario: modes to run, of syn,connect,old (default all)", func(s string) error {
		o.Modes = nil
		for m := range strings.SplitSeq(s, ",") {
			if !slices.Contains([]string{"syn", "syn-noretry", "connect", "old"}, m) {
				return fmt.Errorf("unknown mode %q", m)
			}
			o.Modes = append(o.Modes, m)
		}
		return nil
	})
	o.Modes = []string{"syn", "syn-noretry", "connect", "old"}
	return o
}

// modeResult is one certsweep run of the scenario, as silent-inner reports it.
type modeResult struct {
	Mode        string           `json:"mode"`
	Name        string           `json:"name"`   // short, for the table
	Flags       string           `json:"flags"`  // the mode's certsweep flags, for the table
	Target      string           `json:"target"` // what was swept
	Status      string           `json:"status"` // ok, capped, n/a
	Note        string           `json:"note,omitempty"`
	WallS       float64          `json:"wall_s"`
	CPUS        float64          `json:"cpu_s"`
	RSSMB       float64          `json:"rss_mb"`
	ProbesTotal int64            `json:"probes_total"`
	ProbesDone  int64            `json:"probes_done"`
	Counts      map[string]int64 `json:"counts"` // outcome → probes, as `certsweep sweeps --format json` has them
	NewCerts    int64            `json:"new_certs"`
	ExpectTLS   int              `json:"expect_tls"` // TLS endpoints in Target
	Scale       float64          `json:"scale"`      // full lab probes ÷ Target probes
}

// innerReport is silent-inner's stdout: one JSON document.
type innerReport struct {
	Premise string       `json:"premise"`
	Modes   []modeResult `json:"modes"`
}

// silentRows runs the scenario in a new network namespace and returns its
// table rows. skipped is set (and rows and err are nil) when no namespace
// can be had here.
func silentRows(self, bin, dir string, o *silentOptions) (rows []row, skipped string, err error) {
	if err := o.Layout.validate(); err != nil {
		return nil, "", err
	}
	if o.OldSample < o.Layout.Prefix.Bits() || o.OldSample > 30 {
		return nil, "", fmt.Errorf("-silent-old-sample %d: want %d-30", o.OldSample, o.Layout.Prefix.Bits())
	}
	opts, err := json.Marshal(o)
	if err != nil {
		return nil, "", err
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, "", err
	}
	args := []string{"silent-inner", "-certsweep", abs, "-dir", dir, "-options", string(opts)}
	// A network namespace needs CAP_SYS_ADMIN; without it, a user namespace
	// of our own (mapping us to root in it) gives it, where the kernel
	// allows unprivileged user namespaces.
	var out bytes.Buffer
	var startErrs []string
	for i, attr := range []*syscall.SysProcAttr{
		{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL},
		{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWUSER, Pdeathsig: syscall.SIGKILL,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}},
	} {
		cmd := exec.Command(self, args...)
		cmd.SysProcAttr = attr
		out.Reset()
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Start(); err != nil {
			what := "unshare -n"
			if attr.Cloneflags&syscall.CLONE_NEWUSER != 0 {
				what = "unshare -U -n"
			}
			why := errors.Unwrap(err)
			if errors.Is(err, syscall.ENOSPC) {
				why = errors.New("user namespace limit reached (user.max_user_namespaces)")
			}
			startErrs = append(startErrs, fmt.Sprintf("%s: %v", what, why))
			continue
		}
		ns := "own network namespace"
		if i == 1 {
			ns = "own user and network namespace (unprivileged)"
		}
		if err := cmd.Wait(); err != nil {
			return nil, "", fmt.Errorf("silent-inner: %w", err)
		}
		var rep innerReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			return nil, "", fmt.Errorf("silent-inner said %q: %w", out.String(), err)
		}
		rep.Premise = ns + "; " + rep.Premise
		return silentTable(o, rep), "", nil
	}
	return nil, fmt.Sprintf("no network namespace (%s); run as root or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0)",
		strings.Join(startErrs, "; ")), nil
}

// silent is `certsweep-bench silent`: the scenario alone, as a table.
func silent(args []string) error {
	fs := flag.NewFlagSet("silent", flag.ContinueOnError)
	bin := fs.String("certsweep", "bin/certsweep", "certsweep binary to measure")
	o := silentFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "certsweep-bench-silent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	rows, skipped, err := silentRows(self, *bin, tmp, o)
	if err != nil {
		return err
	}
	if skipped != "" {
		fmt.Println("silent network scenario skipped:", skipped)
		return nil
	}
	printTable(os.Stdout, rows, 1)
	fmt.Printf("\n(scenario wall time %.0f s)\n", time.Since(start).Seconds())
	return nil
}

// silentTable turns the inner report into rows.
func silentTable(o *silentOptions, rep innerReport) []row {
	l := o.Layout
	tlsN, closed, silentN, probes := l.expect(l.Prefix)
	var rows []row
	add := func(scenario, metric, value, target string) {
		rows = append(rows, row{scenario, metric, value, target})
		fmt.Fprintf(os.Stderr, "  %s: %s = %s %s\n", scenario, metric, value, target)
	}
	head := fmt.Sprintf("silent network %s × %s (1 run)", l.Prefix, l.ports())
	add(head, "probes: TLS / closed (RST) / silent", fmt.Sprintf("%d / %d / %d of %d", tlsN, closed, silentN, probes), "")
	add(head, "setup and premise check", rep.Premise, "")
	var oldWall float64 // extrapolated to the whole lab
	for _, m := range rep.Modes {
		if m.Mode == "old" && m.Status != "n/a" && m.ProbesDone > 0 {
			oldWall = m.WallS * float64(m.ProbesTotal) / float64(m.ProbesDone) * m.Scale
		}
	}
	for _, m := range rep.Modes {
		sc := "silent: " + m.Name
		add(sc, "certsweep sweep flags", m.Flags, "")
		if m.Status == "n/a" {
			add(sc, "result", "n/a: "+m.Note, "")
			continue
		}
		// The floor: sending every probe at --rate, then waiting once for the
		// last answers (syn: --cooldown; connect: the last silent connect's
		// --connect-timeout).
		wait, waitName := o.ConnectTO, "connect timeout"
		if strings.HasPrefix(m.Mode, "syn") {
			wait, waitName = o.Cooldown, "cooldown"
		}
		floor := float64(probes)/float64(o.Rate) + wait.Seconds()
		if m.Mode == "syn" && m.Status == "ok" {
			// --rate caps packets, retries included: every silent probe's
			// retry SYN costs a token, and the last one goes out a second
			// after its first SYN.
			silent := m.Counts["silent"]
			retryFloor := float64(int64(probes)+silent)/float64(o.Rate) + 1 + wait.Seconds()
			// The 1.3× target, judged against the floor the default
			// retry allows: with --rate a hard ceiling, probes ÷ rate cannot
			// be met while silent targets get a second SYN (syn-noretry is
			// judged against it below).
			add(sc, "wall s against the floor with its retry SYNs ((probes + silent) ÷ rate + 1 s + cooldown)",
				fmt.Sprintf("%.1f (floor %.1f: %.2f×)", m.WallS, retryFloor, m.WallS/retryFloor),
				verdict(m.WallS <= 1.3*retryFloor, fmt.Sprintf("<= 1.3 × floor = %.1f s", 1.3*retryFloor)))
		}
		wall, how := m.WallS, ""
		switch {
		case m.Status == "capped" && m.ProbesDone > 0:
			wall = m.WallS * float64(m.ProbesTotal) / float64(m.ProbesDone)
			how = fmt.Sprintf("; capped at %.0f s after %d of %d probes, extrapolated", m.WallS, m.ProbesDone, m.ProbesTotal)
		case m.Status == "capped":
			wall, how = 0, fmt.Sprintf("; capped at %.0f s before any probe completed", m.WallS)
		}
		if m.Scale != 1 {
			how += fmt.Sprintf("; swept %s (%d probes, same density) in %.1f s, ×%.0f", m.Target, m.ProbesTotal, m.WallS, m.Scale)
			wall *= m.Scale
		}
		target := ""
		if strings.HasPrefix(m.Mode, "syn") && m.Mode != "syn" && m.Status == "ok" {
			target = verdict(wall <= 1.3*floor, fmt.Sprintf("<= 1.3 × floor = %.1f s", 1.3*floor))
		}
		approx := ""
		if how != "" {
			approx = "≈ "
		}
		add(sc, fmt.Sprintf("wall s, whole lab (floor = probes ÷ rate + %s %s)", waitName, wait),
			fmt.Sprintf("%s%.1f (floor %.1f%s)", approx, wall, floor, how), target)
		if m.WallS > 0 {
			add(sc, "probes/s", fmt.Sprintf("%.0f", float64(m.ProbesDone)/m.WallS), "")
		}
		of := ""
		if m.ProbesDone != int64(probes) {
			of = fmt.Sprintf(" (for %d probes)", m.ProbesDone)
		}
		add(sc, "CPU s", fmt.Sprintf("%.2f%s", m.CPUS, of), "")
		add(sc, "peak RSS MB", fmt.Sprintf("%.0f", m.RSSMB), verdict(m.RSSMB < 150, "< 150"))
		ok := m.Counts["ok"]
		found := fmt.Sprintf("%d of %d", ok, m.ExpectTLS)
		if m.Scale != 1 {
			found += " in " + m.Target
		}
		tgt := ""
		if m.Status == "capped" {
			found += " (capped)"
		} else {
			tgt = verdict(ok == int64(m.ExpectTLS), "all")
		}
		add(sc, "TLS endpoints found (ok)", found, tgt)
		add(sc, "outcomes", outcomes(m.Counts), "")
		if m.Mode == "connect" && oldWall > 0 && wall > 0 {
			add(sc, "speed-up over the old behaviour", fmt.Sprintf("%.1f× (%.0f s vs %.0f s)", oldWall/wall, wall, oldWall), verdict(oldWall/wall >= 10, ">= 10×"))
		}
	}
	return rows
}

func outcomes(c map[string]int64) string {
	var keys []string
	for k, v := range c {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return int(c[b] - c[a]) })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
	}
	return strings.Join(parts, ", ")
}

// silentInner runs in the new namespace: brings lo up, starts the lab,
// sweeps it once per mode and prints an innerReport.
func silentInner(args []string) error {
	fs := flag.NewFlagSet("silent-inner", flag.ContinueOnError)
	bin := fs.String("certsweep", "bin/certsweep", "certsweep binary to measure")
	dir := fs.String("dir", os.TempDir(), "directory for the sweeps' databases")
	optsJSON := fs.String("options", "", "the scenario's options, as JSON (from silent or run)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := silentFlags(flag.NewFlagSet("", flag.ContinueOnError)) // the defaults
	if *optsJSON != "" {
		if err := json.Unmarshal([]byte(*optsJSON), o); err != nil {
			return fmt.Errorf("-options: %w", err)
		}
	}
	if err := o.Layout.validate(); err != nil {
		return err
	}
	if err := isolated(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	progress := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "silent network: "+format+"\n", a...) }

	l := o.Layout
	t0 := time.Now()
	line, stopLab, err := startLab(self, "silent-lab", "-layout", mustJSON(l))
	if err != nil {
		return fmt.Errorf("the silent lab did not start (see above): %w", err)
	}
	defer stopLab()
	premise := strings.TrimSpace(strings.TrimPrefix(line, "READY "))
	progress("lab up in %.1f s: %s", time.Since(t0).Seconds(), premise)

	rep := innerReport{Premise: premise}
	full := l.Prefix.String()
	sample := netip.PrefixFrom(l.Prefix.Addr(), o.OldSample)
	rate := strconv.Itoa(o.Rate)
	common := []string{"--quiet", "--allow-empty", "--rate", rate, "--connect-timeout", o.ConnectTO.String(), "--ports", l.ports()}
	known := sweepFlagsOf(*bin)
	for i, mode := range o.Modes {
		var variants []variant // in order of preference; the first the binary supports is run
		var name string
		target, limit := full, o.CapConnect
		switch mode {
		case "syn":
			name, limit = "syn", o.CapSyn
			variants = []variant{
				{flags: []string{"--discovery", "syn", "--cooldown", o.Cooldown.String()}},
				{flags: []string{"--discovery", "syn"}, note: "no --cooldown: its default"},
			}
		case "syn-noretry":
			// One SYN per target: the floor (probes ÷ rate +
			// cooldown) assumes no retries.
			name, limit = "syn, no retries", o.CapSyn
			variants = []variant{
				{flags: []string{"--discovery", "syn", "--syn-retries", "0", "--cooldown", o.Cooldown.String()}},
			}
		case "connect":
			name = "connect (its default pool)"
			variants = []variant{
				{flags: []string{"--discovery", "connect"}},
				// A binary with the connect pool but without --discovery: the
				// pool is what it does.
				{needs: []string{"--connect-concurrency"}, note: "binary without --discovery: its connect pool"},
			}
		case "old":
			name, target, limit = "old behaviour (256 workers)", sample.String(), o.CapOld
			variants = []variant{
				{flags: []string{"--discovery", "connect", "--connect-concurrency", "256", "--concurrency", "256"}},
				{flags: []string{"--connect-concurrency", "256", "--concurrency", "256"}, note: "binary without --discovery"},
				// A binary from before the connect pool: what it always did.
				{flags: []string{"--concurrency", "256"}, without: []string{"--connect-concurrency"}, note: "binary without --connect-concurrency"},
			}
		}
		tgtPrefix := netip.MustParsePrefix(target)
		expTLS, _, _, expProbes := l.expect(tgtPrefix)
		_, _, _, fullProbes := l.expect(l.Prefix)
		res := modeResult{Mode: mode, Name: name, Target: target, ExpectTLS: expTLS, Scale: float64(fullProbes) / float64(expProbes)}
		var notSupported []string
		var runnable []variant
		for _, v := range variants {
			if missing := v.missing(known); len(missing) > 0 {
				for _, f := range missing {
					if !slices.Contains(notSupported, f) && !slices.Contains(v.without, f) {
						notSupported = append(notSupported, f)
					}
				}
				continue
			}
			runnable = append(runnable, v)
		}
		if len(runnable) == 0 {
			res.Flags = strings.Join(variants[0].flags, " ")
			res.Status, res.Note = "n/a", "flag not supported ("+strings.Join(notSupported, ", ")+")"
			progress("%s: n/a: %s", mode, res.Note)
		}
		for vi, vr := range runnable {
			v := vr.flags
			res.Flags = strings.Join(slices.Concat(v, []string{"--rate", rate, "--connect-timeout", o.ConnectTO.String()}), " ")
			if vr.note != "" {
				res.Flags += " (" + vr.note + ")"
			}
			db := filepath.Join(*dir, fmt.Sprintf("silent-%d-%s-%d.db", i, mode, vi))
			args := append(append(append([]string{"sweep", "--db", db}, common...), v...), target)
			progress("%s: certsweep %s (cap %s)", mode, strings.Join(args, " "), limit)
			m, code, stderr, capped, err := measureCapped(limit, *bin, args...)
			if code == 2 && !capped {
				if f := undefinedFlag(stderr); f != "" {
					if !slices.Contains(notSupported, f) {
						notSupported = append(notSupported, f)
					}
					res.Status, res.Note = "n/a", "flag not supported ("+strings.Join(notSupported, ", ")+")"
					progress("%s: n/a: %s", mode, res.Note)
					continue
				}
				res.Status, res.Note = "n/a", "certsweep rejected the flags: "+firstLine(stderr)
				progress("%s: %s", mode, res.Note)
				break
			}
			if err != nil && !(capped && code == 130) {
				// Reported, not fatal: the rest of make bench goes on.
				res.Status, res.Note = "n/a", fmt.Sprintf("certsweep failed (exit %d): %s", code, firstLine(stderr))
				progress("%s: %s", mode, res.Note)
				break
			}
			res.Status = map[bool]string{true: "capped", false: "ok"}[capped]
			res.WallS, res.CPUS, res.RSSMB = m.wall.Seconds(), m.cpu.Seconds(), float64(m.rssKB)/1024
			if err := sweepStats(*bin, db, &res); err != nil {
				res.Status, res.Note = "n/a", err.Error()
				progress("%s: %s", mode, res.Note)
				break
			}
			os.Remove(db)
			progress("%s: %s in %.1f s, %d of %d probes, CPU %.1f s, peak RSS %.0f MB: %s",
				mode, res.Status, res.WallS, res.ProbesDone, res.ProbesTotal, res.CPUS, res.RSSMB, outcomes(res.Counts))
			break
		}
		rep.Modes = append(rep.Modes, res)
	}
	stopLab()
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// variant is one way to ask a certsweep binary for a mode.
type variant struct {
	flags   []string // certsweep sweep flags
	needs   []string // flags the binary must have besides those in flags
	without []string // flags the binary must not have
	note    string   // for the table, when this is not the first choice
}

// missing is what keeps the binary whose sweep flags are known from running
// v: flags it lacks, or has and must not. With known nil (its help could not
// be read) a variant is tried when it needs nothing beyond its own flags.
func (v variant) missing(known map[string]bool) []string {
	var out []string
	if known == nil {
		if len(v.needs) > 0 || len(v.without) > 0 {
			out = append(out, v.needs...)
			return append(out, v.without...)
		}
		return nil
	}
	for _, f := range slices.Concat(v.flags, v.needs) {
		if strings.HasPrefix(f, "--") && !known[f] {
			out = append(out, f)
		}
	}
	for _, f := range v.without {
		if known[f] {
			out = append(out, f)
		}
	}
	return out
}

var helpFlagRe = regexp.MustCompile(`(?m)^\s+(--[\w-]+)`)

// sweepFlagsOf reads the flags `certsweep sweep --help` lists, or nil.
func sweepFlagsOf(bin string) map[string]bool {
	out, err := exec.Command(bin, "sweep", "--help").Output()
	if err != nil {
		return nil
	}
	known := map[string]bool{}
	for _, m := range helpFlagRe.FindAllStringSubmatch(string(out), -1) {
		known[m[1]] = true
	}
	if !known["--concurrency"] {
		return nil // not the help we expect
	}
	return known
}

var undefinedRe = regexp.MustCompile(`flag provided but not defined: -+([\w-]+)`)

// undefinedFlag is the flag a usage error names as unknown, or "".
func undefinedFlag(stderr string) string {
	if m := undefinedRe.FindStringSubmatch(stderr); m != nil {
		return "--" + m[1]
	}
	return ""
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// sweepStats reads the (only) sweep of db through `certsweep sweeps --format json`.
func sweepStats(bin, db string, res *modeResult) error {
	out, err := exec.Command(bin, "sweeps", "--db", db, "--format", "json").Output()
	if err != nil {
		return fmt.Errorf("certsweep sweeps: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sw map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sw); err != nil {
		return fmt.Errorf("certsweep sweeps said %q: %w", out, err)
	}
	res.Counts = map[string]int64{}
	for k, v := range sw {
		n, ok := v.(float64)
		if !ok {
			continue
		}
		switch k {
		case "id":
		case "probes_total":
			res.ProbesTotal = int64(n)
		case "probes_done":
			res.ProbesDone = int64(n)
		case "new_certs":
			res.NewCerts = int64(n)
		default:
			res.Counts[k] = int64(n)
		}
	}
	return nil
}

// measureCapped is measure with a wall-clock limit: past it the child gets
// SIGINT (certsweep commits what it observed and exits 130), and SIGKILL
// 20 s later. It also returns the exit code and the head of stderr.
func measureCapped(limit time.Duration, name string, args ...string) (m measurement, code int, stderr string, capped bool, err error) {
	cmd := exec.Command(name, args...)
	out, errOut := &headBuffer{max: 64 << 10}, &headBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, errOut
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return m, -1, "", false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(limit):
		capped = true
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case werr = <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			werr = <-done
		}
	}
	m = measurement{wall: time.Since(start), stdout: out.String()}
	if st := cmd.ProcessState; st != nil {
		code = st.ExitCode()
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			m.rssKB = ru.Maxrss
		}
	}
	if werr != nil {
		werr = fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), werr, out.String(), errOut.String())
	}
	return m, code, errOut.String(), capped, werr
}

// isolated checks that this process is in a network namespace of its own:
// one interface, lo, and brings lo up. The lab binds wildcard addresses, so
// it must never run in a namespace with a way out.
func isolated() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifs {
		if i.Name != "lo" {
			return fmt.Errorf("this network namespace has interface %s: the silent lab only runs in a namespace of its own (certsweep-bench silent starts one; by hand: unshare -n certsweep-bench silent-inner)", i.Name)
		}
	}
	return loUp()
}

// loUp sets IFF_UP on lo (ip link set lo up); the kernel then adds 127.0.0.1/8,
// which makes all of 127.0.0.0/8 local.
func loUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return fmt.Errorf("lo: SIOCGIFFLAGS: %w", e)
	}
	ifr.flags |= syscall.IFF_UP
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return fmt.Errorf("bring lo up: %w", e)
	}
	return nil
}

func setReusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1) }); err != nil {
		return err
	}
	return serr
}

// silentListener binds INADDR_ANY:port with SO_REUSEPORT and a backlog of
// 0, never to be accepted from: once one connection waits in its accept
// queue, the kernel drops every further SYN it would take.
func silentListener(port uint16) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, soReusePort, 1); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("SO_REUSEPORT: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(port)}); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("bind 0.0.0.0:%d: %w", port, err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("listen 0.0.0.0:%d: %w", port, err)
	}
	return fd, nil
}

// silentLab serves the scenario's listeners until stdin closes. Its first
// line of output is "READY " and what the premise check found.
func silentLab(args []string) error {
	fs := flag.NewFlagSet("silent-lab", flag.ContinueOnError)
	layoutJSON := fs.String("layout", "", "the lab's layout, as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var l silentLayout
	if err := json.Unmarshal([]byte(*layoutJSON), &l); err != nil {
		return fmt.Errorf("-layout: %w", err)
	}
	if err := l.validate(); err != nil {
		return err
	}
	if err := isolated(); err != nil {
		return err
	}
	// The wildcard listeners first, then the endpoints: every bind on a port
	// has SO_REUSEPORT, so the order does not matter to the kernel.
	for _, p := range l.TLSPorts {
		if _, err := silentListener(p); err != nil {
			return err
		}
	}
	ca, err := scannertest.NewCA("certsweep silent lab")
	if err != nil {
		return err
	}
	lc := net.ListenConfig{Control: setReusePort}
	for k := range l.N {
		ep := l.endpoint(k)
		name := fmt.Sprintf("host-%d.silent.lab.test", k)
		cert, err := ca.Leaf(scannertest.CertOptions{CommonName: name, DNSNames: []string{name}, IPs: []net.IP{ep.Addr().AsSlice()}})
		if err != nil {
			return err
		}
		ln, err := lc.Listen(context.Background(), "tcp", ep.String())
		if err != nil {
			return err
		}
		go serveTLS(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	// Fill each wildcard listener's accept queue from 127.0.0.1 (outside the
	// swept prefix): connect until a connect hangs. With a backlog of 0 the
	// first connection fills it.
	var fills []string
	var keep []net.Conn
	for _, p := range l.TLSPorts {
		n := 0
		for range 16 {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p).String(), 250*time.Millisecond)
			if err != nil {
				if !isTimeout(err) {
					return fmt.Errorf("fill 0.0.0.0:%d: %w", p, err)
				}
				break
			}
			keep = append(keep, c)
			n++
		}
		if n == 0 || n == 16 {
			return fmt.Errorf("fill 0.0.0.0:%d: %d connects, then none hung: the accept queue does not fill", p, n)
		}
		fills = append(fills, fmt.Sprintf("%d:%d", p, n))
	}
	premise, err := checkSilence(l)
	if err != nil {
		return fmt.Errorf("premise: %w", err)
	}
	fmt.Printf("READY %s; accept queues full after (port:connects) %s\n", premise, strings.Join(fills, " "))
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = keep
	return nil
}

// checkSilence connects to a few addresses of each kind and says what
// happened; an error when any of them does not behave as the scenario needs.
func checkSilence(l silentLayout) (string, error) {
	isTLS := map[netip.AddrPort]bool{}
	for k := range l.N {
		isTLS[l.endpoint(k)] = true
	}
	base := l.Prefix.Addr().As4()
	randomAddr := func() netip.Addr {
		for {
			off := rand.IntN(l.size())
			v := (uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])) + uint32(off)
			a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			if !isTLS[netip.AddrPortFrom(a, l.TLSPorts[0])] && (len(l.TLSPorts) < 2 || !isTLS[netip.AddrPortFrom(a, l.TLSPorts[1])]) {
				return a
			}
		}
	}
	const wait = 300 * time.Millisecond
	var silentMS, tlsMS, closedMS []string
	for _, p := range l.TLSPorts {
		for range 2 {
			ap := netip.AddrPortFrom(randomAddr(), p)
			start := time.Now()
			c, err := net.DialTimeout("tcp", ap.String(), wait)
			if err == nil {
				c.Close()
				return "", fmt.Errorf("%s (no listener of its own) accepted a connection: the wildcard listener's queue is not full", ap)
			}
			if !isTimeout(err) {
				return "", fmt.Errorf("%s: want silence, got %w", ap, err)
			}
			silentMS = append(silentMS, fmt.Sprintf("%s silent (no answer in %.0f ms)", ap, time.Since(start).Seconds()*1000))
		}
	}
	for _, k := range []int{0, 3, l.N - 1} {
		if k >= l.N {
			continue
		}
		ap := l.endpoint(k)
		start := time.Now()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", ap.String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return "", fmt.Errorf("TLS endpoint %s: %w", ap, err)
		}
		c.Close()
		tlsMS = append(tlsMS, fmt.Sprintf("%s TLS in %.1f ms", ap, time.Since(start).Seconds()*1000))
	}
	for _, a := range []netip.Addr{l.endpoint(0).Addr(), randomAddr()} {
		ap := netip.AddrPortFrom(a, l.ClosedPort)
		c, err := net.DialTimeout("tcp", ap.String(), wait)
		if err == nil {
			c.Close()
			return "", fmt.Errorf("closed port %s accepted a connection", ap)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return "", fmt.Errorf("closed port %s: want refused, got %w", ap, err)
		}
		closedMS = append(closedMS, ap.String()+" refused")
	}
	return fmt.Sprintf("held for %d silent, %d TLS, %d closed probes, e.g. ", len(silentMS), len(tlsMS), len(closedMS)) +
		strings.Join(slices.Concat(silentMS[:1], tlsMS[:1], closedMS[:1]), ", "), nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serveTLS completes a handshake on each connection, then waits for the
// client to hang up, as scannertest's servers do.
func serveTLS(ln net.Listener, cfg *tls.Config) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // EMFILE and the like: keep serving
			continue
		}
		go func() {
			defer c.Close()
			tc := tls.Server(c, cfg)
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			if tc.Handshake() == nil {
				_, _ = tc.Read(make([]byte, 1))
			}
		}()
	}
}
