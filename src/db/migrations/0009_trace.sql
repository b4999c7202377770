-- Version 9: the checked trace (see src/trace.rs): chained entries that
-- say what was changed in the chains on purpose (a redaction), where the
-- chain starts (which rows without hashes predate it: fixed now, so that a
-- row without a hash added later is a forgery), and which records came
-- from spool lines that did not carry their link. Its chain has the label
-- "tmux-audit trace v1" (see src/chain.rs). The first entry, `chain-start`,
-- is written with this migration (see db/schema.rs).
CREATE TABLE chain_trace (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    chain TEXT NOT NULL,
    first_id INTEGER,
    last_id INTEGER,
    at_us INTEGER NOT NULL,
    user TEXT NOT NULL,
    uid INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX chain_trace_by_row ON chain_trace (chain, first_id);
