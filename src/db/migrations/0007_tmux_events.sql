-- Version 7: tmux lifecycle events (sessions, windows, panes, clients),
-- recorded by the hooks `tmux-audit init tmux` registers in a tmux server
-- (see src/lifecycle/). A server is its socket path and pid: ids such as
-- `%3` or `$1` are reused by the next server. Session, window and client
-- fields are what the event names; NULL when it names none. The events
-- have a hash chain of their own (label "tmux-audit tmux event v1", see
-- src/chain.rs), checked by `tmux-audit verify`. `event_key` is unique per
-- event, so an event merged twice from the spool is stored once.
CREATE TABLE tmux_events (
    id INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    recorded_at_us INTEGER NOT NULL,
    event_key TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    user TEXT NOT NULL,
    uid INTEGER NOT NULL,
    tmux_socket TEXT NOT NULL,
    tmux_server_pid INTEGER NOT NULL,
    session_id INTEGER,
    session_name TEXT,
    window_id INTEGER,
    window_index INTEGER,
    window_name TEXT,
    pane TEXT,
    client_name TEXT,
    client_tty TEXT,
    client_pid INTEGER,
    client_user TEXT,
    client_uid INTEGER,
    client_termname TEXT,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX tmux_events_by_server ON tmux_events (tmux_socket, tmux_server_pid, at_us);
CREATE INDEX tmux_events_by_time ON tmux_events (at_us);
