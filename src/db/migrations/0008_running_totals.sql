-- Version 8: running totals, so that a report over the whole history and
-- the list of shell sessions with missing records need not read every row
-- (see src/db/report.rs). Each set of totals covers the rows up to
-- `counted_up_to`; the readers that use them fold in the rows stored since.
CREATE TABLE totals_state (
    name TEXT PRIMARY KEY,
    counted_up_to INTEGER NOT NULL
);
-- One row per report group: `state` is the group's counts as JSON.
CREATE TABLE report_totals (
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (name, key)
);
-- Per shell session: how many of its commands are stored and the highest
-- number among them (a hole means a record that never arrived).
CREATE TABLE session_totals (
    shell_session TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    recorded INTEGER NOT NULL,
    highest_seq INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL
);
