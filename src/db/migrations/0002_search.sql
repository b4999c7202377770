-- Version 2: what `search` and `report` need to stay fast at millions of rows.

-- Substring search: a trigram index over the command text. `search TEXT`
-- asks it for the rows whose command holds TEXT (case-insensitively) instead
-- of reading every row. External content: the text itself stays in
-- `commands`; triggers keep the index in step.
CREATE VIRTUAL TABLE commands_fts USING fts5(
    command,
    content = 'commands',
    content_rowid = 'id',
    tokenize = 'trigram',
    columnsize = 0
);
INSERT INTO commands_fts (commands_fts) VALUES ('rebuild');

CREATE TRIGGER commands_fts_after_insert AFTER INSERT ON commands BEGIN
    INSERT INTO commands_fts (rowid, command) VALUES (new.id, new.command);
END;
CREATE TRIGGER commands_fts_after_delete AFTER DELETE ON commands BEGIN
    INSERT INTO commands_fts (commands_fts, rowid, command) VALUES ('delete', old.id, old.command);
END;
CREATE TRIGGER commands_fts_after_update AFTER UPDATE OF command ON commands BEGIN
    INSERT INTO commands_fts (commands_fts, rowid, command) VALUES ('delete', old.id, old.command);
    INSERT INTO commands_fts (rowid, command) VALUES (new.id, new.command);
END;

-- `search --pane %3 [--since …]` and `--here`: one pane's commands in time order.
CREATE INDEX commands_by_pane ON commands (tmux_pane, started_at_us);
