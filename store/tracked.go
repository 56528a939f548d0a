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
// fingerprint, or by serial and issuer, that has an owner.
type Tracked struct {
	ID      int64
	SHA256  string // lowercase hex, or "" when identified by serial and issuer
	Serial  string
	Issuer  string
	Owner   string
	Note    string
	AddedAt time.Time
}

// TrackedIssuer is a rule: every certificate whose issuer is Issuer is
// tracked, owned by Owner.
type TrackedIssuer struct {
	Issuer  string
	Owner   string
	Note    string
	AddedAt time.Time
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

// RemoveTracked removes the entry with that fingerprint, or the issuer rule
// with that issuer. It returns ErrNotFound if neither exists.
func (db *DB) RemoveTracked(ctx context.Context, key string) error {
	res, err := db.sql.ExecContext(ctx, `DELETE FROM tracked WHERE sha256 = ?`, strings.ToLower(key))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	res, err = db.sql.ExecContext(ctx, `DELETE FROM tracked_issuers WHERE issuer = ?`, key)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	return fmt.Errorf("%q: %w", key, ErrNotFound)
}

// AddTrackedIssuer adds or replaces an issuer rule.
func (db *DB) AddTrackedIssuer(ctx context.Context, r TrackedIssuer) error {
	_, err := db.sql.ExecContext(ctx, `INSERT INTO tracked_issuers (issuer, owner, note, added_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (issuer) DO UPDATE SET owner = excluded.owner, note = excluded.note`,
		r.Issuer, r.Owner, r.Note, formatSeen(time.Now()))
	if err != nil {
		return fmt.Errorf("track issuer %q: %w", r.Issuer, err)
	}
	return nil
}

// TrackedEntries yields the tracked inventory, oldest first.
func (db *DB) TrackedEntries(ctx context.Context) iter.Seq2[Tracked, error] {
	return query(ctx, db, func(r rowScanner) (Tracked, error) {
		var t Tracked
		var sha, serial, issuer sql.NullString
		var at sql.NullString
		err := r.Scan(&t.ID, &sha, &serial, &issuer, &t.Owner, &t.Note, &at)
		t.SHA256, t.Serial, t.Issuer, t.AddedAt = sha.String, serial.String, issuer.String, parseTime(at)
		return t, err
	}, `SELECT id, sha256, serial, issuer, owner, note, added_at FROM tracked ORDER BY id`)
}

// TrackedIssuers yields the issuer rules, by issuer.
func (db *DB) TrackedIssuers(ctx context.Context) iter.Seq2[TrackedIssuer, error] {
	return query(ctx, db, func(r rowScanner) (TrackedIssuer, error) {
		var t TrackedIssuer
		var at sql.NullString
		err := r.Scan(&t.Issuer, &t.Owner, &t.Note, &at)
		t.AddedAt = parseTime(at)
		return t, err
	}, `SELECT issuer, owner, note, added_at FROM tracked_issuers ORDER BY issuer`)
}

// ownerExpr is the SQL expression for a certificate's owner (alias c), or
// NULL for a shadow certificate: by fingerprint, then serial and issuer,
// then issuer rule.
const ownerExpr = `COALESCE(
	(SELECT t.owner FROM tracked t WHERE t.sha256 = c.sha256),
	(SELECT t.owner FROM tracked t WHERE t.sha256 IS NULL AND t.serial = c.serial AND t.issuer = c.issuer),
	(SELECT ti.owner FROM tracked_issuers ti WHERE ti.issuer = c.issuer))`
