-- Version 22: who typed each command (the user of the tmux client that
-- typed it, else the shell's user), as the running totals by typist
-- (`report --by client-user`) place it. Kept with those totals: filled
-- by their fold, emptied with them, checked by `verify` with them. A
-- report or an unlimited search `--typed-by USER` then reads that user's
-- commands through this table, instead of placing every command of the
-- history again in time order (1.3 s of `report --by day --typed-by` at
-- a million rows).
CREATE TABLE command_typists (
    typist TEXT NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (typist, id)
) WITHOUT ROWID;
-- Counted anew by the next reader, which fills the table.
DELETE FROM totals_state WHERE name = 'client-user';
