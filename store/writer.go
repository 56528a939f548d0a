package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certsweep/certsweep/scanner"
	ztls "github.com/zmap/zcrypto/tls"
)

// WriterOptions tunes batching. Larger batches mean fewer commits.
type WriterOptions struct {
	BatchSize  int           // results per transaction
	FlushEvery time.Duration // longest a result waits before being committed
	Resume     Progress      // where a resumed sweep stands (zero for a new sweep)
	Site       string        // the sweep's site (--site), written on every observation
}

// Progress is how far a sweep got, in probe positions (the order of
// scanner.Plan.Targets): every position below Below is done, and so is
// every position in Done. It is committed with each batch.
type Progress struct {
	Below uint64
	Done  map[uint64]bool
}

// Skip reports whether the probe at pos is already done.
func (p Progress) Skip(pos uint64) bool { return pos < p.Below || p.Done[pos] }

// DefaultWriterOptions commits every 1000 results or 250 ms, whichever first.
func DefaultWriterOptions() WriterOptions {
	return WriterOptions{BatchSize: 10000, FlushEvery: 500 * time.Millisecond}
}

type item struct {
	pos uint64
	r   scanner.Result
}

// Writer records the results of one sweep. It is the only writer: one
// goroutine, one connection, one transaction per batch. Write is safe for
// concurrent use; Close commits what is pending and stops the goroutine.
type Writer struct {
	db      *DB
	sweepID int64
	opts    WriterOptions
	in      chan item
	done    chan struct{}
	err     error // set by the goroutine before done closes
	newCert int64
	// fresh remembers certificates stored or touched recently, so a
	// certificate presented by thousands of endpoints costs one statement a
	// minute instead of one per endpoint. Bounded: cleared when full.
	fresh map[[32]byte]freshCert
	// progress: below advances as positions complete contiguously; above
	// holds completed positions past a gap (bounded by the probes in flight).
	below uint64
	above map[uint64]bool
}

type freshCert struct {
	id      int64
	touched time.Time
}

// Cost bounds of the writer's memory of recently stored certificates.
const (
	freshCerts  = 1 << 17         // ~10 MB at most
	lastSeenLag = 1 * time.Minute // last_seen may trail the latest observation by this much
)

// NewWriter starts a writer for sweep sweepID. Its goroutine runs until
// Close; it deliberately ignores cancellation of the sweep so that results
// already produced are committed, not lost.
func (db *DB) NewWriter(sweepID int64, opts WriterOptions) *Writer {
	if opts.BatchSize < 1 {
		opts.BatchSize = 1
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 250 * time.Millisecond
	}
	w := &Writer{db: db, sweepID: sweepID, opts: opts,
		in: make(chan item, opts.BatchSize), done: make(chan struct{}),
		fresh: make(map[[32]byte]freshCert),
		below: opts.Resume.Below, above: make(map[uint64]bool, len(opts.Resume.Done))}
	for pos := range opts.Resume.Done {
		w.above[pos] = true
	}
	go w.run()
	return w
}

// Write queues one result for commit. It blocks while the writer is busy
// (back-pressure on the probes) and returns the writer's error once it has
// failed, or ctx's error if ctx ends first.
func (w *Writer) Write(ctx context.Context, pos uint64, r scanner.Result) error {
	select {
	case w.in <- item{pos, r}:
		return nil
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close commits every queued result and stops the writer. It returns the
// first error the writer met. Write must not be called after Close.
func (w *Writer) Close() error {
	close(w.in)
	<-w.done
	return w.err
}

// NewCerts is the number of certificates this writer stored for the first
// time. Call it after Close.
func (w *Writer) NewCerts() int64 { return w.newCert }

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]item, 0, w.opts.BatchSize)
	tick := time.NewTicker(w.opts.FlushEvery)
	defer tick.Stop()
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		if err := w.commit(batch); err != nil {
			w.err = err
			return false
		}
		batch = batch[:0]
		return true
	}
	for {
		select {
		case it, ok := <-w.in:
			if !ok {
				flush()
				return
			}
			batch = append(batch, it)
			if len(batch) >= w.opts.BatchSize && !flush() {
				return
			}
		case <-tick.C:
			if !flush() {
				return
			}
		}
	}
}

// commit writes one batch in one transaction. The context is not the
// sweep's: a cancelled sweep must still commit what it observed.
func (w *Writer) commit(batch []item) error {
	ctx := context.Background()
	tx, err := w.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin batch: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	st, err := prepareBatch(ctx, tx)
	if err != nil {
		return err
	}
	defer st.close()

	// Observation IDs are assigned here, so that observations and their
	// chains go in as multi-row INSERTs; this goroutine is the only writer.
	var nextID int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM observations`).Scan(&nextID); err != nil {
		return fmt.Errorf("begin batch: %w", err)
	}
	obs := newRowBuffer(tx, `INSERT INTO observations (id, sweep_id, position, ip, port, sni, observed_at,
		status, error, tls_version, cipher_suite, handshake_ms, leaf_id, protocol,
		versions, weak_ciphers, posture, source, offer, site) VALUES `, 20, 64)
	chain := newRowBuffer(tx, `INSERT INTO observation_chain (observation_id, position, cert_id) VALUES `, 3, 256)
	chain.after = obs // a chain row references its observation
	defer obs.close()
	defer chain.close()

	stats := make(map[scanner.Status]int64)
	var touched [][32]byte
	var ids []int64 // certificate ids of the current chain
	committed := false
	defer func() {
		if !committed { // the batch is lost to the database: forget it was stored
			for _, fp := range touched {
				delete(w.fresh, fp)
			}
		}
	}()
	// observe stores one observation and its chain.
	observe := func(pos uint64, r scanner.Result) error {
		at := formatSeen(r.End)
		ids = ids[:0]
		for _, c := range r.Chain {
			f, ok := w.fresh[c.SHA256]
			if !ok || r.End.Sub(f.touched) >= lastSeenLag {
				id, isNew, err := st.storeCert(ctx, c, w.sweepID, at)
				if err != nil {
					return fmt.Errorf("store certificate %s: %w", c.Fingerprint(), err)
				}
				if isNew {
					w.newCert++
				}
				f = freshCert{id: id, touched: r.End}
				w.fresh[c.SHA256] = f
				touched = append(touched, c.SHA256)
			}
			ids = append(ids, f.id)
		}
		var leaf any
		if len(ids) > 0 {
			leaf = ids[0]
		}
		versions, weak := postureText(r.Posture)
		nextID++
		err := obs.add(ctx, nextID, w.sweepID, int64(pos),
			r.Target.Addr.Addr().String(), int(r.Target.Addr.Port()), r.Target.SNI, at,
			string(r.Status), r.Err, versionName(r.TLSVersion), suiteName(r.CipherSuite),
			r.End.Sub(r.Start).Milliseconds(), leaf, string(cmp.Or(r.Protocol, scanner.ProtoTLS)),
			versions, weak, r.Posture != nil, string(r.Source), string(r.Offer), w.opts.Site)
		if err != nil {
			return fmt.Errorf("store observation %s: %w", r.Target.Addr, err)
		}
		for i, id := range ids {
			if err := chain.add(ctx, nextID, i, id); err != nil {
				return fmt.Errorf("store chain of %s: %w", r.Target.Addr, err)
			}
		}
		return nil
	}
	var newlyDone []uint64
	for _, it := range batch {
		r := it.r
		stats[r.Status]++
		if w.markDone(it.pos) {
			newlyDone = append(newlyDone, it.pos)
		}
		if !r.Connected {
			continue // closed or silent: counted, nothing to observe
		}
		if err := observe(it.pos, r); err != nil {
			return err
		}
		if x := r.Expansion; x != nil {
			for _, f := range x.Found { // other names and key families at the same address and port
				if err := observe(it.pos, f); err != nil {
					return err
				}
			}
		}
	}
	// Observations before chains: the chain rows reference them.
	if err := obs.flush(ctx); err != nil {
		return fmt.Errorf("store observations: %w", err)
	}
	if err := chain.flush(ctx); err != nil {
		return fmt.Errorf("store chains: %w", err)
	}
	for status, n := range stats {
		if _, err := st.stats.ExecContext(ctx, w.sweepID, string(status), n); err != nil {
			return fmt.Errorf("store sweep statistics: %w", err)
		}
	}
	if err := w.saveProgress(ctx, tx, newlyDone); err != nil {
		return fmt.Errorf("store sweep progress: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit batch of %d results: %w", len(batch), err)
	}
	committed = true
	if len(w.fresh) > freshCerts {
		clear(w.fresh)
	}
	return nil
}

// markDone records position pos as done and reports whether it lies past
// the contiguous watermark (and so must be remembered in sweep_done).
func (w *Writer) markDone(pos uint64) bool {
	switch {
	case pos == w.below:
		w.below++
		for w.above[w.below] {
			delete(w.above, w.below)
			w.below++
		}
		return false
	case pos > w.below:
		w.above[pos] = true
		return true
	}
	return false
}

// saveProgress writes the watermark and the done positions still above it.
func (w *Writer) saveProgress(ctx context.Context, tx *sql.Tx, newlyDone []uint64) error {
	done := newRowBuffer(tx, `INSERT OR IGNORE INTO sweep_done (sweep_id, position) VALUES `, 2, 256)
	defer done.close()
	for _, pos := range newlyDone {
		if w.above[pos] {
			if err := done.add(ctx, w.sweepID, int64(pos)); err != nil {
				return err
			}
		}
	}
	if err := done.flush(ctx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sweep_done WHERE sweep_id = ? AND position < ?`, w.sweepID, int64(w.below)); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE sweeps SET resume_below = ? WHERE id = ?`, int64(w.below), w.sweepID)
	return err
}

// rowBuffer accumulates rows for one table and inserts them perStmt at a
// time with a multi-row INSERT, which costs far less per row than one
// statement each.
type rowBuffer struct {
	tx      *sql.Tx
	prefix  string
	cols    int
	perStmt int
	args    []any
	full    *sql.Stmt // prepared on first use for perStmt rows
	// after, if set, is flushed before this buffer inserts anything: its
	// rows are the ones these rows reference (observations for chains).
	after *rowBuffer
}

func newRowBuffer(tx *sql.Tx, prefix string, cols, perStmt int) *rowBuffer {
	return &rowBuffer{tx: tx, prefix: prefix, cols: cols, perStmt: perStmt}
}

func (b *rowBuffer) add(ctx context.Context, vals ...any) error {
	b.args = append(b.args, vals...)
	if len(b.args) < b.cols*b.perStmt {
		return nil
	}
	if b.after != nil {
		if err := b.after.flush(ctx); err != nil {
			return err
		}
	}
	if b.full == nil {
		st, err := b.tx.PrepareContext(ctx, b.statement(b.perStmt))
		if err != nil {
			return err
		}
		b.full = st
	}
	_, err := b.full.ExecContext(ctx, b.args...)
	b.args = b.args[:0]
	return err
}

func (b *rowBuffer) flush(ctx context.Context) error {
	if len(b.args) == 0 {
		return nil
	}
	if b.after != nil {
		if err := b.after.flush(ctx); err != nil {
			return err
		}
	}
	_, err := b.tx.ExecContext(ctx, b.statement(len(b.args)/b.cols), b.args...)
	b.args = b.args[:0]
	return err
}

func (b *rowBuffer) statement(rows int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", b.cols), ",") + ")"
	return b.prefix + strings.TrimSuffix(strings.Repeat(row+",", rows), ",")
}

func (b *rowBuffer) close() {
	if b.full != nil {
		b.full.Close()
	}
}

type batchStmts struct {
	certIns, certSeen, certID, stats *sql.Stmt
}

func prepareBatch(ctx context.Context, tx *sql.Tx) (*batchStmts, error) {
	var st batchStmts
	var errs []error
	prep := func(q string) *sql.Stmt {
		s, err := tx.PrepareContext(ctx, q)
		errs = append(errs, err)
		return s
	}
	st.certIns = prep(`INSERT INTO certificates (sha256, der, subject, issuer, serial, sans,
		not_before, not_after, key_type, key_bits, signature_algorithm, is_ca, self_signed,
		spki_sha256, parse_error, first_sweep_id, first_seen, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (sha256) DO NOTHING`)
	st.certSeen = prep(`UPDATE certificates SET last_seen = max(last_seen, ?1) WHERE sha256 = ?2`)
	st.certID = prep(`SELECT id FROM certificates WHERE sha256 = ?`)
	st.stats = prep(`INSERT INTO sweep_stats (sweep_id, status, count) VALUES (?, ?, ?)
		ON CONFLICT (sweep_id, status) DO UPDATE SET count = count + excluded.count`)
	if err := errors.Join(errs...); err != nil {
		st.close()
		return nil, fmt.Errorf("prepare batch: %w", err)
	}
	return &st, nil
}

func (st *batchStmts) close() {
	for _, s := range []*sql.Stmt{st.certIns, st.certSeen, st.certID, st.stats} {
		if s != nil {
			s.Close()
		}
	}
}

// storeCert stores c if it is new, or moves its last_seen forward, and
// returns its id and whether it was new.
func (st *batchStmts) storeCert(ctx context.Context, c scanner.Cert, sweepID int64, at string) (int64, bool, error) {
	sans, err := json.Marshal(nonNil(c.SANs))
	if err != nil {
		return 0, false, err
	}
	var spki string
	if c.ParseError == "" {
		spki = fmt.Sprintf("%x", c.SPKISHA256)
	}
	// Exec, not INSERT ... RETURNING: a RETURNING row can come back from a
	// statement that then fails (disk full), naming a row that never was.
	parsed := c.ParseError == ""
	res, err := st.certIns.ExecContext(ctx, c.Fingerprint(), c.DER, c.Subject, c.Issuer, c.Serial,
		string(sans), formatCertTime(c.NotBefore, parsed), formatCertTime(c.NotAfter, parsed), c.KeyType, c.KeyBits,
		c.SignatureAlgorithm, c.IsCA, c.SelfSigned, spki, c.ParseError, sweepID, at, at)
	if err != nil {
		return 0, false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, false, err
	} else if n == 1 {
		id, err := res.LastInsertId()
		return id, true, err
	}
	if _, err := st.certSeen.ExecContext(ctx, at, c.Fingerprint()); err != nil {
		return 0, false, err
	}
	var id int64
	err = st.certID.QueryRowContext(ctx, c.Fingerprint()).Scan(&id)
	return id, false, err
}

// versionName spells a TLS version as users read it, e.g. "TLS 1.2".
func versionName(v uint16) string {
	if v == 0 {
		return ""
	}
	return ztls.VersionName(v)
}

// postureText spells a posture as stored: the accepted versions and weak
// suites, each ";"-joined in order (the posture column says whether it was
// measured at all).
func postureText(p *scanner.Posture) (versions, weak string) {
	if p == nil {
		return "", ""
	}
	vs := make([]string, len(p.Versions))
	for i, v := range p.Versions {
		vs[i] = versionName(v)
	}
	ws := make([]string, len(p.WeakCiphers))
	for i, s := range p.WeakCiphers {
		ws[i] = suiteName(s)
	}
	return strings.Join(vs, postureSep), strings.Join(ws, postureSep)
}

// postureSep separates the names in the versions and weak_ciphers columns.
const postureSep = ";"

// postureList reads a versions or weak_ciphers column back.
func postureList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, postureSep)
}

func suiteName(s uint16) string {
	if s == 0 {
		return ""
	}
	return ztls.CipherSuiteID(s).String()
}
