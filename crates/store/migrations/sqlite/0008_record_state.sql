-- A record can be disabled by its owner (unix milliseconds when it was; NULL = enabled). While
-- disabled, every public channel answers as for a uuid that does not exist; its keys, passwords
-- and secure page are kept, so enabling it brings them all back.
ALTER TABLE records ADD COLUMN disabled_at INTEGER;
-- An optional label the secure page shows before its password (plain text, not a secret). Pages
-- without one show nothing about the record before the password (no existence oracle).
ALTER TABLE records ADD COLUMN page_label TEXT;
-- "Last used" is read from the audit log, not written on every read: the newest successful
-- event per (channel, outcome) is one seek in audit_events_failures (record_uuid, channel,
-- outcome, at), so no new index (and no extra write per read) is needed.
