package main

import (
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

const defaultDemoDB = "certsweep-demo.db"

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "sweep a built-in lab of TLS endpoints on loopback and show the inventory",
		Description: `Starts a lab of TLS listeners on a random 127.x.y.0/24 subnet (loopback only)
presenting varied certificates: valid, expired, expiring in 7 days, self-signed,
RSA-1024, SHA-1-signed, TLS 1.0-only, TLS 1.3-only, wrong host name, a full
three-certificate chain, an SNI-only virtual host and a peer that never speaks.
It sweeps the whole subnet into a database, exactly as certsweep sweep would,
and prints the certificates found.

The demo uses its own database (default ` + defaultDemoDB + `, not CERTSWEEP_DB) so
lab certificates never mix with a real inventory.

Examples:
   certsweep demo
   certsweep demo --db /tmp/lab.db && certsweep certs --db /tmp/lab.db --format csv
   certsweep demo --serve 10m     # keep the lab up to sweep it yourself`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "db", Value: defaultDemoDB, Usage: "SQLite database `PATH` for the demo"},
			&cli.IntFlag{Name: "lab-size", Value: 24, Usage: "number of lab endpoints (12-250)"},
			&cli.DurationFlag{Name: "serve", Usage: "keep the lab running this long after the sweep (0 = stop at once)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			size := c.Int("lab-size")
			if size < len(scannertest.DemoKinds) || size > 250 {
				return usagef("--lab-size %d: must be %d-250", size, len(scannertest.DemoKinds))
			}
			stderr := c.App.ErrWriter
			fmt.Fprintf(stderr, "certsweep: starting a lab of %d TLS endpoints on loopback...\n", size)
			lab, err := scannertest.NewLab(size)
			if err != nil {
				return failure(fmt.Errorf("start the demo lab: %w", err), "")
			}
			defer lab.Close()
			fmt.Fprintf(stderr, "certsweep: lab listening on %s port %d\n", lab.Prefix, lab.Port)

			in, err := scanner.ParseInput(lab.Prefix.String(), false)
			if err != nil {
				return err
			}
			s := sweepSettings{
				dbPath: c.String("db"), name: "demo", quiet: c.Bool("quiet"),
				tokens: []string{lab.Prefix.String()}, inputs: []scanner.Input{in},
				ports: []uint16{lab.Port}, portsText: fmt.Sprint(lab.Port),
				cfg: scanner.DefaultConfig(), progressPeriod: 2 * time.Second,
			}
			s.cfg.Rate, s.cfg.Concurrency = 500, 64
			s.cfg.Prober.HandshakeTimeout = 2 * time.Second // the lab's stalling peer costs this much
			s.cfg.Seed = rand.Uint64()
			id, err := runSweep(c.Context, c.App.Writer, stderr, s)
			if err != nil {
				return err
			}
			db, err := openDB(c.Context, s.dbPath, false)
			if err != nil {
				return err
			}
			defer db.Close()
			fmt.Fprintf(c.App.Writer, "\nCertificates presented in sweep %d:\n", id)
			if err := listCerts(c, "table", db, store.CertFilter{SweepID: id}); err != nil {
				return err
			}
			if err := demoFindings(c, db, id, lab); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "\nNext: certsweep findings --db %[1]s; certsweep report --db %[1]s --format csv; certsweep show --db %[1]s PREFIX\n", s.dbPath)
			if d := c.Duration("serve"); d > 0 {
				fmt.Fprintf(stderr, "certsweep: lab stays up for %s: certsweep sweep --ports %d %s\n", d, lab.Port, lab.Prefix)
				select {
				case <-time.After(d):
				case <-c.Context.Done():
				}
			}
			return nil
		},
	}
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
