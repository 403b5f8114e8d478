//! Which master-key version wrapped or sealed what, for the online rotation of the master key:
//! counting each version's values, walking the ones not yet under the current version in
//! batches, and replacing one only if it is still what was read (so a rotation racing an
//! owner's change never overwrites the newer value). The SQL is the same on both engines.

use async_trait::async_trait;
use uuid::Uuid;

use crate::Result;

/// Every place that holds a value wrapped or sealed under the master key (or a subkey of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedField {
    /// A record's server slot: its data key wrapped under the master key.
    ServerSlot,
    /// An account's TOTP secret, sealed with the TOTP subkey.
    TotpSecret,
    /// A TOTP secret shown to the owner and waiting for its first code.
    TotpPending,
    /// A webhook's URL, sealed with the webhook subkey.
    WebhookUrl,
    /// A webhook's signing secret, sealed with the webhook subkey.
    WebhookSecret,
    /// The data key an intake link holds for the credential it will make, wrapped under the
    /// master key like that record's server slot (bound to the record's uuid).
    IntakeSlot,
}

impl SealedField {
    pub const ALL: [SealedField; 6] = [
        SealedField::ServerSlot,
        SealedField::TotpSecret,
        SealedField::TotpPending,
        SealedField::WebhookUrl,
        SealedField::WebhookSecret,
        SealedField::IntakeSlot,
    ];

    /// How operators read it in progress reports.
    pub fn label(self) -> &'static str {
        match self {
            SealedField::ServerSlot => "server slots",
            SealedField::TotpSecret => "TOTP secrets",
            SealedField::TotpPending => "pending TOTP secrets",
            SealedField::WebhookUrl => "webhook URLs",
            SealedField::WebhookSecret => "webhook secrets",
            SealedField::IntakeSlot => "intake links' data keys",
        }
    }
}

/// One stored value and the master-key version under which it was wrapped or sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub field: SealedField,
    /// The record (server slots, webhooks) or account (TOTP) it belongs to.
    pub id: Uuid,
    pub key_version: i64,
    pub bytes: Vec<u8>,
}

/// How many values of one field each master-key version holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionCount {
    pub key_version: i64,
    pub count: i64,
}

#[async_trait]
pub trait KeyVersionStore: Send + Sync {
    /// The master key's rows of `meta` (check values and retirement marks), by key.
    async fn master_key_meta(&self) -> Result<Vec<(String, Vec<u8>)>>;
    /// How many values of `field` each version holds (versions holding none are left out).
    async fn sealed_counts(&self, field: SealedField) -> Result<Vec<VersionCount>>;
    /// Whether any value of `field` is under `key_version` (one index seek for server slots).
    async fn sealed_uses(&self, field: SealedField, key_version: i64) -> Result<bool>;
    /// Up to `limit` values of `field` not under `key_version`, with ids after `after`, in id
    /// order (so that a walk goes on past values it could not re-seal).
    async fn sealed_not_under(
        &self,
        field: SealedField,
        key_version: i64,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<SealedValue>>;
    /// Replaces `old` with `bytes` under `key_version` if it is still exactly `old`; returns
    /// whether it did. Nothing else about its row changes.
    async fn reseal(&self, old: &SealedValue, key_version: i64, bytes: &[u8]) -> Result<bool>;
}

/// Implements [`KeyVersionStore`] for `$store` (holding `pool`), with rows of type `$row`.
macro_rules! impl_key_version_store {
    ($store:ty, $row:ty) => {
        mod key_version_sql {
            use async_trait::async_trait;
            use sqlx::Row;
            use uuid::Uuid;

            use super::*;
            use crate::Result;
            use crate::key_versions::{KeyVersionStore, SealedField, SealedValue, VersionCount};

            fn value(field: SealedField, row: &$row) -> Result<SealedValue> {
                Ok(SealedValue {
                    field,
                    id: row.try_get::<Uuid, _>("id")?,
                    key_version: row.try_get("key_version")?,
                    bytes: row.try_get("bytes")?,
                })
            }

            #[async_trait]
            impl KeyVersionStore for $store {
                async fn master_key_meta(&self) -> Result<Vec<(String, Vec<u8>)>> {
                    let rows = sqlx::query(
                        "SELECT key, value FROM meta WHERE key LIKE 'master\\_key\\_%' ESCAPE '\\' \
                         ORDER BY key",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
                        .collect()
                }

                async fn sealed_counts(&self, field: SealedField) -> Result<Vec<VersionCount>> {
                    let sql = match field {
                        SealedField::ServerSlot => {
                            "SELECT version AS key_version, COUNT(*) AS n FROM key_slots \
                             WHERE kind = 'server' GROUP BY version ORDER BY version"
                        }
                        SealedField::TotpSecret => {
                            "SELECT totp_secret_key_version AS key_version, COUNT(*) AS n \
                             FROM accounts WHERE totp_secret IS NOT NULL \
                             GROUP BY totp_secret_key_version ORDER BY totp_secret_key_version"
                        }
                        SealedField::TotpPending => {
                            "SELECT totp_pending_key_version AS key_version, COUNT(*) AS n \
                             FROM accounts WHERE totp_pending IS NOT NULL \
                             GROUP BY totp_pending_key_version ORDER BY totp_pending_key_version"
                        }
                        SealedField::WebhookUrl => {
                            "SELECT url_key_version AS key_version, COUNT(*) AS n FROM webhooks \
                             GROUP BY url_key_version ORDER BY url_key_version"
                        }
                        SealedField::WebhookSecret => {
                            "SELECT secret_key_version AS key_version, COUNT(*) AS n FROM webhooks \
                             GROUP BY secret_key_version ORDER BY secret_key_version"
                        }
                        SealedField::IntakeSlot => {
                            "SELECT server_slot_version AS key_version, COUNT(*) AS n \
                             FROM intake_links WHERE server_slot IS NOT NULL \
                             GROUP BY server_slot_version ORDER BY server_slot_version"
                        }
                    };
                    let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
                    rows.iter()
                        .map(|r| {
                            Ok(VersionCount {
                                key_version: r.try_get("key_version")?,
                                count: r.try_get("n")?,
                            })
                        })
                        .collect()
                }

                async fn sealed_uses(&self, field: SealedField, key_version: i64) -> Result<bool> {
                    let sql = match field {
                        SealedField::ServerSlot => {
                            "SELECT 1 AS found FROM key_slots WHERE kind = 'server' AND version = $1 \
                             LIMIT 1"
                        }
                        SealedField::TotpSecret => {
                            "SELECT 1 AS found FROM accounts WHERE totp_secret IS NOT NULL \
                             AND totp_secret_key_version = $1 LIMIT 1"
                        }
                        SealedField::TotpPending => {
                            "SELECT 1 AS found FROM accounts WHERE totp_pending IS NOT NULL \
                             AND totp_pending_key_version = $1 LIMIT 1"
                        }
                        SealedField::WebhookUrl => {
                            "SELECT 1 AS found FROM webhooks WHERE url_key_version = $1 LIMIT 1"
                        }
                        SealedField::WebhookSecret => {
                            "SELECT 1 AS found FROM webhooks WHERE secret_key_version = $1 LIMIT 1"
                        }
                        SealedField::IntakeSlot => {
                            "SELECT 1 AS found FROM intake_links WHERE server_slot IS NOT NULL \
                             AND server_slot_version = $1 LIMIT 1"
                        }
                    };
                    Ok(sqlx::query(sql)
                        .bind(key_version)
                        .fetch_optional(&self.pool)
                        .await?
                        .is_some())
                }

                async fn sealed_not_under(
                    &self,
                    field: SealedField,
                    key_version: i64,
                    after: Uuid,
                    limit: u32,
                ) -> Result<Vec<SealedValue>> {
                    let sql = match field {
                        SealedField::ServerSlot => {
                            "SELECT record_uuid AS id, version AS key_version, wrapped AS bytes \
                             FROM key_slots WHERE kind = 'server' AND version <> $1 \
                             AND record_uuid > $2 ORDER BY record_uuid LIMIT $3"
                        }
                        SealedField::TotpSecret => {
                            "SELECT id, totp_secret_key_version AS key_version, totp_secret AS bytes \
                             FROM accounts WHERE totp_secret IS NOT NULL \
                             AND totp_secret_key_version <> $1 AND id > $2 ORDER BY id LIMIT $3"
                        }
                        SealedField::TotpPending => {
                            "SELECT id, totp_pending_key_version AS key_version, \
                             totp_pending AS bytes FROM accounts WHERE totp_pending IS NOT NULL \
                             AND totp_pending_key_version <> $1 AND id > $2 ORDER BY id LIMIT $3"
                        }
                        SealedField::WebhookUrl => {
                            "SELECT record_uuid AS id, url_key_version AS key_version, url AS bytes \
                             FROM webhooks WHERE url_key_version <> $1 AND record_uuid > $2 \
                             ORDER BY record_uuid LIMIT $3"
                        }
                        SealedField::WebhookSecret => {
                            "SELECT record_uuid AS id, secret_key_version AS key_version, \
                             secret AS bytes FROM webhooks WHERE secret_key_version <> $1 \
                             AND record_uuid > $2 ORDER BY record_uuid LIMIT $3"
                        }
                        SealedField::IntakeSlot => {
                            "SELECT record_uuid AS id, server_slot_version AS key_version, \
                             server_slot AS bytes FROM intake_links \
                             WHERE server_slot IS NOT NULL AND server_slot_version <> $1 \
                             AND record_uuid > $2 ORDER BY record_uuid LIMIT $3"
                        }
                    };
                    let rows = sqlx::query(sql)
                        .bind(key_version)
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(|r| value(field, r)).collect()
                }

                async fn reseal(
                    &self,
                    old: &SealedValue,
                    key_version: i64,
                    bytes: &[u8],
                ) -> Result<bool> {
                    let sql = match old.field {
                        SealedField::ServerSlot => {
                            "UPDATE key_slots SET version = $1, wrapped = $2 WHERE record_uuid = $3 \
                             AND kind = 'server' AND version = $4 AND wrapped = $5"
                        }
                        SealedField::TotpSecret => {
                            "UPDATE accounts SET totp_secret_key_version = $1, totp_secret = $2 \
                             WHERE id = $3 AND totp_secret_key_version = $4 AND totp_secret = $5"
                        }
                        SealedField::TotpPending => {
                            "UPDATE accounts SET totp_pending_key_version = $1, totp_pending = $2 \
                             WHERE id = $3 AND totp_pending_key_version = $4 AND totp_pending = $5"
                        }
                        SealedField::WebhookUrl => {
                            "UPDATE webhooks SET url_key_version = $1, url = $2 \
                             WHERE record_uuid = $3 AND url_key_version = $4 AND url = $5"
                        }
                        SealedField::WebhookSecret => {
                            "UPDATE webhooks SET secret_key_version = $1, secret = $2 \
                             WHERE record_uuid = $3 AND secret_key_version = $4 AND secret = $5"
                        }
                        SealedField::IntakeSlot => {
                            "UPDATE intake_links SET server_slot_version = $1, server_slot = $2 \
                             WHERE record_uuid = $3 AND server_slot_version = $4 \
                             AND server_slot = $5"
                        }
                    };
                    let done = sqlx::query(sql)
                        .bind(key_version)
                        .bind(bytes)
                        .bind(old.id)
                        .bind(old.key_version)
                        .bind(old.bytes.as_slice())
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }
            }
        }
    };
}
pub(crate) use impl_key_version_store;
