// Package store keeps certsweep's inventory in one SQLite file: sweeps,
// certificates keyed by the SHA-256 of their DER, and the observations that
// tie them to endpoints. Writes go through a single Writer that batches them
// in transactions; reads are ordered iterators, so callers stream in bounded
// memory. A file that is not a certsweep database is never modified.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

// busyTimeoutMS is how long, in milliseconds, a statement waits for another
// writer's lock before failing with "database is locked".
const (
	busyTimeoutMS = 5000
	busyTimeout   = busyTimeoutMS * time.Millisecond
)

// applicationID marks a SQLite file as a certsweep database ("CSWP").
const applicationID = 0x43535750

//go:embed migrations/*.sql
var migrations embed.FS

// Errors callers branch on.
var (
	ErrNotFound     = errors.New("not found")
	ErrAmbiguous    = errors.New("ambiguous prefix")
	ErrNotCertsweep = errors.New("not a certsweep database")
	ErrSchemaTooNew = errors.New("database was written by a newer certsweep")
	ErrNoDatabase   = errors.New("no database")
)

// DB is an open certsweep database. It is safe for concurrent use.
type DB struct {
	sql  *sql.DB
	path string
}

// Open opens the certsweep database at path, creating it if it does not
// exist, and brings its schema up to date.
func Open(ctx context.Context, path string) (*DB, error) { return open(ctx, path, true) }

// OpenExisting opens the certsweep database at path; it fails with
// ErrNoDatabase rather than create one.
func OpenExisting(ctx context.Context, path string) (*DB, error) { return open(ctx, path, false) }

func open(ctx context.Context, path string, create bool) (*DB, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !create {
			return nil, fmt.Errorf("%s: %w", path, ErrNoDatabase)
		}
	case err != nil:
		return nil, err
	case fi.IsDir():
		return nil, fmt.Errorf("%s is a directory: %w", path, ErrNotCertsweep)
	case fi.Size() > 0:
		// Inspect read-only first: a file that is not ours must not be touched,
		// and switching it to WAL would already modify it.
		if err := retryBusy(ctx, func(ctx context.Context) error { return identify(ctx, path) }); err != nil {
			return nil, err
		}
	}
	q := url.Values{}
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", strconv.Itoa(busyTimeoutMS))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL") // with WAL: durable at checkpoints, never corrupt
	q.Set("_txlock", "immediate")   // writers take the lock up front: no upgrade deadlocks
	sdb, err := sql.Open(driverName(), "file:"+escapePath(path)+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db := &DB{sql: sdb, path: path}
	if err := retryBusy(ctx, db.migrate); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// retryBusy runs f again while it fails with SQLITE_BUSY, for up to the busy
// timeout. SQLite answers BUSY at once, without waiting, when connections
// race to switch a new file to WAL (waiting could deadlock), so certsweeps
// started together on a new database need this; later opens pass first time.
func retryBusy(ctx context.Context, f func(context.Context) error) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := f(ctx)
		var serr sqlite3.Error
		if !errors.As(err, &serr) || serr.Code != sqlite3.ErrBusy || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// identify checks, without writing, that path is an empty SQLite file or a
// certsweep database no newer than this binary.
func identify(ctx context.Context, path string) error {
	sdb, err := sql.Open(driverName(), "file:"+escapePath(path)+"?mode=ro&_busy_timeout="+strconv.Itoa(busyTimeoutMS))
	if err != nil {
		return err
	}
	defer sdb.Close()
	// One statement, so one snapshot: read separately, the three could
	// straddle another certsweep's first migration (tables committed, but
	// the application id read before), and a new database would look foreign.
	var appID, version, tables int
	err = sdb.QueryRowContext(ctx, `SELECT
		(SELECT application_id FROM pragma_application_id()),
		(SELECT user_version FROM pragma_user_version()),
		(SELECT count(*) FROM sqlite_master)`).Scan(&appID, &version, &tables)
	var serr sqlite3.Error
	switch {
	case errors.As(err, &serr) && (serr.Code == sqlite3.ErrNotADB || serr.Code == sqlite3.ErrCorrupt):
		return fmt.Errorf("%s: %w (it is not a SQLite file)", path, ErrNotCertsweep)
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	case appID == 0 && tables == 0:
		return nil
	case appID != applicationID:
		return fmt.Errorf("%s: %w (it is a SQLite file of another application)", path, ErrNotCertsweep)
	case version > len(migrationNames()):
		return fmt.Errorf("%s has schema version %d, this certsweep knows %d: %w", path, version, len(migrationNames()), ErrSchemaTooNew)
	}
	return nil
}

func migrationNames() []string {
	names, _ := fs.Glob(migrations, "migrations/*.sql") // the pattern is valid
	sort.Strings(names)
	return names
}

// migrate applies the embedded migrations not yet applied, one transaction
// each; PRAGMA user_version counts the applied ones. The version is read
// inside each (immediate, so write-locked) transaction: two certsweeps
// opening a new database at once apply each migration exactly once.
func (db *DB) migrate(ctx context.Context) error {
	names := migrationNames()
	// Up to date: no write lock, so read-only files and busy writers are fine.
	var version int
	if err := db.sql.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version == len(names) {
		return nil
	}
	for {
		done, err := db.migrateOne(ctx, names)
		if err != nil || done {
			return err
		}
	}
}

func (db *DB) migrateOne(ctx context.Context, names []string) (done bool, err error) {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate %s: %w", db.path, err)
	}
	defer tx.Rollback() // no-op after Commit
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case version > len(names):
		return false, fmt.Errorf("%s has schema version %d, this certsweep knows %d: %w", db.path, version, len(names), ErrSchemaTooNew)
	case version == len(names):
		return true, nil
	}
	body, err := migrations.ReadFile(names[version])
	if err != nil {
		return false, err
	}
	stmts := string(body) + "\nPRAGMA user_version = " + strconv.Itoa(version+1) + ";"
	if version == 0 {
		stmts += "\nPRAGMA application_id = " + strconv.Itoa(applicationID) + ";"
	}
	if _, err := tx.ExecContext(ctx, stmts); err != nil {
		return false, fmt.Errorf("migrate %s with %s: %w", db.path, names[version], err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate %s: %w", db.path, err)
	}
	return false, nil
}

// driver is the name certsweep's SQLite driver is registered under: go-sqlite3
// with certsweep's SQL functions (ip_key, see diff.go) on every connection.
const driver = "sqlite3_certsweep"

var registerDriver sync.Once

// driverName registers the driver, once, and returns its name.
func driverName() string {
	registerDriver.Do(func() {
		sql.Register(driver, &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
			return conn.RegisterFunc("ip_key", IPKey, true)
		}})
	})
	return driver
}

// Close closes the database.
func (db *DB) Close() error { return db.sql.Close() }

// Path is the file the database lives in.
func (db *DB) Path() string { return db.path }

// Time formats. Both sort lexically in time order.
const (
	certTimeLayout = "2006-01-02T15:04:05Z"     // certificate validity: seconds
	seenTimeLayout = "2006-01-02T15:04:05.000Z" // observations: milliseconds
)

// formatCertTime formats a validity bound for its column. A parsed
// certificate's bounds are dates as encoded, year 1 (the zero time)
// included; only a certificate that did not parse has none (NULL), and its
// parse_error says why.
func formatCertTime(t time.Time, parsed bool) any {
	if !parsed {
		return nil
	}
	return t.UTC().Format(certTimeLayout)
}

func formatSeen(t time.Time) string { return t.UTC().Format(seenTimeLayout) }

func parseTime(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	layout := time.RFC3339Nano
	switch len(s.String) { // the layouts certsweep writes, tried first
	case len(seenTimeLayout):
		layout = seenTimeLayout
	case len(certTimeLayout):
		layout = certTimeLayout
	}
	t, err := time.Parse(layout, s.String)
	if err != nil {
		t, _ = time.Parse(time.RFC3339Nano, s.String)
	}
	return t.UTC()
}

// SQLiteVersion is the version of the SQLite library compiled in.
func SQLiteVersion() string {
	v, _, _ := sqlite3.Version()
	return v
}
