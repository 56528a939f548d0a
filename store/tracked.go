package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Tracked is an entry of the tracked inventory: a certificate identified by
// fingerprint, or by serial and issuer, that has an owner. An inherited
// entry was added by certsweep for a certificate that replaced a tracked
// one (a renewal); InheritedFrom names that one.
type Tracked struct {
	ID            int64
	SHA256        string // lowercase hex, or "" when identified by serial and issuer
	Serial        string
	Issuer        string
	Owner         string
	Note          string
	AddedAt       time.Time
	InheritedFrom string // fingerprint of the certificate whose owner this one took over
	InheritedVia  string // how it was recognised: "endpoint 10.0.0.5:443" or "same subject and names"
}

// OwnerRule gives an owner to every certificate (at an endpoint) that all
// of its selectors match. The zero value of a selector means "any".
type OwnerRule struct {
	ID         int64
	CIDR       string // endpoint address within this prefix
	Port       int    // endpoint port
	NameSuffix string // a DNS name of the certificate (SAN, or CN without SANs) ends with it
	SubjectO   string // the subject's organization
	Issuer     string // the issuer DN, compared parsed
	Owner      string
	Note       string
	AddedAt    time.Time
}

// Selects reports whether the rule has any selector; one without selects
// nothing (the schema refuses it).
func (r OwnerRule) Selects() bool {
	return r.CIDR != "" || r.Port != 0 || r.NameSuffix != "" || r.SubjectO != "" || r.Issuer != ""
}

// IssuerOnly reports whether the rule selects by issuer alone (track issuer).
func (r OwnerRule) IssuerOnly() bool {
	return r.Issuer != "" && !(OwnerRule{CIDR: r.CIDR, Port: r.Port, NameSuffix: r.NameSuffix, SubjectO: r.SubjectO}).Selects()
}

// SameSelectors reports whether two rules select the same thing (and so
// one replaces the other). The issuer is compared as given; callers that
// parse DNs compare them before storing.
func (r OwnerRule) SameSelectors(o OwnerRule) bool {
	return r.CIDR == o.CIDR && r.Port == o.Port && r.NameSuffix == o.NameSuffix &&
		strings.EqualFold(r.SubjectO, o.SubjectO) && r.Issuer == o.Issuer
}

// Inheritance is one certificate taking over the owner of the tracked
// certificate it replaced.
type Inheritance struct {
	SHA256 string // the new certificate
	From   string // the tracked certificate it replaced
	Via    string // how: "endpoint 10.0.0.5:443" or "same subject and names"
	Owner  string
	Note   string
}

// ErrDuplicate is returned when a tracked entry already exists.
var ErrDuplicate = errors.New("already tracked")

// NormalizeSerial writes a serial number the way certsweep stores it:
// lowercase hex of its bytes, without separators or redundant leading zeros.
// It accepts "0A:1B", "0a1b", "A1B". It reports false if s is not hex.
func NormalizeSerial(s string) (string, bool) {
	s = strings.ToLower(strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(s)))
	s = strings.TrimPrefix(s, "0x")
	if s == "" || strings.Trim(s, "0123456789abcdef") != "" {
		return "", false
	}
	s = strings.TrimLeft(s, "0")
	if len(s)%2 == 1 {
		s = "0" + s
	}
	if s == "" {
		s = "00"
	}
	return s, true
}

// AddTracked adds entries in one transaction: all or none. An entry that is
// already tracked fails with ErrDuplicate unless replace is set, in which
// case its owner and note are updated.
func (db *DB) AddTracked(ctx context.Context, entries []Tracked, replace bool) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := formatSeen(time.Now())
	for _, e := range entries {
		var sha, serial, issuer any
		if e.SHA256 != "" {
			sha = e.SHA256
		} else {
			serial, issuer = e.Serial, e.Issuer
		}
		q := `INSERT INTO tracked (sha256, serial, issuer, owner, note, added_at) VALUES (?, ?, ?, ?, ?, ?)`
		// The same owner again (an inherited entry confirmed, or a file
		// re-imported) is no conflict: the entry becomes explicit.
		same := `DELETE FROM tracked WHERE sha256 = ? AND owner = ?`
		sameArgs := []any{sha, e.Owner}
		if sha == nil {
			same, sameArgs = `DELETE FROM tracked WHERE sha256 IS NULL AND serial = ? AND issuer = ? AND owner = ?`, []any{serial, issuer, e.Owner}
		}
		if _, err := tx.ExecContext(ctx, same, sameArgs...); err != nil {
			return err
		}
		if replace {
			// Delete-then-insert: partial unique indexes cannot be upsert targets.
			del := `DELETE FROM tracked WHERE sha256 = ?`
			args := []any{sha}
			if sha == nil {
				del, args = `DELETE FROM tracked WHERE sha256 IS NULL AND serial = ? AND issuer = ?`, []any{serial, issuer}
			}
			if _, err := tx.ExecContext(ctx, del, args...); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, q, sha, serial, issuer, e.Owner, e.Note, now); err != nil {
			var serr sqlite3.Error
			if errors.As(err, &serr) && serr.ExtendedCode == sqlite3.ErrConstraintUnique {
				return fmt.Errorf("%s: %w", describeTracked(e), ErrDuplicate)
			}
			return fmt.Errorf("track %s: %w", describeTracked(e), err)
		}
	}
	return tx.Commit()
}

func describeTracked(e Tracked) string {
	if e.SHA256 != "" {
		return e.SHA256
	}
	return fmt.Sprintf("serial %s issued by %q", e.Serial, e.Issuer)
}

// RemoveTracked removes the entry with that fingerprint. Removing an
// inherited entry also stops the owner from being inherited again. It
// returns the removed entry, or ErrNotFound.
func (db *DB) RemoveTracked(ctx context.Context, sha256 string) (Tracked, error) {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return Tracked{}, err
	}
	defer tx.Rollback()
	sha256 = strings.ToLower(sha256)
	t, err := scanTracked(tx.QueryRowContext(ctx, `SELECT `+trackedColumns+` FROM tracked WHERE sha256 = ?`, sha256))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("no tracked certificate %s: %w", sha256, ErrNotFound)
	} else if err != nil {
		return t, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tracked WHERE id = ?`, t.ID); err != nil {
		return t, err
	}
	if t.InheritedFrom != "" {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO inherit_refused (sha256, refused_at) VALUES (?, ?)`,
			sha256, formatSeen(time.Now())); err != nil {
			return t, err
		}
	}
	return t, tx.Commit()
}

// AddOwnerRule adds a rule, or updates the owner and note of the rule with
// the same selectors. It returns the rule's ID and whether it replaced one.
func (db *DB) AddOwnerRule(ctx context.Context, r OwnerRule) (int64, bool, error) {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	for old, err := range queryTx(ctx, tx, scanOwnerRule, `SELECT `+ruleColumns+` FROM owner_rules ORDER BY id`) {
		if err != nil {
			return 0, false, err
		}
		if old.SameSelectors(r) {
			_, err := tx.ExecContext(ctx, `UPDATE owner_rules SET owner = ?, note = ? WHERE id = ?`, r.Owner, r.Note, old.ID)
			if err != nil {
				return 0, false, fmt.Errorf("update owner rule %d: %w", old.ID, err)
			}
			return old.ID, true, tx.Commit()
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO owner_rules (cidr, port, name_suffix, subject_o, issuer, owner, note, added_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, nullString(r.CIDR), nullInt(r.Port), nullString(r.NameSuffix),
		nullString(r.SubjectO), nullString(r.Issuer), r.Owner, r.Note, formatSeen(time.Now()))
	if err != nil {
		return 0, false, fmt.Errorf("add owner rule: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, false, err
	}
	return id, false, tx.Commit()
}

// RemoveOwnerRule removes rule id, or fails with ErrNotFound.
func (db *DB) RemoveOwnerRule(ctx context.Context, id int64) error {
	res, err := db.sql.ExecContext(ctx, `DELETE FROM owner_rules WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("owner rule %d: %w", id, ErrNotFound)
	}
	return nil
}

// OwnerRules yields the owner rules, oldest first.
func (db *DB) OwnerRules(ctx context.Context) iter.Seq2[OwnerRule, error] {
	return query(ctx, db, scanOwnerRule, `SELECT `+ruleColumns+` FROM owner_rules ORDER BY id`)
}

const ruleColumns = `id, cidr, port, name_suffix, subject_o, issuer, owner, note, added_at`

func scanOwnerRule(r rowScanner) (OwnerRule, error) {
	var o OwnerRule
	var cidr, suffix, org, issuer, at sql.NullString
	var port sql.NullInt64
	err := r.Scan(&o.ID, &cidr, &port, &suffix, &org, &issuer, &o.Owner, &o.Note, &at)
	o.CIDR, o.Port, o.NameSuffix, o.SubjectO, o.Issuer = cidr.String, int(port.Int64), suffix.String, org.String, issuer.String
	o.AddedAt = parseTime(at)
	return o, err
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// AddInherited records inherited owners. A certificate that is already
// tracked, or whose inherited owner a user removed, is skipped; the
// inheritances actually recorded are returned.
func (db *DB) AddInherited(ctx context.Context, in []Inheritance) ([]Inheritance, error) {
	if len(in) == 0 {
		return nil, nil
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	now := formatSeen(time.Now())
	var added []Inheritance
	for _, h := range in {
		res, err := tx.ExecContext(ctx, `INSERT INTO tracked (sha256, owner, note, added_at, inherited_from, inherited_via)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6
			WHERE NOT EXISTS (SELECT 1 FROM tracked WHERE sha256 = ?1)
			  AND NOT EXISTS (SELECT 1 FROM inherit_refused WHERE sha256 = ?1)`,
			h.SHA256, h.Owner, h.Note, now, h.From, h.Via)
		if err != nil {
			return nil, fmt.Errorf("record the inherited owner of %s: %w", h.SHA256, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			added = append(added, h)
		}
	}
	return added, tx.Commit()
}

// TrackedEntries yields the tracked inventory, oldest first.
func (db *DB) TrackedEntries(ctx context.Context) iter.Seq2[Tracked, error] {
	return query(ctx, db, scanTracked, `SELECT `+trackedColumns+` FROM tracked ORDER BY id`)
}

const trackedColumns = `id, sha256, serial, issuer, owner, note, added_at, inherited_from, inherited_via`

func scanTracked(r rowScanner) (Tracked, error) {
	var t Tracked
	var sha, serial, issuer, at, from sql.NullString
	err := r.Scan(&t.ID, &sha, &serial, &issuer, &t.Owner, &t.Note, &at, &from, &t.InheritedVia)
	t.SHA256, t.Serial, t.Issuer, t.AddedAt = sha.String, serial.String, issuer.String, parseTime(at)
	t.InheritedFrom = from.String
	return t, err
}

// TrackedCertificates yields, without DER, the stored certificates that a
// tracked entry may name: by fingerprint, or by serial (the caller compares
// the issuer, which is written in many ways).
func (db *DB) TrackedCertificates(ctx context.Context) iter.Seq2[Certificate, error] {
	cols := strings.Replace(certColumns, "c.der", "NULL", 1)
	return query(ctx, db, scanCert, `SELECT `+cols+` FROM certificates c
		WHERE c.sha256 IN (SELECT sha256 FROM tracked WHERE sha256 IS NOT NULL)
		   OR c.serial IN (SELECT serial FROM tracked WHERE sha256 IS NULL)
		ORDER BY c.id`)
}

// CertificatesBySerial yields, without DER, the certificates with a serial
// (as NormalizeSerial writes it).
func (db *DB) CertificatesBySerial(ctx context.Context, serial string) iter.Seq2[Certificate, error] {
	cols := strings.Replace(certColumns, "c.der", "NULL", 1)
	return query(ctx, db, scanCert, `SELECT `+cols+` FROM certificates c WHERE c.serial = ? ORDER BY c.id`, serial)
}

// Successor is a leaf certificate that a sweep found at an endpoint where
// another certificate was the leaf in an earlier sweep.
type Successor struct {
	SHA256   string
	Site     string
	IP       string
	Port     int
	SNI      string
	PrevSeen time.Time // when the earlier certificate was last seen there
}

// Successors yields the leaves that sweep sweepID found, with a different
// certificate, at the endpoints where the certificate sha256 was the leaf
// in earlier sweeps.
func (db *DB) Successors(ctx context.Context, sweepID int64, sha256 string) iter.Seq2[Successor, error] {
	return query(ctx, db, func(r rowScanner) (Successor, error) {
		var s Successor
		var at sql.NullString
		err := r.Scan(&s.SHA256, &s.Site, &s.IP, &s.Port, &s.SNI, &at)
		s.PrevSeen = parseTime(at)
		return s, err
	}, `SELECT nc.sha256, cur.site, cur.ip, cur.port, cur.sni, max(o.observed_at)
		FROM certificates pc
		JOIN observation_chain oc ON oc.cert_id = pc.id AND oc.position = 0
		JOIN observations o ON o.id = oc.observation_id AND o.sweep_id < ?1
		JOIN observations cur ON cur.sweep_id = ?1 AND cur.site = o.site AND cur.ip = o.ip AND cur.port = o.port AND cur.sni = o.sni
		JOIN certificates nc ON nc.id = cur.leaf_id
		WHERE pc.sha256 = ?2 AND cur.leaf_id != pc.id
		GROUP BY nc.sha256, cur.site, cur.ip, cur.port, cur.sni
		ORDER BY nc.sha256, cur.site, cur.ip, cur.port, cur.sni`, sweepID, sha256)
}
