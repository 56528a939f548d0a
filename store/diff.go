package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"strings"
	"time"
)

// IPKey is the sort key of an address as stored (text): one byte for the
// family (4, 6) and the address bytes, then the IPv6 zone if any. Comparing
// keys byte by byte (SQLite's memcmp order for blobs) orders addresses as
// netip.Addr.Compare does: IPv4 before IPv6, numerically within a family, so
// 10.0.0.9 sorts before 10.0.0.10. Text that is not an address gets family 0
// and its own bytes, so it sorts first, in byte order. It is registered as
// the deterministic SQL function ip_key(text) on every connection.
func IPKey(ip string) []byte {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return append([]byte{0}, ip...)
	}
	var key []byte
	if a.Is4() {
		b := a.As4()
		key = append([]byte{4}, b[:]...)
	} else {
		b := a.As16()
		key = append([]byte{6}, b[:]...)
	}
	return append(key, a.Zone()...)
}

// CompareIP orders stored addresses as ORDER BY ip_key(ip) does.
func CompareIP(a, b string) int {
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	if errA == nil && errB == nil {
		return pa.Compare(pb)
	}
	return bytes.Compare(IPKey(a), IPKey(b))
}

// EndpointState is an endpoint and its leaf certificate (if any) in one
// sweep, for comparing sweeps.
type EndpointState struct {
	Site       string // the vantage point (sweep --site); "" by default
	IP         string
	Addr       netip.Addr // IP parsed; invalid if the stored text is not an address
	Port       int
	SNI        string
	Protocol   string
	Offer      string // "" every key family offered, "rsa" or "ecdsa" (--all-keys)
	Status     string
	LeafSHA256 string // "" if the endpoint presented no certificate
	Subject    string
	NotAfter   time.Time
}

// CompareEndpoints orders endpoint states as EndpointStates yields them:
// by site, address numerically (as netip.Addr.Compare), port, SNI,
// protocol, then offer. The site comes first: 10.0.0.5 at two sites is two
// endpoints, and SQLite's text order is Go's byte order.
func CompareEndpoints(a, b EndpointState) int {
	c := a.Addr.Compare(b.Addr)
	if c == 0 && !a.Addr.IsValid() {
		c = strings.Compare(a.IP, b.IP) // neither is an address: text order, as ip_key
	}
	return cmp.Or(strings.Compare(a.Site, b.Site), c, cmp.Compare(a.Port, b.Port), strings.Compare(a.SNI, b.SNI),
		strings.Compare(a.Protocol, b.Protocol), strings.Compare(a.Offer, b.Offer))
}

// EndpointStates yields every endpoint that answered in the sweep, ordered
// by address numerically (IPv4 before IPv6), port and sni: the order of
// CompareEndpoints. An endpoint probed twice (a resumed sweep) is yielded
// once, with its latest state.
func (db *DB) EndpointStates(ctx context.Context, sweepID int64) iter.Seq2[EndpointState, error] {
	return query(ctx, db, func(r rowScanner) (EndpointState, error) {
		var e EndpointState
		var leaf, subject, notAfter sql.NullString
		err := r.Scan(&e.Site, &e.IP, &e.Port, &e.SNI, &e.Protocol, &e.Offer, &e.Status, &leaf, &subject, &notAfter)
		e.LeafSHA256, e.Subject, e.NotAfter = leaf.String, subject.String, parseTime(notAfter)
		e.Addr, _ = netip.ParseAddr(e.IP)
		return e, err
	}, `SELECT o.site, o.ip, o.port, o.sni, o.protocol, o.offer, o.status, c.sha256, c.subject, c.not_after
		FROM observations o LEFT JOIN certificates c ON c.id = o.leaf_id
		WHERE o.sweep_id = ?1 AND o.id = (SELECT max(o2.id) FROM observations o2
			WHERE o2.sweep_id = ?1 AND o2.site = o.site AND o2.ip = o.ip AND o2.port = o.port AND o2.sni = o.sni
				AND o2.protocol = o.protocol AND o2.offer = o.offer)
		ORDER BY o.site, ip_key(o.ip), o.port, o.sni, o.protocol, o.offer`, sweepID)
}

// ChainCert is one certificate of a chain an endpoint presented in a sweep.
type ChainCert struct {
	CertID   int64 // the certificate's row: equal IDs are the same certificate
	SHA256   string
	Subject  string
	NotAfter time.Time
	Position int // place in the chain; 0 = leaf
	Site     string
	IP       string
	Addr     netip.Addr // IP parsed; invalid if the stored text is not an address
	Port     int
	SNI      string
	Protocol string
	Offer    string
}

// ChainCerts yields every certificate every endpoint presented in the sweep
// (leaves, intermediates, roots), once per endpoint and chain position,
// ordered by certificate ID, then endpoint as CompareEndpoints. Memory
// stays bounded: SQLite sorts on disk when it must.
func (db *DB) ChainCerts(ctx context.Context, sweepID int64) iter.Seq2[ChainCert, error] {
	return query(ctx, db, func(r rowScanner) (ChainCert, error) {
		var c ChainCert
		var notAfter sql.NullString
		err := r.Scan(&c.CertID, &c.SHA256, &c.Subject, &notAfter, &c.Position, &c.Site, &c.IP, &c.Port, &c.SNI, &c.Protocol, &c.Offer)
		c.NotAfter = parseTime(notAfter)
		c.Addr, _ = netip.ParseAddr(c.IP)
		return c, err
	}, `SELECT oc.cert_id, c.sha256, c.subject, c.not_after, oc.position, o.site, o.ip, o.port, o.sni, o.protocol, o.offer
		FROM observations o
		JOIN observation_chain oc ON oc.observation_id = o.id
		JOIN certificates c ON c.id = oc.cert_id
		WHERE o.sweep_id = ?
		ORDER BY oc.cert_id, o.site, ip_key(o.ip), o.port, o.sni, o.protocol, o.offer, oc.position`, sweepID)
}

// LatestComplete returns the latest complete sweep named name whose ID is
// above after (0: any), or ErrNotFound. Sweeps written before sweeps had
// names are named "".
func (db *DB) LatestComplete(ctx context.Context, name string, after int64) (Sweep, error) {
	var id int64
	err := db.sql.QueryRowContext(ctx, `SELECT id FROM sweeps WHERE state = ? AND name = ? AND id > ?
		ORDER BY id DESC LIMIT 1`, StateComplete, name, after).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Sweep{}, fmt.Errorf("no complete sweep named %q after sweep %d: %w", name, after, ErrNotFound)
	}
	if err != nil {
		return Sweep{}, err
	}
	return db.FindSweep(ctx, id)
}

// ReusedKey is where one public key was found: how many hosts present it,
// and the first of them.
type ReusedKey struct {
	Hosts []string // by site, then numerically; an address at a site reads site:ip
	Count int
}

// ReusedKeys maps each public key (SPKI SHA-256, hex) that the sweep's
// endpoints presented in more than one certificate, on more than one
// address, to those addresses (the same private address at two sites is
// two hosts), keeping the first keep of them. Memory grows with the keys
// reused, not with the sweep nor with how widely a key is reused.
func (db *DB) ReusedKeys(ctx context.Context, sweepID int64, keep int) (map[string]ReusedKey, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT c.spki_sha256, `+siteAddr("o")+`
		FROM observations o JOIN certificates c ON c.id = o.leaf_id
		WHERE o.sweep_id = ?1 AND c.spki_sha256 IN (
			SELECT c2.spki_sha256 FROM observations o2 JOIN certificates c2 ON c2.id = o2.leaf_id
			WHERE o2.sweep_id = ?1 AND c2.spki_sha256 != ''
			GROUP BY c2.spki_sha256
			HAVING count(DISTINCT c2.id) > 1 AND count(DISTINCT `+siteAddr("o2")+`) > 1)
		GROUP BY c.spki_sha256, o.site, o.ip
		ORDER BY c.spki_sha256, o.site, ip_key(o.ip)`, sweepID)
	if err != nil {
		return nil, fmt.Errorf("find reused keys in sweep %d: %w", sweepID, err)
	}
	defer rows.Close()
	out := map[string]ReusedKey{}
	for rows.Next() {
		var spki, host string
		if err := rows.Scan(&spki, &host); err != nil {
			return nil, fmt.Errorf("find reused keys in sweep %d: %w", sweepID, err)
		}
		k := out[spki]
		if k.Count++; len(k.Hosts) < keep {
			k.Hosts = append(k.Hosts, host)
		}
		out[spki] = k
	}
	return out, rows.Err()
}

// SharedCertificates maps each leaf (SHA-256, hex) that the sweep's
// endpoints presented on more than maxAddrs addresses (an address at a
// site being its own) to that number.
func (db *DB) SharedCertificates(ctx context.Context, sweepID int64, maxAddrs int) (map[string]int, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT c.sha256, count(DISTINCT `+siteAddr("o")+`)
		FROM observations o JOIN certificates c ON c.id = o.leaf_id
		WHERE o.sweep_id = ? GROUP BY c.id HAVING count(DISTINCT `+siteAddr("o")+`) > ?`, sweepID, maxAddrs)
	if err != nil {
		return nil, fmt.Errorf("find shared certificates in sweep %d: %w", sweepID, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var fp string
		var n int
		if err := rows.Scan(&fp, &n); err != nil {
			return nil, fmt.Errorf("find shared certificates in sweep %d: %w", sweepID, err)
		}
		out[fp] = n
	}
	return out, rows.Err()
}

// siteAddr is the SQL for an observation's address as a host: ip, or
// site:ip at a site.
func siteAddr(o string) string {
	return "CASE WHEN " + o + ".site = '' THEN " + o + ".ip ELSE " + o + ".site || ':' || " + o + ".ip END"
}
