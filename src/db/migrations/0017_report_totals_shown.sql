-- Version 17 (queries at a million rows, issue 15): running totals for the
-- reports by session, window, typist (client-user) and day too, and each
-- group's row as a report shows it, ready to print.
--
-- `shown`: the group's finished row (JSON, without its key), so that a
-- report from the totals reads a few hundred bytes per group rather than
-- the whole state it goes on counting from (every directory's and
-- command's count: as large as the rows for a day or a session).
ALTER TABLE report_totals ADD COLUMN shown TEXT;
-- The tmux events the totals of a grouping that depends on them (session,
-- window, typist) were placed with: the newest event's id and hash. An
-- event that arrives later and could place a counted command otherwise
-- (it happened before that command started, or names a new server), or a
-- counted event that changed, sends the totals to be counted again.
ALTER TABLE totals_state ADD COLUMN events_up_to INTEGER;
ALTER TABLE totals_state ADD COLUMN events_hash BLOB;
-- Totals counted before this version have no `shown` row, and showed a
-- group's first command in id order rather than the earliest: counted
-- anew by the next report (the shell sessions' totals are unchanged).
DELETE FROM totals_state WHERE name <> 'sessions';
DELETE FROM report_totals;
DELETE FROM report_states;
