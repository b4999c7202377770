-- Central schema version 5: running totals per host, so that
-- `report --central --by host` (the team view) reads a row per host and
-- user instead of counting every row shipped (61 s at 10,000,000 rows).
--
--   host_totals: per host name and user, the figures of a report's row.
--   host_values: per host name, how many commands ran in each directory
--     and how many times each command text ran. A value may be longer
--     than an index entry may be: its key is its SHA-256.
--   host_tops: per host name, the most used directory and command (ties
--     go to the first in byte order, as in a local report). Counts only
--     grow as rows are shipped, so the new top is the old one or one of
--     the values the rows shipped counted; an index on the counts, which
--     every count would move, would have cost shipping half its speed.
--
-- They follow every change of the commands, in the same transaction:
-- rows shipped (a statement trigger over the rows an INSERT added), an
-- UPDATE (a redaction moves a count from the old text to the new: no
-- count keeps a redacted text), a DELETE (the hosts it touched are
-- counted again) and a TRUNCATE (emptied). Dropping, detaching or
-- truncating a partition fires no trigger on the table: run
-- `SELECT tmux_audit.count_hosts(NULL);` after one. Only auditors read them: a user role reads its own rows
-- only, and `report --central` counts those rows for it.

CREATE TABLE tmux_audit.host_totals (
    host              text   NOT NULL,
    "user"            text   NOT NULL,
    commands          bigint NOT NULL,
    failures          bigint NOT NULL,
    first_us          bigint NOT NULL,
    last_us           bigint NOT NULL,
    total_duration_us bigint NOT NULL,
    longest_us        bigint NOT NULL,
    PRIMARY KEY (host, "user")
);

CREATE TABLE tmux_audit.host_values (
    host   text   NOT NULL,
    kind   text   NOT NULL CHECK (kind IN ('cwd', 'command')),
    digest bytea  NOT NULL,
    value  text   COLLATE "C" NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (host, kind, digest)
);

CREATE TABLE tmux_audit.host_tops (
    host  text   NOT NULL,
    kind  text   NOT NULL CHECK (kind IN ('cwd', 'command')),
    value text   COLLATE "C" NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (host, kind)
);

GRANT SELECT ON tmux_audit.host_totals, tmux_audit.host_values, tmux_audit.host_tops
    TO tmux_audit_auditor;

CREATE FUNCTION tmux_audit.digest(value text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT sha256(convert_to(value, 'UTF8')) $$;

-- The most used value of each kind on the hosts named, found again from
-- their counts.
CREATE FUNCTION tmux_audit.find_tops(hosts text[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
    DELETE FROM tmux_audit.host_tops WHERE host = ANY (hosts);
    INSERT INTO tmux_audit.host_tops (host, kind, value, n)
    SELECT DISTINCT ON (host, kind) host, kind, value, n FROM tmux_audit.host_values
        WHERE host = ANY (hosts) ORDER BY host, kind, n DESC, value;
$$;
REVOKE ALL ON FUNCTION tmux_audit.find_tops(text[]) FROM PUBLIC;

-- Counts the hosts named (NULL: every host) again from their rows, in
-- one pass over them.
CREATE FUNCTION tmux_audit.count_hosts(hosts text[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
DECLARE
    -- Planned for the hosts at hand (a generic plan would read them all).
    which text := CASE WHEN hosts IS NULL THEN 'true' ELSE 'host = ANY ($1)' END;
BEGIN
    EXECUTE 'DELETE FROM tmux_audit.host_totals WHERE ' || which USING hosts;
    EXECUTE 'DELETE FROM tmux_audit.host_values WHERE ' || which USING hosts;
    EXECUTE 'INSERT INTO tmux_audit.host_totals
        SELECT host, "user", count(*), count(*) FILTER (WHERE exit_status <> 0),
               min(started_at_us), max(started_at_us), coalesce(sum(duration_us), 0),
               coalesce(max(duration_us), 0)
        FROM tmux_audit.commands WHERE ' || which || ' GROUP BY host, "user"' USING hosts;
    EXECUTE 'INSERT INTO tmux_audit.host_values (host, kind, digest, value, n)
        SELECT host, kind, tmux_audit.digest(value), value, count(*)
        FROM tmux_audit.commands,
             LATERAL (VALUES (''cwd'', cwd), (''command'', command)) AS v (kind, value)
        WHERE ' || which || ' GROUP BY host, kind, value' USING hosts;
    EXECUTE 'DELETE FROM tmux_audit.host_tops WHERE ' || which USING hosts;
    PERFORM tmux_audit.find_tops(ARRAY(SELECT DISTINCT host FROM tmux_audit.host_totals
                                       WHERE hosts IS NULL OR host = ANY (hosts)));
END
$$;
REVOKE ALL ON FUNCTION tmux_audit.count_hosts(text[]) FROM PUBLIC;

-- Rows shipped: added to their host's totals, in key order (two
-- statements adding to one host lock its rows in the same order: one
-- waits for the other, neither deadlocks).
CREATE FUNCTION tmux_audit.tally_shipped() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
BEGIN
    INSERT INTO tmux_audit.host_totals AS t
    SELECT host, "user", count(*), count(*) FILTER (WHERE exit_status <> 0),
           min(started_at_us), max(started_at_us), coalesce(sum(duration_us), 0),
           coalesce(max(duration_us), 0)
        FROM shipped GROUP BY host, "user" ORDER BY 1, 2
    ON CONFLICT (host, "user") DO UPDATE SET
        commands = t.commands + EXCLUDED.commands,
        failures = t.failures + EXCLUDED.failures,
        first_us = least(t.first_us, EXCLUDED.first_us),
        last_us = greatest(t.last_us, EXCLUDED.last_us),
        total_duration_us = t.total_duration_us + EXCLUDED.total_duration_us,
        longest_us = greatest(t.longest_us, EXCLUDED.longest_us);
    WITH counted AS (
        INSERT INTO tmux_audit.host_values AS h (host, kind, digest, value, n)
        SELECT host, kind, tmux_audit.digest(value), value, count(*)
            FROM shipped, LATERAL (VALUES ('cwd', cwd), ('command', command)) AS v (kind, value)
            GROUP BY host, kind, value ORDER BY 1, 2, 3
        ON CONFLICT (host, kind, digest) DO UPDATE SET n = h.n + EXCLUDED.n
        RETURNING h.host, h.kind, h.value, h.n
    )
    INSERT INTO tmux_audit.host_tops AS t (host, kind, value, n)
    SELECT DISTINCT ON (host, kind) host, kind, value, n FROM counted
        ORDER BY host, kind, n DESC, value
    ON CONFLICT (host, kind) DO UPDATE SET value = EXCLUDED.value, n = EXCLUDED.n
        WHERE EXCLUDED.n > t.n OR (EXCLUDED.n = t.n AND EXCLUDED.value < t.value);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tmux_audit.tally_shipped() FROM PUBLIC;

-- Rows changed (a redaction, an administrator's UPDATE): a host whose
-- rows changed in what its totals' keys or extremes depend on is counted
-- again; for the others, failures and values move from the old rows to
-- the new, a value counted down to none (a redacted text) goes, and a
-- host whose most used value was counted down has it found again.
CREATE FUNCTION tmux_audit.tally_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
DECLARE
    recount text[];
    lowered text[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT h), '{}') INTO recount FROM (
        SELECT unnest(ARRAY[o.host, c.host]) AS h
            FROM old_rows o JOIN new_rows c
                ON c.host_id = o.host_id AND c.database_id = o.database_id AND c.id = o.id
            WHERE (o.host, o."user", o.started_at_us, o.duration_us)
                  IS DISTINCT FROM (c.host, c."user", c.started_at_us, c.duration_us)
    ) moved;
    IF recount <> '{}' THEN
        PERFORM tmux_audit.count_hosts(recount);
    END IF;
    UPDATE tmux_audit.host_totals t SET failures = t.failures + d.n
        FROM (SELECT host, "user", sum(n) AS n FROM (
                  SELECT host, "user", count(*) FILTER (WHERE exit_status <> 0) AS n
                      FROM new_rows GROUP BY host, "user"
                  UNION ALL
                  SELECT host, "user", -count(*) FILTER (WHERE exit_status <> 0)
                      FROM old_rows GROUP BY host, "user") f
              GROUP BY host, "user" HAVING sum(n) <> 0) d
        WHERE t.host = d.host AND t."user" = d."user" AND d.host <> ALL (recount);
    WITH delta AS (
        SELECT host, kind, value, sum(n) AS n
            FROM (SELECT host, cwd, command, 1 AS n FROM new_rows
                  UNION ALL
                  SELECT host, cwd, command, -1 FROM old_rows) r,
                 LATERAL (VALUES ('cwd', cwd), ('command', command)) AS v (kind, value)
            WHERE host <> ALL (recount)
            GROUP BY host, kind, value HAVING sum(n) <> 0
    ), counted AS (
        INSERT INTO tmux_audit.host_values AS h (host, kind, digest, value, n)
        SELECT host, kind, tmux_audit.digest(value), value, n FROM delta ORDER BY 1, 2, 3
        ON CONFLICT (host, kind, digest) DO UPDATE SET n = h.n + EXCLUDED.n
        RETURNING h.host, h.kind, h.value, h.n
    ), tops_lowered AS (
        SELECT DISTINCT t.host FROM delta d JOIN tmux_audit.host_tops t
            ON t.host = d.host AND t.kind = d.kind AND t.value = d.value AND d.n < 0
    ), raised AS (
        INSERT INTO tmux_audit.host_tops AS t (host, kind, value, n)
        SELECT DISTINCT ON (host, kind) host, kind, value, n FROM counted
            WHERE host NOT IN (SELECT host FROM tops_lowered)
            ORDER BY host, kind, n DESC, value
        ON CONFLICT (host, kind) DO UPDATE SET value = EXCLUDED.value, n = EXCLUDED.n
            WHERE EXCLUDED.n > t.n OR (EXCLUDED.n = t.n AND EXCLUDED.value < t.value)
    )
    SELECT coalesce(array_agg(host), '{}') INTO lowered FROM tops_lowered;
    DELETE FROM tmux_audit.host_values
        WHERE host IN (SELECT host FROM old_rows) AND n <= 0;
    IF lowered <> '{}' THEN
        PERFORM tmux_audit.find_tops(lowered);
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
    PERFORM tmux_audit.count_hosts(ARRAY(SELECT DISTINCT host FROM gone));
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
