package store

import (
	"context"
	"database/sql"
	"iter"
	"strings"
	"time"
)

// Observation is one endpoint that answered in a sweep: the TCP connection
// was established, whatever the TLS handshake then did. Closed and silent
// ports are not observations; they only count in the sweep's statistics.
type Observation struct {
	SweepID  int64
	Site     string // the vantage point (sweep --site); "" by default
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
	Status      string // a scanner.Status other than refused
	Error       string // why the probe failed; "" when Status is ok
	TLSVersion  string // e.g. "TLS 1.2"; "" when the server never said
	CipherSuite string
	Handshake   time.Duration // connect to end of probe, in whole milliseconds
	// Posture, Versions and WeakCiphers are the endpoint's TLS posture, as
	// in Endpoint.
	Posture     bool
	Versions    []string
	WeakCiphers []string
	// The leaf the endpoint presented, if it presented one: a failed
	// handshake may still have sent its chain.
	LeafSHA256  string // lowercase hex; "" if no certificate was presented
	LeafSubject string
}

// ObservationFilter narrows Observations. The zero value selects every
// endpoint of the sweep.
type ObservationFilter struct {
	// Statuses keeps the endpoints whose (latest) outcome is one of these;
	// empty keeps all.
	Statuses []string
}

// Observations yields every endpoint that answered in the sweep, ordered by
// address numerically (IPv4 before IPv6; as CompareIP), port and sni: the
// order of EndpointStates. An endpoint probed twice in the
// sweep (a resumed sweep) is yielded once, with its latest observation; the
// filter applies to that one. Rows are streamed: memory stays bounded
// whatever the sweep's size.
func (db *DB) Observations(ctx context.Context, sweepID int64, f ObservationFilter) iter.Seq2[Observation, error] {
	q := `SELECT o.sweep_id, o.site, o.ip, o.port, o.sni, o.protocol, o.observed_at, o.status, o.error, o.tls_version,
		o.cipher_suite, o.handshake_ms, o.posture, o.versions, o.weak_ciphers, o.offer, o.source, c.sha256, c.subject
		FROM observations o LEFT JOIN certificates c ON c.id = o.leaf_id
		WHERE o.sweep_id = ?1 AND o.id = (SELECT max(o2.id) FROM observations o2
			WHERE o2.sweep_id = ?1 AND o2.site = o.site AND o2.ip = o.ip AND o2.port = o.port AND o2.sni = o.sni AND o2.protocol = o.protocol AND o2.offer = o.offer)`
	args := []any{sweepID}
	if len(f.Statuses) > 0 {
		q += ` AND o.status IN (` + strings.TrimSuffix(strings.Repeat("?,", len(f.Statuses)), ",") + `)`
		for _, s := range f.Statuses {
			args = append(args, s)
		}
	}
	// ip_key sorts addresses numerically; SQLite's sorter spills to disk
	// past its cache, so memory stays bounded on any sweep.
	q += ` ORDER BY o.site, ip_key(o.ip), o.port, o.sni, o.protocol, o.offer`
	return query(ctx, db, func(r rowScanner) (Observation, error) {
		var o Observation
		var at, leaf, subject sql.NullString
		var ms int64
		var versions, weak string
		err := r.Scan(&o.SweepID, &o.Site, &o.IP, &o.Port, &o.SNI, &o.Protocol, &at, &o.Status, &o.Error, &o.TLSVersion,
			&o.CipherSuite, &ms, &o.Posture, &versions, &weak, &o.Offer, &o.Source, &leaf, &subject)
		o.ObservedAt, o.Handshake = parseTime(at), time.Duration(ms)*time.Millisecond
		o.Versions, o.WeakCiphers = postureList(versions), postureList(weak)
		o.LeafSHA256, o.LeafSubject = leaf.String, subject.String
		return o, err
	}, q, args...)
}
