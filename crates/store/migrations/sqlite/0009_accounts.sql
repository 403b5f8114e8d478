-- Accounts: two-factor sign-in, sessions that say what and where they are, and the account's
-- own audit log (sign-ins, failed sign-ins, password and two-factor changes, sessions ended).

-- The TOTP secret, sealed with a subkey of the master key (AES-256-GCM bound to the account):
-- the server must be able to compute codes, so it is encrypted rather than hashed.
-- totp_pending holds a secret shown to the owner but not yet confirmed with a code.
ALTER TABLE accounts ADD COLUMN totp_secret BLOB;
ALTER TABLE accounts ADD COLUMN totp_pending BLOB;
-- The last 30-second step whose code was accepted: a code works once.
ALTER TABLE accounts ADD COLUMN totp_last_step INTEGER;

-- Recovery codes, stored as SHA-256 digests (each is 80 random bits, so no KDF is needed);
-- using one deletes it.
CREATE TABLE recovery_codes (
    account_id BLOB NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    digest     BLOB NOT NULL,
    PRIMARY KEY (account_id, digest)
) STRICT;

-- 'browser' (a dashboard cookie) or 'api' (a bearer token: the CLI, scripts). One never works
-- as the other. Where and how the session was opened, for the owner's sessions list.
ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'api';
ALTER TABLE sessions ADD COLUMN client_ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
CREATE INDEX sessions_account ON sessions(account_id, created_at);

CREATE TABLE account_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BLOB NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    client_ip  TEXT,
    user_agent TEXT
) STRICT;
CREATE INDEX account_events_account ON account_events(account_id, id);
