-- Secure pages (/secure/{uuid}): their own expiry and view limit, and a fast count of recent
-- unlock attempts for the brute-force lockout.
ALTER TABLE records ADD COLUMN page_expires_at BIGINT;
ALTER TABLE records ADD COLUMN page_max_views BIGINT;
ALTER TABLE records ADD COLUMN page_views BIGINT NOT NULL DEFAULT 0;
CREATE INDEX audit_events_recent ON audit_events(record_uuid, channel, at);
