package store

import (
	"context"
	"fmt"
	"time"
)

// SentAlert is one finding a destination accepted (certsweep alert).
type SentAlert struct {
	Finding string // the finding's identity (report.AlertKey)
	Kind    string
}

// AlertsSent returns the identities of the findings the destination has
// accepted, from any sweep.
func (db *DB) AlertsSent(ctx context.Context, destination string) (map[string]bool, error) {
	sent := map[string]bool{}
	for key, err := range query(ctx, db, func(r rowScanner) (string, error) {
		var k string
		return k, r.Scan(&k)
	}, `SELECT finding FROM alerts_sent WHERE destination = ?`, destination) {
		if err != nil {
			return nil, fmt.Errorf("read the alerts sent to %s: %w", destination, err)
		}
		sent[key] = true
	}
	return sent, nil
}

// MarkAlertsSent records, in one transaction, that the destination accepted
// these findings of sweep sweepID at time at. A finding already recorded
// keeps its first record.
func (db *DB) MarkAlertsSent(ctx context.Context, destination string, sweepID int64, at time.Time, alerts []SentAlert) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record the alerts sent to %s: %w", destination, err)
	}
	defer tx.Rollback() // no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO alerts_sent (destination, finding, kind, sweep_id, sent_at)
		VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("record the alerts sent to %s: %w", destination, err)
	}
	defer stmt.Close()
	when := formatSeen(at)
	for _, a := range alerts {
		if _, err := stmt.ExecContext(ctx, destination, a.Finding, a.Kind, sweepID, when); err != nil {
			return fmt.Errorf("record the alerts sent to %s: %w", destination, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record the alerts sent to %s: %w", destination, err)
	}
	return nil
}
