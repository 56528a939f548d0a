package main

import (
	"fmt"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:  "diff",
		Usage: "what changed between two sweeps: endpoints, rotations, new and gone certificates",
		Description: `Compares two sweeps (default: the two latest complete ones) and lists, in order:
endpoints that appeared or disappeared, endpoints whose leaf certificate changed
(a rotation: old and new fingerprint and expiry), certificates never seen in any
sweep up to --from, and certificates seen in --from but nowhere in --to.
Columns: ` + fmt.Sprint(report.DiffColumns) + `

Examples:
   certsweep diff
   certsweep diff --from 11 --to 12 --format csv > changes.csv
   certsweep diff --format json | jq 'select(.change == "certificate-new")'`,
		Flags: []cli.Flag{
			dbFlag(), formatFlag(),
			&cli.Int64Flag{Name: "from", Usage: "older sweep `ID` (default: the second latest complete sweep)"},
			&cli.Int64Flag{Name: "to", Usage: "newer sweep `ID` (default: the latest complete sweep)"},
		},
		Action: listing(func(c *cli.Context, db *store.DB, f string) error {
			ctx := c.Context
			from, to := c.Int64("from"), c.Int64("to")
			if from == 0 || to == 0 {
				ids, err := db.LatestSweeps(ctx, 2)
				if err != nil || len(ids) < 2 {
					return usagef("diff needs two complete sweeps, or --from and --to")
				}
				if to == 0 {
					to = ids[0]
				}
				if from == 0 {
					from = ids[1]
					if from == to {
						from = ids[0]
					}
				}
			}
			for _, id := range []int64{from, to} {
				if _, err := db.FindSweep(ctx, id); err != nil {
					return usageError(err, "certsweep sweeps lists the sweep IDs")
				}
			}
			enc, err := report.NewEncoder(c.App.Writer, f, report.DiffColumns)
			if err != nil {
				return err
			}
			emit := func(ch report.Change) error { return enc.Encode(ch.Row()...) }
			if err := report.DiffEndpoints(db.EndpointStates(ctx, from), db.EndpointStates(ctx, to), emit); err != nil {
				return failure(fmt.Errorf("diff sweeps %d and %d: %w", from, to, err), "")
			}
			for cert, err := range db.NewCertificates(ctx, from, to) {
				if err != nil {
					return failure(err, "")
				}
				if err := emit(report.Change{Kind: report.ChangeNewCert, Cert: &cert}); err != nil {
					return failure(err, "")
				}
			}
			for cert, err := range db.GoneCertificates(ctx, from, to) {
				if err != nil {
					return failure(err, "")
				}
				if err := emit(report.Change{Kind: report.ChangeGoneCert, Cert: &cert}); err != nil {
					return failure(err, "")
				}
			}
			return enc.Close()
		}),
	}
}
