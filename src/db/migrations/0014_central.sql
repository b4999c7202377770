-- Version 14: the central store (`tmux-audit sync`): what it needs kept
-- locally. The database's own id tells its rows apart on the server from
-- those of another database on the same host (another user's); the
-- cursor is, per server and chain, the newest row shipped and its hash,
-- checked against the server's anchor before each sync.
CREATE TABLE central_identity (
    database_id TEXT NOT NULL
);
INSERT INTO central_identity (database_id) VALUES (lower(hex(randomblob(16))));
CREATE TABLE central_shipped (
    server    TEXT    NOT NULL,
    chain     TEXT    NOT NULL,
    last_id   INTEGER NOT NULL,
    last_hash BLOB,
    at_us     INTEGER NOT NULL,
    PRIMARY KEY (server, chain)
);
