package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PruneOptions says which sweeps Prune deletes: a sweep goes when any rule
// given selects it. A running sweep is never selected.
type PruneOptions struct {
	// KeepSweeps, when above 0, keeps the latest KeepSweeps complete sweeps
	// of each name and deletes the older ones, and the interrupted sweeps
	// that KeepSweeps complete sweeps of their name have superseded.
	KeepSweeps int
	// OlderThan, when above 0, deletes the sweeps started before Now minus it.
	OlderThan time.Duration
	Now       time.Time
	// DropUnseenCerts also deletes the certificates that no observation
	// left presents, except CA certificates (they keep judging the chains
	// of the sweeps kept) and tracked ones.
	DropUnseenCerts bool
	DryRun          bool
	// BatchSize is the rows deleted per transaction (default 5000).
	BatchSize int
}

// PrunedSweep is a sweep Prune deletes, and how many observations it has.
type PrunedSweep struct {
	Sweep
	Observations int64
	Why          string // "older than 365d", "beyond the latest 4 of its name", ...
}

// PruneResult is what Prune did (or, dry, would do).
type PruneResult struct {
	Sweeps       []PrunedSweep
	Observations int64
	Certificates int64 // certificates dropped (DropUnseenCerts)
	Batches      int
	LongestBatch time.Duration // the longest write transaction: what a sweep running meanwhile waits at most
	SizeBefore   int64         // the database file and its WAL, in bytes
	SizeAfter    int64
	// VacuumSkipped says why the file was not compacted ("" when it was,
	// or for a dry run): freed pages are then reused by later writes.
	VacuumSkipped string
}

const defaultPruneBatch = 5000

// PruneCandidates returns the sweeps opts selects, oldest first.
func (db *DB) PruneCandidates(ctx context.Context, opts PruneOptions) ([]PrunedSweep, error) {
	var all []Sweep
	for s, err := range db.Sweeps(ctx) {
		if err != nil {
			return nil, fmt.Errorf("read sweeps: %w", err)
		}
		all = append(all, s)
	}
	why := map[int64]string{}
	if opts.KeepSweeps > 0 {
		newer := map[string]int{} // complete sweeps of the name seen so far, newest first
		for _, s := range slices.Backward(all) {
			switch s.State {
			case StateComplete:
				if newer[s.Name] >= opts.KeepSweeps {
					why[s.ID] = fmt.Sprintf("beyond the latest %d complete of its name", opts.KeepSweeps)
				}
				newer[s.Name]++
			case StateInterrupted:
				if newer[s.Name] >= opts.KeepSweeps {
					why[s.ID] = fmt.Sprintf("interrupted, and %d complete sweeps of its name came after", opts.KeepSweeps)
				}
			}
		}
	}
	if opts.OlderThan > 0 {
		cut := opts.Now.Add(-opts.OlderThan)
		for _, s := range all {
			if s.State != StateRunning && s.StartedAt.Before(cut) && why[s.ID] == "" {
				why[s.ID] = "started before " + cut.UTC().Format("2006-01-02")
			}
		}
	}
	// The newest sweep always stays: SQLite numbers a new sweep after the
	// highest ID left, so deleting the newest would hand its ID to the next
	// sweep, and alerts_sent and merge_imports refer to sweeps by ID.
	var newest int64
	if len(all) > 0 {
		newest = all[len(all)-1].ID
	}
	var out []PrunedSweep
	for _, s := range all {
		if why[s.ID] == "" || s.State == StateRunning || s.ID == newest {
			continue
		}
		p := PrunedSweep{Sweep: s, Why: why[s.ID]}
		if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM observations WHERE sweep_id = ?`, s.ID).Scan(&p.Observations); err != nil {
			return nil, fmt.Errorf("count the observations of sweep %d: %w", s.ID, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Prune deletes the sweeps opts selects with their observations, in
// bounded transactions (BatchSize rows each, a pause between them) so
// that a sweep writing meanwhile waits for one batch at most, and then
// compacts the file with VACUUM unless a sweep is running. Certificates
// stay, with their first and last sighting, unless DropUnseenCerts;
// alerts_sent is never touched. progress, if set, is called after each
// sweep is deleted.
func (db *DB) Prune(ctx context.Context, opts PruneOptions, progress func(PrunedSweep)) (PruneResult, error) {
	var res PruneResult
	opts.BatchSize = cmp.Or(opts.BatchSize, defaultPruneBatch)
	var err error
	if res.Sweeps, err = db.PruneCandidates(ctx, opts); err != nil {
		return res, err
	}
	for _, s := range res.Sweeps {
		res.Observations += s.Observations
	}
	res.SizeBefore = db.fileSize()
	if opts.DryRun {
		if opts.DropUnseenCerts {
			res.Certificates, err = db.countUnseenAfter(ctx, res.Sweeps)
		}
		res.SizeAfter = res.SizeBefore
		return res, err
	}
	batch := func(on txBeginner, q string, args ...any) (int64, error) {
		return db.pruneBatch(ctx, &res, on, q, args...)
	}
	for _, s := range res.Sweeps {
		if sweepAlive(db.lockPath(s.ID)) {
			return res, fmt.Errorf("sweep %d was resumed while prune ran: it was left as it is", s.ID)
		}
		for {
			n, err := batch(db.sql, `DELETE FROM observations WHERE id IN
				(SELECT id FROM observations WHERE sweep_id = ? LIMIT ?)`, s.ID, opts.BatchSize)
			if err != nil {
				return res, fmt.Errorf("delete the observations of sweep %d: %w", s.ID, err)
			}
			if n == 0 {
				break
			}
		}
		if err := db.deleteSweep(ctx, s.ID); err != nil {
			return res, err
		}
		if progress != nil {
			progress(s)
		}
	}
	if opts.DropUnseenCerts {
		if res.Certificates, err = db.dropUnseen(ctx, opts.BatchSize, batch); err != nil {
			return res, err
		}
	}
	res.VacuumSkipped = db.vacuum(ctx)
	res.SizeAfter = db.fileSize()
	return res, nil
}

// txBeginner is a *sql.DB or a *sql.Conn.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// pruneBatch runs one delete in its own transaction, notes how long it held
// the write lock, then leaves the lock free long enough for a waiting
// writer's busy handler (it polls up to every 100 ms) to take it.
func (db *DB) pruneBatch(ctx context.Context, res *PruneResult, on txBeginner, q string, args ...any) (int64, error) {
	begin := time.Now()
	tx, err := on.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() // no-op after Commit
	r, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	res.Batches++
	res.LongestBatch = max(res.LongestBatch, time.Since(begin))
	pause := 10 * time.Millisecond
	if db.sweepRunning(ctx) {
		pause = 150 * time.Millisecond
	}
	select {
	case <-time.After(pause):
		return n, nil
	case <-ctx.Done():
		return n, ctx.Err()
	}
}

// deleteSweep deletes a sweep row whose observations are gone: its
// statistics and progress go with it (ON DELETE CASCADE), its certificates
// forget it as their first sweep, and merge's record of it stays, with no
// sweep, so that it is not merged back.
func (db *DB) deleteSweep(ctx context.Context, id int64) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete sweep %d: %w", id, err)
	}
	defer tx.Rollback() // no-op after Commit
	for _, q := range []string{
		`UPDATE certificates SET first_sweep_id = NULL WHERE first_sweep_id = ?`,
		`UPDATE merge_imports SET sweep_id = NULL WHERE sweep_id = ?`,
		`DELETE FROM sweeps WHERE id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("delete sweep %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete sweep %d: %w", id, err)
	}
	return nil
}

// unseenCert selects the certificates c that drop-unseen-certs may delete.
const unseenCert = `c.is_ca = 0
	AND NOT EXISTS (SELECT 1 FROM observation_chain oc WHERE oc.cert_id = c.id)
	AND c.sha256 NOT IN (SELECT sha256 FROM tracked WHERE sha256 IS NOT NULL)
	AND c.serial NOT IN (SELECT serial FROM tracked WHERE sha256 IS NULL AND serial IS NOT NULL)`

// dropUnseen deletes unseen certificates in id order, batch by batch.
func (db *DB) dropUnseen(ctx context.Context, size int, batch func(txBeginner, string, ...any) (int64, error)) (int64, error) {
	// An unseen certificate is no chain's, so no observation's leaf either
	// (the leaf is the chain's first): the foreign key check of
	// observations.leaf_id, which has no index, would scan every
	// observation for each certificate deleted. This connection skips it.
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return 0, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`)
	var total, cursor int64
	for {
		var last sql.NullInt64
		err := conn.QueryRowContext(ctx, `SELECT max(id) FROM (SELECT c.id FROM certificates c
			WHERE c.id > ? AND `+unseenCert+` ORDER BY c.id LIMIT ?)`, cursor, size).Scan(&last)
		if err != nil {
			return total, fmt.Errorf("find unseen certificates: %w", err)
		}
		if !last.Valid {
			return total, nil
		}
		n, err := batch(conn, `DELETE FROM certificates WHERE id IN (SELECT c.id FROM certificates c
			WHERE c.id > ? AND c.id <= ? AND `+unseenCert+`)`, cursor, last.Int64)
		if err != nil {
			return total, fmt.Errorf("drop unseen certificates: %w", err)
		}
		total += n
		cursor = last.Int64
	}
}

// countUnseenAfter counts the certificates dropUnseen would delete once
// these sweeps are gone.
func (db *DB) countUnseenAfter(ctx context.Context, gone []PrunedSweep) (int64, error) {
	ids := []string{"0"}
	for _, s := range gone {
		ids = append(ids, strconv.FormatInt(s.ID, 10))
	}
	q := strings.Replace(`SELECT count(*) FROM certificates c WHERE `+unseenCert,
		`WHERE oc.cert_id = c.id)`, `JOIN observations o ON o.id = oc.observation_id
			WHERE oc.cert_id = c.id AND o.sweep_id NOT IN (`+strings.Join(ids, ",")+`))`, 1)
	var n int64
	if err := db.sql.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unseen certificates: %w", err)
	}
	return n, nil
}

// sweepRunning reports whether a sweep of this database is running now.
func (db *DB) sweepRunning(ctx context.Context) bool {
	rows, err := db.sql.QueryContext(ctx, `SELECT id FROM sweeps WHERE state = ?`, StateRunning)
	if err != nil {
		return true // cannot tell: be gentle
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil && sweepAlive(db.lockPath(id)) {
			return true
		}
	}
	return false
}

// vacuum compacts the file and returns "" or why it did not. VACUUM
// rewrites the whole database under the write lock, which would stall a
// running sweep's writer past its busy timeout, so it waits for a quiet
// database; until then SQLite reuses the freed pages.
func (db *DB) vacuum(ctx context.Context) string {
	if db.sweepRunning(ctx) {
		return "a sweep is running (VACUUM would block it): the freed space is reused by later sweeps; run prune again later to shrink the file"
	}
	if _, err := db.sql.ExecContext(ctx, `VACUUM`); err != nil {
		if IsLocked(err) {
			return "the database is busy (another process is writing to it): the freed space is reused by later sweeps; run prune again later to shrink the file"
		}
		return fmt.Sprintf("VACUUM failed (%v): the freed space is reused by later sweeps", err)
	}
	// Copy the rewritten pages back from the WAL and truncate both files.
	if _, err := db.sql.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Sprintf("checkpoint after VACUUM failed (%v): the file shrinks at the next checkpoint", err)
	}
	return ""
}

// fileSize is the size of the database file and its WAL, in bytes.
func (db *DB) fileSize() int64 {
	var n int64
	for _, p := range []string{db.path, db.path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}
