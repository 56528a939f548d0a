package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certsweep/certsweep/scanner"
)

// SourceInfo is what Inspect reads of a database merge would import.
type SourceInfo struct {
	Version  int    // schema version (PRAGMA user_version)
	Current  bool   // the schema is this certsweep's: no migration needed
	Identity string // its database_identity ("" before schema 9)
}

// Inspect reads, without writing, what a database to merge is: it fails
// with ErrNoDatabase when there is no file, ErrNotCertsweep for a file
// that is not a certsweep database (not SQLite, another application's,
// empty) and ErrSchemaTooNew for one written by a newer certsweep.
func Inspect(ctx context.Context, path string) (SourceInfo, error) {
	var info SourceInfo
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return info, fmt.Errorf("%s: %w", path, ErrNoDatabase)
	case err != nil:
		return info, err
	case fi.IsDir():
		return info, fmt.Errorf("%s is a directory: %w", path, ErrNotCertsweep)
	case fi.Size() == 0:
		return info, fmt.Errorf("%s is empty: %w", path, ErrNotCertsweep)
	}
	if err := identify(ctx, path); err != nil {
		return info, err
	}
	sdb, err := sql.Open(driverName(), "file:"+escapePath(path)+"?mode=ro&_busy_timeout="+strconv.Itoa(busyTimeoutMS))
	if err != nil {
		return info, err
	}
	defer sdb.Close()
	var appID int
	err = sdb.QueryRowContext(ctx, `SELECT (SELECT application_id FROM pragma_application_id()),
		(SELECT user_version FROM pragma_user_version())`).Scan(&appID, &info.Version)
	if err != nil {
		return info, fmt.Errorf("read %s: %w", path, err)
	}
	if appID != applicationID { // identify lets an empty SQLite file pass: a new database, not one to merge
		return info, fmt.Errorf("%s: %w (it is a SQLite file without certsweep's tables)", path, ErrNotCertsweep)
	}
	info.Current = info.Version == len(migrationNames())
	if info.Version >= identityVersion {
		if err := sdb.QueryRowContext(ctx, `SELECT id FROM database_identity`).Scan(&info.Identity); err != nil {
			return info, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return info, nil
}

// identityVersion is the schema that gave databases an identity.
const identityVersion = 9

// Identity is this database's random identity (schema 9).
func (db *DB) Identity(ctx context.Context) (string, error) {
	var id string
	if err := db.sql.QueryRowContext(ctx, `SELECT id FROM database_identity`).Scan(&id); err != nil {
		return "", fmt.Errorf("read the identity of %s: %w", db.path, err)
	}
	return id, nil
}

// MergeResult is what Merge did with one sweep of the source.
type MergeResult struct {
	SourceSweep int64
	Name        string
	Site, Shard string
	// Skipped says why the sweep was not imported ("" when it was): it is
	// running or interrupted, or was imported before.
	Skipped string
	SweepID int64 // the sweep it went into (or had gone into)
	Joined  bool  // it joined a sweep merged from other parts
	// Observations and NewCerts count the rows added.
	Observations, NewCerts int64
	Took                   time.Duration
}

// mergeSweep is a source sweep row, or a logical sweep's.
type mergeSweep struct {
	id                                int64
	name, state, started, finished    string
	targets, excludes, ports, options string
	site, shard                       string
	total, seed                       int64
}

// maxJoinGap is how far apart the parts of one logical sweep may start:
// the shards of a weekly sweep start together, next week's do not.
const maxJoinGap = 24 * time.Hour

// Merge imports every complete sweep of the certsweep database at path,
// which must have this certsweep's schema, with its observations and
// certificates, and calls report for each sweep of the source, imported
// or not. Each sweep is imported in one transaction, with the record that
// it was: a crash leaves no half sweep, and merging the same file again
// imports nothing twice. The work is done by SQLite with the source
// attached read-only (INSERT ... SELECT), so memory does not grow with
// the source's size.
//
// A sweep joins a sweep merged before (one logical sweep) when it has its
// name, started within a day of it, and brings a (site, shard) it lacks
// (the shards of one site with the same count and seed); otherwise it
// becomes a sweep of its own. Positions are stored in the whole sweep's
// order (scanner.Shard.Global), and a merged sweep is never resumed.
func (db *DB) Merge(ctx context.Context, path string, report func(MergeResult)) error {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The source may come from anywhere: its views, triggers and defaults
	// must not run SQL functions (SQLite's defence against a schema made to
	// attack the reader). certsweep's own schema uses none.
	if _, err := conn.ExecContext(ctx, `PRAGMA trusted_schema = OFF`); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	uri := "file:" + escapePath(path) + "?" + url.Values{"mode": {"ro"}}.Encode()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS src`, uri); err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	// The connection goes back to the pool: leave nothing attached to it.
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE src`)

	var version int
	var srcID string
	if err := conn.QueryRowContext(ctx, `PRAGMA src.user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if version != len(migrationNames()) {
		return fmt.Errorf("%s has schema version %d, merge reads %d: %w", path, version, len(migrationNames()), ErrSchemaTooOld)
	}
	if err := conn.QueryRowContext(ctx, `SELECT id FROM src.database_identity`).Scan(&srcID); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}

	var sweeps []mergeSweep // a few per file: sweeps, not observations
	rows, err := conn.QueryContext(ctx, `SELECT id, name, state, started_at, coalesce(finished_at, started_at),
		targets, excludes, ports, probes_total, seed, options, site, shard
		FROM src.sweeps ORDER BY started_at, id`)
	if err != nil {
		return fmt.Errorf("read the sweeps of %s: %w", path, err)
	}
	for rows.Next() {
		var s mergeSweep
		if err := rows.Scan(&s.id, &s.name, &s.state, &s.started, &s.finished, &s.targets, &s.excludes,
			&s.ports, &s.total, &s.seed, &s.options, &s.site, &s.shard); err != nil {
			rows.Close()
			return fmt.Errorf("read the sweeps of %s: %w", path, err)
		}
		sweeps = append(sweeps, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the sweeps of %s: %w", path, err)
	}

	for _, s := range sweeps {
		res := MergeResult{SourceSweep: s.id, Name: s.name, Site: s.site, Shard: s.shard}
		if s.state != StateComplete {
			res.Skipped = s.state
			report(res)
			continue
		}
		var into sql.NullInt64
		err := conn.QueryRowContext(ctx, `SELECT sweep_id FROM merge_imports WHERE source_db = ? AND source_sweep = ?`, srcID, s.id).Scan(&into)
		switch {
		case err == nil:
			res.SweepID = into.Int64
			res.Skipped = "merged before"
			if !into.Valid {
				res.Skipped = "merged before, and pruned since"
			}
			report(res)
			continue
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("read what was merged before: %w", err)
		}
		begin := time.Now()
		if err := db.mergeSweep(ctx, conn, srcID, path, s, &res); err != nil {
			return fmt.Errorf("merge sweep %d of %s: %w", s.id, path, err)
		}
		res.Took = time.Since(begin)
		report(res)
	}
	return nil
}

// mergeSweep imports one complete source sweep in one transaction.
func (db *DB) mergeSweep(ctx context.Context, conn *sql.Conn, srcID, path string, s mergeSweep, res *MergeResult) error {
	shard := scanner.Shard{}
	if s.shard != "" {
		var err error
		if shard, err = scanner.ParseShard(s.shard, func(string) (string, bool) { return "", false }); err != nil {
			return fmt.Errorf("its shard %q: %w", s.shard, err)
		}
	}
	tx, err := conn.BeginTx(ctx, nil) // BEGIN IMMEDIATE (the _txlock of every connection)
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit

	// The logical sweep to join, if any.
	var logical mergeSweep
	err = tx.QueryRowContext(ctx, `SELECT s.id, s.started_at, coalesce(s.finished_at, s.started_at), s.targets, s.excludes,
			s.ports, s.options, s.site, s.probes_total
		FROM sweeps s
		WHERE s.name = ?1 AND s.state = 'complete'
		  AND abs(julianday(s.started_at) - julianday(?2)) <= ?6
		  AND EXISTS (SELECT 1 FROM merge_imports m WHERE m.sweep_id = s.id)
		  AND NOT EXISTS (SELECT 1 FROM merge_imports m WHERE m.sweep_id = s.id AND m.site = ?3
			AND (m.shard = '' OR ?4 = '' OR m.shard = ?4 OR m.seed != ?5
				OR substr(m.shard, instr(m.shard, '/')) != substr(?4, instr(?4, '/'))))
		ORDER BY abs(julianday(s.started_at) - julianday(?2)), s.id DESC LIMIT 1`,
		s.name, s.started, s.site, s.shard, s.seed, maxJoinGap.Hours()/24).Scan(
		&logical.id, &logical.started, &logical.finished, &logical.targets, &logical.excludes,
		&logical.ports, &logical.options, &logical.site, &logical.total)
	part := map[string]any{"db": srcID, "sweep": s.id, "site": s.site, "shard": s.shard}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		opts := map[string]any{}
		if err := json.Unmarshal([]byte(s.options), &opts); err != nil {
			return fmt.Errorf("its options: %w", err)
		}
		if opts == nil { // "null": a sweep created without options
			opts = map[string]any{}
		}
		delete(opts, "shard")
		opts["merged"] = []any{part}
		o, _ := json.Marshal(opts)
		r, err := tx.ExecContext(ctx, `INSERT INTO sweeps (name, started_at, finished_at, state, targets, excludes, ports,
			probes_total, seed, options, site, shard) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')`,
			s.name, s.started, s.finished, StateComplete, s.targets, s.excludes, s.ports, s.total, s.seed, string(o), s.site)
		if err != nil {
			return fmt.Errorf("create its sweep: %w", err)
		}
		if res.SweepID, err = r.LastInsertId(); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("find the sweep it belongs to: %w", err)
	default:
		res.SweepID, res.Joined = logical.id, true
		opts := map[string]any{}
		if err := json.Unmarshal([]byte(logical.options), &opts); err != nil {
			return fmt.Errorf("the options of sweep %d: %w", logical.id, err)
		}
		if opts == nil {
			opts = map[string]any{}
		}
		merged, _ := opts["merged"].([]any)
		opts["merged"] = append(merged, part)
		o, _ := json.Marshal(opts)
		targets, err1 := unionJSON(logical.targets, s.targets)
		excludes, err2 := unionJSON(logical.excludes, s.excludes)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("the targets of sweep %d: %w", logical.id, err)
		}
		site := logical.site
		if site != s.site {
			site = "" // several sites: each observation keeps its own
		}
		_, err = tx.ExecContext(ctx, `UPDATE sweeps SET started_at = min(started_at, ?), finished_at = max(finished_at, ?),
			targets = ?, excludes = ?, ports = ?, probes_total = probes_total + ?, options = ?, site = ? WHERE id = ?`,
			s.started, s.finished, targets, excludes, unionPorts(logical.ports, s.ports), s.total, string(o), site, logical.id)
		if err != nil {
			return fmt.Errorf("update sweep %d: %w", logical.id, err)
		}
	}

	var maxCert, maxObs int64
	var minSrc sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT coalesce(max(id), 0) FROM main.certificates),
		(SELECT coalesce(max(id), 0) FROM main.observations),
		(SELECT min(id) FROM src.observations WHERE sweep_id = ?)`, s.id).Scan(&maxCert, &maxObs, &minSrc); err != nil {
		return err
	}
	// Certificates once by fingerprint: first and last seen combined; the
	// sweep that first saw one here stays its first sweep.
	_, err = tx.ExecContext(ctx, `INSERT INTO main.certificates (sha256, der, subject, issuer, serial, sans, not_before,
			not_after, key_type, key_bits, signature_algorithm, is_ca, self_signed, spki_sha256, parse_error,
			first_sweep_id, first_seen, last_seen)
		SELECT c.sha256, c.der, c.subject, c.issuer, c.serial, c.sans, c.not_before, c.not_after, c.key_type, c.key_bits,
			c.signature_algorithm, c.is_ca, c.self_signed, c.spki_sha256, c.parse_error, ?1, c.first_seen, c.last_seen
		FROM src.certificates c
		WHERE c.id IN (SELECT oc.cert_id FROM src.observations o JOIN src.observation_chain oc ON oc.observation_id = o.id
			WHERE o.sweep_id = ?2)
		ORDER BY c.id
		ON CONFLICT (sha256) DO UPDATE SET
			first_sweep_id = coalesce(certificates.first_sweep_id, excluded.first_sweep_id),
			first_seen = min(certificates.first_seen, excluded.first_seen),
			last_seen = max(certificates.last_seen, excluded.last_seen)`, res.SweepID, s.id)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM main.certificates WHERE id > ?`, maxCert).Scan(&res.NewCerts); err != nil {
		return err
	}
	if minSrc.Valid {
		// Observation ids shifted past this database's: the chains follow
		// by the same shift, with no map held in memory.
		offset := maxObs - minSrc.Int64 + 1
		r, err := tx.ExecContext(ctx, `INSERT INTO main.observations (id, sweep_id, position, ip, port, sni, observed_at,
				status, error, tls_version, cipher_suite, handshake_ms, leaf_id, protocol, versions, weak_ciphers,
				posture, source, offer, site)
			SELECT o.id + ?1, ?2, CASE WHEN ?3 > 1 THEN ?4 + o.position * ?3 ELSE o.position END, o.ip, o.port, o.sni,
				o.observed_at, o.status, o.error, o.tls_version, o.cipher_suite, o.handshake_ms, mc.id, o.protocol,
				o.versions, o.weak_ciphers, o.posture, o.source, o.offer, o.site
			FROM src.observations o
			LEFT JOIN src.certificates sc ON sc.id = o.leaf_id
			LEFT JOIN main.certificates mc ON mc.sha256 = sc.sha256
			WHERE o.sweep_id = ?5
			ORDER BY o.id`, offset, res.SweepID, int64(max(shard.Count, 1)), int64(shard.Index), s.id)
		if err != nil {
			return fmt.Errorf("observations: %w", err)
		}
		if res.Observations, err = r.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO main.observation_chain (observation_id, position, cert_id)
			SELECT oc.observation_id + ?1, oc.position, mc.id
			FROM src.observations o
			JOIN src.observation_chain oc ON oc.observation_id = o.id
			JOIN src.certificates sc ON sc.id = oc.cert_id
			JOIN main.certificates mc ON mc.sha256 = sc.sha256
			WHERE o.sweep_id = ?2
			ORDER BY oc.observation_id, oc.position`, offset, s.id)
		if err != nil {
			return fmt.Errorf("chains: %w", err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO main.sweep_stats (sweep_id, status, count)
		SELECT ?1, status, count FROM src.sweep_stats WHERE sweep_id = ?2
		ON CONFLICT (sweep_id, status) DO UPDATE SET count = count + excluded.count`, res.SweepID, s.id)
	if err != nil {
		return fmt.Errorf("statistics: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO merge_imports (source_db, source_sweep, sweep_id, site, shard, seed,
		source_path, observations, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		srcID, s.id, res.SweepID, s.site, s.shard, s.seed, path, res.Observations, formatSeen(time.Now()))
	if err != nil {
		return fmt.Errorf("record the import: %w", err)
	}
	return tx.Commit()
}

// unionJSON joins two JSON arrays of strings, each element once, in order.
func unionJSON(a, b string) (string, error) {
	var x, y []string
	if err := errors.Join(json.Unmarshal([]byte(a), &x), json.Unmarshal([]byte(b), &y)); err != nil {
		return "", err
	}
	for _, v := range y {
		if !slices.Contains(x, v) {
			x = append(x, v)
		}
	}
	out, err := json.Marshal(nonNil(x))
	return string(out), err
}

// unionPorts joins two port lists as given ("443,8443"), each item once:
// still a valid --ports list.
func unionPorts(a, b string) string {
	if a == b {
		return a
	}
	items := strings.Split(a, ",")
	for _, p := range strings.Split(b, ",") {
		if !slices.Contains(items, p) {
			items = append(items, p)
		}
	}
	return strings.Join(items, ",")
}
