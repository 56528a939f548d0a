-- Sites and merged inventories (certsweep sweep --site, certsweep merge).
--
-- site is the vantage point a sweep ran from (--site; '' for sweeps without
-- one, and every sweep before schema 9). Private ranges overlap between
-- sites, so an endpoint is (site, ip, port, sni, protocol, offer): each
-- observation carries its site, and a sweep merged from several sites keeps
-- their endpoints apart. shard is the sweep's part of its permuted order
-- ('I/N', from --shard; '' for a whole sweep, and for a sweep merged from
-- shards).
ALTER TABLE sweeps ADD COLUMN site TEXT NOT NULL DEFAULT '';
ALTER TABLE sweeps ADD COLUMN shard TEXT NOT NULL DEFAULT '';
UPDATE sweeps SET shard = coalesce(json_extract(options, '$.shard'), '')
    WHERE json_valid(options) AND json_type(options, '$.shard') = 'text';
UPDATE sweeps SET shard = '' WHERE shard = '0/1';
ALTER TABLE observations ADD COLUMN site TEXT NOT NULL DEFAULT '';

DROP INDEX observations_sweep_endpoint;
CREATE INDEX observations_sweep_endpoint ON observations (sweep_id, site, ip, port, sni, protocol);

DROP VIEW observed_chains;
CREATE VIEW observed_chains AS
    SELECT o.sweep_id, o.site, o.ip, o.port, o.sni, o.protocol, o.offer, o.observed_at, o.status, oc.position, c.sha256, c.subject
    FROM observations o
    JOIN observation_chain oc ON oc.observation_id = o.id
    JOIN certificates c ON c.id = oc.cert_id;

-- This database's identity: random, made once. merge records what it
-- imported by the source's identity (a path changes when a file is
-- copied or mounted elsewhere), and refuses to merge a database into
-- itself or into a copy of itself.
CREATE TABLE database_identity (id TEXT NOT NULL);
INSERT INTO database_identity (id) VALUES (lower(hex(randomblob(16))));

-- What certsweep merge imported: each source sweep once, whichever file
-- it is read from again. sweep_id is the (logical) sweep it joined; prune
-- sets it NULL when it deletes that sweep and keeps the row, so a pruned
-- sweep is never merged back. No foreign key, for that reason. site,
-- shard and seed are the source sweep's: a logical sweep takes each
-- (site, shard) once, and the shards of one site must share a seed.
CREATE TABLE merge_imports (
    source_db     TEXT    NOT NULL,
    source_sweep  INTEGER NOT NULL,
    sweep_id      INTEGER,
    site          TEXT    NOT NULL,
    shard         TEXT    NOT NULL,
    seed          INTEGER NOT NULL,
    source_path   TEXT    NOT NULL,
    observations  INTEGER NOT NULL,
    imported_at   TEXT    NOT NULL,
    PRIMARY KEY (source_db, source_sweep)
) WITHOUT ROWID;
CREATE INDEX merge_imports_sweep ON merge_imports (sweep_id);
