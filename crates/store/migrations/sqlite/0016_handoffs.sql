-- Handoffs (issue 17): one value handed to someone for a while, as two ordinary records — a
-- secure page for the person and a private record with its own X-API-Key for their code — tied
-- together here with the end date. At the end both records are disabled, and the owner is asked
-- to rotate the upstream key at its provider until they tick that to-do.
CREATE TABLE handoffs (
    id           BLOB PRIMARY KEY NOT NULL,
    owner_id     BLOB NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,       -- for whom ("Ana (contractor)"); not a secret
    -- The two records; NULL once the owner deletes one (the handoff's history stays).
    page_record  BLOB REFERENCES records(uuid) ON DELETE SET NULL,
    code_record  BLOB REFERENCES records(uuid) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    -- Set once, by the one node (or the owner's "End now") whose conditional UPDATE wins.
    ended_at     INTEGER,
    ended_by     TEXT,                -- 'schedule' | 'owner'
    todo_done_at INTEGER              -- when the owner ticked "rotate the upstream key"
) STRICT;
CREATE INDEX handoffs_owner ON handoffs(owner_id, created_at);
-- The end task's question: which handoffs are due and not ended yet.
CREATE INDEX handoffs_due ON handoffs(ends_at) WHERE ended_at IS NULL;
