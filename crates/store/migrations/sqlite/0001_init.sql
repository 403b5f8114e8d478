-- brine schema, SQLite flavour. Times are unix milliseconds (UTC) so that they compare as numbers.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE accounts (
    id            BLOB PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

-- A session is a JWT's `sid` claim. Logging out deletes the row, which revokes the token everywhere.
CREATE TABLE sessions (
    id         BLOB PRIMARY KEY NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_expiry ON sessions(expires_at);

CREATE TABLE records (
    uuid            BLOB PRIMARY KEY NOT NULL,
    owner_id        BLOB NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    access          TEXT NOT NULL,
    sealed          INTEGER NOT NULL,
    payload         BLOB NOT NULL,      -- AES-256-GCM: nonce || ciphertext || tag
    payload_version INTEGER NOT NULL,   -- part of the payload's associated data
    expires_at      INTEGER,
    max_reads       INTEGER,
    reads           INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX records_owner ON records(owner_id, created_at);

-- The record's data key, wrapped once per way of opening it (DESIGN.md §2).
CREATE TABLE key_slots (
    record_uuid BLOB NOT NULL REFERENCES records(uuid) ON DELETE CASCADE,
    kind        TEXT NOT NULL,          -- server | api_key | password
    version     INTEGER NOT NULL,       -- part of the wrap's associated data
    wrapped     BLOB NOT NULL,
    kdf         TEXT,                   -- Argon2id parameters and salt, for password slots
    PRIMARY KEY (record_uuid, kind)
) STRICT;

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    record_uuid BLOB NOT NULL REFERENCES records(uuid) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    client_ip   TEXT,
    user_agent  TEXT
) STRICT;
CREATE INDEX audit_events_record ON audit_events(record_uuid, id);
