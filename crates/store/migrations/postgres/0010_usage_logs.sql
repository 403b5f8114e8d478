-- Usage logs (issue 15); see the SQLite migration of the same number for the reasons.
-- Events no longer cascade from their record; each names its owner.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_record_uuid_fkey;
ALTER TABLE audit_events ADD COLUMN owner_id UUID;
UPDATE audit_events e SET owner_id = r.owner_id FROM records r WHERE r.uuid = e.record_uuid;
DELETE FROM audit_events WHERE owner_id IS NULL;
ALTER TABLE audit_events ALTER COLUMN owner_id SET NOT NULL;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_owner_fkey
    FOREIGN KEY (owner_id) REFERENCES accounts(id) ON DELETE CASCADE;
ALTER TABLE audit_events ADD COLUMN country TEXT;
ALTER TABLE audit_events ADD COLUMN city TEXT;
CREATE INDEX audit_events_owner ON audit_events(owner_id, id);

CREATE TABLE deleted_records (
    uuid       UUID PRIMARY KEY,
    owner_id   UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    deleted_at BIGINT NOT NULL
);
CREATE INDEX deleted_records_owner ON deleted_records(owner_id);

CREATE TABLE usage_rollups (
    record_uuid  UUID NOT NULL,
    span         BIGINT NOT NULL,
    start        BIGINT NOT NULL,
    owner_id     UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    requests     BIGINT NOT NULL DEFAULT 0,
    denied       BIGINT NOT NULL DEFAULT 0,
    limited      BIGINT NOT NULL DEFAULT 0,
    gone         BIGINT NOT NULL DEFAULT 0,
    invalid      BIGINT NOT NULL DEFAULT 0,
    upstream_4xx BIGINT NOT NULL DEFAULT 0,
    upstream_5xx BIGINT NOT NULL DEFAULT 0,
    bytes        BIGINT NOT NULL DEFAULT 0,
    lat_0 BIGINT NOT NULL DEFAULT 0, lat_1 BIGINT NOT NULL DEFAULT 0,
    lat_2 BIGINT NOT NULL DEFAULT 0, lat_3 BIGINT NOT NULL DEFAULT 0,
    lat_4 BIGINT NOT NULL DEFAULT 0, lat_5 BIGINT NOT NULL DEFAULT 0,
    lat_6 BIGINT NOT NULL DEFAULT 0, lat_7 BIGINT NOT NULL DEFAULT 0,
    lat_8 BIGINT NOT NULL DEFAULT 0, lat_9 BIGINT NOT NULL DEFAULT 0,
    lat_10 BIGINT NOT NULL DEFAULT 0, lat_11 BIGINT NOT NULL DEFAULT 0,
    last_at      BIGINT,
    last_ok_at   BIGINT,
    PRIMARY KEY (record_uuid, span, start)
);
CREATE INDEX usage_rollups_owner ON usage_rollups(owner_id, span, start);
