-- The tracked inventory: certificates someone owns. A certificate matches
-- by fingerprint, or by serial and issuer; an issuer rule tracks everything
-- a managed CA issues. Anything else is a shadow certificate.

CREATE TABLE tracked (
    id       INTEGER PRIMARY KEY,
    sha256   TEXT CHECK (sha256 IS NULL OR length(sha256) = 64),
    serial   TEXT,                      -- lowercase hex, no colons or leading zeros
    issuer   TEXT,                      -- as certsweep prints it
    owner    TEXT NOT NULL,
    note     TEXT NOT NULL DEFAULT '',
    added_at TEXT NOT NULL,
    CHECK (sha256 IS NOT NULL OR (serial IS NOT NULL AND issuer IS NOT NULL))
);
CREATE UNIQUE INDEX tracked_sha256 ON tracked (sha256) WHERE sha256 IS NOT NULL;
CREATE UNIQUE INDEX tracked_serial_issuer ON tracked (serial, issuer) WHERE sha256 IS NULL;

CREATE TABLE tracked_issuers (
    issuer   TEXT PRIMARY KEY,
    owner    TEXT NOT NULL,
    note     TEXT NOT NULL DEFAULT '',
    added_at TEXT NOT NULL
);

CREATE INDEX certificates_serial_issuer ON certificates (serial, issuer);
