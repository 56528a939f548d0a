package main

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

// showSightings bounds the "seen at" list; `certs`/reports have the rest.
const showSightings = 20

func showCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show one certificate in detail, with where it was seen and its PEM",
		ArgsUsage: "FINGERPRINT",
		Description: `FINGERPRINT is the certificate's SHA-256 in hex (colons allowed); any unique
prefix is enough. Prints the summary fields, the latest places it was presented
and the certificate in PEM, which openssl can read.

Examples:
   certsweep show 3f2a9c
   certsweep show 3f2a9c | openssl x509 -noout -text`,
		Flags: []cli.Flag{dbFlag()},
		Action: func(c *cli.Context) error {
			arg, err := oneArg(c, "FINGERPRINT")
			if err != nil {
				return err
			}
			db, err := openDB(c.Context, c.String("db"), false)
			if err != nil {
				return err
			}
			defer db.Close()
			cert, err := db.FindCertificate(c.Context, arg)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return &cliError{code: exitFailure, err: err, hint: "certsweep certs lists the fingerprints"}
			case errors.Is(err, store.ErrAmbiguous):
				return usageError(err, "give more hex digits")
			case err != nil:
				return usageError(err, "")
			}
			return showCert(c, db, cert)
		},
	}
}

func showCert(c *cli.Context, db *store.DB, cert store.Certificate) error {
	w := c.App.Writer
	field := func(name string, v any) {
		fmt.Fprintf(w, "%-20s %s\n", name+":", report.Terminal(report.Text(v)))
	}
	field("SHA-256", cert.Fingerprint())
	if cert.ParseError != "" {
		field("Parse error", cert.ParseError)
	}
	field("Subject", cert.Subject)
	field("Issuer", cert.Issuer)
	field("Serial", cert.Serial)
	notBefore, notAfter := report.Validity(cert.Cert)
	field("Not before", notBefore)
	field("Not after", notAfter)
	field("Key", fmt.Sprintf("%s %d", cert.KeyType, cert.KeyBits))
	field("Signature", cert.SignatureAlgorithm)
	field("SANs", strings.Join(cert.SANs, ", "))
	field("CA", cert.IsCA)
	field("Self-signed", cert.SelfSigned)
	field("SPKI SHA-256", fmt.Sprintf("%x", cert.SPKISHA256))
	field("First seen", cert.FirstSeen)
	field("Last seen", cert.LastSeen)
	owners, err := loadOwners(c.Context, db)
	if err != nil {
		return err
	}
	if ow, ok := owners.OfCert(cert); ok {
		field("Owner", fmt.Sprintf("%s (%s)", ow.Name, ow.Via))
		if ow.Note != "" {
			field("Note", ow.Note)
		}
	} else {
		field("Owner", "none of its own (owner rules may cover its endpoints; see certsweep report)")
	}
	fmt.Fprintln(w, "Seen at (newest first):")
	n := 0
	for s, err := range db.Sightings(c.Context, cert.SHA256) {
		if err != nil {
			return failure(err, "")
		}
		if n++; n > showSightings {
			fmt.Fprintf(w, "  ... more; certsweep certs and reports list every endpoint\n")
			break
		}
		where := fmt.Sprintf("%s:%d", s.IP, s.Port)
		if s.Protocol != "" && s.Protocol != string(scanner.ProtoTLS) {
			where += "/" + s.Protocol // as a port spec names it: 587/smtp
		}
		if s.SNI != "" {
			where += " sni=" + s.SNI
		}
		if s.Offer != "" {
			where += " offer=" + s.Offer + "-only" // the --all-keys probe
		}
		if s.Site != "" {
			where += " site=" + s.Site
		}
		fmt.Fprintf(w, "  sweep %d  %s  %s  chain position %d  %s\n", s.SweepID,
			report.Text(s.ObservedAt), report.Terminal(where), s.Position, s.TLSVersion)
		if s.Posture { // measured by sweep --posture
			fmt.Fprintf(w, "    versions accepted: %s; weak ciphers accepted: %s\n",
				report.Terminal(listOrNone(s.Versions)), report.Terminal(listOrNone(s.WeakCiphers)))
		}
	}
	return writePEM(w, cert.DER)
}

// listOrNone joins a list for reading, or says "none".
func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func writePEM(w io.Writer, der []byte) error {
	return pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: der})
}
