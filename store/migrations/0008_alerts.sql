-- certsweep alert: the findings each destination has accepted. A finding is
-- sent to a destination once: an alert run sends the findings whose row is
-- missing, and writes the rows only after the receiver accepted them
-- (at-least-once delivery). destination names who receives: 'webhook
-- <scheme>://<host> <hash of the URL>' (the path of a chat webhook is its
-- secret, so it is not stored) or 'mail <recipients, sorted>'. finding is
-- the finding's identity as a JSON array: [kind, leaf sha256, ip, port, sni,
-- protocol, what in the chain or which lint it is about], or
-- ["coverage-drop", "sweep <id>"] for a sweep that reached too little; its
-- wording (detail) is left out, so "expired 5 days ago" and "expired 12
-- days ago" are one finding. sweep_id is the sweep it was sent from, kept
-- for people (no foreign key: pruning old sweeps keeps what was sent, or
-- their findings would be sent again).
CREATE TABLE alerts_sent (
    destination TEXT NOT NULL,
    finding     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    sweep_id    INTEGER NOT NULL,
    sent_at     TEXT NOT NULL,
    PRIMARY KEY (destination, finding)
) WITHOUT ROWID;
