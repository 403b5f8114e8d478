-- brine schema, PostgreSQL flavour. Column names and value types match the SQLite schema so that
-- one set of statements serves both: times are unix milliseconds (UTC) in BIGINT columns.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE accounts (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- A session is a JWT's `sid`. Logging out deletes the row, which revokes the token on every node.
CREATE TABLE sessions (
    id         UUID PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);

CREATE TABLE records (
    uuid            UUID PRIMARY KEY,
    owner_id        UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    access          TEXT NOT NULL,
    sealed          BOOLEAN NOT NULL,
    payload         BYTEA NOT NULL,     -- AES-256-GCM: nonce || ciphertext || tag
    payload_version BIGINT NOT NULL,    -- part of the payload's associated data
    expires_at      BIGINT,
    max_reads       BIGINT,
    reads           BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX records_owner ON records(owner_id, created_at);

-- The record's data key, wrapped once per way of opening it (DESIGN.md §2).
CREATE TABLE key_slots (
    record_uuid UUID NOT NULL REFERENCES records(uuid) ON DELETE CASCADE,
    kind        TEXT NOT NULL,          -- server | api_key | password
    version     BIGINT NOT NULL,        -- part of the wrap's associated data
    wrapped     BYTEA NOT NULL,
    kdf         TEXT,                   -- Argon2id parameters and salt, for password slots
    PRIMARY KEY (record_uuid, kind)
);

CREATE TABLE audit_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_uuid UUID NOT NULL REFERENCES records(uuid) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    channel     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    client_ip   TEXT,
    user_agent  TEXT
);
CREATE INDEX audit_events_record ON audit_events(record_uuid, id);
