//! Handoffs: one value handed to someone until an end date, as two ordinary records tied
//! together by a row here. Ending one is decided once across nodes: the conditional UPDATE that
//! sets `ended_at` succeeds for one caller only. The SQL is the same on both engines, stamped out
//! for each like [`crate::sql`].

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// A handoff as stored. Nothing here is secret: the value lives in the two records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// For whom ("Ana (contractor)").
    pub name: String,
    /// The record with the secure page, for the person (`None` once its owner deleted it).
    pub page_record: Option<Uuid>,
    /// The private record with an X-API-Key, for their code.
    pub code_record: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    /// Who ended it: `schedule` (the end date) or `owner` ("End now").
    pub ended_by: Option<String>,
    /// When the owner ticked the "rotate the upstream key" to-do.
    pub todo_done_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait HandoffStore: Send + Sync {
    async fn insert_handoff(&self, handoff: &Handoff) -> Result<()>;
    /// The owner's handoff (another account's is `None`, like a missing one).
    async fn handoff(&self, owner: Uuid, id: Uuid) -> Result<Option<Handoff>>;
    /// The owner's handoffs, newest first.
    async fn handoffs_of(&self, owner: Uuid) -> Result<Vec<Handoff>>;
    /// Handoffs past their end date at `now` and not ended yet, oldest end first, at most
    /// `limit`.
    async fn due_handoffs(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Handoff>>;
    /// Marks the handoff ended at `at` by `by`, unless it has ended already; returns whether this
    /// call ended it (on any node, one call wins).
    async fn end_handoff(&self, id: Uuid, at: OffsetDateTime, by: &str) -> Result<bool>;
    /// Ticks the to-do of an ended handoff of `owner`; returns whether this call ticked it.
    async fn tick_handoff(&self, owner: Uuid, id: Uuid, at: OffsetDateTime) -> Result<bool>;
}

/// Implements [`HandoffStore`] for `$store` (holding `pool`), with rows of type `$row`.
macro_rules! impl_handoff_store {
    ($store:ty, $row:ty) => {
        mod handoff_sql {
            use async_trait::async_trait;
            use sqlx::Row;
            use time::OffsetDateTime;
            use uuid::Uuid;

            use super::*;
            use crate::handoffs::{Handoff, HandoffStore};
            use crate::sql::opt_time;
            use crate::time_ms::{from_ms, to_ms};
            use crate::Result;

            fn handoff(row: &$row) -> Result<Handoff> {
                Ok(Handoff {
                    id: row.try_get("id")?,
                    owner_id: row.try_get("owner_id")?,
                    name: row.try_get("name")?,
                    page_record: row.try_get("page_record")?,
                    code_record: row.try_get("code_record")?,
                    created_at: from_ms(row.try_get("created_at")?)?,
                    ends_at: from_ms(row.try_get("ends_at")?)?,
                    ended_at: opt_time(row.try_get("ended_at")?)?,
                    ended_by: row.try_get("ended_by")?,
                    todo_done_at: opt_time(row.try_get("todo_done_at")?)?,
                })
            }

            #[async_trait]
            impl HandoffStore for $store {
                async fn insert_handoff(&self, h: &Handoff) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO handoffs (id, owner_id, name, page_record, code_record, \
                         created_at, ends_at, ended_at, ended_by, todo_done_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(h.id)
                    .bind(h.owner_id)
                    .bind(&h.name)
                    .bind(h.page_record)
                    .bind(h.code_record)
                    .bind(to_ms(h.created_at))
                    .bind(to_ms(h.ends_at))
                    .bind(h.ended_at.map(to_ms))
                    .bind(h.ended_by.as_deref())
                    .bind(h.todo_done_at.map(to_ms))
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn handoff(&self, owner: Uuid, id: Uuid) -> Result<Option<Handoff>> {
                    let row = sqlx::query(
                        "SELECT id, owner_id, name, page_record, code_record, created_at, \
                         ends_at, ended_at, ended_by, todo_done_at FROM handoffs \
                         WHERE id = $1 AND owner_id = $2",
                    )
                    .bind(id)
                    .bind(owner)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.as_ref().map(handoff).transpose()
                }

                async fn handoffs_of(&self, owner: Uuid) -> Result<Vec<Handoff>> {
                    let rows = sqlx::query(
                        "SELECT id, owner_id, name, page_record, code_record, created_at, \
                         ends_at, ended_at, ended_by, todo_done_at FROM handoffs \
                         WHERE owner_id = $1 ORDER BY created_at DESC, id",
                    )
                    .bind(owner)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(handoff).collect()
                }

                async fn due_handoffs(
                    &self,
                    now: OffsetDateTime,
                    limit: u32,
                ) -> Result<Vec<Handoff>> {
                    let rows = sqlx::query(
                        "SELECT id, owner_id, name, page_record, code_record, created_at, \
                         ends_at, ended_at, ended_by, todo_done_at FROM handoffs \
                         WHERE ended_at IS NULL AND ends_at <= $1 ORDER BY ends_at LIMIT $2",
                    )
                    .bind(to_ms(now))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(handoff).collect()
                }

                async fn end_handoff(
                    &self,
                    id: Uuid,
                    at: OffsetDateTime,
                    by: &str,
                ) -> Result<bool> {
                    let done = sqlx::query(
                        "UPDATE handoffs SET ended_at = $1, ended_by = $2 \
                         WHERE id = $3 AND ended_at IS NULL",
                    )
                    .bind(to_ms(at))
                    .bind(by)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn tick_handoff(
                    &self,
                    owner: Uuid,
                    id: Uuid,
                    at: OffsetDateTime,
                ) -> Result<bool> {
                    let done = sqlx::query(
                        "UPDATE handoffs SET todo_done_at = $1 WHERE id = $2 AND owner_id = $3 \
                         AND ended_at IS NOT NULL AND todo_done_at IS NULL",
                    )
                    .bind(to_ms(at))
                    .bind(id)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }
            }
        }
    };
}

pub(crate) use impl_handoff_store;
