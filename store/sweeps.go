package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"
)

// Sweep states.
const (
	StateRunning     = "running"
	StateComplete    = "complete"
	StateInterrupted = "interrupted"
)

// Sweep is one run of `certsweep sweep`.
type Sweep struct {
	ID          int64
	Name        string
	StartedAt   time.Time
	FinishedAt  time.Time // zero while running
	State       string
	Targets     []string
	Excludes    []string
	Ports       string
	ProbesTotal uint64
	Seed        uint64
	Options     map[string]any
	Site        string           // the vantage point (--site); "" by default, and for a sweep merged from several sites
	Shard       string           // "I/N" for a shard (--shard); "" for a whole sweep, or one merged from shards
	Stats       map[string]int64 // probe outcomes by status, as committed
	NewCerts    int64            // certificates first seen in this sweep

	reaped bool // stored as running, but its process is gone
}

// Done is the number of probes whose outcome is committed.
func (s Sweep) Done() int64 {
	var n int64
	for _, c := range s.Stats {
		n += c
	}
	return n
}

// CreateSweep records a new running sweep and returns its ID. ID, State,
// FinishedAt and Stats of s are ignored.
func (db *DB) CreateSweep(ctx context.Context, s Sweep) (int64, error) {
	targets, _ := json.Marshal(nonNil(s.Targets))
	excludes, _ := json.Marshal(nonNil(s.Excludes))
	opts, err := json.Marshal(s.Options)
	if err != nil {
		return 0, fmt.Errorf("encode sweep options: %w", err)
	}
	if s.StartedAt.IsZero() {
		s.StartedAt = time.Now()
	}
	res, err := db.sql.ExecContext(ctx, `INSERT INTO sweeps
		(name, started_at, state, targets, excludes, ports, probes_total, seed, options, site, shard)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.Name, formatSeen(s.StartedAt), StateRunning, string(targets), string(excludes), s.Ports,
		int64(s.ProbesTotal), int64(s.Seed), string(opts), s.Site, s.Shard)
	if err != nil {
		return 0, fmt.Errorf("create sweep: %w", err)
	}
	return res.LastInsertId()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// lockPath is the lock file a running sweep holds, beside the database.
func (db *DB) lockPath(id int64) string { return fmt.Sprintf("%s.sweep-%d.lock", db.path, id) }

// HoldSweep marks sweep id as owned by this process until release is
// called (or the process dies). Sweeps reads a running sweep whose owner
// is gone as interrupted.
func (db *DB) HoldSweep(id int64) (release func(), err error) {
	l, err := lockSweep(db.lockPath(id))
	if err != nil {
		return nil, fmt.Errorf("lock sweep %d: %w", id, err)
	}
	return l.release, nil
}

// ReapSweeps records as interrupted every running sweep whose process is
// gone (killed, crashed, power lost), finishing it at its last committed
// observation. It returns how many it marked.
func (db *DB) ReapSweeps(ctx context.Context) (int, error) {
	var dead []int64
	for s, err := range db.Sweeps(ctx) {
		if err != nil {
			return 0, err
		}
		// A sweep just created may not hold its lock yet.
		if s.reaped && time.Since(s.StartedAt) > 10*time.Second {
			dead = append(dead, s.ID)
		}
	}
	for _, id := range dead {
		_, err := db.sql.ExecContext(ctx, `UPDATE sweeps SET state = ?, finished_at = coalesce(
			(SELECT max(observed_at) FROM observations WHERE sweep_id = ?1), started_at) WHERE id = ?1 AND state = ?`,
			StateInterrupted, id, StateRunning)
		if err != nil {
			return 0, fmt.Errorf("mark sweep %d interrupted: %w", id, err)
		}
	}
	return len(dead), nil
}

// SweepProgress returns how far a sweep got, for resuming it.
func (db *DB) SweepProgress(ctx context.Context, id int64) (Progress, error) {
	p := Progress{Done: make(map[uint64]bool)}
	var below int64
	if err := db.sql.QueryRowContext(ctx, `SELECT resume_below FROM sweeps WHERE id = ?`, id).Scan(&below); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return p, fmt.Errorf("sweep %d: %w", id, ErrNotFound)
		}
		return p, err
	}
	p.Below = uint64(below)
	for pos, err := range query(ctx, db, func(r rowScanner) (int64, error) {
		var pos int64
		return pos, r.Scan(&pos)
	}, `SELECT position FROM sweep_done WHERE sweep_id = ?`, id) {
		if err != nil {
			return p, err
		}
		p.Done[uint64(pos)] = true
	}
	return p, nil
}

// ReopenSweep marks an interrupted sweep running again, for resuming it.
func (db *DB) ReopenSweep(ctx context.Context, id int64) error {
	_, err := db.sql.ExecContext(ctx, `UPDATE sweeps SET state = ?, finished_at = NULL WHERE id = ?`, StateRunning, id)
	if err != nil {
		return fmt.Errorf("reopen sweep %d: %w", id, err)
	}
	return nil
}

// FinishSweep marks a sweep complete or interrupted at time at.
func (db *DB) FinishSweep(ctx context.Context, id int64, state string, at time.Time) error {
	_, err := db.sql.ExecContext(ctx, `UPDATE sweeps SET state = ?, finished_at = ? WHERE id = ?`,
		state, formatSeen(at), id)
	if err != nil {
		return fmt.Errorf("finish sweep %d: %w", id, err)
	}
	return nil
}

const sweepColumns = `s.id, s.name, s.started_at, s.finished_at, s.state, s.targets, s.excludes,
	s.ports, s.probes_total, s.seed, s.options, s.site, s.shard,
	(SELECT json_group_object(status, count) FROM sweep_stats WHERE sweep_id = s.id),
	(SELECT count(*) FROM certificates WHERE first_sweep_id = s.id)`

// FindSweep returns the sweep with the given ID, or ErrNotFound.
func (db *DB) FindSweep(ctx context.Context, id int64) (Sweep, error) {
	row := db.sql.QueryRowContext(ctx, `SELECT `+sweepColumns+` FROM sweeps s WHERE s.id = ?`, id)
	s, err := scanSweep(row)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("sweep %d: %w", id, ErrNotFound)
	}
	return db.liveness(s), err
}

// Sweeps yields every sweep, oldest first. A sweep stored as running whose
// process is gone is yielded as interrupted.
func (db *DB) Sweeps(ctx context.Context) iter.Seq2[Sweep, error] {
	return func(yield func(Sweep, error) bool) {
		for s, err := range query(ctx, db, scanSweep, `SELECT `+sweepColumns+` FROM sweeps s ORDER BY s.id`) {
			if !yield(db.liveness(s), err) {
				return
			}
		}
	}
}

func (db *DB) liveness(s Sweep) Sweep {
	if s.State == StateRunning && !sweepAlive(db.lockPath(s.ID)) {
		s.State, s.reaped = StateInterrupted, true
	}
	return s
}

type rowScanner interface{ Scan(...any) error }

func scanSweep(r rowScanner) (Sweep, error) {
	var s Sweep
	var started, finished sql.NullString
	var targets, excludes, opts, stats string
	var total, seed int64
	err := r.Scan(&s.ID, &s.Name, &started, &finished, &s.State, &targets, &excludes,
		&s.Ports, &total, &seed, &opts, &s.Site, &s.Shard, &stats, &s.NewCerts)
	if err != nil {
		return s, err
	}
	s.StartedAt, s.FinishedAt = parseTime(started), parseTime(finished)
	s.ProbesTotal, s.Seed = uint64(total), uint64(seed)
	if err := errors.Join(
		json.Unmarshal([]byte(targets), &s.Targets),
		json.Unmarshal([]byte(excludes), &s.Excludes),
		json.Unmarshal([]byte(opts), &s.Options),
		json.Unmarshal([]byte(stats), &s.Stats),
	); err != nil {
		return s, fmt.Errorf("decode sweep %d: %w", s.ID, err)
	}
	return s, nil
}

// query runs a statement and yields each scanned row; breaking out of the
// loop closes the rows. Cancellation is checked here between rows rather
// than handed to the driver: go-sqlite3 starts a goroutine for every row
// of a query whose context can be cancelled, which halves report speed.
func query[T any](ctx context.Context, db *DB, scan func(rowScanner) (T, error), q string, args ...any) iter.Seq2[T, error] {
	return queryOn(ctx, db.sql, scan, q, args...)
}

// queryTx is query inside a transaction.
func queryTx[T any](ctx context.Context, tx *sql.Tx, scan func(rowScanner) (T, error), q string, args ...any) iter.Seq2[T, error] {
	return queryOn(ctx, tx, scan, q, args...)
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func queryOn[T any](ctx context.Context, on queryer, scan func(rowScanner) (T, error), q string, args ...any) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		rows, err := on.QueryContext(context.WithoutCancel(ctx), q, args...)
		if err != nil {
			yield(zero, err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			if err := ctx.Err(); err != nil {
				yield(zero, err)
				return
			}
			v, err := scan(rows)
			if !yield(v, err) || err != nil {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(zero, err)
		}
	}
}

// EndpointsReached counts the endpoints (site, ip, port, sni, protocol, offer) of a sweep that
// presented a certificate.
func (db *DB) EndpointsReached(ctx context.Context, sweepID int64) (int64, error) {
	var n int64
	err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT DISTINCT site, ip, port, sni, protocol, offer
		FROM observations WHERE sweep_id = ? AND leaf_id IS NOT NULL)`, sweepID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the endpoints of sweep %d: %w", sweepID, err)
	}
	return n, nil
}

// ReachedByProtocol counts, by protocol ("tls", "smtp", ...), the
// endpoints of a sweep that presented a certificate.
func (db *DB) ReachedByProtocol(ctx context.Context, sweepID int64) (map[string]int64, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT protocol, count(*) FROM (SELECT DISTINCT site, ip, port, sni, protocol, offer
		FROM observations WHERE sweep_id = ? AND leaf_id IS NOT NULL) GROUP BY protocol`, sweepID)
	if err != nil {
		return nil, fmt.Errorf("count the endpoints of sweep %d: %w", sweepID, err)
	}
	defer rows.Close()
	counts := map[string]int64{}
	for rows.Next() {
		var proto string
		var n int64
		if err := rows.Scan(&proto, &n); err != nil {
			return nil, fmt.Errorf("count the endpoints of sweep %d: %w", sweepID, err)
		}
		counts[proto] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count the endpoints of sweep %d: %w", sweepID, err)
	}
	return counts, nil
}

// PreviousComplete returns the latest complete sweep before sweep id that
// has the same name, or ErrNotFound.
func (db *DB) PreviousComplete(ctx context.Context, id int64) (Sweep, error) {
	row := db.sql.QueryRowContext(ctx, `SELECT `+sweepColumns+` FROM sweeps s
		WHERE s.state = ?1 AND s.id < ?2 AND s.name = (SELECT name FROM sweeps WHERE id = ?2)
		ORDER BY s.id DESC LIMIT 1`, StateComplete, id)
	s, err := scanSweep(row)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("no complete sweep before %d with its name: %w", id, ErrNotFound)
	}
	return s, err
}
