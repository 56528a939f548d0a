package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/bcrypt"
)

const defaultListen = "127.0.0.1:9793"

// judgingFlags are --db and the flags of `report` that decide findings, for the
// commands that judge the latest sweep without writing a report (serve,
// metrics).
func judgingFlags() []cli.Flag {
	var flags []cli.Flag
	for _, f := range findingFlags() {
		switch f.Names()[0] {
		case "format", "output", "fail-on", "sweep":
			continue
		}
		flags = append(flags, f)
	}
	return flags
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "a read-only web view of the inventory and a Prometheus /metrics endpoint",
		Description: `Serves, read-only:
   /                the dashboard of the latest complete sweep (?sweep=ID for another):
                    counts by severity, expiry timeline, findings by kind and subnet,
                    and every endpoint, sortable and filterable
   /certs/SHA256    one certificate: its fields, where it was seen, its PEM
   /report.csv      the CSV report (?sweep=ID), as certsweep report --format csv
   /metrics         Prometheus metrics (as certsweep metrics writes them)

The database is opened read-only and read anew for every request, so a sweep
running meanwhile is never blocked and its result shows once it completes. A
missing, locked or replaced database gets 503 with the reason; serve recovers
when it is back. Only GET (and HEAD) requests are answered.

--listen defaults to 127.0.0.1:9793 (CERTSWEEP_LISTEN). Any other address than
loopback needs --basic-auth-file FILE, lines of "user: bcrypt-hash" as in
Prometheus' web config (htpasswd -nBC 10 USER | tr -d '\n' prints one), or
--insecure-listen. Judging flags are those of certsweep report.

Examples:
   certsweep serve --db /var/lib/certsweep/certs.db
   certsweep serve --listen :9793 --basic-auth-file web-users.yml --ca-bundle corp-roots.pem`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: defaultListen, EnvVars: []string{"CERTSWEEP_LISTEN"}, Usage: "`ADDRESS` to serve on (host:port)"},
			&cli.StringFlag{Name: "basic-auth-file", Usage: "require HTTP basic authentication by the bcrypt hashes in `FILE` (user: hash lines)"},
			&cli.BoolFlag{Name: "insecure-listen", Usage: "allow a non-loopback --listen without --basic-auth-file"},
		}, judgingFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			s, err := judgeSettingsFrom(c)
			if err != nil {
				return err
			}
			addr := c.String("listen")
			var users map[string][]byte
			if f := c.String("basic-auth-file"); f != "" {
				if users, err = readBasicAuthFile(f); err != nil {
					return usageError(fmt.Errorf("--basic-auth-file: %w", err), `write one "user: bcrypt-hash" a line, e.g. from htpasswd -nBC 10 USER`)
				}
			}
			loopback, err := isLoopbackListen(addr)
			if err != nil {
				return usageError(fmt.Errorf("--listen %q: %w", addr, err), "give host:port, such as 127.0.0.1:9793")
			}
			if !loopback && users == nil && !c.Bool("insecure-listen") {
				return usageError(fmt.Errorf("--listen %s is reachable from other hosts, and the inventory maps your network's weak spots", addr),
					"add --basic-auth-file FILE, or --insecure-listen if a firewall or proxy guards it")
			}
			srv := &webServer{db: &liveDB{path: c.String("db")}, settings: s, users: users,
				busy: make(chan struct{}, 2), stderr: c.App.ErrWriter}
			defer srv.db.close()
			// A database that is not certsweep's is a mistake to report now;
			// a missing one may just not be swept yet, and serve waits for it.
			if _, err := srv.db.get(c.Context); errors.Is(err, store.ErrNotCertsweep) {
				return usageError(fmt.Errorf("--db %s: %w", c.String("db"), err), "choose the database certsweep sweep writes")
			} else if err != nil {
				fmt.Fprintf(c.App.ErrWriter, "certsweep: warning: %v; pages answer 503 until it can be read\n", err)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return failure(fmt.Errorf("listen on %s: %w", addr, err), "pick another --listen address or port")
			}
			if !loopback && users == nil {
				fmt.Fprintf(c.App.ErrWriter, "certsweep: warning: serving %s without authentication (--insecure-listen)\n", ln.Addr())
			}
			fmt.Fprintf(c.App.ErrWriter, "certsweep: serving http://%s/ (database %s)\n", ln.Addr(), c.String("db"))
			return srv.serve(c.Context, ln)
		},
	}
}

// isLoopbackListen reports whether a listen address only accepts
// connections from this host. An empty host listens everywhere.
func isLoopbackListen(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback(), nil
}

// readBasicAuthFile reads "user: bcrypt-hash" lines, which also reads the
// basic_auth_users section of a Prometheus web config file.
func readBasicAuthFile(path string) (map[string][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	users := map[string][]byte{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || line == "basic_auth_users:" {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		user = strings.Trim(strings.TrimSpace(user), `"'`)
		hash = strings.Trim(strings.TrimSpace(hash), `"'`)
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("%s:%d: want user: bcrypt-hash", path, i+1)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%s:%d: the hash of %q is not bcrypt: %w", path, i+1, user, err)
		}
		users[user] = []byte(hash)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s names no user", path)
	}
	return users, nil
}

// liveDB is the database serve reads: opened read-only on first use,
// reopened when the file at path is replaced, closed while it is missing.
type liveDB struct {
	path string
	mu   sync.Mutex
	db   *store.DB
	fi   os.FileInfo
}

// get returns the database as the file at path now is.
func (l *liveDB) get(ctx context.Context) (*store.DB, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fi, err := os.Stat(l.path)
	if err != nil {
		l.closeLocked()
		return nil, fmt.Errorf("no database at %s (%w)", l.path, err)
	}
	if l.db != nil && os.SameFile(fi, l.fi) {
		return l.db, nil
	}
	l.closeLocked() // replaced (or never opened): requests still reading the old one fail and are retried by the client
	db, err := store.OpenReadOnly(ctx, l.path)
	if err != nil {
		return nil, err
	}
	l.db, l.fi = db, fi
	return db, nil
}

func (l *liveDB) closeLocked() {
	if l.db != nil {
		l.db.Close()
		l.db = nil
	}
}

func (l *liveDB) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeLocked()
}

// webServer answers serve's pages. Every page is computed from the
// database at request time.
type webServer struct {
	db       *liveDB
	settings judgeSettings
	users    map[string][]byte // nil: no authentication
	busy     chan struct{}     // bounds concurrent judging: each one reads a whole sweep
	stderr   io.Writer
}

func (s *webServer) serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.withDB(s.dashboard))
	mux.HandleFunc("GET /certs/{sha256}", s.certificate)
	mux.HandleFunc("GET /report.csv", s.withDB(s.reportCSV))
	mux.HandleFunc("GET /metrics", s.withDB(s.metrics))
	hs := &http.Server{
		Handler:           s.headers(s.authenticate(mux)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // a large sweep's CSV
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return failure(fmt.Errorf("serve: %w", err), "")
	case <-ctx.Done():
	}
	// SIGINT/SIGTERM is how serve is meant to stop: finish what is in
	// flight, briefly, and exit 0.
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return failure(fmt.Errorf("serve: %w", err), "")
	}
	return nil
}

// headers sets the security headers of every answer: nothing may frame,
// sniff, cache or refer from the pages, and the CSP of the report applies.
func (s *webServer) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", report.CSP+"; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// dummyHash is compared for unknown users, so that a wrong name costs as
// long as a wrong password and does not reveal which names exist. A
// constant (bcrypt of "certsweep" at the default cost): computing it at
// start would cost every certsweep command about 50 ms.
var dummyHash = []byte("$2a$10$id2VwWClcrH7qwZassEQiuuDvtEpDXtcUJ81d0o3gvfW3aA2boJl2")

func (s *webServer) authenticate(next http.Handler) http.Handler {
	if s.users == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		hash, known := s.users[user]
		if !known {
			hash = dummyHash
		}
		if !ok || bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil || !known {
			w.Header().Set("WWW-Authenticate", `Basic realm="certsweep", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// unavailable answers 503 with the reason the database cannot be read now.
// Clients retry: serve reopens the database on every request.
func (s *webServer) unavailable(w http.ResponseWriter, err error) {
	reason := err.Error()
	switch {
	case store.IsLocked(err):
		reason = "the database is locked by another process; try again shortly (" + reason + ")"
	case errors.Is(err, store.ErrNoDatabase):
		reason += "; run certsweep sweep, or check --db"
	}
	w.Header().Set("Retry-After", "10")
	http.Error(w, "certsweep: "+reason, http.StatusServiceUnavailable)
}

// acquire takes one of the judging slots, or reports that the client gave up.
func (s *webServer) acquire(r *http.Request) bool {
	select {
	case s.busy <- struct{}{}:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *webServer) release() { <-s.busy }

// withDB runs h with the database while holding one of the judging slots;
// a database that cannot be read now is answered 503.
func (s *webServer) withDB(h func(http.ResponseWriter, *http.Request, *store.DB)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.acquire(r) {
			return
		}
		defer s.release()
		db, err := s.db.get(r.Context())
		if err != nil {
			s.unavailable(w, err)
			return
		}
		h(w, r, db)
	}
}

// sweepFor resolves ?sweep=ID, or the latest complete sweep. It writes the
// answer itself when there is none.
func (s *webServer) sweepFor(w http.ResponseWriter, r *http.Request, db *store.DB) (store.Sweep, bool) {
	var id int64
	if v := r.URL.Query().Get("sweep"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "certsweep: ?sweep= wants a sweep ID, such as ?sweep=12", http.StatusBadRequest)
			return store.Sweep{}, false
		}
		id = n
	} else {
		ids, err := db.LatestSweeps(r.Context(), 1)
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("%s holds no complete sweep yet", db.Path())
		}
		if err != nil {
			s.unavailable(w, err)
			return store.Sweep{}, false
		}
		id = ids[0]
	}
	sw, err := db.FindSweep(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, fmt.Sprintf("certsweep: no sweep %d", id), http.StatusNotFound)
		return sw, false
	case err != nil:
		s.unavailable(w, err)
		return sw, false
	}
	return sw, true
}

// judged returns the settings for judging sweep id now.
func (s *webServer) judged(id int64) judgeSettings {
	j := s.settings
	j.sweepID = id
	j.policy.Now = time.Now().UTC()
	return j
}

func (s *webServer) dashboard(w http.ResponseWriter, r *http.Request, db *store.DB) {
	ctx := r.Context()
	sw, ok := s.sweepFor(w, r, db)
	if !ok {
		return
	}
	j := s.judged(sw.ID)
	warning, err := coverage(ctx, db, sw.ID)
	if err != nil {
		s.unavailable(w, err)
		return
	}
	title := fmt.Sprintf("certsweep: sweep %d", sw.ID)
	if sw.Name != "" {
		title += " (" + report.Terminal(sw.Name) + ")"
	}
	if !sw.FinishedAt.IsZero() {
		title += ", " + sw.State + " " + sw.FinishedAt.UTC().Format("2006-01-02 15:04 UTC")
	} else {
		title += ", " + sw.State
	}
	nav := []report.Link{{Text: "CSV report", Href: "/report.csv?sweep=" + strconv.FormatInt(sw.ID, 10)}, {Text: "metrics", Href: "/metrics"}}
	if ids, err := db.LatestSweeps(ctx, 8); err == nil {
		for _, id := range ids {
			if id != sw.ID {
				nav = append(nav, report.Link{Text: "sweep " + strconv.FormatInt(id, 10), Href: "/?sweep=" + strconv.FormatInt(id, 10)})
			}
		}
	}
	// Rendered whole before answering, so that a database that fails
	// half-way gets a 503, not half a page.
	var buf bytes.Buffer
	enc, err := report.NewHTML(&buf, report.ReportColumns, report.HTMLOptions{Title: title, Now: j.policy.Now,
		Warning: warning, Nav: nav, CertLink: "/certs/"})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	err = judge(ctx, db, j, func(ep store.Endpoint, fs []report.Finding) error {
		return enc.Encode(report.ReportRow(ep, fs, j.policy.Now)...)
	})
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		s.unavailable(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

var fingerprintPath = regexp.MustCompile(`^[0-9a-fA-F:]{6,95}$`)

func (s *webServer) certificate(w http.ResponseWriter, r *http.Request) {
	fp := r.PathValue("sha256")
	if !fingerprintPath.MatchString(fp) {
		http.Error(w, "certsweep: /certs/ wants a SHA-256 fingerprint in hex (6 digits or more)", http.StatusNotFound)
		return
	}
	ctx := r.Context()
	db, err := s.db.get(ctx)
	if err != nil {
		s.unavailable(w, err)
		return
	}
	cert, err := db.FindCertificate(ctx, fp)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "certsweep: no certificate "+fp, http.StatusNotFound)
		return
	case errors.Is(err, store.ErrAmbiguous):
		http.Error(w, "certsweep: "+fp+" is the prefix of several certificates: give more digits", http.StatusBadRequest)
		return
	case err != nil:
		s.unavailable(w, err)
		return
	}
	page := report.CertPage{Cert: cert, SweepLink: "/?sweep=", Nav: []report.Link{{Text: "dashboard", Href: "/"}}}
	owners, err := loadOwners(ctx, db)
	if err != nil {
		s.unavailable(w, err)
		return
	}
	if ow, ok := owners.OfCert(cert); ok {
		page.Owner = ow.Name + " (" + ow.Via + ")"
	}
	for sg, err := range db.Sightings(ctx, cert.SHA256) {
		if err != nil {
			s.unavailable(w, err)
			return
		}
		if len(page.Sightings) == 100 {
			page.More = true
			break
		}
		page.Sightings = append(page.Sightings, sg)
	}
	var buf bytes.Buffer
	if err := report.WriteCertPage(&buf, page); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func (s *webServer) reportCSV(w http.ResponseWriter, r *http.Request, db *store.DB) {
	ctx := r.Context()
	sw, ok := s.sweepFor(w, r, db)
	if !ok {
		return
	}
	j := s.judged(sw.ID)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="certsweep-sweep-%d.csv"`, sw.ID))
	// Streamed: a large sweep's CSV need not fit in memory. A failure
	// half-way aborts the connection, so a client never takes a cut-short
	// file for the whole report.
	bw := bufio.NewWriterSize(w, 64<<10)
	enc, err := report.NewEncoder(bw, "csv", report.ReportColumns)
	if err == nil {
		err = judge(ctx, db, j, func(ep store.Endpoint, fs []report.Finding) error {
			return enc.Encode(report.ReportRow(ep, fs, j.policy.Now)...)
		})
	}
	if err == nil {
		err = enc.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		fmt.Fprintf(s.stderr, "certsweep: /report.csv: %v\n", err)
		panic(http.ErrAbortHandler)
	}
}

func (s *webServer) metrics(w http.ResponseWriter, r *http.Request, db *store.DB) {
	ctx := r.Context()
	var buf bytes.Buffer
	if err := writeMetrics(ctx, &buf, db, s.settings); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("%s holds no complete sweep yet", db.Path())
		}
		s.unavailable(w, err)
		return
	}
	w.Header().Set("Content-Type", metricsContentType)
	w.Write(buf.Bytes())
}
