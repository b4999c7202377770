-- Central schema version 1: every host's commands and tmux events, as
-- `tmux-audit sync` ships them, with their hash chains (see src/chain.rs).
-- Run by `tmux-audit central init` as a role that may create schemas,
-- roles and extensions (the database's owner, or a superuser); shown
-- without running by `tmux-audit central init --print-sql`.

-- Substring search (`search --central PATTERN`) through trigram indexes.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The three group roles. Give each login role one of them:
--   a host's writer (one login role per host):  GRANT tmux_audit_writer TO web1;
--   an auditor (reads every row):               GRANT tmux_audit_auditor TO carol;
--   a user (reads the rows recorded as the Unix user named like the role):
--                                               GRANT tmux_audit_user TO alice;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tmux_audit_writer') THEN
        CREATE ROLE tmux_audit_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tmux_audit_auditor') THEN
        CREATE ROLE tmux_audit_auditor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tmux_audit_user') THEN
        CREATE ROLE tmux_audit_user NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA tmux_audit TO tmux_audit_writer, tmux_audit_auditor, tmux_audit_user;
GRANT SELECT ON tmux_audit.migrations TO tmux_audit_writer, tmux_audit_auditor, tmux_audit_user;

-- Which host each writer role writes for: bound by the role's first row
-- (or beforehand by an administrator: INSERT INTO tmux_audit.writers ...).
-- A role bound to one host cannot write rows of another.
CREATE TABLE tmux_audit.writers (
    role      name PRIMARY KEY,
    host_id   text NOT NULL UNIQUE,
    host_name text NOT NULL,
    bound_at  timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON tmux_audit.writers TO tmux_audit_auditor;

-- The central anchor: per host, local database and chain, the newest row
-- shipped and its hash. Kept by the insert trigger (never by the writer),
-- so that a host whose local history was cut short is caught by
-- `tmux-audit verify` comparing with it.
CREATE TABLE tmux_audit.anchors (
    host_id     text   NOT NULL,
    database_id text   NOT NULL,
    chain       text   NOT NULL CHECK (chain IN ('commands', 'tmux_events')),
    last_id     bigint NOT NULL,
    last_hash   bytea,
    rows        bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_id, database_id, chain)
);

-- One row per command, as in the local `commands` table, plus where it
-- came from: the host, the local database (a host may have several: one
-- per user) and the row's id there. Partitioned by month of start time.
CREATE TABLE tmux_audit.commands (
    host_id         text    NOT NULL,
    database_id     text    NOT NULL,
    id              bigint  NOT NULL,
    recorded_at_us  bigint  NOT NULL,
    command         text    NOT NULL,
    command_raw     bytea,
    exit_status     bigint,
    started_at_us   bigint  NOT NULL,
    duration_us     bigint,
    cwd             text    NOT NULL,
    cwd_raw         bytea,
    "user"          text    NOT NULL,
    uid             bigint  NOT NULL,
    login_uid       bigint,
    sudo_user       text,
    host            text    NOT NULL,
    shell           text    NOT NULL,
    shell_session   text    NOT NULL,
    seq             bigint  NOT NULL,
    tty             text,
    ssh_connection  text,
    tmux_socket     text,
    tmux_server_pid bigint,
    tmux_session_id bigint,
    tmux_pane       text,
    redacted        boolean NOT NULL DEFAULT false,
    -- Imported from another tool's history (`tmux-audit import`); in the
    -- chain's hash when set.
    import_source   text,
    import_file     text,
    import_key      bytea,
    prev_hash       bytea,
    hash            bytea,
    -- Who shipped it: the writer's role, set by its default (the writer
    -- may not insert this column), checked by the trigger.
    shipped_by      name    NOT NULL DEFAULT current_user,
    shipped_at      timestamptz NOT NULL DEFAULT now(),
    -- A record is stored once (partitioned tables need the partition key
    -- in a unique key; the trigger skips a record already shipped).
    PRIMARY KEY (host_id, database_id, id, started_at_us)
) PARTITION BY RANGE (started_at_us);

-- The same filters as local search: newest first and time ranges, per
-- host and user, a pane, a directory; substrings through trigrams.
CREATE INDEX commands_by_start ON tmux_audit.commands (started_at_us);
CREATE INDEX commands_by_host ON tmux_audit.commands (host, started_at_us);
CREATE INDEX commands_by_user ON tmux_audit.commands ("user", started_at_us);
CREATE INDEX commands_by_pane ON tmux_audit.commands (tmux_pane, started_at_us);
CREATE INDEX commands_by_cwd ON tmux_audit.commands (cwd text_pattern_ops);
CREATE INDEX commands_by_session ON tmux_audit.commands (shell_session, seq);
CREATE INDEX commands_text ON tmux_audit.commands USING gin (command gin_trgm_ops);

CREATE TABLE tmux_audit.tmux_events (
    host_id         text   NOT NULL,
    database_id     text   NOT NULL,
    id              bigint NOT NULL,
    recorded_at_us  bigint NOT NULL,
    event           text   NOT NULL,
    at_us           bigint NOT NULL,
    event_key       text   NOT NULL,
    host            text   NOT NULL,
    "user"          text   NOT NULL,
    uid             bigint NOT NULL,
    tmux_socket     text   NOT NULL,
    tmux_server_pid bigint NOT NULL,
    session_id      bigint,
    session_name    text,
    window_id       bigint,
    window_index    bigint,
    window_name     text,
    pane            text,
    client_name     text,
    client_tty      text,
    client_pid      bigint,
    client_user     text,
    client_uid      bigint,
    client_termname text,
    -- Of a window-renamed: tmux's automatic renaming or rename-window; in
    -- the chain's hash when known.
    automatic_rename boolean,
    prev_hash       bytea  NOT NULL,
    hash            bytea  NOT NULL,
    shipped_by      name   NOT NULL DEFAULT current_user,
    shipped_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_id, database_id, id, at_us)
) PARTITION BY RANGE (at_us);
CREATE INDEX tmux_events_by_server ON tmux_audit.tmux_events (host_id, tmux_socket, tmux_server_pid, at_us);

-- Default partitions catch what no monthly partition holds (records
-- older or newer than those made by `central init`, which adds months
-- ahead each time it runs: run it monthly, e.g. from cron).
CREATE TABLE tmux_audit.commands_default PARTITION OF tmux_audit.commands DEFAULT;
CREATE TABLE tmux_audit.tmux_events_default PARTITION OF tmux_audit.tmux_events DEFAULT;

-- The host a writer role is bound to (NULL: none yet).
CREATE FUNCTION tmux_audit.bound_host(who name) RETURNS text
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$ SELECT host_id FROM tmux_audit.writers WHERE role = who $$;

-- Every row shipped passes here, with the owner's rights: the writer
-- role is bound to the row's host (on its first row), and a row shipped
-- before (its id at or below the anchor's) is skipped, so sending again
-- is harmless.
CREATE FUNCTION tmux_audit.accept() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
DECLARE
    bound text;
    shipped_to bigint;
BEGIN
    SELECT host_id INTO bound FROM tmux_audit.writers WHERE role = NEW.shipped_by;
    IF bound IS NULL THEN
        INSERT INTO tmux_audit.writers (role, host_id, host_name)
        VALUES (NEW.shipped_by, NEW.host_id, NEW.host)
        ON CONFLICT DO NOTHING;
        SELECT host_id INTO bound FROM tmux_audit.writers WHERE role = NEW.shipped_by;
    END IF;
    IF bound IS DISTINCT FROM NEW.host_id THEN
        RAISE EXCEPTION 'role % writes for host %, not for host %', NEW.shipped_by, bound, NEW.host_id
            USING ERRCODE = '42501';
    END IF;
    SELECT last_id INTO shipped_to FROM tmux_audit.anchors
        WHERE host_id = NEW.host_id AND database_id = NEW.database_id AND chain = TG_ARGV[0];
    IF shipped_to IS NOT NULL AND NEW.id <= shipped_to THEN
        RETURN NULL; -- shipped before
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION tmux_audit.accept() FROM PUBLIC;

-- Once per INSERT, over the rows it added in id order: each must extend
-- the chain the server holds (its prev_hash the hash of the row before,
-- the first one's the anchor's), and the anchor moves to the last. Once
-- per statement, not per row: a row-level update of the anchor would
-- leave a dead version of it per row, each read by the next.
CREATE FUNCTION tmux_audit.link() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
DECLARE
    which_chain text := TG_ARGV[0];
    r record;
    cur_host text;
    cur_db text;
    last_id bigint;
    last_hash bytea;
    added bigint := 0;
    anchored boolean;
BEGIN
    FOR r IN SELECT s.host_id, s.database_id, s.id, s.prev_hash, s.hash
             FROM shipped s ORDER BY 1, 2, 3 LOOP
        IF cur_host IS DISTINCT FROM r.host_id OR cur_db IS DISTINCT FROM r.database_id THEN
            IF cur_host IS NOT NULL THEN
                PERFORM tmux_audit.advance(cur_host, cur_db, which_chain, last_id, last_hash, added);
            END IF;
            cur_host := r.host_id;
            cur_db := r.database_id;
            added := 0;
            SELECT a.last_id, a.last_hash INTO last_id, last_hash FROM tmux_audit.anchors a
                WHERE a.host_id = cur_host AND a.database_id = cur_db AND a.chain = which_chain
                FOR UPDATE;
            anchored := FOUND;
            IF anchored AND r.id <= last_id THEN
                RAISE EXCEPTION 'row % of % was shipped meanwhile by another sync', r.id, which_chain
                    USING ERRCODE = '40001';
            END IF;
            IF anchored AND r.prev_hash IS DISTINCT FROM last_hash THEN
                RAISE EXCEPTION 'row % of % does not extend the chain shipped so far (after row %)',
                    r.id, which_chain, last_id USING ERRCODE = '23514';
            END IF;
        ELSIF r.prev_hash IS DISTINCT FROM last_hash THEN
            RAISE EXCEPTION 'row % of % does not follow row %', r.id, which_chain, last_id
                USING ERRCODE = '23514';
        END IF;
        last_id := r.id;
        last_hash := r.hash;
        added := added + 1;
    END LOOP;
    IF cur_host IS NOT NULL THEN
        PERFORM tmux_audit.advance(cur_host, cur_db, which_chain, last_id, last_hash, added);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tmux_audit.link() FROM PUBLIC;

CREATE FUNCTION tmux_audit.advance(h text, d text, c text, id bigint, hash bytea, added bigint)
    RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
    INSERT INTO tmux_audit.anchors AS a (host_id, database_id, chain, last_id, last_hash, rows)
    VALUES (h, d, c, id, hash, added)
    ON CONFLICT (host_id, database_id, chain) DO UPDATE
        SET last_id = EXCLUDED.last_id, last_hash = EXCLUDED.last_hash,
            rows = a.rows + EXCLUDED.rows, updated_at = now()
$$;
REVOKE ALL ON FUNCTION tmux_audit.advance(text, text, text, bigint, bytea, bigint) FROM PUBLIC;

CREATE TRIGGER accept BEFORE INSERT ON tmux_audit.commands
    FOR EACH ROW EXECUTE FUNCTION tmux_audit.accept('commands');
CREATE TRIGGER accept BEFORE INSERT ON tmux_audit.tmux_events
    FOR EACH ROW EXECUTE FUNCTION tmux_audit.accept('tmux_events');
CREATE TRIGGER link AFTER INSERT ON tmux_audit.commands
    REFERENCING NEW TABLE AS shipped
    FOR EACH STATEMENT EXECUTE FUNCTION tmux_audit.link('commands');
CREATE TRIGGER link AFTER INSERT ON tmux_audit.tmux_events
    REFERENCING NEW TABLE AS shipped
    FOR EACH STATEMENT EXECUTE FUNCTION tmux_audit.link('tmux_events');

-- Writers insert (every column but who shipped it and when), nothing else:
-- no UPDATE, DELETE or TRUNCATE, and no reading of rows.
GRANT INSERT (host_id, database_id, id, recorded_at_us, command, command_raw, exit_status,
    started_at_us, duration_us, cwd, cwd_raw, "user", uid, login_uid, sudo_user, host, shell,
    shell_session, seq, tty, ssh_connection, tmux_socket, tmux_server_pid, tmux_session_id,
    tmux_pane, redacted, import_source, import_file, import_key, prev_hash, hash)
    ON tmux_audit.commands TO tmux_audit_writer;
GRANT INSERT (host_id, database_id, id, recorded_at_us, event, at_us, event_key, host, "user",
    uid, tmux_socket, tmux_server_pid, session_id, session_name, window_id, window_index,
    window_name, pane, client_name, client_tty, client_pid, client_user, client_uid,
    client_termname, automatic_rename, prev_hash, hash) ON tmux_audit.tmux_events
    TO tmux_audit_writer;
GRANT SELECT ON tmux_audit.commands, tmux_audit.tmux_events, tmux_audit.anchors
    TO tmux_audit_auditor, tmux_audit_user;
GRANT SELECT ON tmux_audit.anchors TO tmux_audit_writer;

-- Row-level security: a writer inserts only for the host it is bound to
-- and reads only its own host's anchors; an auditor reads everything; a
-- user reads the rows recorded as the Unix user of its role's name.
ALTER TABLE tmux_audit.commands ENABLE ROW LEVEL SECURITY;
ALTER TABLE tmux_audit.tmux_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE tmux_audit.anchors ENABLE ROW LEVEL SECURITY;
CREATE POLICY writer_inserts_for_its_host ON tmux_audit.commands FOR INSERT TO tmux_audit_writer
    WITH CHECK (host_id = tmux_audit.bound_host(current_user));
CREATE POLICY writer_inserts_for_its_host ON tmux_audit.tmux_events FOR INSERT TO tmux_audit_writer
    WITH CHECK (host_id = tmux_audit.bound_host(current_user));
CREATE POLICY auditor_reads_all ON tmux_audit.commands FOR SELECT TO tmux_audit_auditor USING (true);
CREATE POLICY auditor_reads_all ON tmux_audit.tmux_events FOR SELECT TO tmux_audit_auditor USING (true);
CREATE POLICY auditor_reads_all ON tmux_audit.anchors FOR SELECT TO tmux_audit_auditor USING (true);
CREATE POLICY user_reads_own ON tmux_audit.commands FOR SELECT TO tmux_audit_user
    USING ("user" = current_user);
CREATE POLICY user_reads_own ON tmux_audit.tmux_events FOR SELECT TO tmux_audit_user
    USING ("user" = current_user);
CREATE POLICY writer_reads_own_anchor ON tmux_audit.anchors FOR SELECT TO tmux_audit_writer
    USING (host_id = tmux_audit.bound_host(current_user));

-- The hashes a host shipped, for `tmux-audit verify` on that host to
-- compare with its local chain (the view reads with its owner's rights,
-- and keeps the caller's host's rows only).
CREATE VIEW tmux_audit.shipped_hashes WITH (security_barrier) AS
    SELECT host_id, database_id, 'commands'::text AS chain, id, prev_hash, hash
        FROM tmux_audit.commands WHERE host_id = tmux_audit.bound_host(current_user)
    UNION ALL
    SELECT host_id, database_id, 'tmux_events'::text, id, prev_hash, hash
        FROM tmux_audit.tmux_events WHERE host_id = tmux_audit.bound_host(current_user);
GRANT SELECT ON tmux_audit.shipped_hashes TO tmux_audit_writer;
