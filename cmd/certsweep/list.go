package main

import (
	"fmt"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

func sweepsCommand() *cli.Command {
	return &cli.Command{
		Name:  "sweeps",
		Usage: "list sweeps with their state and outcome counts",
		Description: `Lists every sweep in the database, oldest first: its state (running,
complete or interrupted), when it ran, how many probes it planned and finished,
the count of each outcome and how many certificates it saw for the first time,
its targets and ports, its site (--site) and its shard (I/N, --shard; empty for
a whole sweep and for one merged from its shards by certsweep merge).

Examples:
   certsweep sweeps
   certsweep sweeps --format json | jq 'select(.state != "complete")'
   certsweep sweeps --db /var/lib/certsweep/certs.db --format csv`,
		Flags: []cli.Flag{dbFlag(), formatFlag()},
		Action: listing(func(c *cli.Context, db *store.DB, f string) error {
			cols := []string{"id", "name", "state", "started_at", "finished_at", "probes_total", "probes_done"}
			for _, s := range scanner.Statuses {
				cols = append(cols, string(s))
			}
			cols = append(cols, "new_certs", "targets", "ports", "site", "shard")
			enc, err := report.NewEncoder(c.App.Writer, f, cols)
			if err != nil {
				return err
			}
			for s, err := range db.Sweeps(c.Context) {
				if err != nil {
					return failure(fmt.Errorf("read sweeps: %w", err), "")
				}
				vals := []any{s.ID, s.Name, s.State, s.StartedAt, s.FinishedAt, s.ProbesTotal, s.Done()}
				for _, st := range scanner.Statuses {
					vals = append(vals, s.Stats[string(st)])
				}
				vals = append(vals, s.NewCerts, s.Targets, s.Ports, s.Site, s.Shard)
				if err := enc.Encode(vals...); err != nil {
					return failure(err, "")
				}
			}
			return enc.Close()
		}),
	}
}

func certsCommand() *cli.Command {
	return &cli.Command{
		Name:  "certs",
		Usage: "list certificates in the inventory",
		Description: `Lists stored certificates, soonest expiry first. With --sweep, only the
certificates presented (anywhere in a chain) during that sweep.

Examples:
   certsweep certs
   certsweep certs --sweep 3 --format csv > sweep3.csv
   certsweep certs --format json | jq -r 'select(.key_bits < 2048) | .sha256'`,
		Flags: []cli.Flag{
			dbFlag(), formatFlag(),
			&cli.Int64Flag{Name: "sweep", Usage: "only certificates seen in sweep `ID`"},
		},
		Action: listing(func(c *cli.Context, db *store.DB, f string) error {
			filter := store.CertFilter{SweepID: c.Int64("sweep")}
			if c.IsSet("sweep") {
				if _, err := db.FindSweep(c.Context, filter.SweepID); err != nil {
					return usageError(err, "certsweep sweeps lists the sweep IDs")
				}
			}
			return listCerts(c, f, db, filter)
		}),
	}
}

// certColumns is the column order of `certs` in every format.
var certColumns = []string{"sha256", "subject", "issuer", "serial", "not_before", "not_after",
	"days_left", "key_type", "key_bits", "signature_algorithm", "sans", "is_ca", "self_signed",
	"parse_error", "first_seen", "last_seen"}

// certTableColumns is the narrower view `certs` prints on a terminal; csv
// and json carry every column.
var certTableColumns = []string{"sha256", "subject", "issuer", "not_after", "days_left", "key",
	"signature_algorithm", "self_signed", "last_seen"}

func listCerts(c *cli.Context, f string, db *store.DB, filter store.CertFilter) error {
	cols := certColumns
	if f == "table" {
		cols = certTableColumns
	}
	enc, err := report.NewEncoder(c.App.Writer, f, cols)
	if err != nil {
		return err
	}
	now := time.Now()
	for cert, err := range db.Certificates(c.Context, filter) {
		if err != nil {
			return failure(fmt.Errorf("read certificates: %w", err), "")
		}
		notBefore, notAfter := report.Validity(cert.Cert)
		var daysLeft any
		if notAfter != nil {
			daysLeft = report.DaysLeft(now, cert.NotAfter)
		}
		if f == "table" {
			subject := cert.Subject
			if cert.ParseError != "" {
				subject = "(unparsable: " + cert.ParseError + ")"
			}
			err = enc.Encode(cert.Fingerprint()[:16], subject, cert.Issuer, notAfter, daysLeft,
				fmt.Sprintf("%s-%d", cert.KeyType, cert.KeyBits), cert.SignatureAlgorithm,
				cert.SelfSigned, cert.LastSeen)
		} else {
			err = enc.Encode(cert.Fingerprint(), cert.Subject, cert.Issuer, cert.Serial,
				notBefore, notAfter, daysLeft, cert.KeyType, cert.KeyBits,
				cert.SignatureAlgorithm, cert.SANs, cert.IsCA, cert.SelfSigned, cert.ParseError,
				cert.FirstSeen, cert.LastSeen)
		}
		if err != nil {
			return failure(err, "")
		}
	}
	return enc.Close()
}
