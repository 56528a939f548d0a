package store

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strings"
	"time"
)

// Endpoint is one endpoint's certificate in one sweep: the observation, the
// chain it presented and the leaf's stored summary (without DER; ask
// FindCertificate for that).
type Endpoint struct {
	SweepID  int64
	Site     string // the vantage point (sweep --site); "" by default; part of the endpoint
	IP       string
	Port     int
	SNI      string
	Protocol string // how TLS was reached: "tls" or a protocol such as "smtp"
	// Offer is "" for a probe that offered every key family, "rsa" or
	// "ecdsa" for one limited to it (--all-keys); part of the endpoint.
	Offer string
	// Source is where the SNI came from ("" the sweep's targets, else
	// "names-file", "followed", "ptr", "inventory" or "default").
	Source      string
	ObservedAt  time.Time
	Status      string
	Error       string // why the probe failed; "" when Status is ok
	TLSVersion  string
	CipherSuite string
	// Posture reports whether the endpoint's TLS posture was measured
	// (sweep --posture). Versions are then the versions it accepted, oldest
	// first, and WeakCiphers the weak suites it chose (often none).
	Posture     bool
	Versions    []string
	WeakCiphers []string
	Chain       []string // fingerprints as presented, leaf first
	Leaf        Certificate
	// Owner, OwnerNote and OwnerVia are the endpoint's owner as the caller
	// resolved it (store does not judge ownership); "" for a shadow certificate.
	Owner, OwnerNote, OwnerVia string
}

// HasLeaf reports whether the endpoint presented a certificate: an endpoint
// that refused TLS (no-starttls) is judged without one.
func (e Endpoint) HasLeaf() bool { return e.Leaf.SHA256 != [32]byte{} }

// Endpoints yields, ordered by ip, port and sni, every endpoint of the sweep
// that presented at least one certificate. Memory stays bounded whatever the
// sweep's size.
func (db *DB) Endpoints(ctx context.Context, sweepID int64) iter.Seq2[Endpoint, error] {
	cols := strings.Replace(certColumns, "c.der", "NULL", 1)
	q := `SELECT o.sweep_id, o.site, o.ip, o.port, o.sni, o.protocol, o.observed_at, o.status, o.error, o.tls_version, o.cipher_suite,
		o.posture, o.versions, o.weak_ciphers, o.offer, o.source,
		(SELECT group_concat(sha256, ',') FROM
			(SELECT cc.sha256 FROM observation_chain oc JOIN certificates cc ON cc.id = oc.cert_id
			 WHERE oc.observation_id = o.id ORDER BY oc.position)),
		` + cols + `
		FROM observations o JOIN certificates c ON c.id = o.leaf_id
		WHERE o.sweep_id = ? ORDER BY o.site, o.ip, o.port, o.sni, o.protocol, o.offer, o.id`
	return query(ctx, db, func(r rowScanner) (Endpoint, error) {
		var e Endpoint
		var at, chain sql.NullString
		var versions, weak string
		leafDest, finish := certDest(&e.Leaf)
		dest := append([]any{&e.SweepID, &e.Site, &e.IP, &e.Port, &e.SNI, &e.Protocol, &at, &e.Status, &e.Error, &e.TLSVersion,
			&e.CipherSuite, &e.Posture, &versions, &weak, &e.Offer, &e.Source, &chain}, leafDest...)
		if err := r.Scan(dest...); err != nil {
			return e, err
		}
		e.ObservedAt = parseTime(at)
		e.Versions, e.WeakCiphers = postureList(versions), postureList(weak)
		if chain.String != "" {
			e.Chain = strings.Split(chain.String, ",")
		}
		return e, finish()
	}, q, sweepID)
}

// CACertificates yields every stored CA certificate, with DER: the known
// intermediates and roots that endpoints presented.
func (db *DB) CACertificates(ctx context.Context) iter.Seq2[Certificate, error] {
	return query(ctx, db, scanCert, `SELECT `+certColumns+` FROM certificates c WHERE c.is_ca = 1 ORDER BY c.sha256`)
}

// LatestSweeps returns the IDs of the n most recent complete sweeps, newest
// first.
func (db *DB) LatestSweeps(ctx context.Context, n int) ([]int64, error) {
	var ids []int64
	for id, err := range query(ctx, db, func(r rowScanner) (int64, error) {
		var id int64
		return id, r.Scan(&id)
	}, `SELECT id FROM sweeps WHERE state = ? ORDER BY id DESC LIMIT ?`, StateComplete, n) {
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no complete sweep: %w", ErrNotFound)
	}
	return ids, nil
}

// maxInventoryNames bounds the names NamesAt returns: more than any
// --max-names-per-address, and a bound on what one address can cost.
const maxInventoryNames = 256

// NamesAt returns the server names that earlier sweeps (other than
// sweepID) sent to ip and port at site and got a certificate for: the
// virtual hosts found there once, to be checked again. Most recently seen
// first. Another site's 10.0.0.5 is another host: its names are not tried.
func (db *DB) NamesAt(ctx context.Context, site, ip string, port int, sweepID int64) ([]string, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT sni FROM observations
		WHERE ip = ? AND port = ? AND site = ? AND sni != '' AND sweep_id != ? AND leaf_id IS NOT NULL
		GROUP BY sni ORDER BY max(id) DESC LIMIT ?`, ip, port, site, sweepID, maxInventoryNames)
	if err != nil {
		return nil, fmt.Errorf("names seen at %s port %d: %w", ip, port, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("names seen at %s port %d: %w", ip, port, err)
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
