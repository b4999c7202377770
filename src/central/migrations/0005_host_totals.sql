-- Central schema version 5: running totals per host, so that
-- `report --central --by host` (the team view) reads a row per host and
-- user instead of counting every row shipped (61 s at 10,000,000 rows).
--
--   host_totals: per host (its id, and its name on the rows) and user,
--     the figures of a report's row.
--   host_values: per host, how many commands ran in each directory and
--     how many times each command text ran. A value may be longer than
--     an index entry may be: its key is its SHA-256.
--   host_tops: per host, the most used directory and command (ties go to
--     the first in byte order, as in a local report). Counts only grow as
--     rows are shipped, so the new top is the old one or one of the
--     values the rows shipped counted; an index on the counts, which
--     every count would move, would have cost shipping half its speed.
--
-- Keyed by the host's id, which a writer is bound to: a writer's rows
-- move only its own host's totals, and its transactions lock no row
-- another host's shipping needs (whatever host name its rows carry).
-- The report groups by the name, as it always has.
--
-- They follow every change of the commands, in the same transaction:
-- rows shipped (a statement trigger over the rows an INSERT added), an
-- UPDATE (a redaction moves a count from the old text to the new: no
-- count keeps a redacted text), a DELETE (the hosts it touched are
-- counted again) and a TRUNCATE (emptied). Some changes fire no trigger
-- on the table: statements run on a partition itself, attaching,
-- detaching or dropping a partition, and loads with triggers off
-- (`session_replication_role = replica`, `pg_restore
-- --disable-triggers`). After one of those, the owner runs
-- `SELECT tmux_audit.count_hosts(NULL);`.
--
-- Only auditors read them: a user role reads its own rows only, and
-- `report --central` counts those rows for it.

CREATE TABLE tmux_audit.host_totals (
    host_id           text    NOT NULL,
    host              text    NOT NULL,
    "user"            text    NOT NULL,
    commands          bigint  NOT NULL,
    failures          bigint  NOT NULL,
    first_us          bigint  NOT NULL,
    last_us           bigint  NOT NULL,
    -- A sum of durations a writer chose: never an overflow that would
    -- stop its host's shipping.
    total_duration_us numeric NOT NULL,
    longest_us        bigint  NOT NULL,
    PRIMARY KEY (host_id, host, "user")
);

CREATE TABLE tmux_audit.host_values (
    host_id text   NOT NULL,
    host    text   NOT NULL,
    kind    text   NOT NULL CHECK (kind IN ('cwd', 'command')),
    digest  bytea  NOT NULL,
    value   text   COLLATE "C" NOT NULL,
    n       bigint NOT NULL,
    PRIMARY KEY (host_id, host, kind, digest)
);

CREATE TABLE tmux_audit.host_tops (
    host_id text   NOT NULL,
    host    text   NOT NULL,
    kind    text   NOT NULL CHECK (kind IN ('cwd', 'command')),
    value   text   COLLATE "C" NOT NULL,
    n       bigint NOT NULL,
    PRIMARY KEY (host_id, host, kind)
);

GRANT SELECT ON tmux_audit.host_totals, tmux_audit.host_values, tmux_audit.host_tops
    TO tmux_audit_auditor;

CREATE FUNCTION tmux_audit.digest(value text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT sha256(convert_to(value, 'UTF8')) $$;

-- The most used value of each kind of the hosts named (by id), found
-- again from their counts, in key order.
CREATE FUNCTION tmux_audit.find_tops(ids text[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
    DELETE FROM tmux_audit.host_tops t WHERE t.host_id = ANY (ids) AND NOT EXISTS (
        SELECT FROM tmux_audit.host_values v
        WHERE v.host_id = t.host_id AND v.host = t.host AND v.kind = t.kind);
    INSERT INTO tmux_audit.host_tops AS t (host_id, host, kind, value, n)
    SELECT DISTINCT ON (host_id, host, kind) host_id, host, kind, value, n
        FROM tmux_audit.host_values WHERE host_id = ANY (ids)
        ORDER BY host_id, host, kind, n DESC, value
    ON CONFLICT (host_id, host, kind) DO UPDATE SET value = EXCLUDED.value, n = EXCLUDED.n;
$$;
REVOKE ALL ON FUNCTION tmux_audit.find_tops(text[]) FROM PUBLIC;

-- Counts the hosts named by id (NULL: every host) again from their rows,
-- in one pass over them.
CREATE FUNCTION tmux_audit.count_hosts(ids text[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
DECLARE
    -- Planned for the hosts at hand (a generic plan would read them all).
    which text := CASE WHEN ids IS NULL THEN 'true' ELSE 'host_id = ANY ($1)' END;
BEGIN
    EXECUTE 'DELETE FROM tmux_audit.host_totals WHERE ' || which USING ids;
    EXECUTE 'DELETE FROM tmux_audit.host_values WHERE ' || which USING ids;
    EXECUTE 'DELETE FROM tmux_audit.host_tops WHERE ' || which USING ids;
    EXECUTE 'INSERT INTO tmux_audit.host_totals
        SELECT host_id, host, "user", count(*), count(*) FILTER (WHERE exit_status <> 0),
               min(started_at_us), max(started_at_us), coalesce(sum(duration_us), 0),
               coalesce(max(duration_us), 0)
        FROM tmux_audit.commands WHERE ' || which || ' GROUP BY host_id, host, "user"' USING ids;
    EXECUTE 'INSERT INTO tmux_audit.host_values (host_id, host, kind, digest, value, n)
        SELECT host_id, host, kind, tmux_audit.digest(value), value, count(*)
        FROM tmux_audit.commands,
             LATERAL (VALUES (''cwd'', cwd), (''command'', command)) AS v (kind, value)
        WHERE ' || which || ' GROUP BY host_id, host, kind, value' USING ids;
    PERFORM tmux_audit.find_tops(ARRAY(SELECT DISTINCT host_id FROM tmux_audit.host_totals
                                       WHERE ids IS NULL OR host_id = ANY (ids)));
END
$$;
REVOKE ALL ON FUNCTION tmux_audit.count_hosts(text[]) FROM PUBLIC;

-- Rows shipped: added to their host's totals, in key order. Its most
-- used values are merged with those it counted: ON CONFLICT works on the
-- newest version of a host's top, after any other transaction's.
CREATE FUNCTION tmux_audit.tally_shipped() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
BEGIN
    INSERT INTO tmux_audit.host_totals AS t
    SELECT host_id, host, "user", count(*), count(*) FILTER (WHERE exit_status <> 0),
           min(started_at_us), max(started_at_us), coalesce(sum(duration_us), 0),
           coalesce(max(duration_us), 0)
        FROM shipped GROUP BY host_id, host, "user" ORDER BY 1, 2, 3
    ON CONFLICT (host_id, host, "user") DO UPDATE SET
        commands = t.commands + EXCLUDED.commands,
        failures = t.failures + EXCLUDED.failures,
        first_us = least(t.first_us, EXCLUDED.first_us),
        last_us = greatest(t.last_us, EXCLUDED.last_us),
        total_duration_us = t.total_duration_us + EXCLUDED.total_duration_us,
        longest_us = greatest(t.longest_us, EXCLUDED.longest_us);
    WITH counted AS (
        INSERT INTO tmux_audit.host_values AS h (host_id, host, kind, digest, value, n)
        SELECT host_id, host, kind, tmux_audit.digest(value), value, count(*)
            FROM shipped, LATERAL (VALUES ('cwd', cwd), ('command', command)) AS v (kind, value)
            GROUP BY host_id, host, kind, value ORDER BY 1, 2, 3, 4
        ON CONFLICT (host_id, host, kind, digest) DO UPDATE SET n = h.n + EXCLUDED.n
        RETURNING h.host_id, h.host, h.kind, h.value, h.n
    )
    INSERT INTO tmux_audit.host_tops AS t (host_id, host, kind, value, n)
    SELECT DISTINCT ON (host_id, host, kind) host_id, host, kind, value, n FROM counted
        ORDER BY host_id, host, kind, n DESC, value
    ON CONFLICT (host_id, host, kind) DO UPDATE SET value = EXCLUDED.value, n = EXCLUDED.n
        WHERE EXCLUDED.n > t.n OR (EXCLUDED.n = t.n AND EXCLUDED.value < t.value);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tmux_audit.tally_shipped() FROM PUBLIC;

-- Rows changed (a redaction, an administrator's UPDATE). A host whose
-- rows changed in what its totals' keys or extremes depend on (compared
-- as multisets: an UPDATE of the key columns pairs no rows) is counted
-- again. For the others, failures and values move from the old rows to
-- the new, a value counted down to none (a redacted text) goes, and a
-- most used value that is not one any more (read after the counts moved,
-- so after any other transaction's changes to them) is found again.
-- Its locks come in the order a shipping INSERT takes them (totals,
-- counts, most used values, each in key order); a sync sends each
-- redaction in a transaction of its own, so that none holds the locks of
-- one while it waits for those of the next.
CREATE FUNCTION tmux_audit.tally_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
DECLARE
    recount text[];
    touched text[];
    stale text[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT host_id), '{}') INTO recount FROM (
        (SELECT host_id, host, "user", started_at_us, duration_us FROM old_rows
         EXCEPT ALL
         SELECT host_id, host, "user", started_at_us, duration_us FROM new_rows)
        UNION ALL
        (SELECT host_id, host, "user", started_at_us, duration_us FROM new_rows
         EXCEPT ALL
         SELECT host_id, host, "user", started_at_us, duration_us FROM old_rows)
    ) moved;
    IF recount <> '{}' THEN
        PERFORM tmux_audit.count_hosts(recount);
    END IF;
    SELECT coalesce(array_agg(DISTINCT host_id), '{}') INTO touched
        FROM old_rows WHERE host_id <> ALL (recount);
    IF touched = '{}' THEN
        RETURN NULL;
    END IF;
    UPDATE tmux_audit.host_totals t SET failures = t.failures + d.n
        FROM (SELECT host_id, host, "user", sum(n) AS n FROM (
                  SELECT host_id, host, "user", count(*) FILTER (WHERE exit_status <> 0) AS n
                      FROM new_rows GROUP BY host_id, host, "user"
                  UNION ALL
                  SELECT host_id, host, "user", -count(*) FILTER (WHERE exit_status <> 0)
                      FROM old_rows GROUP BY host_id, host, "user") f
              GROUP BY host_id, host, "user" HAVING sum(n) <> 0) d
        WHERE t.host_id = d.host_id AND t.host = d.host AND t."user" = d."user"
          AND d.host_id = ANY (touched);
    WITH counted AS (
        INSERT INTO tmux_audit.host_values AS h (host_id, host, kind, digest, value, n)
        SELECT host_id, host, kind, tmux_audit.digest(value), value, sum(n)
            FROM (SELECT host_id, host, cwd, command, 1 AS n FROM new_rows
                  UNION ALL
                  SELECT host_id, host, cwd, command, -1 FROM old_rows) r,
                 LATERAL (VALUES ('cwd', cwd), ('command', command)) AS v (kind, value)
            WHERE host_id = ANY (touched)
            GROUP BY host_id, host, kind, value HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (host_id, host, kind, digest) DO UPDATE SET n = h.n + EXCLUDED.n
        RETURNING h.host_id, h.host, h.kind, h.value, h.n
    )
    INSERT INTO tmux_audit.host_tops AS t (host_id, host, kind, value, n)
    SELECT DISTINCT ON (host_id, host, kind) host_id, host, kind, value, n FROM counted
        WHERE n > 0 ORDER BY host_id, host, kind, n DESC, value
    ON CONFLICT (host_id, host, kind) DO UPDATE SET value = EXCLUDED.value, n = EXCLUDED.n
        WHERE EXCLUDED.n > t.n OR (EXCLUDED.n = t.n AND EXCLUDED.value < t.value);
    DELETE FROM tmux_audit.host_values WHERE host_id = ANY (touched) AND n <= 0;
    SELECT coalesce(array_agg(DISTINCT t.host_id), '{}') INTO stale
        FROM tmux_audit.host_tops t
        LEFT JOIN tmux_audit.host_values v ON v.host_id = t.host_id AND v.host = t.host
            AND v.kind = t.kind AND v.digest = tmux_audit.digest(t.value)
        WHERE t.host_id = ANY (touched) AND (v.n IS NULL OR v.n < t.n);
    IF stale <> '{}' THEN
        PERFORM tmux_audit.find_tops(stale);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tmux_audit.tally_changed() FROM PUBLIC;

-- Rows deleted: their hosts counted again (a minimum or maximum cannot
-- be taken back).
CREATE FUNCTION tmux_audit.tally_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
BEGIN
    PERFORM tmux_audit.count_hosts(ARRAY(SELECT DISTINCT host_id FROM gone));
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tmux_audit.tally_deleted() FROM PUBLIC;

CREATE FUNCTION tmux_audit.tally_truncated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
BEGIN
    DELETE FROM tmux_audit.host_totals;
    DELETE FROM tmux_audit.host_values;
    DELETE FROM tmux_audit.host_tops;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tmux_audit.tally_truncated() FROM PUBLIC;

CREATE TRIGGER tally_shipped AFTER INSERT ON tmux_audit.commands
    REFERENCING NEW TABLE AS shipped
    FOR EACH STATEMENT EXECUTE FUNCTION tmux_audit.tally_shipped();
CREATE TRIGGER tally_changed AFTER UPDATE ON tmux_audit.commands
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tmux_audit.tally_changed();
CREATE TRIGGER tally_deleted AFTER DELETE ON tmux_audit.commands
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION tmux_audit.tally_deleted();
CREATE TRIGGER tally_truncated AFTER TRUNCATE ON tmux_audit.commands
    FOR EACH STATEMENT EXECUTE FUNCTION tmux_audit.tally_truncated();

-- The commands shipped before this version.
SELECT tmux_audit.count_hosts(NULL);
