-- Version 12: retention. `tmux-audit prune` deletes old rows and leaves a `prune`
-- entry in the trace (see src/trace.rs and src/db/retention.rs).
--
-- How many records of each shell session were pruned: they arrived, so
-- they are no hole in its sequence numbers (`verify` and `report` name
-- holes as records that never arrived). `verify` checks that these add up
-- to the records the trace's prune entries count.
CREATE TABLE pruned_sessions (
    shell_session TEXT PRIMARY KEY,
    pruned INTEGER NOT NULL
);
-- When the background merge last ran the prune `[retention]` asks for
-- (config.toml): at most once a day.
CREATE TABLE retention_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_auto_prune_us INTEGER NOT NULL
);
