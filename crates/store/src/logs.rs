//! The account-wide views of the audit log: usage sums from the roll-ups (see `usage`), the
//! owner's events across records, deleted records' names, and the retention of all three.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::usage::Counts;
use crate::{AuditEvent, EventFilter, Result};

/// One record's sums over a range.
#[derive(Debug, Clone)]
pub struct RecordUsage {
    pub record: Uuid,
    pub counts: Counts,
    pub last_at: Option<OffsetDateTime>,
}

/// One record's requests and errors in one bucket of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesPoint {
    pub record: Uuid,
    /// The bucket's start (unix milliseconds).
    pub start: i64,
    pub requests: i64,
    pub errors: i64,
}

/// A range of roll-ups to read: rows of width `span` whose start is in `[from, to)` (unix
/// milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct UsageRange {
    pub span: i64,
    pub from: i64,
    pub to: i64,
}

/// What a deleted record was.
#[derive(Debug, Clone)]
pub struct DeletedRecord {
    pub uuid: Uuid,
    pub name: String,
    pub kind: String,
    pub deleted_at: OffsetDateTime,
}

/// A record's name and kind as the logs show it, live or deleted.
#[derive(Debug, Clone)]
pub struct RecordName {
    pub uuid: Uuid,
    pub name: String,
    pub kind: String,
    pub deleted: bool,
}

#[async_trait]
pub trait LogStore: Send + Sync {
    /// The names of the owner's records and deleted records, in one query that decodes no
    /// record (deleted ones first, so that a live record of the same uuid wins when folded).
    async fn record_names(&self, owner: Uuid) -> Result<Vec<RecordName>>;
    /// Per record of `owner` with any roll-up in the range, its sums.
    async fn usage_summary(&self, owner: Uuid, range: UsageRange) -> Result<Vec<RecordUsage>>;
    /// Requests and errors per record and bucket of width `bucket` (a multiple of the range's
    /// span), for the owner's records or only `record`.
    async fn usage_series(
        &self,
        owner: Uuid,
        record: Option<Uuid>,
        range: UsageRange,
        bucket: i64,
    ) -> Result<Vec<SeriesPoint>>;
    /// The owner's events that match `filter`, across records (deleted ones too), newest
    /// first, at most `limit`.
    async fn owner_events(
        &self,
        owner: Uuid,
        limit: u32,
        filter: &EventFilter<'_>,
    ) -> Result<Vec<AuditEvent>>;
    /// The owner's deleted records whose history is kept.
    async fn deleted_records(&self, owner: Uuid) -> Result<Vec<DeletedRecord>>;
    /// Deletes at most `limit` roll-up rows of width `span` that start before `cutoff`.
    async fn delete_rollups_before(&self, span: i64, cutoff: i64, limit: u32) -> Result<u64>;
    /// Deletes at most `limit` of the oldest successful requests' events from before `cutoff`
    /// (their counts stay in the roll-ups; refusals and owner actions are kept).
    async fn delete_successes_before(&self, cutoff: OffsetDateTime, limit: u32) -> Result<u64>;
    /// Forgets deleted records that were deleted before `cutoff` (their history has aged out).
    async fn delete_tombstones_before(&self, cutoff: OffsetDateTime) -> Result<u64>;
}

/// Implements [`LogStore`] for `$store` (holding `pool`), with rows of type `$row`.
macro_rules! impl_log_store {
    ($store:ty, $row:ty) => {
        mod log_sql {
            use async_trait::async_trait;
            use sqlx::Row;
            use time::OffsetDateTime;
            use uuid::Uuid;

            use super::*;
            use crate::logs::{
                DeletedRecord, LogStore, RecordName, RecordUsage, SeriesPoint, UsageRange,
            };
            use crate::time_ms::{from_ms, to_ms};
            use crate::usage::{Counts, LATENCY_BUCKETS};
            use crate::{AuditEvent, EventFilter, Result};

            const LATENCY_COLUMNS: [&str; LATENCY_BUCKETS] = [
                "lat_0", "lat_1", "lat_2", "lat_3", "lat_4", "lat_5", "lat_6", "lat_7",
                "lat_8", "lat_9", "lat_10", "lat_11",
            ];

            fn counts(row: &$row) -> Result<Counts> {
                let mut counts = Counts {
                    requests: row.try_get("requests")?,
                    denied: row.try_get("denied")?,
                    limited: row.try_get("limited")?,
                    gone: row.try_get("gone")?,
                    invalid: row.try_get("invalid")?,
                    upstream_4xx: row.try_get("upstream_4xx")?,
                    upstream_5xx: row.try_get("upstream_5xx")?,
                    bytes: row.try_get("bytes")?,
                    latency: [0; LATENCY_BUCKETS],
                };
                for (n, column) in counts.latency.iter_mut().zip(LATENCY_COLUMNS) {
                    *n = row.try_get(column)?;
                }
                Ok(counts)
            }

            /// An event from a row of `audit_events` (also for `AuditStore::events`).
            pub(super) fn event(row: &$row) -> Result<AuditEvent> {
                Ok(AuditEvent {
                    id: row.try_get("id")?,
                    record: row.try_get::<Uuid, _>("record_uuid")?,
                    at: from_ms(row.try_get("at")?)?,
                    channel: row.try_get("channel")?,
                    outcome: row.try_get("outcome")?,
                    client_ip: row.try_get("client_ip")?,
                    user_agent: row.try_get("user_agent")?,
                    detail: row.try_get("detail")?,
                    country: row.try_get("country")?,
                    city: row.try_get("city")?,
                })
            }

            #[async_trait]
            impl LogStore for $store {
                async fn record_names(&self, owner: Uuid) -> Result<Vec<RecordName>> {
                    let rows = sqlx::query(
                        "SELECT uuid, name, kind, CAST(1 AS BIGINT) AS deleted \
                         FROM deleted_records WHERE owner_id = $1 \
                         UNION ALL SELECT uuid, name, kind, CAST(0 AS BIGINT) \
                         FROM records WHERE owner_id = $1 ORDER BY 4 DESC",
                    )
                    .bind(owner)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(RecordName {
                                uuid: row.try_get::<Uuid, _>("uuid")?,
                                name: row.try_get("name")?,
                                kind: row.try_get("kind")?,
                                deleted: row.try_get::<i64, _>("deleted")? == 1,
                            })
                        })
                        .collect()
                }

                async fn usage_summary(
                    &self,
                    owner: Uuid,
                    range: UsageRange,
                ) -> Result<Vec<RecordUsage>> {
                    // CAST keeps SUM an integer on PostgreSQL (it widens bigint to numeric).
                    let rows = sqlx::query(
                        "SELECT record_uuid, \
                         CAST(SUM(requests) AS BIGINT) AS requests, \
                         CAST(SUM(denied) AS BIGINT) AS denied, \
                         CAST(SUM(limited) AS BIGINT) AS limited, \
                         CAST(SUM(gone) AS BIGINT) AS gone, \
                         CAST(SUM(invalid) AS BIGINT) AS invalid, \
                         CAST(SUM(upstream_4xx) AS BIGINT) AS upstream_4xx, \
                         CAST(SUM(upstream_5xx) AS BIGINT) AS upstream_5xx, \
                         CAST(SUM(bytes) AS BIGINT) AS bytes, \
                         CAST(SUM(lat_0) AS BIGINT) AS lat_0, CAST(SUM(lat_1) AS BIGINT) AS lat_1, \
                         CAST(SUM(lat_2) AS BIGINT) AS lat_2, CAST(SUM(lat_3) AS BIGINT) AS lat_3, \
                         CAST(SUM(lat_4) AS BIGINT) AS lat_4, CAST(SUM(lat_5) AS BIGINT) AS lat_5, \
                         CAST(SUM(lat_6) AS BIGINT) AS lat_6, CAST(SUM(lat_7) AS BIGINT) AS lat_7, \
                         CAST(SUM(lat_8) AS BIGINT) AS lat_8, CAST(SUM(lat_9) AS BIGINT) AS lat_9, \
                         CAST(SUM(lat_10) AS BIGINT) AS lat_10, \
                         CAST(SUM(lat_11) AS BIGINT) AS lat_11, \
                         MAX(last_at) AS last_at \
                         FROM usage_rollups \
                         WHERE owner_id = $1 AND span = $2 AND start >= $3 AND start < $4 \
                         GROUP BY record_uuid",
                    )
                    .bind(owner)
                    .bind(range.span)
                    .bind(range.from)
                    .bind(range.to)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(RecordUsage {
                                record: row.try_get::<Uuid, _>("record_uuid")?,
                                counts: counts(row)?,
                                last_at: crate::sql::opt_time(row.try_get("last_at")?)?,
                            })
                        })
                        .collect()
                }

                async fn usage_series(
                    &self,
                    owner: Uuid,
                    record: Option<Uuid>,
                    range: UsageRange,
                    bucket: i64,
                ) -> Result<Vec<SeriesPoint>> {
                    let rows = sqlx::query(
                        "SELECT record_uuid, (start / $5) * $5 AS bucket, \
                         CAST(SUM(requests) AS BIGINT) AS requests, \
                         CAST(SUM(denied + limited + gone + invalid + upstream_4xx \
                              + upstream_5xx) AS BIGINT) AS errors \
                         FROM usage_rollups \
                         WHERE owner_id = $1 AND span = $2 AND start >= $3 AND start < $4 \
                         AND ($6 IS NULL OR record_uuid = $6) \
                         GROUP BY record_uuid, (start / $5) * $5 ORDER BY 2",
                    )
                    .bind(owner)
                    .bind(range.span)
                    .bind(range.from)
                    .bind(range.to)
                    .bind(bucket)
                    .bind(record)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(SeriesPoint {
                                record: row.try_get::<Uuid, _>("record_uuid")?,
                                start: row.try_get("bucket")?,
                                requests: row.try_get("requests")?,
                                errors: row.try_get("errors")?,
                            })
                        })
                        .collect()
                }

                async fn owner_events(
                    &self,
                    owner: Uuid,
                    limit: u32,
                    filter: &EventFilter<'_>,
                ) -> Result<Vec<AuditEvent>> {
                    let text = filter.text.map(crate::sql::like_pattern);
                    let rows = sqlx::query(
                        "SELECT id, record_uuid, at, channel, outcome, client_ip, user_agent, \
                         detail, country, city FROM audit_events \
                         WHERE owner_id = $1 AND id < $2 \
                         AND ($3 IS NULL OR channel = $3) AND ($4 IS NULL OR outcome = $4) \
                         AND ($5 IS NULL OR client_ip = $5) \
                         AND ($6 IS NULL OR LOWER(COALESCE(user_agent, '')) LIKE $6 ESCAPE '\\' \
                              OR LOWER(COALESCE(detail, '')) LIKE $6 ESCAPE '\\') \
                         AND ($7 IS NULL OR at >= $7) AND ($8 IS NULL OR at < $8) \
                         ORDER BY id DESC LIMIT $9",
                    )
                    .bind(owner)
                    .bind(filter.before.unwrap_or(i64::MAX))
                    .bind(filter.channel)
                    .bind(filter.outcome)
                    .bind(filter.client_ip)
                    .bind(text)
                    .bind(filter.from.map(to_ms))
                    .bind(filter.to.map(to_ms))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(event).collect()
                }

                async fn deleted_records(&self, owner: Uuid) -> Result<Vec<DeletedRecord>> {
                    let rows = sqlx::query(
                        "SELECT uuid, name, kind, deleted_at FROM deleted_records \
                         WHERE owner_id = $1 ORDER BY deleted_at DESC",
                    )
                    .bind(owner)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(DeletedRecord {
                                uuid: row.try_get::<Uuid, _>("uuid")?,
                                name: row.try_get("name")?,
                                kind: row.try_get("kind")?,
                                deleted_at: from_ms(row.try_get("deleted_at")?)?,
                            })
                        })
                        .collect()
                }

                async fn delete_rollups_before(
                    &self,
                    span: i64,
                    cutoff: i64,
                    limit: u32,
                ) -> Result<u64> {
                    let done = sqlx::query(
                        "DELETE FROM usage_rollups WHERE (record_uuid, span, start) IN \
                         (SELECT record_uuid, span, start FROM usage_rollups \
                          WHERE span = $1 AND start < $2 LIMIT $3)",
                    )
                    .bind(span)
                    .bind(cutoff)
                    .bind(i64::from(limit))
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }

                async fn delete_successes_before(
                    &self,
                    cutoff: OffsetDateTime,
                    limit: u32,
                ) -> Result<u64> {
                    let done = sqlx::query(
                        "DELETE FROM audit_events WHERE id IN \
                         (SELECT id FROM audit_events WHERE at < $1 \
                          AND outcome IN ('ok', 'opened') \
                          AND channel IN ('read', 'password', 'batch', 'bridge', 'secure_page') \
                          ORDER BY id LIMIT $2)",
                    )
                    .bind(to_ms(cutoff))
                    .bind(i64::from(limit))
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }

                async fn delete_tombstones_before(&self, cutoff: OffsetDateTime) -> Result<u64> {
                    let done = sqlx::query("DELETE FROM deleted_records WHERE deleted_at < $1")
                        .bind(to_ms(cutoff))
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                }
            }
        }
    };
}

pub(crate) use impl_log_store;
