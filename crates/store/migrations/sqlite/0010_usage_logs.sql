-- Usage logs (issue 15).
--
-- 1. History survives a record's deletion: events no longer cascade from their record. Each
--    event names its owner, so the account's log is one index seek, and deleting the account
--    still removes everything. SQLite cannot drop a foreign key, so the table is rebuilt.
-- 2. Where an event came from, when a GeoIP database is configured: country and city.
CREATE TABLE audit_events_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id    BLOB NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    record_uuid BLOB NOT NULL,
    at          INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    client_ip   TEXT,
    user_agent  TEXT,
    detail      TEXT,
    country     TEXT,
    city        TEXT
) STRICT;
INSERT INTO audit_events_new (id, owner_id, record_uuid, at, channel, outcome, client_ip,
                              user_agent, detail)
    SELECT e.id, r.owner_id, e.record_uuid, e.at, e.channel, e.outcome, e.client_ip,
           e.user_agent, e.detail
    FROM audit_events e JOIN records r ON r.uuid = e.record_uuid;
DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;
CREATE INDEX audit_events_record ON audit_events(record_uuid, id);
CREATE INDEX audit_events_failures ON audit_events(record_uuid, channel, outcome, at);
CREATE INDEX audit_events_owner ON audit_events(owner_id, id);

-- What a deleted record was, so that its history still has a name (kept as long as its events).
CREATE TABLE deleted_records (
    uuid       BLOB PRIMARY KEY,
    owner_id   BLOB NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    deleted_at INTEGER NOT NULL
) STRICT;
CREATE INDEX deleted_records_owner ON deleted_records(owner_id);

-- Roll-ups: per record, per minute (span 60000) and per hour (span 3600000), the sums of its
-- requests, maintained by the audit writer in the same transaction as the events (see
-- brine_store::usage). Counts by class of error; bytes relayed; bridge latencies as a
-- histogram of fixed buckets (lat_0 .. lat_11, bounds in usage.rs).
CREATE TABLE usage_rollups (
    record_uuid  BLOB NOT NULL,
    span         INTEGER NOT NULL,
    start        INTEGER NOT NULL,
    owner_id     BLOB NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    requests     INTEGER NOT NULL DEFAULT 0,
    denied       INTEGER NOT NULL DEFAULT 0,
    limited      INTEGER NOT NULL DEFAULT 0,
    gone         INTEGER NOT NULL DEFAULT 0,
    invalid      INTEGER NOT NULL DEFAULT 0,
    upstream_4xx INTEGER NOT NULL DEFAULT 0,
    upstream_5xx INTEGER NOT NULL DEFAULT 0,
    bytes        INTEGER NOT NULL DEFAULT 0,
    lat_0 INTEGER NOT NULL DEFAULT 0, lat_1 INTEGER NOT NULL DEFAULT 0,
    lat_2 INTEGER NOT NULL DEFAULT 0, lat_3 INTEGER NOT NULL DEFAULT 0,
    lat_4 INTEGER NOT NULL DEFAULT 0, lat_5 INTEGER NOT NULL DEFAULT 0,
    lat_6 INTEGER NOT NULL DEFAULT 0, lat_7 INTEGER NOT NULL DEFAULT 0,
    lat_8 INTEGER NOT NULL DEFAULT 0, lat_9 INTEGER NOT NULL DEFAULT 0,
    lat_10 INTEGER NOT NULL DEFAULT 0, lat_11 INTEGER NOT NULL DEFAULT 0,
    last_at      INTEGER,
    last_ok_at   INTEGER,
    PRIMARY KEY (record_uuid, span, start)
) STRICT;
CREATE INDEX usage_rollups_owner ON usage_rollups(owner_id, span, start);
