-- Version 11: commands imported from another tool's history (`tmux-audit
-- import`, see src/import/). `import_source` names the tool (bash, zsh,
-- fish, atuin, zsh-histdb, mcfly, tmux-audit) and `import_file` the file
-- read; both are NULL for every command a hook recorded. They are hashed
-- into the chain only when set (see src/chain.rs), so rows from before
-- hash as they did and an imported row never passes as recorded.
ALTER TABLE commands ADD COLUMN import_source TEXT;
ALTER TABLE commands ADD COLUMN import_file TEXT;
ALTER TABLE commands ADD COLUMN import_key BLOB;
-- An entry of a history file is imported once: a second import of the
-- same file finds its key here and adds nothing. Partial: recorded rows
-- (no key) cost the index nothing.
CREATE UNIQUE INDEX commands_by_import_key ON commands (import_key)
    WHERE import_key IS NOT NULL;
