-- Every certificate behind an address (sweep --names-file, --follow-names,
-- --ptr, --all-keys). source says where an observation's server name came
-- from: '' the sweep's own targets (an address, or a hostname given as a
-- target), else 'names-file', 'followed' (a DNS name of a certificate seen
-- at that address and port), 'ptr' (reverse DNS), 'inventory' (a name seen
-- there by an earlier sweep) or 'default' (the probe without a name, added
-- when a hostname target's other names are tried). offer is what the
-- ClientHello offered: '' everything (every observation before schema 7),
-- 'rsa' or 'ecdsa' only certificates of that key family (--all-keys), so a
-- server holding both certificates shows each. An endpoint is (ip, port,
-- sni, protocol, offer).
ALTER TABLE observations ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE observations ADD COLUMN offer TEXT NOT NULL DEFAULT '';
-- The names an earlier sweep saw at an address and port, tried again.
CREATE INDEX observations_ip_port ON observations (ip, port);
