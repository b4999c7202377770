-- Central schema version 2: a record redacted on its host after it was
-- shipped (`tmux-audit redact`) stops showing its old text centrally.
-- The writer may only INSERT, so the shipped row is never changed: the
-- redaction ships as a row of its own (with the text as it is now on the
-- host and the content hash that text gives), and readers no longer read
-- the commands' text from the table but through `commands_shown`, which
-- shows the newest redaction's text instead. What a DBA (the schema's
-- owner, a superuser) still sees: the old text in tmux_audit.commands,
-- until the administrator overwrites it there (README, "For a team").

CREATE TABLE tmux_audit.redactions (
    host_id        text   NOT NULL,
    database_id    text   NOT NULL,
    -- The command's id on its host, and the redaction's trace entry id
    -- there (a command redacted twice: the newest entry wins).
    id             bigint NOT NULL,
    trace_id       bigint NOT NULL,
    command        text   NOT NULL,
    command_raw    bytea,
    -- The hash of the row's content with this text (the trace entry's
    -- content_hash_after): what `verify --central` checks the shown row
    -- against, the chain's own hash being the one before.
    content_hash   bytea  NOT NULL,
    redacted_at_us bigint NOT NULL,
    redacted_by    text   NOT NULL,
    reason         text   NOT NULL,
    shipped_by     name   NOT NULL DEFAULT current_user,
    shipped_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_id, database_id, id, trace_id)
);
GRANT INSERT (host_id, database_id, id, trace_id, command, command_raw, content_hash,
    redacted_at_us, redacted_by, reason) ON tmux_audit.redactions TO tmux_audit_writer;
ALTER TABLE tmux_audit.redactions ENABLE ROW LEVEL SECURITY;
CREATE POLICY writer_inserts_for_its_host ON tmux_audit.redactions FOR INSERT TO tmux_audit_writer
    WITH CHECK (host_id = tmux_audit.bound_host(current_user));

-- Readers lose the text columns of the table itself...
REVOKE SELECT ON tmux_audit.commands FROM tmux_audit_auditor, tmux_audit_user;
GRANT SELECT (host_id, database_id, id, recorded_at_us, exit_status, started_at_us, duration_us,
    cwd, cwd_raw, "user", uid, login_uid, sudo_user, host, shell, shell_session, seq, tty,
    ssh_connection, tmux_socket, tmux_server_pid, tmux_session_id, tmux_pane, redacted,
    import_source, import_file, import_key, prev_hash, hash, shipped_by, shipped_at)
    ON tmux_audit.commands TO tmux_audit_auditor, tmux_audit_user;

-- ...and read it here, with the newest redaction applied. The view reads
-- with its owner's rights, so it keeps to the rows the table's policies
-- give the caller itself: an auditor every row, a user the rows of its
-- name. `content_hash`: what the shown row hashes to (NULL: not redacted
-- after shipping, the chain's `hash`).
CREATE VIEW tmux_audit.commands_shown WITH (security_barrier) AS
    SELECT c.host_id, c.database_id, c.id, c.recorded_at_us,
           coalesce(r.command, c.command) AS command,
           CASE WHEN r.id IS NULL THEN c.command_raw ELSE r.command_raw END AS command_raw,
           c.exit_status, c.started_at_us, c.duration_us, c.cwd, c.cwd_raw, c."user", c.uid,
           c.login_uid, c.sudo_user, c.host, c.shell, c.shell_session, c.seq, c.tty,
           c.ssh_connection, c.tmux_socket, c.tmux_server_pid, c.tmux_session_id, c.tmux_pane,
           c.redacted OR r.id IS NOT NULL AS redacted,
           c.import_source, c.import_file, c.import_key, c.prev_hash, c.hash,
           r.content_hash, c.shipped_by, c.shipped_at
    FROM tmux_audit.commands c
    -- The newest redaction of each row (a join, not a lookup per row:
    -- reports read millions of rows through here).
    LEFT JOIN (
        SELECT DISTINCT ON (host_id, database_id, id) host_id, database_id, id, command,
               command_raw, content_hash
        FROM tmux_audit.redactions ORDER BY host_id, database_id, id, trace_id DESC
    ) r ON r.host_id = c.host_id AND r.database_id = c.database_id AND r.id = c.id
    WHERE pg_has_role(current_user, 'tmux_audit_auditor', 'MEMBER')
       OR (pg_has_role(current_user, 'tmux_audit_user', 'MEMBER') AND c."user" = current_user);
GRANT SELECT ON tmux_audit.commands_shown TO tmux_audit_auditor, tmux_audit_user;

-- Who redacted what, when and why (not the old text: only its hash,
-- kept in the host's trace), for the auditor.
GRANT SELECT (host_id, database_id, id, trace_id, content_hash, redacted_at_us, redacted_by,
    reason, shipped_by, shipped_at) ON tmux_audit.redactions TO tmux_audit_auditor;
CREATE POLICY auditor_reads_all ON tmux_audit.redactions FOR SELECT TO tmux_audit_auditor
    USING (true);
