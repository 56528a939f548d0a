-- Ownership that follows the service, not the key.
--
-- An inherited entry gives a renewed certificate the owner of the tracked
-- certificate it replaced: at the same endpoint, or with the same subject
-- and DNS names. inherited_from names that certificate; added_at is when.
ALTER TABLE tracked ADD COLUMN inherited_from TEXT;
ALTER TABLE tracked ADD COLUMN inherited_via TEXT NOT NULL DEFAULT '';

-- Certificates whose inherited owner a user removed (track rm): never
-- inherit one for them again.
CREATE TABLE inherit_refused (
    sha256     TEXT PRIMARY KEY CHECK (length(sha256) = 64),
    refused_at TEXT NOT NULL
) WITHOUT ROWID;

-- Owner rules: every selector given must match; the most specific matching
-- rule wins (see store.OwnerRule). Issuer rules of schema 2 become rules
-- with only an issuer.
CREATE TABLE owner_rules (
    id          INTEGER PRIMARY KEY,
    cidr        TEXT,     -- e.g. 10.20.0.0/16, matched against the endpoint's address
    port        INTEGER,  -- the endpoint's port
    name_suffix TEXT,     -- lowercase DNS suffix, matched against the SANs (or the CN without SANs)
    subject_o   TEXT,     -- the subject's organization (O), compared case-insensitively
    issuer      TEXT,     -- the issuer DN as given; compared parsed (RFC 4514, openssl's forms)
    owner       TEXT NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    added_at    TEXT NOT NULL,
    CHECK (coalesce(cidr, port, name_suffix, subject_o, issuer) IS NOT NULL)
);
INSERT INTO owner_rules (issuer, owner, note, added_at)
    SELECT issuer, owner, note, added_at FROM tracked_issuers ORDER BY issuer;
DROP TABLE tracked_issuers;
