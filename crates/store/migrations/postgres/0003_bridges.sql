-- Bridges: a record whose payload holds an upstream URL and headers (encrypted as ever) and
-- whose policy (methods, origins, params, paths, timeouts; nothing secret) is stored as JSON.
-- Credentials use the same column for their declared `{{param}}` names.
-- Audit events of proxied calls carry details (method, path, upstream status, latency, bytes,
-- hop, origin) as JSON too.
ALTER TABLE records ADD COLUMN policy TEXT;
ALTER TABLE audit_events ADD COLUMN detail TEXT;
