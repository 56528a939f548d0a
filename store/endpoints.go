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
	SweepID     int64
	IP          string
	Port        int
	SNI         string
	ObservedAt  time.Time
	Status      string
	TLSVersion  string
	CipherSuite string
	Chain       []string // fingerprints as presented, leaf first
	Leaf        Certificate
	Owner       string // "" when untracked: a shadow certificate
}

// Endpoints yields, ordered by ip, port and sni, every endpoint of the sweep
// that presented at least one certificate. Memory stays bounded whatever the
// sweep's size.
func (db *DB) Endpoints(ctx context.Context, sweepID int64) iter.Seq2[Endpoint, error] {
	cols := strings.Replace(certColumns, "c.der", "NULL", 1)
	q := `SELECT o.sweep_id, o.ip, o.port, o.sni, o.observed_at, o.status, o.tls_version, o.cipher_suite,
		(SELECT group_concat(sha256, ',') FROM
			(SELECT cc.sha256 FROM observation_chain oc JOIN certificates cc ON cc.id = oc.cert_id
			 WHERE oc.observation_id = o.id ORDER BY oc.position)),
		` + ownerExpr + `, ` + cols + `
		FROM observations o JOIN certificates c ON c.id = o.leaf_id
		WHERE o.sweep_id = ? ORDER BY o.ip, o.port, o.sni, o.id`
	return query(ctx, db, func(r rowScanner) (Endpoint, error) {
		var e Endpoint
		var at, chain, owner sql.NullString
		leafDest, finish := certDest(&e.Leaf)
		dest := append([]any{&e.SweepID, &e.IP, &e.Port, &e.SNI, &at, &e.Status, &e.TLSVersion,
			&e.CipherSuite, &chain, &owner}, leafDest...)
		if err := r.Scan(dest...); err != nil {
			return e, err
		}
		e.ObservedAt, e.Owner = parseTime(at), owner.String
		if chain.String != "" {
			e.Chain = strings.Split(chain.String, ",")
		}
		return e, finish()
	}, q, sweepID)
}

// EndpointState is an endpoint and its leaf certificate (if any) in one
// sweep, for comparing sweeps.
type EndpointState struct {
	IP         string
	Port       int
	SNI        string
	Status     string
	LeafSHA256 string // "" if the endpoint presented no certificate
	Subject    string
	NotAfter   time.Time
}

// Key orders endpoints the way EndpointStates yields them.
func (e EndpointState) Key() (string, int, string) { return e.IP, e.Port, e.SNI }

// EndpointStates yields every endpoint that answered in the sweep, ordered
// by ip, port and sni (byte order, as Go compares strings). An endpoint
// probed twice (a resumed sweep) is yielded once, with its latest state.
func (db *DB) EndpointStates(ctx context.Context, sweepID int64) iter.Seq2[EndpointState, error] {
	return query(ctx, db, func(r rowScanner) (EndpointState, error) {
		var e EndpointState
		var leaf, subject, notAfter sql.NullString
		err := r.Scan(&e.IP, &e.Port, &e.SNI, &e.Status, &leaf, &subject, &notAfter)
		e.LeafSHA256, e.Subject, e.NotAfter = leaf.String, subject.String, parseTime(notAfter)
		return e, err
	}, `SELECT o.ip, o.port, o.sni, o.status, c.sha256, c.subject, c.not_after
		FROM observations o LEFT JOIN certificates c ON c.id = o.leaf_id
		WHERE o.sweep_id = ?1 AND o.id = (SELECT max(o2.id) FROM observations o2
			WHERE o2.sweep_id = ?1 AND o2.ip = o.ip AND o2.port = o.port AND o2.sni = o.sni)
		ORDER BY o.ip, o.port, o.sni`, sweepID)
}

// certificatesOnlyIn yields the certificates matching a condition, by fingerprint.
func (db *DB) certificatesOnlyIn(ctx context.Context, q string, args ...any) iter.Seq2[Certificate, error] {
	return query(ctx, db, scanCert, `SELECT `+certColumns+` FROM certificates c WHERE `+q+` ORDER BY c.sha256`, args...)
}

const inSweep = `c.id IN (SELECT oc.cert_id FROM observation_chain oc
	JOIN observations o ON o.id = oc.observation_id WHERE o.sweep_id = ?)`

// GoneCertificates yields certificates presented in sweep from but nowhere
// in sweep to.
func (db *DB) GoneCertificates(ctx context.Context, from, to int64) iter.Seq2[Certificate, error] {
	return db.certificatesOnlyIn(ctx, inSweep+` AND NOT `+inSweep, from, to)
}

// NewCertificates yields certificates presented in sweep to that no sweep up
// to and including from had seen.
func (db *DB) NewCertificates(ctx context.Context, from, to int64) iter.Seq2[Certificate, error] {
	return db.certificatesOnlyIn(ctx, inSweep+` AND c.first_sweep_id > ?`, to, from)
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
