-- Version 21: how often each directory and each command was seen in a
-- group of the running totals, one row each, instead of inside the group's
-- state (report_states, JSON). There they made every group's state as
-- large as its distinct values: at a million rows each user's held 141,020
-- commands (4 MB of JSON), read and written again whenever a report
-- counted one new command of that user, and ten times that at ten million.
-- Now a report adds to the rows of the values it counts, and finds a
-- group's most used one through the index.
--
-- kind: 0 a directory, 1 a command.
CREATE TABLE report_values (
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    kind INTEGER NOT NULL,
    value TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (name, key, kind, value)
) WITHOUT ROWID;
CREATE INDEX report_values_top ON report_values (name, key, kind, n DESC, value);
-- The states counted before hold those counts: counted anew by the next
-- report (the shell sessions' totals are unchanged).
DELETE FROM totals_state WHERE name <> 'sessions';
DELETE FROM report_totals;
DELETE FROM report_states;
