package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

// endpointColumns is the column order of `endpoints` in csv and json.
var endpointColumns = []string{"ip", "port", "sni", "outcome", "error", "tls_version", "cipher",
	"protocol", "handshake_ms", "sha256", "subject", "observed_at", "offer", "sni_source", "site"}

// endpointTableColumns is the narrower view `endpoints` prints on a terminal.
var endpointTableColumns = []string{"endpoint", "sni", "outcome", "tls_version", "sha256", "error"}

// endpointErrorWidth bounds the error column of the table; csv and json
// carry the whole text.
const endpointErrorWidth = 60

// observedStatuses are the outcomes an observation can have: every status
// but refused, which never gets past the TCP handshake.
func observedStatuses() []string {
	var out []string
	for _, s := range scanner.Statuses {
		if s != scanner.StatusRefused {
			out = append(out, string(s))
		}
	}
	return out
}

func endpointsCommand() *cli.Command {
	outcomes := strings.Join(observedStatuses(), ", ")
	return &cli.Command{
		Name:  "endpoints",
		Usage: "list the endpoints that answered in a sweep, with their outcome and error",
		Description: `Lists every endpoint that answered in a sweep (default: the latest complete
one): the TCP connection was established, whatever the TLS handshake then did.
They are ordered by address (numerically), port and sni. Columns (csv and
json): ip, port, sni, outcome, error, tls_version, cipher, protocol,
handshake_ms, sha256, subject, observed_at, offer, sni_source, site.

outcome is one of ` + outcomes + `;
error says why a probe failed. protocol is how TLS was reached: "tls" (from the
first byte) or the protocol whose upgrade was spoken (smtp, ldap, ...). sha256 and
subject are the leaf's when the endpoint presented a certificate (a failed
handshake may still have presented one), else empty. An endpoint probed twice
in one sweep (a resumed sweep) is listed once, with its latest observation.
offer is "" for a probe offering every key family, "rsa" or "ecdsa" for the
extra probe of --all-keys; sni_source is where the sni came from: "" the
sweep's targets, names-file, followed, ptr, inventory or default (see
certsweep sweep --help, virtual hosts); site is the sweep's --site (empty
by default; endpoints of several sites, merged, are ordered by site first).
The table shows the endpoint as ip:port, the first 12 hex digits of sha256 and
the start of the error; csv and json carry every column in full.

Refused and silent ports are not listed: nothing answered there, so they are
only counted in the sweep's statistics (certsweep sweeps), as refused and
timeout. A timeout listed here connected, then stalled in the handshake.

Examples:
   certsweep endpoints
   certsweep endpoints --outcome not-tls,handshake-error
   certsweep endpoints --sweep 3 --format csv > endpoints.csv
   certsweep endpoints --format json | jq -r 'select(.outcome != "ok") | "\(.ip):\(.port) \(.error)"'`,
		Flags: []cli.Flag{
			dbFlag(), formatFlag(),
			&cli.Int64Flag{Name: "sweep", Usage: "list sweep `ID` (default: the latest complete sweep)"},
			&cli.StringSliceFlag{Name: "outcome", Usage: "only endpoints with this `OUTCOME` (repeatable, or comma-separated): " + outcomes},
		},
		Action: listing(func(c *cli.Context, db *store.DB, f string) error {
			filter, err := outcomeFilter(c.StringSlice("outcome"))
			if err != nil {
				return err
			}
			id := c.Int64("sweep")
			if c.IsSet("sweep") && id <= 0 {
				return usageError(fmt.Errorf("--sweep %d: sweep IDs start at 1", id), "certsweep sweeps lists the sweep IDs")
			}
			if id, err = pickSweep(c.Context, db, id); err != nil {
				return err
			}
			return listEndpoints(c, f, db, id, filter)
		}),
	}
}

// outcomeFilter reads the --outcome values: outcomes an observation can
// have, repeatable or comma-separated.
func outcomeFilter(values []string) (store.ObservationFilter, error) {
	var f store.ObservationFilter
	valid := observedStatuses()
	for _, v := range values {
		for _, o := range splitList(v) {
			o = strings.ToLower(o)
			switch {
			case o == string(scanner.StatusRefused):
				return f, usageError(fmt.Errorf("--outcome %q: refused ports are not endpoints that answered, so none is listed", o),
					"certsweep sweeps counts them; the outcomes here are "+strings.Join(valid, ", "))
			case !slices.Contains(valid, o):
				return f, usageError(fmt.Errorf("unknown --outcome %q", o), "use "+strings.Join(valid, ", "))
			case !slices.Contains(f.Statuses, o):
				f.Statuses = append(f.Statuses, o)
			}
		}
	}
	return f, nil
}

func listEndpoints(c *cli.Context, f string, db *store.DB, sweepID int64, filter store.ObservationFilter) error {
	cols := endpointColumns
	if f == "table" {
		cols = endpointTableColumns
	}
	enc, err := report.NewEncoder(c.App.Writer, f, cols)
	if err != nil {
		return err
	}
	for o, err := range db.Observations(c.Context, sweepID, filter) {
		if err != nil {
			return failure(fmt.Errorf("read sweep %d: %w", sweepID, err), "")
		}
		if f == "table" {
			ep := net.JoinHostPort(o.IP, strconv.Itoa(o.Port))
			if o.Site != "" {
				ep = o.Site + ":" + ep // as diff shows it
			}
			err = enc.Encode(ep, o.SNI, o.Status, o.TLSVersion,
				o.LeafSHA256[:min(12, len(o.LeafSHA256))], truncate(o.Error, endpointErrorWidth))
		} else {
			err = enc.Encode(o.IP, o.Port, o.SNI, o.Status, o.Error, o.TLSVersion, o.CipherSuite,
				o.Protocol, o.Handshake.Milliseconds(), o.LeafSHA256, o.LeafSubject, o.ObservedAt, o.Offer, o.Source, o.Site)
		}
		if err != nil {
			return failure(err, "")
		}
	}
	return enc.Close()
}

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
