-- A record's version, bumped by every change to it (not by its read and view counters). Nodes
-- keep decoded records in memory; an audit event is stored only if its record is still at the
-- version the answer was made from, so a copy that is out of date is never served.
ALTER TABLE records ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
