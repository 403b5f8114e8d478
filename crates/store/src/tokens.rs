//! Service tokens: read-only tokens for CI and servers, scoped to named records of one account,
//! with an expiry. Only a digest of each token's secret is stored. The SQL is the same on both
//! engines, stamped out for each like [`crate::sql`].

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// A service token being created.
#[derive(Debug, Clone, Copy)]
pub struct NewServiceToken<'a> {
    pub id: Uuid,
    pub account: Uuid,
    pub name: &'a str,
    /// SHA-256 of the token's secret.
    pub digest: &'a [u8],
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The records it may read (the caller checks that they are the account's).
    pub records: &'a [Uuid],
}

/// A service token as its owner sees it (no digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTokenRow {
    pub id: Uuid,
    pub account: Uuid,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    /// The records in its scope that still exist.
    pub records: Vec<Uuid>,
}

/// What checking a presented token against one record needs, in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCheck {
    pub account: Uuid,
    pub name: String,
    pub digest: Vec<u8>,
    pub expires_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    /// Whether the record is in the token's scope.
    pub covers: bool,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores the token and its scope atomically. Fails with [`crate::StoreError::Conflict`]
    /// when the account has a token of that name.
    async fn create_service_token(&self, token: &NewServiceToken<'_>) -> Result<()>;
    /// The account's tokens (expired ones too, until revoked), newest first.
    async fn service_tokens_of(&self, account: Uuid) -> Result<Vec<ServiceTokenRow>>;
    /// One token, whoever owns it.
    async fn service_token(&self, id: Uuid) -> Result<Option<ServiceTokenRow>>;
    /// The token `id` and whether it covers `record`; `None` when there is no such token.
    async fn check_service_token(&self, id: Uuid, record: Uuid) -> Result<Option<TokenCheck>>;
    /// Notes that the token was used at `at`.
    async fn touch_service_token(&self, id: Uuid, at: OffsetDateTime) -> Result<()>;
    /// Deletes the account's token; returns whether there was one.
    async fn delete_service_token_of(&self, account: Uuid, id: Uuid) -> Result<bool>;
}

/// Implements [`TokenStore`] for `$store` (holding `pool`), with rows of type `$row`.
macro_rules! impl_token_store {
    ($store:ty, $row:ty) => {
        mod token_sql {
            use async_trait::async_trait;
            use sqlx::Row;
            use time::OffsetDateTime;
            use uuid::Uuid;

            use super::*;
            use crate::sql::is_unique_violation;
            use crate::time_ms::{from_ms, to_ms};
            use crate::{NewServiceToken, Result, ServiceTokenRow, StoreError, TokenCheck, TokenStore};

            fn token(row: &$row) -> Result<ServiceTokenRow> {
                Ok(ServiceTokenRow {
                    id: row.try_get::<Uuid, _>("id")?,
                    account: row.try_get::<Uuid, _>("account_id")?,
                    name: row.try_get("name")?,
                    created_at: from_ms(row.try_get("created_at")?)?,
                    expires_at: from_ms(row.try_get("expires_at")?)?,
                    last_used_at: row
                        .try_get::<Option<i64>, _>("last_used_at")?
                        .map(from_ms)
                        .transpose()?,
                    records: Vec::new(),
                })
            }

            impl $store {
                /// Fills in each token's scope with one query.
                async fn with_scopes(&self, mut tokens: Vec<ServiceTokenRow>) -> Result<Vec<ServiceTokenRow>> {
                    let Some(account) = tokens.first().map(|t| t.account) else {
                        return Ok(tokens);
                    };
                    let rows = sqlx::query(
                        "SELECT s.token_id, s.record_uuid FROM service_token_records s \
                         JOIN service_tokens t ON t.id = s.token_id \
                         WHERE t.account_id = $1 ORDER BY s.record_uuid",
                    )
                    .bind(account)
                    .fetch_all(&self.pool)
                    .await?;
                    for row in &rows {
                        let id = row.try_get::<Uuid, _>("token_id")?;
                        let record = row.try_get::<Uuid, _>("record_uuid")?;
                        if let Some(t) = tokens.iter_mut().find(|t| t.id == id) {
                            t.records.push(record);
                        }
                    }
                    Ok(tokens)
                }
            }

            #[async_trait]
            impl TokenStore for $store {
                async fn create_service_token(&self, t: &NewServiceToken<'_>) -> Result<()> {
                    let mut tx = self.pool.begin().await?;
                    let inserted = sqlx::query(
                        "INSERT INTO service_tokens (id, account_id, name, digest, created_at, \
                         expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(t.id)
                    .bind(t.account)
                    .bind(t.name)
                    .bind(t.digest)
                    .bind(to_ms(t.created_at))
                    .bind(to_ms(t.expires_at))
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => {
                            return Err(StoreError::Conflict("service token name"));
                        }
                        Err(e) => return Err(e.into()),
                    }
                    for record in t.records {
                        sqlx::query(
                            "INSERT INTO service_token_records (token_id, record_uuid) \
                             VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        )
                        .bind(t.id)
                        .bind(*record)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn service_tokens_of(&self, account: Uuid) -> Result<Vec<ServiceTokenRow>> {
                    let rows = sqlx::query(
                        "SELECT id, account_id, name, created_at, expires_at, last_used_at \
                         FROM service_tokens WHERE account_id = $1 ORDER BY created_at DESC, id",
                    )
                    .bind(account)
                    .fetch_all(&self.pool)
                    .await?;
                    let tokens = rows.iter().map(token).collect::<Result<Vec<_>>>()?;
                    self.with_scopes(tokens).await
                }

                async fn service_token(&self, id: Uuid) -> Result<Option<ServiceTokenRow>> {
                    let row = sqlx::query(
                        "SELECT id, account_id, name, created_at, expires_at, last_used_at \
                         FROM service_tokens WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    let Some(found) = row.as_ref().map(token).transpose()? else {
                        return Ok(None);
                    };
                    let mut found = self.with_scopes(vec![found]).await?;
                    Ok(found.pop())
                }

                async fn check_service_token(
                    &self,
                    id: Uuid,
                    record: Uuid,
                ) -> Result<Option<TokenCheck>> {
                    let row = sqlx::query(
                        "SELECT t.account_id, t.name, t.digest, t.expires_at, t.last_used_at, \
                         EXISTS (SELECT 1 FROM service_token_records s \
                                 WHERE s.token_id = t.id AND s.record_uuid = $2) AS covers \
                         FROM service_tokens t WHERE t.id = $1",
                    )
                    .bind(id)
                    .bind(record)
                    .fetch_optional(&self.pool)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    Ok(Some(TokenCheck {
                        account: row.try_get::<Uuid, _>("account_id")?,
                        name: row.try_get("name")?,
                        digest: row.try_get("digest")?,
                        expires_at: from_ms(row.try_get("expires_at")?)?,
                        last_used_at: row
                            .try_get::<Option<i64>, _>("last_used_at")?
                            .map(from_ms)
                            .transpose()?,
                        covers: row.try_get("covers")?,
                    }))
                }

                async fn touch_service_token(&self, id: Uuid, at: OffsetDateTime) -> Result<()> {
                    sqlx::query("UPDATE service_tokens SET last_used_at = $1 WHERE id = $2")
                        .bind(to_ms(at))
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn delete_service_token_of(&self, account: Uuid, id: Uuid) -> Result<bool> {
                    let done = sqlx::query(
                        "DELETE FROM service_tokens WHERE id = $1 AND account_id = $2",
                    )
                    .bind(id)
                    .bind(account)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }
            }
        }
    };
}
pub(crate) use impl_token_store;
