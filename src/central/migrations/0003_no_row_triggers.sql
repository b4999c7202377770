-- Central schema version 3: shipping without a function call per row.
-- Measured (20,000 rows INSERT ... SELECT as a writer, PostgreSQL 15, the
-- machine loaded): 2.5-3.3 s with the row trigger `accept`, 1.6 s without
-- it, 1.4 s with the host check below evaluated once per statement. What
-- `accept` did is done once per statement or once per sync instead:
--   - binding a writer role to its host: `sync` inserts its own binding
--     (role = current_user, checked by the policy below) before its first
--     row; a role bound already, or a host taken by another role, is left
--     as it is (ON CONFLICT DO NOTHING), and `sync` stops with one line if
--     the binding is not this host's;
--   - skipping a row shipped before: `sync` inserts with ON CONFLICT DO
--     NOTHING (the primary key); a row of an id at or below the anchor
--     that is not the same row is still refused by `link`.

DROP TRIGGER accept ON tmux_audit.commands;
DROP TRIGGER accept ON tmux_audit.tmux_events;
DROP FUNCTION tmux_audit.accept();

-- A writer reads and makes its own binding, nobody else's; it cannot
-- change or remove one (no UPDATE, DELETE).
ALTER TABLE tmux_audit.writers ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT (role, host_id, host_name) ON tmux_audit.writers TO tmux_audit_writer;
CREATE POLICY writer_binds_itself ON tmux_audit.writers FOR INSERT TO tmux_audit_writer
    WITH CHECK (role = current_user);
CREATE POLICY writer_reads_its_binding ON tmux_audit.writers FOR SELECT TO tmux_audit_writer
    USING (role = current_user);
CREATE POLICY auditor_reads_all ON tmux_audit.writers FOR SELECT TO tmux_audit_auditor
    USING (true);

-- The host check as an uncorrelated subquery: evaluated once per INSERT
-- (an InitPlan), not once per row as a function call is.
DROP POLICY writer_inserts_for_its_host ON tmux_audit.commands;
DROP POLICY writer_inserts_for_its_host ON tmux_audit.tmux_events;
DROP POLICY writer_inserts_for_its_host ON tmux_audit.redactions;
CREATE POLICY writer_inserts_for_its_host ON tmux_audit.commands FOR INSERT TO tmux_audit_writer
    WITH CHECK (host_id = (SELECT w.host_id FROM tmux_audit.writers w WHERE w.role = current_user));
CREATE POLICY writer_inserts_for_its_host ON tmux_audit.tmux_events FOR INSERT TO tmux_audit_writer
    WITH CHECK (host_id = (SELECT w.host_id FROM tmux_audit.writers w WHERE w.role = current_user));
CREATE POLICY writer_inserts_for_its_host ON tmux_audit.redactions FOR INSERT TO tmux_audit_writer
    WITH CHECK (host_id = (SELECT w.host_id FROM tmux_audit.writers w WHERE w.role = current_user));
