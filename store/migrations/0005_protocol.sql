-- How each observation reached TLS: 'tls' (implicit TLS, every observation
-- before schema 5) or the protocol whose upgrade certsweep spoke first
-- ('smtp', 'ldap', 'postgres', ...). An endpoint is (ip, port, sni, protocol).
ALTER TABLE observations ADD COLUMN protocol TEXT NOT NULL DEFAULT 'tls';

DROP INDEX observations_sweep_endpoint;
CREATE INDEX observations_sweep_endpoint ON observations (sweep_id, ip, port, sni, protocol);

DROP VIEW observed_chains;
CREATE VIEW observed_chains AS
    SELECT o.sweep_id, o.ip, o.port, o.sni, o.protocol, o.observed_at, o.status, oc.position, c.sha256, c.subject
    FROM observations o
    JOIN observation_chain oc ON oc.observation_id = o.id
    JOIN certificates c ON c.id = oc.cert_id;
