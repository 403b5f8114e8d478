-- Secure pages (/secure/{uuid}): their own expiry and view limit, and a fast count of recent
-- unlock attempts for the brute-force lockout.
ALTER TABLE records ADD COLUMN page_expires_at INTEGER;
ALTER TABLE records ADD COLUMN page_max_views INTEGER;
ALTER TABLE records ADD COLUMN page_views INTEGER NOT NULL DEFAULT 0;
CREATE INDEX audit_events_recent ON audit_events(record_uuid, channel, at);
