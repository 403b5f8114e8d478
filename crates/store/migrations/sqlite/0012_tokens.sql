-- Service tokens and refreshable CLI sessions (issue 16).

-- A service token reads the records it names, for CI and servers, until it expires or its owner
-- revokes it (revoking deletes the row). Only a SHA-256 digest of its secret is kept: the secret
-- is 256 random bits, so no slow KDF is needed.
CREATE TABLE service_tokens (
    id           BLOB PRIMARY KEY NOT NULL,
    account_id   BLOB NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    digest       BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    UNIQUE (account_id, name)
) STRICT;

-- The records a token may read. Deleting a record takes it out of every token's scope.
CREATE TABLE service_token_records (
    token_id    BLOB NOT NULL REFERENCES service_tokens(id) ON DELETE CASCADE,
    record_uuid BLOB NOT NULL REFERENCES records(uuid) ON DELETE CASCADE,
    PRIMARY KEY (token_id, record_uuid)
) STRICT;
CREATE INDEX service_token_records_record ON service_token_records(record_uuid);

-- A session opened with a refresh token (the CLI's): the digest of the one refresh token that
-- is current. Using it replaces it; presenting an earlier one ends the session (the token was
-- copied), and so does every way a session ends (sign-out, password change, revocation).
ALTER TABLE sessions ADD COLUMN refresh_digest BLOB;
