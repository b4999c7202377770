-- Central schema version 4: a shipped redaction's bytes are checked too.
-- Version 2 checked that a redaction's text only hides parts of the
-- shipped text, but took its `command_raw` (the bytes of a command that
-- is not UTF-8, which every reader shows before the text) as given: a
-- writer could ship "[REDACTED]" as the text and any bytes it liked as
-- the raw command. Now the bytes are held to the same rule: none (the
-- row's bytes are dropped with its old text), or the shipped row's own
-- bytes with parts replaced by [REDACTED].

-- Whether `new` only hides parts of `old`, byte for byte: the pieces of
-- `new` between [REDACTED] marks appear in `old` in order, the first at
-- its start and the last at its end. (What `only_hides` does for text.)
CREATE FUNCTION tmux_audit.only_hides_bytes(old bytea, new bytea) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    mark constant bytea := convert_to('[REDACTED]', 'UTF8');
    rest bytea := new;
    piece bytea;
    at int;
    found int;
    -- Where in `old` the next piece may start (1-based).
    next int := 1;
    first boolean := true;
BEGIN
    IF old IS NULL THEN
        RETURN false;
    END IF;
    LOOP
        at := position(mark in rest);
        IF at = 0 THEN
            -- The last piece ends `old`, after the pieces before it.
            IF first THEN
                RETURN old = rest;
            END IF;
            RETURN length(old) - length(rest) + 1 >= next
                AND substring(old from length(old) - length(rest) + 1) = rest;
        END IF;
        piece := substring(rest from 1 for at - 1);
        IF first THEN
            IF substring(old from 1 for length(piece)) <> piece THEN
                RETURN false;
            END IF;
            next := length(piece) + 1;
            first := false;
        ELSE
            found := position(piece in substring(old from next));
            IF found = 0 THEN
                RETURN false;
            END IF;
            next := next + found - 1 + length(piece);
        END IF;
        rest := substring(rest from at + length(mark));
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION tmux_audit.apply_redaction() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = tmux_audit, pg_temp
    AS $$
DECLARE
    old_text text;
    old_raw bytea;
BEGIN
    SELECT command, command_raw INTO old_text, old_raw FROM tmux_audit.commands
        WHERE host_id = NEW.host_id AND database_id = NEW.database_id AND id = NEW.id
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'a redaction of row % that was not shipped', NEW.id USING ERRCODE = '23514';
    END IF;
    IF NOT tmux_audit.only_hides(old_text, NEW.command)
        OR (NEW.command_raw IS NOT NULL
            AND NOT tmux_audit.only_hides_bytes(old_raw, NEW.command_raw)) THEN
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
