-- Online master-key rotation (issue 17). Every value wrapped or sealed under the master key (or
-- one of its subkeys) records the key version that did it, which is also bound into its AEAD
-- associated data. A server slot's own `version` column already is that version. The versions
-- a database knows are registered in `meta` (`master_key_check` for version 1,
-- `master_key_check:N` for version N; `master_key_retired:N` once retired).

-- TOTP secrets (enabled and pending), sealed with the master key's TOTP subkey.
ALTER TABLE accounts ADD COLUMN totp_secret_key_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE accounts ADD COLUMN totp_pending_key_version INTEGER NOT NULL DEFAULT 1;
-- Webhook URLs and signing secrets, sealed with the webhook subkey (each written on its own).
ALTER TABLE webhooks ADD COLUMN url_key_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE webhooks ADD COLUMN secret_key_version INTEGER NOT NULL DEFAULT 1;

-- Which server slots a version still wraps: counted at start-up and by the rotation, which
-- walks the slots not yet under the current version.
CREATE INDEX key_slots_kind_version ON key_slots(kind, version, record_uuid);
