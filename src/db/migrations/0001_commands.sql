-- Version 1: one row per finished command.
-- Times are microseconds since the Unix epoch, UTC.
CREATE TABLE commands (
    id              INTEGER PRIMARY KEY,
    command         TEXT    NOT NULL,  -- valid UTF-8, NUL-free; see command_raw
    command_raw     BLOB,              -- exact bytes, only when they differ from command
    exit_status     INTEGER,
    started_at_us   INTEGER NOT NULL,
    duration_us     INTEGER,
    cwd             TEXT    NOT NULL,
    cwd_raw         BLOB,
    user            TEXT    NOT NULL,
    uid             INTEGER NOT NULL,
    login_uid       INTEGER,           -- /proc/self/loginuid: who logged in, across su/sudo
    sudo_user       TEXT,
    host            TEXT    NOT NULL,
    shell           TEXT    NOT NULL,  -- bash, zsh, fish
    shell_session   TEXT    NOT NULL,  -- one id per interactive shell
    seq             INTEGER NOT NULL,  -- 1, 2, 3... within shell_session: a hole is a lost record
    tty             TEXT,
    ssh_connection  TEXT,
    tmux_socket     TEXT,              -- from $TMUX: socket path,
    tmux_server_pid INTEGER,           --   server pid,
    tmux_session_id INTEGER,           --   session id ($N)
    tmux_pane       TEXT,              -- $TMUX_PANE, e.g. %3
    recorded_at_us  INTEGER NOT NULL
);

-- A command is recorded once: the hook numbers each command of a shell
-- session, so a second insert of the same (shell_session, seq), say from a
-- retried write, is recognised and dropped. Also serves "the commands of one
-- shell session, in order" and the search for holes in seq.
CREATE UNIQUE INDEX commands_by_session ON commands (shell_session, seq);

-- Serves "newest first" and every time-range filter.
CREATE INDEX commands_by_start ON commands (started_at_us);
