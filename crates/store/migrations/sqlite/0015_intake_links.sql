-- Intake links (issue 17): a one-time link on which someone outside the account submits a
-- secret for its owner. The link's token is stored only as its SHA-256, so a copy of the
-- database cannot submit through it; the value arrives sealed like any record's.
CREATE TABLE intake_links (
    id                  BLOB PRIMARY KEY NOT NULL,
    token_hash          BLOB NOT NULL UNIQUE,
    owner_id            BLOB NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    asked_for           TEXT NOT NULL,      -- what the submitter is asked for (not secret)
    target              TEXT NOT NULL,      -- credential | bridge_header
    -- credential: the uuid the new record gets; bridge_header: the bridge whose header is set
    record_uuid         BLOB NOT NULL,
    record_name         TEXT,               -- credential: the new record's name
    -- credential: its data key, wrapped under the master key and under the X-API-Key shown
    -- to the owner when the link was made (exactly the slots the record will have)
    server_slot         BLOB,
    server_slot_version INTEGER,
    api_key_slot        BLOB,
    header_name         TEXT,               -- bridge_header
    template            TEXT,               -- bridge_header: e.g. "Bearer {{value}}"
    password_hash       TEXT,               -- Argon2id PHC string, when the link has a password
    expires_at          INTEGER,
    created_at          INTEGER NOT NULL,
    used_at             INTEGER,
    revoked_at          INTEGER
) STRICT;
CREATE INDEX intake_links_owner ON intake_links(owner_id, created_at);

-- Password attempts on a link, for its lockout (counted before the password is checked, so
-- parallel guesses are all counted).
CREATE TABLE intake_attempts (
    link_id BLOB NOT NULL REFERENCES intake_links(id) ON DELETE CASCADE,
    client  TEXT,
    at      INTEGER NOT NULL
) STRICT;
CREATE INDEX intake_attempts_link ON intake_attempts(link_id, at);
