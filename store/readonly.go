package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"

	"github.com/mattn/go-sqlite3"
)

// ErrSchemaTooOld is returned by OpenReadOnly for a database that a newer
// certsweep would migrate first: a reader must not.
var ErrSchemaTooOld = errors.New("database schema is older than this certsweep")

// readOnlyBusyMS is how long a read-only statement waits on a lock. A sweep
// never holds one that blocks a reader (WAL), so only something unusual
// (an exclusive lock, a recovery) waits here, and a web page should say so
// soon rather than hang.
const readOnlyBusyMS = 1000

// OpenReadOnly opens the existing certsweep database at path for reading
// only: it never writes to the file, never migrates it and, in WAL mode,
// never blocks a sweep writing to it. It fails with ErrNoDatabase when
// there is no file, ErrNotCertsweep for another file, and ErrSchemaTooNew
// or ErrSchemaTooOld when this certsweep cannot read the schema as it is.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w", path, ErrNoDatabase)
	case err != nil:
		return nil, err
	case fi.IsDir():
		return nil, fmt.Errorf("%s is a directory: %w", path, ErrNotCertsweep)
	case fi.Size() == 0:
		return nil, fmt.Errorf("%s is empty: %w", path, ErrNoDatabase)
	}
	if err := identify(ctx, path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", strconv.Itoa(readOnlyBusyMS))
	sdb, err := sql.Open(driverName(), "file:"+escapePath(path)+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	var version int
	if err := sdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if want := len(migrationNames()); version < want {
		sdb.Close()
		return nil, fmt.Errorf("%s has schema version %d, this certsweep reads %d: %w", path, version, want, ErrSchemaTooOld)
	}
	return &DB{sql: sdb, path: path}, nil
}

// IsLocked reports whether err comes from SQLite finding the database
// locked (SQLITE_BUSY or SQLITE_LOCKED) past the busy timeout.
func IsLocked(err error) bool {
	var serr sqlite3.Error
	return errors.As(err, &serr) && (serr.Code == sqlite3.ErrBusy || serr.Code == sqlite3.ErrLocked)
}
