-- Version 3: the trigram index is brought up to date by `search`, not by
-- every `record`. Keeping it in step from a trigger made each recorded
-- command write an FTS5 segment (and merge older ones): over a millisecond
-- more on every prompt. Now `record` only appends to `commands`, and a
-- search first indexes the rows recorded since the last one.
DROP TRIGGER commands_fts_after_insert;
DROP TRIGGER commands_fts_after_delete;
DROP TRIGGER commands_fts_after_update;

-- The highest `commands.id` whose text is in `commands_fts`. Version 2 kept
-- the index complete, so that is every row so far.
CREATE TABLE search_index_state (
    indexed_up_to INTEGER NOT NULL
);
INSERT INTO search_index_state (indexed_up_to) SELECT coalesce(max(id), 0) FROM commands;
