-- The lockout counts a record's failures (outcomes `attempt` and `denied`) in a window. The
-- index it used held every event of the record and channel, so a busy page (every load, every
-- reveal) made each count scan thousands of rows. With the outcome in the index, a count reads
-- only failures.
DROP INDEX audit_events_recent;
CREATE INDEX audit_events_failures ON audit_events(record_uuid, channel, outcome, at);
