-- Version 18 (queries at a million rows, issue 15): an index per filter a
-- search or report takes, each ordered by start time within its value, so
-- that a search reads the newest rows of that value first and stops at its
-- limit, and a report reads only the rows of that value. Without them a
-- filter on a rare value (or one no row has) read every row: 230-275 ms
-- for `--min-duration 4s --user bob` at a million rows.
-- `--user`, and `--typed-by` where no tmux events name a client:
CREATE INDEX IF NOT EXISTS commands_by_user ON commands (user, started_at_us);
-- `--cwd`, and `--cwd-under` (a range of paths; used when it holds few rows):
CREATE INDEX IF NOT EXISTS commands_by_cwd ON commands (cwd, started_at_us);
-- `--shell`:
CREATE INDEX IF NOT EXISTS commands_by_shell ON commands (shell, started_at_us);
-- `--exit N`:
CREATE INDEX IF NOT EXISTS commands_by_exit ON commands (exit_status, started_at_us);
-- `--socket`:
CREATE INDEX IF NOT EXISTS commands_by_socket ON commands (tmux_socket, started_at_us);
-- `--min-duration` when few commands ran that long (a range, so used only
-- then: see `Database::conditions`):
CREATE INDEX IF NOT EXISTS commands_by_duration ON commands (duration_us);
