-- Version 4: tamper evidence. Each record carries `hash`, the SHA-256 of
-- the record before it (`prev_hash`) and of its own content (see
-- src/chain.rs), so that an edit, a deletion, an insertion or a reordering
-- breaks the chain where it happened (`tmux-audit verify`). Rows recorded
-- before this version have neither; the chain starts after them.
ALTER TABLE commands ADD COLUMN prev_hash BLOB;
ALTER TABLE commands ADD COLUMN hash BLOB;
