package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/certsweep/certsweep/scanner"
)

// Certificate is a stored certificate with when it was seen.
type Certificate struct {
	scanner.Cert
	FirstSweepID int64
	FirstSeen    time.Time
	LastSeen     time.Time
}

const certColumns = `c.sha256, c.der, c.subject, c.issuer, c.serial, c.sans, c.not_before,
	c.not_after, c.key_type, c.key_bits, c.signature_algorithm, c.is_ca, c.self_signed,
	c.spki_sha256, c.parse_error, c.first_sweep_id, c.first_seen, c.last_seen`

func scanCert(r rowScanner) (Certificate, error) {
	var c Certificate
	dest, finish := certDest(&c)
	if err := r.Scan(dest...); err != nil {
		return c, err
	}
	return c, finish()
}

// certDest returns scan destinations for certColumns into c, and a function
// that decodes them once the row is scanned.
func certDest(c *Certificate) ([]any, func() error) {
	var fp, sans, spki string
	var notBefore, notAfter, first, last sql.NullString
	var firstSweep sql.NullInt64
	dest := []any{&fp, &c.DER, &c.Subject, &c.Issuer, &c.Serial, &sans, &notBefore, &notAfter,
		&c.KeyType, &c.KeyBits, &c.SignatureAlgorithm, &c.IsCA, &c.SelfSigned, &spki,
		&c.ParseError, &firstSweep, &first, &last}
	return dest, func() error {
		if err := decodeHex32(fp, &c.SHA256); err != nil {
			return fmt.Errorf("certificate %q: %w", fp, err)
		}
		if spki != "" {
			if err := decodeHex32(spki, &c.SPKISHA256); err != nil {
				return fmt.Errorf("certificate %s: spki: %w", fp, err)
			}
		}
		if err := json.Unmarshal([]byte(sans), &c.SANs); err != nil {
			return fmt.Errorf("certificate %s: sans: %w", fp, err)
		}
		c.NotBefore, c.NotAfter = parseTime(notBefore), parseTime(notAfter)
		c.FirstSweepID = firstSweep.Int64
		c.FirstSeen, c.LastSeen = parseTime(first), parseTime(last)
		return nil
	}
}

func decodeHex32(s string, dst *[32]byte) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return errors.New("not a SHA-256 in hex")
	}
	copy(dst[:], b)
	return nil
}

// CertFilter narrows Certificates. The zero value selects every certificate.
type CertFilter struct {
	SweepID int64 // only certificates presented (anywhere in a chain) in this sweep
}

// Certificates yields stored certificates ordered by expiry (soonest first;
// unparsable ones last), then fingerprint.
func (db *DB) Certificates(ctx context.Context, f CertFilter) iter.Seq2[Certificate, error] {
	q := `SELECT ` + certColumns + ` FROM certificates c`
	var args []any
	if f.SweepID != 0 {
		q += ` WHERE c.id IN (SELECT oc.cert_id FROM observation_chain oc
			JOIN observations o ON o.id = oc.observation_id WHERE o.sweep_id = ?)`
		args = append(args, f.SweepID)
	}
	q += ` ORDER BY c.not_after IS NULL, c.not_after, c.sha256`
	return query(ctx, db, scanCert, q, args...)
}

// FindCertificate returns the certificate whose fingerprint starts with
// prefix (hex, any case, colons allowed). It fails with ErrNotFound, or with
// ErrAmbiguous when several match.
func (db *DB) FindCertificate(ctx context.Context, prefix string) (Certificate, error) {
	p := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(prefix), ":", ""))
	if p == "" || strings.Trim(p, "0123456789abcdef") != "" || len(p) > 64 {
		return Certificate{}, fmt.Errorf("%q is not a SHA-256 fingerprint or prefix of one", prefix)
	}
	var found []Certificate
	// Range scan on the primary key: sha256 >= p AND sha256 < p + 'g'.
	for c, err := range query(ctx, db, scanCert, `SELECT `+certColumns+` FROM certificates c
		WHERE c.sha256 >= ? AND c.sha256 < ? ORDER BY c.sha256 LIMIT 2`, p, p+"g") {
		if err != nil {
			return Certificate{}, err
		}
		found = append(found, c)
	}
	switch len(found) {
	case 0:
		return Certificate{}, fmt.Errorf("certificate %s: %w", p, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return Certificate{}, fmt.Errorf("certificate prefix %s matches several certificates: %w", p, ErrAmbiguous)
}

// Sighting is one place a certificate was presented.
type Sighting struct {
	SweepID    int64
	Site       string
	IP         string
	Port       int
	SNI        string
	Protocol   string
	Offer      string // as in Endpoint
	ObservedAt time.Time
	Position   int // place in the chain; 0 = leaf
	TLSVersion string
	// Posture, Versions and WeakCiphers are the endpoint's TLS posture, as
	// in Endpoint.
	Posture     bool
	Versions    []string
	WeakCiphers []string
}

// Sightings yields where the certificate was presented, newest first.
func (db *DB) Sightings(ctx context.Context, sha256 [32]byte) iter.Seq2[Sighting, error] {
	return query(ctx, db, func(r rowScanner) (Sighting, error) {
		var s Sighting
		var at sql.NullString
		var versions, weak string
		err := r.Scan(&s.SweepID, &s.Site, &s.IP, &s.Port, &s.SNI, &s.Protocol, &s.Offer, &at, &s.Position, &s.TLSVersion,
			&s.Posture, &versions, &weak)
		s.ObservedAt = parseTime(at)
		s.Versions, s.WeakCiphers = postureList(versions), postureList(weak)
		return s, err
	}, `SELECT o.sweep_id, o.site, o.ip, o.port, o.sni, o.protocol, o.offer, o.observed_at, oc.position, o.tls_version,
		o.posture, o.versions, o.weak_ciphers
		FROM observation_chain oc JOIN observations o ON o.id = oc.observation_id
		WHERE oc.cert_id = (SELECT id FROM certificates WHERE sha256 = ?)
		ORDER BY o.observed_at DESC, o.id DESC`, hex.EncodeToString(sha256[:]))
}
