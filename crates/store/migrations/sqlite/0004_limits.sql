-- Rate limits and usage quotas. A record's limits (nothing secret) are JSON beside its policy.
-- A quota's usage is one row per record and period, taken from with one conditional upsert so
-- that concurrent requests on any number of nodes never exceed it.
ALTER TABLE records ADD COLUMN limits TEXT;

CREATE TABLE quota_usage (
    record_uuid  BLOB NOT NULL REFERENCES records(uuid) ON DELETE CASCADE,
    period_start INTEGER NOT NULL,
    used         INTEGER NOT NULL,
    PRIMARY KEY (record_uuid, period_start)
) STRICT;
