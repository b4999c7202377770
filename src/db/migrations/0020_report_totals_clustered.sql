-- Version 20: the running totals stored in the order a report reads them
-- (most commands first, ties by name), not in the order they were first
-- counted. Through the index of version 19 each group was a lookup at a
-- scattered place in the table: `report --by command` at a million rows
-- (141,020 groups, read twice for a table) spent a third of its time in
-- 428,000 page reads. Stored in rank order, the same rows are read one
-- page after another. The index by (name, key) finds a group to update.
CREATE TABLE report_totals_new (
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    commands INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL,
    total_duration_us INTEGER NOT NULL,
    longest_us INTEGER NOT NULL,
    shown TEXT,
    PRIMARY KEY (name, commands DESC, key)
) WITHOUT ROWID;
INSERT INTO report_totals_new
    SELECT name, key, commands, failures, first_us, last_us, total_duration_us, longest_us,
           shown
    FROM report_totals;
DROP TABLE report_totals;
ALTER TABLE report_totals_new RENAME TO report_totals;
CREATE UNIQUE INDEX report_totals_by_key ON report_totals (name, key);
