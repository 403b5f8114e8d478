-- When each key slot was last written (unix milliseconds; 0 for slots older than this column).
-- The lockout counts a password's failures only since its slot was written, so a new password
-- starts with a clean count (the audit history itself is kept).
ALTER TABLE key_slots ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
