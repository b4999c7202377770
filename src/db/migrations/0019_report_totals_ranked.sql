-- Version 19 (report; the lead renumbers at merge): the running totals in
-- the order a report ranks them by default (most commands first, ties by
-- name), so that `report` reads them in that order, a row at a time,
-- without sorting. The index by (name, commands) alone left SQLite sorting
-- each run of equal counts by name: at a million rows the 141,020 command
-- groups (most with one or two commands, 62 MB of rows) spilled to a
-- temporary file, half of `report --by command`'s CPU time.
DROP INDEX report_totals_by_commands;
CREATE INDEX report_totals_ranked ON report_totals (name, commands DESC, key);
