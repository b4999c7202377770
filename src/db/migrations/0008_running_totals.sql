-- Version 8: running totals, so that a report over the whole history and
-- the list of shell sessions with missing records need not read every row
-- (see src/db/report.rs). Each set of totals covers the rows up to
-- `counted_up_to`, whose hash is `counted_hash`: should that row change or
-- go (tampering), the totals are counted again from the start. The readers
-- that use them fold in the rows stored since.
CREATE TABLE totals_state (
    name TEXT PRIMARY KEY,
    counted_up_to INTEGER NOT NULL,
    counted_hash BLOB
);
-- One row per report group: its figures, to rank and add up groups in SQL,
-- and (in report_states) what it takes to go on counting it, as JSON.
CREATE TABLE report_totals (
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    commands INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL,
    total_duration_us INTEGER NOT NULL,
    longest_us INTEGER NOT NULL,
    PRIMARY KEY (name, key)
);
CREATE INDEX report_totals_by_commands ON report_totals (name, commands);
CREATE TABLE report_states (
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
