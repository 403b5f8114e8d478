-- Bridges: a record whose payload holds an upstream URL and headers (encrypted as ever) and
-- whose policy (methods, origins, params, paths, timeouts; nothing secret) is stored as JSON.
-- Audit events of proxied calls carry details (method, path, upstream status, latency, bytes,
-- hop, origin) as JSON too.
ALTER TABLE records ADD COLUMN bridge TEXT;
ALTER TABLE audit_events ADD COLUMN detail TEXT;
