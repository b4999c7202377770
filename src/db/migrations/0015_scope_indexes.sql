-- Version 15: the newest commands of one tmux session, and of one host,
-- read through an index: the picker's session and host scopes (and
-- `search --session`, `--host`) no longer read every row to find that a
-- session or host has few commands or none.
CREATE INDEX commands_by_tmux_session ON commands (tmux_session_id, started_at_us);
CREATE INDEX commands_by_host ON commands (host, started_at_us);
