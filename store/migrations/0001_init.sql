-- certsweep schema, version 1. Times are ISO-8601 UTC text; fingerprints are
-- lowercase hex SHA-256, readable in the sqlite3 shell and in exports.

CREATE TABLE sweeps (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL DEFAULT '',
    started_at   TEXT    NOT NULL,
    finished_at  TEXT,
    state        TEXT    NOT NULL CHECK (state IN ('running', 'complete', 'interrupted')),
    targets      TEXT    NOT NULL,          -- JSON array of the target tokens as given
    excludes     TEXT    NOT NULL DEFAULT '[]',
    ports        TEXT    NOT NULL,          -- port list as given, e.g. "443,8443"
    probes_total INTEGER NOT NULL,
    seed         INTEGER NOT NULL,
    options      TEXT    NOT NULL DEFAULT '{}' -- JSON: rate, concurrency, timeouts, sni
);

-- Outcome counts per sweep, updated with every committed batch.
CREATE TABLE sweep_stats (
    sweep_id INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
    status   TEXT    NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (sweep_id, status)
) WITHOUT ROWID;

-- Certificates are keyed by sha256; the integer id only keeps the large
-- observation tables and their indexes compact.
CREATE TABLE certificates (
    id                  INTEGER PRIMARY KEY,
    sha256              TEXT    NOT NULL UNIQUE CHECK (length(sha256) = 64),
    der                 BLOB    NOT NULL,
    subject             TEXT    NOT NULL DEFAULT '',
    issuer              TEXT    NOT NULL DEFAULT '',
    serial              TEXT    NOT NULL DEFAULT '',
    sans                TEXT    NOT NULL DEFAULT '[]', -- JSON array
    not_before          TEXT,
    not_after           TEXT,
    key_type            TEXT    NOT NULL DEFAULT '',
    key_bits            INTEGER NOT NULL DEFAULT 0,
    signature_algorithm TEXT    NOT NULL DEFAULT '',
    is_ca               INTEGER NOT NULL DEFAULT 0,
    self_signed         INTEGER NOT NULL DEFAULT 0,
    spki_sha256         TEXT    NOT NULL DEFAULT '',
    parse_error         TEXT    NOT NULL DEFAULT '',
    first_sweep_id      INTEGER REFERENCES sweeps (id),
    first_seen          TEXT    NOT NULL,
    last_seen           TEXT    NOT NULL
);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_first_sweep ON certificates (first_sweep_id);

-- One row per endpoint that answered (TCP connected); closed and silent
-- ports only count in sweep_stats.
CREATE TABLE observations (
    id           INTEGER PRIMARY KEY,
    sweep_id     INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,          -- the probe's place in the sweep order
    ip           TEXT    NOT NULL,
    port         INTEGER NOT NULL,
    sni          TEXT    NOT NULL DEFAULT '',
    observed_at  TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    error        TEXT    NOT NULL DEFAULT '',
    tls_version  TEXT    NOT NULL DEFAULT '',
    cipher_suite TEXT    NOT NULL DEFAULT '',
    handshake_ms INTEGER NOT NULL DEFAULT 0,
    leaf_id      INTEGER REFERENCES certificates (id)
);
CREATE INDEX observations_sweep_endpoint ON observations (sweep_id, ip, port, sni);

-- The chain as presented, leaf at position 0.
CREATE TABLE observation_chain (
    observation_id INTEGER NOT NULL REFERENCES observations (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    cert_id        INTEGER NOT NULL REFERENCES certificates (id),
    PRIMARY KEY (observation_id, position)
) WITHOUT ROWID;
CREATE INDEX observation_chain_cert ON observation_chain (cert_id);

-- For people at the sqlite3 prompt: observations with fingerprints.
CREATE VIEW observed_chains AS
    SELECT o.sweep_id, o.ip, o.port, o.sni, o.observed_at, o.status, oc.position, c.sha256, c.subject
    FROM observations o
    JOIN observation_chain oc ON oc.observation_id = o.id
    JOIN certificates c ON c.id = oc.cert_id;
