-- Resuming an interrupted sweep: every probe position below resume_below is
-- done; sweep_done holds the done positions above it (a window about
-- --rate × the probe timeout wide), so a resumed sweep probes nothing twice.

ALTER TABLE sweeps ADD COLUMN resume_below INTEGER NOT NULL DEFAULT 0;

CREATE TABLE sweep_done (
    sweep_id INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (sweep_id, position)
) WITHOUT ROWID;
