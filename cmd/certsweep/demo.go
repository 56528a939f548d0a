package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

const (
	defaultDemoDB     = "certsweep-demo.db"
	defaultDemoSubnet = "127.77.0.0/24"
	defaultDemoPort   = 8443 // unprivileged, so the demo runs as any user
	maxDemoLab        = 250
	demoReportFile    = "demo-report.csv"
)

// minDemoLab is the smallest lab that still shows every defect once.
var minDemoLab = len(scannertest.DemoKinds)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "sweep a built-in lab of TLS endpoints on loopback and walk the weekly loop",
		Description: `Starts a lab of TLS listeners on loopback (default ` + defaultDemoSubnet + ` port ` + fmt.Sprint(defaultDemoPort) + `)
presenting varied certificates: valid, expired, expiring in 7 days, self-signed,
RSA-1024, SHA-1-signed, TLS 1.0-only, TLS 1.3-only, wrong host name, a full
three-certificate chain, an SNI-only virtual host, a peer that never speaks and
an incomplete chain; and, on their own ports, services that reach TLS through
their protocol: SMTP STARTTLS (2525), LDAP StartTLS (10389), PostgreSQL (15432)
and an SMTP server that offers no TLS at all. It sweeps the whole subnet into a
database as a sweep named "demo", exactly as certsweep sweep would, and prints the certificates found and
the high and critical findings. It then prints the next steps of a weekly loop
(findings, track, sweep again, diff, report) as commands that work as printed.

Every run issues a new lab CA and new certificates with new keys on the same
addresses and port: a second run into the same database looks exactly like a
week in which every certificate was renewed, and certsweep diff shows it.
The lab's root CA is written as PEM to --write-ca (default: beside the
database, <db without extension>-ca.pem) for --ca-bundle.

The demo uses its own database (default ` + defaultDemoDB + `, not CERTSWEEP_DB) so
lab certificates never mix with a real inventory. It only ever listens on and
sweeps loopback: --subnet must be an IPv4 subnet of 127.0.0.0/8.

Examples:
   certsweep demo
   certsweep demo --db /tmp/lab.db && certsweep certs --db /tmp/lab.db --format csv
   certsweep demo --subnet 127.78.0.0/24   # when ` + defaultDemoSubnet + ` port ` + fmt.Sprint(defaultDemoPort) + ` is taken
   certsweep demo --serve 10m     # keep the lab up to sweep it yourself`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "db", Value: defaultDemoDB, Usage: "SQLite database `PATH` for the demo"},
			&cli.IntFlag{Name: "lab-size", Value: 24, Usage: fmt.Sprintf("start `N` lab endpoints (%d-%d)", minDemoLab, maxDemoLab)},
			&cli.StringFlag{Name: "subnet", Value: defaultDemoSubnet, Usage: "loopback `CIDR` the lab listens on, an IPv4 /16 to /28 inside 127.0.0.0/8 with room for --lab-size; keep it the same between runs to diff them"},
			&cli.UintFlag{Name: "port", Value: defaultDemoPort, Usage: "`PORT` every lab endpoint listens on (1024-65535)"},
			&cli.StringFlag{Name: "write-ca", Usage: "write the lab's root CA certificate as PEM to `FILE`, for --ca-bundle (default: <db without extension>-ca.pem)"},
			&cli.DurationFlag{Name: "serve", Usage: "keep the lab running for `DURATION` after the sweep, to sweep it yourself (0 = stop at once)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output or sweep summary (the inventory, findings and next steps are still printed)"},
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	size := c.Int("lab-size")
	if size < minDemoLab || size > maxDemoLab {
		return usagef("--lab-size %d: must be %d-%d", size, minDemoLab, maxDemoLab)
	}
	prefix, err := demoSubnet(c.String("subnet"), size)
	if err != nil {
		return err
	}
	port := c.Uint("port")
	if port < 1024 || port > 65535 {
		return usageError(fmt.Errorf("--port %d: must be 1024-65535", port), "ports below 1024 need root; the demo runs as any user")
	}
	for _, p := range scannertest.DemoPeers {
		if uint(p.Port) == port {
			return usagef("--port %d: the lab's %s endpoint uses that port; pick another", port, p.Kind)
		}
	}
	dbPath := c.String("db")
	caPath := c.String("write-ca")
	if caPath == "" {
		caPath = demoCAPath(dbPath)
	}
	if filepath.Clean(caPath) == filepath.Clean(dbPath) {
		return usagef("--write-ca %s: that is the database", caPath)
	}
	// The CA goes to a temporary file beside its destination now (a bad path
	// is a usage error before anything is written) and is renamed into place
	// once the sweep is complete.
	caFile, err := os.CreateTemp(filepath.Dir(caPath), "."+filepath.Base(caPath)+".*")
	if err != nil {
		return usageError(fmt.Errorf("--write-ca %s: %w", caPath, errors.Unwrap(err)), "check that its directory exists and is writable")
	}
	defer os.Remove(caFile.Name()) // no-op after the rename
	defer caFile.Close()

	stderr, stdout := c.App.ErrWriter, c.App.Writer
	fmt.Fprintf(stderr, "certsweep: starting a lab of %d TLS endpoints on %s port %d (loopback)...\n", size, prefix, port)
	lab, err := scannertest.NewLabAt(prefix, uint16(port), size)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return failure(fmt.Errorf("cannot start the demo lab on %s port %d: an address is in use (another certsweep demo, or a service listening on port %d of every address): %w", prefix, port, port, err),
				fmt.Sprintf("pass another loopback subnet, e.g. --subnet %s, or another --port; pass the same ones on every run to diff the runs", otherDemoSubnet(prefix)))
		}
		return failure(fmt.Errorf("start the demo lab: %w", err), "")
	}
	defer lab.Close()
	if err := lab.StartPeers(scannertest.DemoPeers); err != nil {
		return failure(fmt.Errorf("start the demo lab: %w", err),
			"another service may hold one of the lab's protocol ports on these addresses; pass another --subnet")
	}

	if err := writeCAPEM(caFile, lab.CA.Root.DER); err != nil {
		return failure(fmt.Errorf("write %s: %w", caPath, err), "")
	}
	in, err := scanner.ParseInput(prefix.String(), false)
	if err != nil {
		return err
	}
	s := sweepSettings{
		dbPath: dbPath, name: "demo", quiet: c.Bool("quiet"),
		tokens: []string{prefix.String()}, inputs: []scanner.Input{in},
		portsText: demoPorts(lab.Port),
		cfg:       scanner.DefaultConfig(), progressPeriod: 2 * time.Second,
	}
	if s.ports, err = setProtocols(s.cfg.Prober, s.portsText, "auto"); err != nil {
		return err
	}
	// Closed loopback addresses answer at once: pace a large subnet faster so
	// that no demo sweep takes more than a few seconds.
	s.cfg.Rate, s.cfg.Concurrency = max(500, scannertest.LabCapacity(prefix)/2), 64
	s.cfg.Prober.HandshakeTimeout = 2 * time.Second // the lab's stalling peer costs this much
	s.cfg.Seed = rand.Uint64()
	id, err := runSweep(c.Context, stdout, stderr, s)
	if err != nil {
		return err
	}
	if err := os.Rename(caFile.Name(), caPath); err != nil {
		return failure(fmt.Errorf("write %s: %w", caPath, err), "")
	}
	fmt.Fprintf(stderr, "certsweep: wrote the lab's root CA to %s (pass it as --ca-bundle)\n", caPath)

	db, err := openDB(c.Context, dbPath, false)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "\nCertificates presented in sweep %d:\n", id)
	if err := listCerts(c, "table", db, store.CertFilter{SweepID: id}); err != nil {
		return err
	}
	if err := demoFindings(c, db, id, lab); err != nil {
		return err
	}
	fp, err := demoFingerprint(c.Context, db, lab)
	if err != nil {
		return err
	}
	printDemoNext(stdout, c, dbPath, caPath, fp)
	if d := c.Duration("serve"); d > 0 {
		fmt.Fprintf(stderr, "certsweep: lab stays up for %s: certsweep sweep --db %s --ports %s %s\n", d, shellQuote(dbPath), demoPorts(lab.Port), prefix)
		select {
		case <-time.After(d):
		case <-c.Context.Done():
		}
	}
	return nil
}

// demoPorts is the demo sweep's port spec: the lab's TLS port and each
// protocol peer's port named with its protocol, e.g. 8443,2525/smtp,...
func demoPorts(port uint16) string {
	spec := []string{fmt.Sprint(port)}
	for _, p := range scannertest.DemoPeers {
		if s := fmt.Sprintf("%d/%s", p.Port, p.Protocol); !slices.Contains(spec, s) {
			spec = append(spec, s)
		}
	}
	return strings.Join(spec, ",")
}

// demoSubnet parses --subnet: an IPv4 subnet of 127.0.0.0/8, /16 to /29, with
// room for size endpoints.
func demoSubnet(text string, size int) (netip.Prefix, error) {
	const loopbackOnly = "the demo only ever listens on and sweeps loopback: give an IPv4 subnet of 127.0.0.0/8 such as " + defaultDemoSubnet
	p, err := netip.ParsePrefix(strings.TrimSpace(text))
	if err != nil {
		return p, usageError(fmt.Errorf("--subnet %q is not a CIDR", text), loopbackOnly)
	}
	if !p.Addr().Is4() || !netip.MustParsePrefix("127.0.0.0/8").Contains(p.Addr()) {
		return p, usageError(fmt.Errorf("--subnet %s is not a loopback subnet", p), loopbackOnly)
	}
	if p.Bits() < 16 || p.Bits() > 29 {
		return p, usageError(fmt.Errorf("--subnet %s: want a /16 to /29", p), "e.g. --subnet "+defaultDemoSubnet)
	}
	if p != p.Masked() {
		return p, usageError(fmt.Errorf("--subnet %s has host bits set", p), "did you mean --subnet "+p.Masked().String()+"?")
	}
	if n := scannertest.LabCapacity(p); n < size {
		bits := 29
		for scannertest.LabCapacity(netip.PrefixFrom(p.Addr(), bits)) < size {
			bits--
		}
		return p, usageError(fmt.Errorf("--subnet %s has room for %d endpoints, --lab-size is %d", p, n, size),
			fmt.Sprintf("use a /%d or larger, or a smaller --lab-size", bits))
	}
	return p, nil
}

// otherDemoSubnet suggests a subnet next to a busy one, for the hint.
func otherDemoSubnet(p netip.Prefix) netip.Prefix {
	a := p.Addr().As4()
	a[1]++
	if a[1] == 0 {
		a[1] = 1
	}
	return netip.PrefixFrom(netip.AddrFrom4(a), p.Bits())
}

// demoCAPath is where the lab's root CA goes by default: beside the
// database, named after it.
func demoCAPath(dbPath string) string {
	stem := strings.TrimSuffix(dbPath, filepath.Ext(dbPath))
	if b := filepath.Base(stem); b == "" || b == "." || strings.HasSuffix(stem, string(filepath.Separator)) {
		stem = dbPath
	}
	return stem + "-ca.pem"
}

// writeCAPEM writes der as a PEM certificate to f, readable by all (0644).
func writeCAPEM(f *os.File, der []byte) error {
	if err := pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// demoFingerprint returns the 12-digit fingerprint prefix of a leaf stored by
// this sweep for the next steps: the "valid" endpoint's, or, should that
// handshake have failed, the first lab endpoint's whose leaf was stored.
func demoFingerprint(ctx context.Context, db *store.DB, lab *scannertest.Lab) (string, error) {
	for _, ep := range lab.Endpoints {
		if len(ep.Presents) == 0 {
			continue
		}
		sum := sha256.Sum256(ep.Presents[0])
		fp := hex.EncodeToString(sum[:])
		_, err := db.FindCertificate(ctx, fp)
		switch {
		case err == nil:
			return fp[:12], nil
		case !errors.Is(err, store.ErrNotFound):
			return "", failure(err, "")
		}
	}
	return "", nil
}

// printDemoNext prints the weekly loop on the lab as a small shell script:
// every command works as printed, in this order.
func printDemoNext(w io.Writer, c *cli.Context, dbPath, caPath, fp string) {
	db, ca := shellQuote(dbPath), shellQuote(caPath)
	again := "certsweep demo --db " + db + " --write-ca " + ca
	for _, f := range []string{"subnet", "port", "lab-size"} {
		if c.IsSet(f) {
			again += " --" + f + " " + shellQuote(fmt.Sprint(c.Value(f)))
		}
	}
	out := shellQuote(filepath.Join(filepath.Dir(dbPath), demoReportFile))
	fmt.Fprintf(w, "\nNext: the weekly loop of a network team, on this lab (run the lines in order):\n")
	fmt.Fprintf(w, "  # 1. what needs action, the lab root trusted as your organisation's CA:\n")
	fmt.Fprintf(w, "  certsweep findings --db %s --ca-bundle %s --min-severity high\n", db, ca)
	if fp != "" {
		fmt.Fprintf(w, "  # 2. give the \"valid\" endpoint's certificate an owner (everything else stays a shadow certificate):\n")
		fmt.Fprintf(w, "  certsweep track add %s --owner web-team --note \"lab www\" --db %s\n", fp, db)
	} else {
		fmt.Fprintf(w, "  # 2. give a certificate an owner: certsweep certs --db %s lists the fingerprints\n", db)
	}
	fmt.Fprintf(w, "  # 3. a week later: re-issues every certificate, as a renewal would; the owner carries over:\n")
	fmt.Fprintf(w, "  %s\n", again)
	fmt.Fprintf(w, "  # 4. what changed since the last sweep: every endpoint's certificate was renewed:\n")
	fmt.Fprintf(w, "  certsweep diff --db %s\n", db)
	fmt.Fprintf(w, "  # 5. the inventory as a spreadsheet, one row per endpoint, with findings and owners:\n")
	fmt.Fprintf(w, "  certsweep report --db %s --ca-bundle %s --format csv -o %s\n", db, ca, out)
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// demoFindings prints the high and critical findings of the demo sweep, with
// the lab's root standing in for the organisation's own CA (--ca-bundle).
func demoFindings(c *cli.Context, db *store.DB, sweepID int64, lab *scannertest.Lab) error {
	p := report.DefaultPolicy(time.Now().UTC())
	p.OrgRoots = x509.NewCertPool()
	p.OrgRoots.AddCert(lab.CA.Root.Cert)
	fmt.Fprintf(c.App.Writer, "\nHigh and critical findings (the lab root trusted as the organisation's CA):\n")
	enc, err := report.NewEncoder(c.App.Writer, "table", []string{"severity", "kind", "endpoint", "subject", "detail"})
	if err != nil {
		return err
	}
	err = judge(c.Context, db, judgeSettings{sweepID: sweepID, policy: p}, func(ep store.Endpoint, fs []report.Finding) error {
		for _, f := range fs {
			if f.Severity >= report.SeverityHigh {
				if err := enc.Encode(f.Severity.String(), string(f.Kind), fmt.Sprintf("%s:%d", ep.IP, ep.Port), ep.Leaf.Subject, f.Detail); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return enc.Close()
}
