-- Central schema version 2: a record redacted on its host after it was
-- shipped (`tmux-audit redact`) stops showing its old text centrally.
-- The writer may only INSERT: the redaction ships as a row of its own
-- (the text as it is now on the host, the content hash that text gives,
-- who, when, why), and a trigger running with the schema owner's rights
-- applies it to the shipped row, after checking that it only hides: the
-- new text must be the old one with parts replaced by [REDACTED] (a
-- writer cannot rewrite what it shipped into something else). Readers
-- read the table as before (its indexes serve every query); the row's
-- chain hash is kept, and `verify --central` checks the row's content
-- against the redaction's hash. What a DBA can still see: the old text in
-- the row's dead version until VACUUM, in WAL, archives, replicas and
-- backups made before (README, "For a team").

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

-- Whether `new` only hides parts of `old`: its pieces between
-- [REDACTED] marks appear in `old`, in order, the first at its start and
-- the last at its end.
CREATE FUNCTION tmux_audit.only_hides(old text, new text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$
    SELECT old LIKE coalesce(string_agg(
               replace(replace(replace(piece, '\', '\\'), '%', '\%'), '_', '\_'), '%' ORDER BY n), '')
           ESCAPE '\'
    FROM unnest(string_to_array(new, '[REDACTED]')) WITH ORDINALITY AS p(piece, n)
$$;

CREATE FUNCTION tmux_audit.apply_redaction() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
DECLARE
    old_text text;
BEGIN
    SELECT command INTO old_text FROM tmux_audit.commands
        WHERE host_id = NEW.host_id AND database_id = NEW.database_id AND id = NEW.id
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'a redaction of row % that was not shipped', NEW.id USING ERRCODE = '23514';
    END IF;
    IF NOT tmux_audit.only_hides(old_text, NEW.command) THEN
        RAISE EXCEPTION 'the redaction of row % does not only hide parts of its text', NEW.id
            USING ERRCODE = '23514';
    END IF;
    UPDATE tmux_audit.commands
        SET command = NEW.command, command_raw = NEW.command_raw, redacted = true
        WHERE host_id = NEW.host_id AND database_id = NEW.database_id AND id = NEW.id;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tmux_audit.apply_redaction() FROM PUBLIC;
CREATE TRIGGER apply AFTER INSERT ON tmux_audit.redactions
    FOR EACH ROW EXECUTE FUNCTION tmux_audit.apply_redaction();

-- Who redacted what, when and why, and the hash the row's content has
-- since (not the old text: only its hash, in the host's trace).
GRANT SELECT (host_id, database_id, id, trace_id, content_hash, redacted_at_us, redacted_by,
    reason, shipped_by, shipped_at) ON tmux_audit.redactions TO tmux_audit_auditor;
CREATE POLICY auditor_reads_all ON tmux_audit.redactions FOR SELECT TO tmux_audit_auditor
    USING (true);
