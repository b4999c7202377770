-- Version 5: where a chain begins. `doctor --repair` starts a new database
-- when the old one is damaged; the new one says so here, so that `verify`
-- shows the break instead of a chain that seems always to have been short.
CREATE TABLE chain_origins (
    id                INTEGER PRIMARY KEY,
    at_us             INTEGER NOT NULL,
    reason            TEXT    NOT NULL,
    previous_database TEXT
);
