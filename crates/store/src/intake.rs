//! Intake links: one-time links on which someone outside the account submits a secret for the
//! owner. A link is found by the SHA-256 of its token (the token itself is never stored), spent
//! by one conditional UPDATE (one submission wins, on any number of nodes), and counts its
//! password attempts for a lockout. The SQL is the same on both engines, stamped out for each
//! like [`crate::sql`].

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// Where a link's value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeTarget {
    /// A new private credential named `name`, with uuid `IntakeLink::record`. Its data key was
    /// made with the link and is stored only wrapped: under the master key (`server_slot`, of
    /// `server_slot_version`) and under the X-API-Key the owner was shown then (`api_key_slot`).
    Credential {
        name: String,
        server_slot: Vec<u8>,
        server_slot_version: i64,
        api_key_slot: Vec<u8>,
    },
    /// The header `header` of the owner's bridge `IntakeLink::record`, set to `template` with
    /// `{{value}}` replaced by the value.
    BridgeHeader { header: String, template: String },
}

/// A link as stored. Nothing here is secret: the token is a hash, the password an Argon2 hash,
/// the data key wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeLink {
    pub id: Uuid,
    pub token_hash: Vec<u8>,
    pub owner_id: Uuid,
    pub asked_for: String,
    pub record: Uuid,
    pub target: IntakeTarget,
    pub password_hash: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Password attempts on a link in a window, this one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeAttempts {
    /// From the same client.
    pub client: i64,
    /// From anyone.
    pub all: i64,
}

#[async_trait]
pub trait IntakeStore: Send + Sync {
    async fn insert_intake(&self, link: &IntakeLink) -> Result<()>;
    /// The link whose token hashes to `token_hash`, whatever its state.
    async fn intake_by_token(&self, token_hash: &[u8]) -> Result<Option<IntakeLink>>;
    /// The owner's link `id`.
    async fn intake(&self, id: Uuid, owner: Uuid) -> Result<Option<IntakeLink>>;
    /// The owner's links, newest first.
    async fn intakes_of(&self, owner: Uuid) -> Result<Vec<IntakeLink>>;
    /// Revokes the owner's link unless it was used or revoked already; returns whether it did.
    async fn revoke_intake(&self, id: Uuid, owner: Uuid, at: OffsetDateTime) -> Result<bool>;
    /// Spends the link at `now` if it is still open (unused, not revoked, not expired); returns
    /// whether this call spent it. One call wins, however many race.
    async fn claim_intake(&self, id: Uuid, now: OffsetDateTime) -> Result<bool>;
    /// Opens a link spent at `at` again (its value could not be stored after all).
    async fn release_intake(&self, id: Uuid, at: OffsetDateTime) -> Result<()>;
    /// Records a password attempt on the link and counts the attempts since `since`.
    async fn note_intake_attempt(
        &self,
        id: Uuid,
        client: Option<&str>,
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<IntakeAttempts>;
}

/// Implements [`IntakeStore`] for `$store` (holding `pool`), with rows of type `$row`.
macro_rules! impl_intake_store {
    ($store:ty, $row:ty) => {
        mod intake_sql {
            use async_trait::async_trait;
            use sqlx::Row;
            use time::OffsetDateTime;
            use uuid::Uuid;

            use super::*;
            use crate::intake::{IntakeAttempts, IntakeLink, IntakeStore, IntakeTarget};
            use crate::time_ms::{from_ms, to_ms};
            use crate::{Result, StoreError};

            /// A SELECT of whole links, ending with `$tail` (a static string, as sqlx wants).
            macro_rules! select {
                ($tail:literal) => {
                    concat!(
                        "SELECT id, token_hash, owner_id, asked_for, target, record_uuid, \
                         record_name, server_slot, server_slot_version, api_key_slot, \
                         header_name, template, password_hash, expires_at, created_at, used_at, \
                         revoked_at FROM intake_links",
                        $tail
                    )
                };
            }

            fn time(ms: Option<i64>) -> Result<Option<OffsetDateTime>> {
                ms.map(from_ms).transpose()
            }

            fn link(row: &$row) -> Result<IntakeLink> {
                let target: String = row.try_get("target")?;
                let missing = || StoreError::Corrupt(format!("intake link without its {target}"));
                let target = match target.as_str() {
                    "credential" => IntakeTarget::Credential {
                        name: row.try_get::<Option<String>, _>("record_name")?.ok_or_else(missing)?,
                        server_slot: row
                            .try_get::<Option<Vec<u8>>, _>("server_slot")?
                            .ok_or_else(missing)?,
                        server_slot_version: row
                            .try_get::<Option<i64>, _>("server_slot_version")?
                            .ok_or_else(missing)?,
                        api_key_slot: row
                            .try_get::<Option<Vec<u8>>, _>("api_key_slot")?
                            .ok_or_else(missing)?,
                    },
                    "bridge_header" => IntakeTarget::BridgeHeader {
                        header: row.try_get::<Option<String>, _>("header_name")?.ok_or_else(missing)?,
                        template: row.try_get::<Option<String>, _>("template")?.ok_or_else(missing)?,
                    },
                    other => {
                        return Err(StoreError::Corrupt(format!("intake target {other}")));
                    }
                };
                Ok(IntakeLink {
                    id: row.try_get("id")?,
                    token_hash: row.try_get("token_hash")?,
                    owner_id: row.try_get("owner_id")?,
                    asked_for: row.try_get("asked_for")?,
                    record: row.try_get("record_uuid")?,
                    target,
                    password_hash: row.try_get("password_hash")?,
                    expires_at: time(row.try_get("expires_at")?)?,
                    created_at: from_ms(row.try_get("created_at")?)?,
                    used_at: time(row.try_get("used_at")?)?,
                    revoked_at: time(row.try_get("revoked_at")?)?,
                })
            }

            #[async_trait]
            impl IntakeStore for $store {
                async fn insert_intake(&self, l: &IntakeLink) -> Result<()> {
                    let (kind, name, server, version, key, header, template) = match &l.target {
                        IntakeTarget::Credential {
                            name,
                            server_slot,
                            server_slot_version,
                            api_key_slot,
                        } => (
                            "credential",
                            Some(name.as_str()),
                            Some(server_slot.as_slice()),
                            Some(*server_slot_version),
                            Some(api_key_slot.as_slice()),
                            None,
                            None,
                        ),
                        IntakeTarget::BridgeHeader { header, template } => (
                            "bridge_header",
                            None,
                            None,
                            None,
                            None,
                            Some(header.as_str()),
                            Some(template.as_str()),
                        ),
                    };
                    sqlx::query(
                        "INSERT INTO intake_links (id, token_hash, owner_id, asked_for, target, \
                         record_uuid, record_name, server_slot, server_slot_version, \
                         api_key_slot, header_name, template, password_hash, expires_at, \
                         created_at, used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                         $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                    )
                    .bind(l.id)
                    .bind(&l.token_hash)
                    .bind(l.owner_id)
                    .bind(&l.asked_for)
                    .bind(kind)
                    .bind(l.record)
                    .bind(name)
                    .bind(server)
                    .bind(version)
                    .bind(key)
                    .bind(header)
                    .bind(template)
                    .bind(&l.password_hash)
                    .bind(l.expires_at.map(to_ms))
                    .bind(to_ms(l.created_at))
                    .bind(l.used_at.map(to_ms))
                    .bind(l.revoked_at.map(to_ms))
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn intake_by_token(&self, token_hash: &[u8]) -> Result<Option<IntakeLink>> {
                    let row = sqlx::query(select!(" WHERE token_hash = $1"))
                        .bind(token_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(link).transpose()
                }

                async fn intake(&self, id: Uuid, owner: Uuid) -> Result<Option<IntakeLink>> {
                    let row = sqlx::query(select!(" WHERE id = $1 AND owner_id = $2"))
                        .bind(id)
                        .bind(owner)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(link).transpose()
                }

                async fn intakes_of(&self, owner: Uuid) -> Result<Vec<IntakeLink>> {
                    let rows = sqlx::query(select!(" WHERE owner_id = $1 ORDER BY created_at DESC, id")).bind(owner).fetch_all(&self.pool).await?;
                    rows.iter().map(link).collect()
                }

                async fn revoke_intake(
                    &self,
                    id: Uuid,
                    owner: Uuid,
                    at: OffsetDateTime,
                ) -> Result<bool> {
                    let done = sqlx::query(
                        "UPDATE intake_links SET revoked_at = $1 WHERE id = $2 AND owner_id = $3 \
                         AND used_at IS NULL AND revoked_at IS NULL",
                    )
                    .bind(to_ms(at))
                    .bind(id)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn claim_intake(&self, id: Uuid, now: OffsetDateTime) -> Result<bool> {
                    // The WHERE is checked again on the locked row by PostgreSQL, so of racing
                    // submissions exactly one changes it; SQLite has one writer at a time.
                    let done = sqlx::query(
                        "UPDATE intake_links SET used_at = $1 WHERE id = $2 \
                         AND used_at IS NULL AND revoked_at IS NULL \
                         AND (expires_at IS NULL OR expires_at > $1)",
                    )
                    .bind(to_ms(now))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn release_intake(&self, id: Uuid, at: OffsetDateTime) -> Result<()> {
                    sqlx::query("UPDATE intake_links SET used_at = NULL WHERE id = $1 AND used_at = $2")
                        .bind(id)
                        .bind(to_ms(at))
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn note_intake_attempt(
                    &self,
                    id: Uuid,
                    client: Option<&str>,
                    at: OffsetDateTime,
                    since: OffsetDateTime,
                ) -> Result<IntakeAttempts> {
                    sqlx::query("INSERT INTO intake_attempts (link_id, client, at) VALUES ($1, $2, $3)")
                        .bind(id)
                        .bind(client)
                        .bind(to_ms(at))
                        .execute(&self.pool)
                        .await?;
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS all_attempts, \
                         COUNT(CASE WHEN client = $1 THEN 1 END) AS client_attempts \
                         FROM intake_attempts WHERE link_id = $2 AND at >= $3",
                    )
                    .bind(client)
                    .bind(id)
                    .bind(to_ms(since))
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(IntakeAttempts {
                        client: row.try_get("client_attempts")?,
                        all: row.try_get("all_attempts")?,
                    })
                }
            }
        }
    };
}

pub(crate) use impl_intake_store;
