-- Version 20 (hooks-data; the lead renumbers at merge): the highest sequence
-- number pruned in each shell session. `verify` names holes in a session's
-- numbers as records that never arrived, counting from its highest number;
-- when the newest commands of a session were pruned, the rows left end
-- lower, and the pruned ones were counted as holes below it ("missing: -1
-- of 5"). 0 for prunes made before this version (not known then).
ALTER TABLE pruned_sessions ADD COLUMN highest_seq INTEGER NOT NULL DEFAULT 0;
