package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"
)

// metricsContentType is the Prometheus text exposition format, version
// 0.0.4, which every Prometheus and node_exporter reads.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

func metricsCommand() *cli.Command {
	return &cli.Command{
		Name:  "metrics",
		Usage: "write Prometheus metrics of the latest complete sweep (node_exporter textfile collector)",
		Description: `Judges the latest complete sweep as certsweep report does and writes, in the
Prometheus text format, what certsweep serve answers on /metrics:
   x509_cert_not_after, x509_cert_not_before, x509_cert_expired
                    per endpoint's leaf certificate, with the labels of
                    x509-certificate-exporter (subject_CN, issuer_CN,
                    serial_number) and ip, port, sni
   certsweep_findings{kind,severity}                    findings of each kind
   certsweep_sweep_last_complete_timestamp_seconds      when the sweep finished
   certsweep_sweep_probes{outcome}                      its probes by outcome

-o FILE writes the file atomically (a temporary file renamed into place), so
node_exporter's textfile collector never reads half of it. Run it after each
sweep, e.g. from the weekly cron job.

Examples:
   certsweep metrics -o /var/lib/node_exporter/textfile_collector/certsweep.prom
   certsweep metrics | grep '^x509_cert_expired.* 1$'`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (atomically) instead of stdout"},
		}, judgingFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			s, err := judgeSettingsFrom(c)
			if err != nil {
				return err
			}
			return withDB(c, false, func(db *store.DB) error {
				if _, err := pickSweep(c.Context, db, 0); err != nil {
					return err
				}
				return withOutput(c.App.Writer, c.String("output"), func(w io.Writer) error {
					return writeMetrics(c.Context, w, db, s)
				})
			})
		},
	}
}

// writeMetrics judges the latest complete sweep and writes its metrics.
// Nothing is written when reading fails; the error is the reading's own.
func writeMetrics(ctx context.Context, w io.Writer, db *store.DB, s judgeSettings) error {
	ids, err := db.LatestSweeps(ctx, 1)
	if err != nil {
		return err
	}
	s.sweepID = ids[0]
	s.policy.Now = time.Now().UTC()
	var readErr error // what made the collection fail, in the user's words
	load := func() (report.Inventory, error) {
		sw, err := db.FindSweep(ctx, s.sweepID)
		if err != nil {
			readErr = err
			return report.Inventory{}, err
		}
		inv := report.Inventory{Sweep: sw, Now: s.policy.Now}
		warning, err := coverage(ctx, db, sw.ID)
		if err != nil {
			readErr = err
			return inv, err
		}
		if warning != "" {
			inv.SweepFindings = []report.Finding{{Kind: report.KindCoverageDrop, Severity: report.KindSeverity(report.KindCoverageDrop), Detail: warning}}
		}
		inv.Endpoints = func(each func(store.Endpoint, []report.Finding) error) error {
			if err := judge(ctx, db, s, each); err != nil {
				readErr = err
				return err
			}
			return nil
		}
		return inv, nil
	}
	// A registry of its own for each collection: no global state, and the
	// collector reads the database only when gathered.
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(report.NewCollector(load)); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	err = report.WriteMetrics(w, reg)
	if err != nil && readErr != nil {
		return readErr
	}
	return err
}
