-- Webhooks (issue 15): one per record, a signed POST to its owner's URL when something worth
-- knowing happens to the record. Deliveries wait in a queue in the database, so that a restart
-- loses none.

-- The URL (it may carry a token, like a chat service's incoming-webhook URL) and the signing
-- secret are sealed with a subkey of the master key (AES-256-GCM bound to the record).
CREATE TABLE webhooks (
    record_uuid       UUID PRIMARY KEY REFERENCES records(uuid) ON DELETE CASCADE,
    url               BYTEA NOT NULL,
    secret            BYTEA NOT NULL,
    events            TEXT NOT NULL,     -- comma-separated event types
    burst_threshold   BIGINT NOT NULL,   -- failures within the window that make a burst
    burst_window_secs BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

-- "First" conditions, decided once across nodes: the node whose INSERT adds the row notifies.
-- `mark` names the occasion: when the secure page's password or the X-API-Key was set, or the
-- start of a burst window.
CREATE TABLE webhook_marks (
    record_uuid UUID NOT NULL REFERENCES records(uuid) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    mark        BIGINT NOT NULL,
    PRIMARY KEY (record_uuid, kind, mark)
);

-- The queue. A node claims a due delivery by pushing its next_attempt_at past a lease in one
-- conditional UPDATE (its WHERE is checked again on the locked row), so no two nodes send it at
-- once; a node that dies mid-send leaves it to be claimed again when the lease ends.
CREATE TABLE webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        UUID NOT NULL UNIQUE,
    record_uuid     UUID NOT NULL REFERENCES webhooks(record_uuid) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,        -- the JSON body: no secret values
    created_at      BIGINT NOT NULL,
    state           TEXT NOT NULL,        -- pending | delivered | failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claim           UUID,                 -- the claim of the node sending it now
    last_status     BIGINT,               -- the receiver's HTTP status
    last_error      TEXT,
    done_at         BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at);
CREATE INDEX webhook_deliveries_record ON webhook_deliveries(record_uuid);
