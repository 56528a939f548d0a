package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// measurement is one child process run.
type measurement struct {
	wall   time.Duration
	cpu    time.Duration // user + system
	rssKB  int64
	stdout string
}

// measure runs a command to completion and reports its wall time, CPU time
// and peak RSS (from the kernel's rusage of the child).
func measure(name string, args ...string) (measurement, error) {
	return measureTo(nil, name, args...)
}

// measureTo is measure with stdout sent to a file (nil: kept in memory, head only).
func measureTo(stdout *os.File, name string, args ...string) (measurement, error) {
	cmd := exec.Command(name, args...)
	// Keep only the head of the output: a child forked while this process
	// holds a large buffer would inherit its RSS high-water mark (Linux
	// carries it across fork+exec), inflating the child's peak RSS.
	out, errOut := &headBuffer{max: 64 << 10}, &headBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, errOut
	if stdout != nil {
		cmd.Stdout = stdout // straight to the file: no copying through this process
	}
	start := time.Now()
	err := cmd.Run()
	m := measurement{wall: time.Since(start), stdout: out.String()}
	if st := cmd.ProcessState; st != nil {
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			m.rssKB = ru.Maxrss
		}
	}
	if err != nil {
		return m, fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return m, nil
}

// headBuffer keeps the first max bytes written to it and drops the rest.
type headBuffer struct {
	bytes.Buffer
	max int
}

func (b *headBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

var okRe = regexp.MustCompile(`\bok (\d+)`)

func okCount(stdout string) int64 {
	m := okRe.FindStringSubmatch(stdout)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

type row struct{ scenario, metric, value, target string }

func runSuite(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	bin := fs.String("certsweep", "bin/certsweep", "certsweep binary to measure")
	runs := fs.Int("runs", 3, "runs per scenario (the median is reported)")
	labN := fs.Int("lab", 2000, "lab endpoints")
	conc := fs.Int("concurrency", 64, "handshakes in flight, certsweep and baseline alike")
	reportN := fs.Int("report-observations", 1_000_000, "observations in the report database")
	silentOn := fs.Bool("silent", true, "run the silent-network scenario (a network namespace of its own; 1-2 minutes, at most about 3)")
	silentOpts := silentFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "certsweep-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var rows []row
	add := func(scenario, metric, value, target string) {
		rows = append(rows, row{scenario, metric, value, target})
		fmt.Fprintf(os.Stderr, "  %s: %s = %s %s\n", scenario, metric, value, target)
	}
	fmt.Fprintf(os.Stderr, "certsweep-bench: %d runs per scenario\n", *runs)

	// 1. Handshakes: a lab in its own process, swept by certsweep and by the baseline.
	line, stopLab, err := startLab(self, "lab", "-n", strconv.Itoa(*labN))
	if err != nil {
		return fmt.Errorf("lab did not start: %w", err)
	}
	defer stopLab()
	var rng string
	var port int
	if _, err := fmt.Sscanf(line, "%s %d", &rng, &port); err != nil {
		return fmt.Errorf("lab said %q: %w", line, err)
	}
	fmt.Fprintf(os.Stderr, "lab: %d endpoints at %s port %d\n", *labN, rng, port)
	var csRate, csCPU, csRSS, blRate, blCPU, blRSS, dfRate, dfCPU []float64
	for i := range *runs {
		// Not --quiet: the summary on stdout carries the counts (--quiet prints nothing on success).
		m, err := measure(*bin, "sweep", "--db", filepath.Join(tmp, fmt.Sprintf("hs-%d.db", i)),
			"--rate", "0", "--concurrency", strconv.Itoa(*conc), "--ports", strconv.Itoa(port), rng)
		if err != nil {
			return err
		}
		ok := okCount(m.stdout)
		if ok == 0 {
			return fmt.Errorf("certsweep completed no handshakes:\n%s", m.stdout)
		}
		csRate = append(csRate, float64(ok)/m.wall.Seconds())
		csCPU = append(csCPU, float64(m.cpu.Microseconds())/float64(ok))
		csRSS = append(csRSS, float64(m.rssKB)/1024)
		// The baseline offers the same key-exchange groups as certsweep, so
		// that the ratio measures certsweep's own overhead; crypto/tls with
		// its defaults (which add ML-KEM) is shown for reference.
		b, err := measure(self, "baseline", "-classical", "-range", rng, "-port", strconv.Itoa(port), "-concurrency", strconv.Itoa(*conc))
		if err != nil {
			return err
		}
		bok := okCount(b.stdout)
		if bok == 0 {
			return fmt.Errorf("baseline completed no handshakes:\n%s", b.stdout)
		}
		blRate = append(blRate, float64(bok)/b.wall.Seconds())
		blCPU = append(blCPU, float64(b.cpu.Microseconds())/float64(bok))
		blRSS = append(blRSS, float64(b.rssKB)/1024)
		d, err := measure(self, "baseline", "-range", rng, "-port", strconv.Itoa(port), "-concurrency", strconv.Itoa(*conc))
		if err != nil {
			return err
		}
		if dok := okCount(d.stdout); dok > 0 {
			dfRate = append(dfRate, float64(dok)/d.wall.Seconds())
			dfCPU = append(dfCPU, float64(d.cpu.Microseconds())/float64(dok))
		}
	}
	stopLab() // before the other scenarios: they measure alone
	rate, cpu, bRate, bCPU := median(csRate), median(csCPU), median(blRate), median(blCPU)
	add("handshakes", "certsweep handshakes/s", fmt.Sprintf("%.0f", rate), "")
	add("handshakes", "baseline handshakes/s (same groups)", fmt.Sprintf("%.0f", bRate), "")
	add("handshakes", "crypto/tls defaults handshakes/s (+ML-KEM)", fmt.Sprintf("%.0f", median(dfRate)), "")
	add("handshakes", "throughput certsweep/baseline", fmt.Sprintf("%.2f", rate/bRate), verdict(rate/bRate >= 0.9, ">= 0.90"))
	add("handshakes", "certsweep CPU µs/handshake", fmt.Sprintf("%.0f", cpu), "")
	add("handshakes", "baseline CPU µs/handshake (same groups)", fmt.Sprintf("%.0f", bCPU), "")
	add("handshakes", "crypto/tls defaults CPU µs/handshake", fmt.Sprintf("%.0f", median(dfCPU)), "")
	add("handshakes", "CPU certsweep/baseline", fmt.Sprintf("%.2f", cpu/bCPU), verdict(cpu/bCPU <= 1.2, "<= 1.20"))
	add("handshakes", "certsweep peak RSS MB", fmt.Sprintf("%.0f", median(csRSS)), verdict(median(csRSS) < 150, "< 150"))
	add("handshakes", "baseline peak RSS MB", fmt.Sprintf("%.0f", median(blRSS)), "")

	// 2. Dead space: closed loopback ports, a /20 and a /12.
	for _, space := range []string{"127.80.0.0/20", "127.64.0.0/12"} {
		var rates, rss []float64
		var probes int64
		for i := range *runs {
			db := filepath.Join(tmp, fmt.Sprintf("dead-%d.db", i))
			m, err := measure(*bin, "sweep", "--db", db, "--allow-empty", "--rate", "0", "--concurrency", "256", "--ports", "1", space)
			if err != nil {
				return err
			}
			probes = refusedCount(m.stdout)
			rates = append(rates, float64(probes)/m.wall.Seconds())
			rss = append(rss, float64(m.rssKB)/1024)
			os.Remove(db)
		}
		add("dead space "+space, fmt.Sprintf("probes/s (%d probes)", probes), fmt.Sprintf("%.0f", median(rates)), verdict(median(rates) >= 20000, ">= 20000"))
		add("dead space "+space, "peak RSS MB", fmt.Sprintf("%.0f", median(rss)), verdict(median(rss) < 150, "< 150"))
	}

	// 2b. A mostly silent network, in a network namespace of its own, swept
	// by each discovery mode (silent.go). Skipped, with one line saying why,
	// where no namespace can be had; a failure is reported, not fatal.
	if *silentOn {
		srows, skipped, err := silentRows(self, *bin, tmp, silentOpts)
		switch {
		case err != nil: // reported; the rest of the suite goes on
			fmt.Fprintln(os.Stderr, "certsweep-bench: silent network scenario failed:", err)
			add("silent network", "failed", firstLine(err.Error()), "")
		case skipped != "":
			fmt.Fprintln(os.Stderr, "certsweep-bench: silent network scenario skipped:", skipped)
			add("silent network", "skipped", skipped, "")
		default:
			rows = append(rows, srows...)
		}
	}

	// 3. Store ingest through the store's own API, and bytes on disk.
	const ingestN, ingestCerts = 200_000, 10_000
	var ingest, ingestRSS []float64
	var dbBytes int64
	for i := range *runs {
		db := filepath.Join(tmp, fmt.Sprintf("ingest-%d.db", i))
		m, err := measure(self, "synth", "-db", db, "-n", strconv.Itoa(ingestN), "-certs", strconv.Itoa(ingestCerts))
		if err != nil {
			return err
		}
		var n int
		var secs, r float64
		if _, err := fmt.Sscanf(m.stdout, "observations %d seconds %f rate %f", &n, &secs, &r); err != nil {
			return fmt.Errorf("synth said %q: %w", m.stdout, err)
		}
		ingest = append(ingest, r)
		ingestRSS = append(ingestRSS, float64(m.rssKB)/1024)
		if fi, err := os.Stat(db); err == nil {
			dbBytes = fi.Size()
		}
		os.Remove(db)
	}
	certsOnly := filepath.Join(tmp, "certs-only.db")
	if _, err := measure(self, "synth", "-db", certsOnly, "-n", strconv.Itoa(ingestCerts), "-certs", strconv.Itoa(ingestCerts)); err != nil {
		return err
	}
	fi, err := os.Stat(certsOnly)
	if err != nil {
		return err
	}
	perObs := float64(dbBytes-fi.Size()) / float64(ingestN-ingestCerts)
	perCert := (float64(fi.Size()) - perObs*ingestCerts) / (ingestCerts + 1)
	add("store ingest", "observations/s (2-certificate chains)", fmt.Sprintf("%.0f", median(ingest)), verdict(median(ingest) >= 50000, ">= 50000"))
	add("store ingest", "peak RSS MB", fmt.Sprintf("%.0f", median(ingestRSS)), verdict(median(ingestRSS) < 150, "< 150"))
	add("store ingest", "database bytes per observation", fmt.Sprintf("%.0f", perObs), "")
	add("store ingest", "database bytes per certificate", fmt.Sprintf("%.0f", perCert), "")

	// 4. Report over a large synthetic sweep.
	reportDB := filepath.Join(tmp, "report.db")
	if _, err := measure(self, "synth", "-db", reportDB, "-n", strconv.Itoa(*reportN), "-certs", "10000"); err != nil {
		return err
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devNull.Close()
	var secs, rss []float64
	for range *runs {
		m, err := measureTo(devNull, *bin, "report", "--db", reportDB, "--format", "csv", "--no-system-roots")
		if err != nil {
			return err
		}
		secs = append(secs, m.wall.Seconds())
		rss = append(rss, float64(m.rssKB)/1024)
	}
	add(fmt.Sprintf("report --format csv (%d observations)", *reportN), "seconds", fmt.Sprintf("%.1f", median(secs)), verdict(median(secs) < 30, "< 30"))
	add(fmt.Sprintf("report --format csv (%d observations)", *reportN), "peak RSS MB", fmt.Sprintf("%.0f", median(rss)), verdict(median(rss) < 150, "< 150"))

	printTable(os.Stdout, rows, *runs)
	return nil
}

var refusedRe = regexp.MustCompile(`(\d+) of \d+ probes`)

func refusedCount(stdout string) int64 {
	m := refusedRe.FindStringSubmatch(stdout)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func verdict(pass bool, target string) string {
	if pass {
		return "target " + target + ": met"
	}
	return "target " + target + ": MISSED"
}

func printTable(w io.Writer, rows []row, runs int) {
	fmt.Fprintf(w, "certsweep benchmark: %s, %d cores, %s, median of %d runs\n\n", cpuModel(), runtime.NumCPU(), runtime.Version(), runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "| scenario\t| metric\t| value\t| target\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|")
	for _, r := range rows {
		fmt.Fprintf(tw, "| %s\t| %s\t| %s\t| %s\t|\n", r.scenario, r.metric, r.value, r.target)
	}
	tw.Flush()
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// startLab starts a lab child process (self with args), which serves until
// its stdin closes, and returns the first line it prints (what it serves)
// and the function that stops it and waits for it.
func startLab(self string, args ...string) (line string, stop func(), err error) {
	lab := exec.Command(self, args...)
	labIn, err := lab.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	labOut, err := lab.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	lab.Stderr = os.Stderr
	if err := lab.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { labIn.Close(); lab.Wait() }
	if line, err = bufio.NewReader(labOut).ReadString('\n'); err != nil {
		stop()
		return "", nil, err
	}
	return line, stop, nil
}
