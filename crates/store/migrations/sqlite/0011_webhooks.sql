-- Webhooks (issue 15): one per record, a signed POST to its owner's URL when something worth
-- knowing happens to the record. Deliveries wait in a queue in the database, so that a restart
-- loses none.

-- The URL (it may carry a token, like a chat service's incoming-webhook URL) and the signing
-- secret are sealed with a subkey of the master key (AES-256-GCM bound to the record).
CREATE TABLE webhooks (
    record_uuid       BLOB PRIMARY KEY NOT NULL REFERENCES records(uuid) ON DELETE CASCADE,
    url               BLOB NOT NULL,
    secret            BLOB NOT NULL,
    events            TEXT NOT NULL,     -- comma-separated event types
    burst_threshold   INTEGER NOT NULL,  -- failures within the window that make a burst
    burst_window_secs INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;

-- "First" conditions, decided once across nodes: the node whose INSERT adds the row notifies.
-- `mark` names the occasion: when the secure page's password or the X-API-Key was set, or the
-- start of a burst window.
CREATE TABLE webhook_marks (
    record_uuid BLOB NOT NULL REFERENCES records(uuid) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    mark        INTEGER NOT NULL,
    PRIMARY KEY (record_uuid, kind, mark)
) STRICT;

-- The queue. A node claims a due delivery by pushing its next_attempt_at past a lease in one
-- conditional UPDATE, so no two nodes send it at once; a node that dies mid-send leaves it to be
-- claimed again when the lease ends.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        BLOB NOT NULL UNIQUE,
    record_uuid     BLOB NOT NULL REFERENCES webhooks(record_uuid) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,        -- the JSON body: no secret values
    created_at      INTEGER NOT NULL,
    state           TEXT NOT NULL,        -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claim           BLOB,                 -- the claim of the node sending it now
    last_status     INTEGER,              -- the receiver's HTTP status
    last_error      TEXT,
    done_at         INTEGER
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at);
CREATE INDEX webhook_deliveries_record ON webhook_deliveries(record_uuid);
