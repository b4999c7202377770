-- Version 6: whether secrets were redacted from the command before it was
-- stored (see src/redact.rs).
ALTER TABLE commands ADD COLUMN redacted INTEGER NOT NULL DEFAULT 0;
