-- Version 13: forwarding to syslog and journald (see src/forward.rs). Per
-- target (`syslog tcp://host:port`, `journald /run/systemd/journal/socket`),
-- the last command id and tmux event id it took: advanced only once a
-- batch is delivered, so an outage loses nothing.
CREATE TABLE forward_cursors (
    target TEXT PRIMARY KEY,
    commands_up_to INTEGER NOT NULL,
    events_up_to INTEGER NOT NULL
);
