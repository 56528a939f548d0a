-- TLS posture (sweep --posture): what the endpoint accepted when offered
-- one protocol version, or only weak cipher suites, alone. posture is 1
-- when it was measured; then versions lists the accepted versions, oldest
-- first ('TLS 1.2;TLS 1.3'), and weak_ciphers the weak suites the server
-- chose ('' when it chose none). posture 0 (every observation before
-- schema 6, and sweeps without --posture): not measured, both ''.
ALTER TABLE observations ADD COLUMN versions TEXT NOT NULL DEFAULT '';
ALTER TABLE observations ADD COLUMN weak_ciphers TEXT NOT NULL DEFAULT '';
ALTER TABLE observations ADD COLUMN posture INTEGER NOT NULL DEFAULT 0;
