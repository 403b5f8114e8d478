//! Webhooks: each record's webhook (its URL and signing secret arrive sealed), the marks that
//! decide "first" conditions once across nodes, and the durable delivery queue. The SQL is the
//! same on both engines, stamped out for each like [`crate::sql`].

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// A record's webhook. `url` and `secret` are sealed by the server; nothing here is plaintext.
#[derive(Clone)]
pub struct Webhook {
    pub record: Uuid,
    pub url: Vec<u8>,
    /// The master-key version whose webhook subkey sealed `url`.
    pub url_key_version: i64,
    pub secret: Vec<u8>,
    /// The master-key version whose webhook subkey sealed `secret`.
    pub secret_key_version: i64,
    /// Event types, comma-separated.
    pub events: String,
    pub burst_threshold: i64,
    pub burst_window_secs: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What a node keeps in memory to know which events to look at (nothing sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookWatch {
    pub record: Uuid,
    pub events: String,
    pub burst_threshold: i64,
    pub burst_window_secs: i64,
}

/// A delivery to queue.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub event_id: Uuid,
    pub record: Uuid,
    pub event_type: &'a str,
    /// The JSON body, as it will be signed and sent.
    pub payload: &'a str,
    pub created_at: OffsetDateTime,
}

/// A delivery this node has claimed and now sends.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub event_id: Uuid,
    pub record: Uuid,
    pub event_type: String,
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryEnd<'a> {
    Delivered {
        status: i64,
    },
    /// Try again at `at`.
    Retry {
        at: OffsetDateTime,
        status: Option<i64>,
        error: &'a str,
    },
    /// No attempts left.
    GaveUp {
        status: Option<i64>,
        error: &'a str,
    },
}

/// A queued or finished delivery, as the owner sees it (no payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub event_id: Uuid,
    pub event_type: String,
    pub state: String,
    pub attempts: i64,
    pub created_at: OffsetDateTime,
    pub next_attempt_at: OffsetDateTime,
    pub last_status: Option<i64>,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Sets the record's webhook, replacing any earlier one (its pending deliveries stay queued
    /// and go to the new URL).
    async fn put_webhook(&self, hook: &Webhook) -> Result<()>;
    async fn webhook(&self, record: Uuid) -> Result<Option<Webhook>>;
    /// Deletes the webhook and its queued deliveries; returns whether there was one.
    async fn delete_webhook(&self, record: Uuid) -> Result<bool>;
    /// Replaces the sealed signing secret (sealed under master-key version `key_version`);
    /// returns whether there was a webhook.
    async fn set_webhook_secret(
        &self,
        record: Uuid,
        secret: &[u8],
        key_version: i64,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Every webhook's record and events (for each node's copy in memory).
    async fn webhook_watches(&self) -> Result<Vec<WebhookWatch>>;
    /// Adds the mark unless it exists; returns whether this call added it (on any node, one
    /// call wins).
    async fn take_webhook_mark(&self, record: Uuid, kind: &str, mark: i64) -> Result<bool>;
    /// The record's events with one of `outcomes` since `since`.
    async fn count_events_since(
        &self,
        record: Uuid,
        outcomes: [&str; 2],
        since: OffsetDateTime,
    ) -> Result<i64>;
    /// Queues a delivery, due at once. Returns false when the record has no webhook (any more).
    async fn enqueue_delivery(&self, delivery: &NewDelivery<'_>) -> Result<bool>;
    /// Claims up to `limit` pending deliveries due at `now` for `claim`, pushing each one's
    /// next attempt to `lease_until` (so no other node takes it meanwhile) and counting the
    /// attempt.
    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        claim: Uuid,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>>;
    /// Records how a claimed attempt ended; false when the claim was lost (the lease ran out
    /// and another node took the delivery, or the webhook was deleted).
    async fn finish_delivery(
        &self,
        id: i64,
        claim: Uuid,
        end: DeliveryEnd<'_>,
        now: OffsetDateTime,
    ) -> Result<bool>;
    /// The record's newest deliveries, newest first.
    async fn deliveries(&self, record: Uuid, limit: u32) -> Result<Vec<DeliveryRow>>;
    /// Deletes finished deliveries that ended before `before`; returns how many.
    async fn prune_deliveries(&self, before: OffsetDateTime) -> Result<u64>;
}

/// Implements [`WebhookStore`] for `$store` (holding `pool`), with rows of type `$row`.
macro_rules! impl_webhook_store {
    ($store:ty, $row:ty) => {
        mod webhook_sql {
            use async_trait::async_trait;
            use sqlx::Row;
            use time::OffsetDateTime;
            use uuid::Uuid;

            use super::*;
            use crate::time_ms::{from_ms, to_ms};
            use crate::webhooks::{
                ClaimedDelivery, DeliveryEnd, DeliveryRow, NewDelivery, Webhook, WebhookStore,
                WebhookWatch,
            };
            use crate::Result;

            #[async_trait]
            impl WebhookStore for $store {
                async fn put_webhook(&self, hook: &Webhook) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO webhooks (record_uuid, url, secret, events, burst_threshold, \
                         burst_window_secs, created_at, updated_at, url_key_version, \
                         secret_key_version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (record_uuid) DO UPDATE SET url = excluded.url, \
                         secret = excluded.secret, events = excluded.events, \
                         url_key_version = excluded.url_key_version, \
                         secret_key_version = excluded.secret_key_version, \
                         burst_threshold = excluded.burst_threshold, \
                         burst_window_secs = excluded.burst_window_secs, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(hook.record)
                    .bind(&hook.url)
                    .bind(&hook.secret)
                    .bind(&hook.events)
                    .bind(hook.burst_threshold)
                    .bind(hook.burst_window_secs)
                    .bind(to_ms(hook.created_at))
                    .bind(to_ms(hook.updated_at))
                    .bind(hook.url_key_version)
                    .bind(hook.secret_key_version)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn webhook(&self, record: Uuid) -> Result<Option<Webhook>> {
                    let row = sqlx::query(
                        "SELECT record_uuid, url, secret, events, burst_threshold, \
                         burst_window_secs, created_at, updated_at, url_key_version, \
                         secret_key_version FROM webhooks \
                         WHERE record_uuid = $1",
                    )
                    .bind(record)
                    .fetch_optional(&self.pool)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    Ok(Some(Webhook {
                        record: row.try_get("record_uuid")?,
                        url: row.try_get("url")?,
                        url_key_version: row.try_get("url_key_version")?,
                        secret: row.try_get("secret")?,
                        secret_key_version: row.try_get("secret_key_version")?,
                        events: row.try_get("events")?,
                        burst_threshold: row.try_get("burst_threshold")?,
                        burst_window_secs: row.try_get("burst_window_secs")?,
                        created_at: from_ms(row.try_get("created_at")?)?,
                        updated_at: from_ms(row.try_get("updated_at")?)?,
                    }))
                }

                async fn delete_webhook(&self, record: Uuid) -> Result<bool> {
                    let done = sqlx::query("DELETE FROM webhooks WHERE record_uuid = $1")
                        .bind(record)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn set_webhook_secret(
                    &self,
                    record: Uuid,
                    secret: &[u8],
                    key_version: i64,
                    at: OffsetDateTime,
                ) -> Result<bool> {
                    let done = sqlx::query(
                        "UPDATE webhooks SET secret = $1, secret_key_version = $2, \
                         updated_at = $3 WHERE record_uuid = $4",
                    )
                    .bind(secret)
                    .bind(key_version)
                    .bind(to_ms(at))
                    .bind(record)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn webhook_watches(&self) -> Result<Vec<WebhookWatch>> {
                    let rows = sqlx::query(
                        "SELECT record_uuid, events, burst_threshold, burst_window_secs \
                         FROM webhooks",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(WebhookWatch {
                                record: row.try_get("record_uuid")?,
                                events: row.try_get("events")?,
                                burst_threshold: row.try_get("burst_threshold")?,
                                burst_window_secs: row.try_get("burst_window_secs")?,
                            })
                        })
                        .collect()
                }

                async fn take_webhook_mark(&self, record: Uuid, kind: &str, mark: i64) -> Result<bool> {
                    let done = sqlx::query(
                        "INSERT INTO webhook_marks (record_uuid, kind, mark) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(record)
                    .bind(kind)
                    .bind(mark)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn count_events_since(
                    &self,
                    record: Uuid,
                    outcomes: [&str; 2],
                    since: OffsetDateTime,
                ) -> Result<i64> {
                    let count: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM audit_events WHERE record_uuid = $1 \
                         AND outcome IN ($2, $3) AND at >= $4",
                    )
                    .bind(record)
                    .bind(outcomes[0])
                    .bind(outcomes[1])
                    .bind(to_ms(since))
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(count)
                }

                async fn enqueue_delivery(&self, d: &NewDelivery<'_>) -> Result<bool> {
                    // Through a SELECT on webhooks: a webhook deleted meanwhile queues nothing.
                    let done = sqlx::query(
                        "INSERT INTO webhook_deliveries (event_id, record_uuid, event_type, \
                         payload, created_at, state, attempts, next_attempt_at) \
                         SELECT $1, record_uuid, $2, $3, $4, 'pending', 0, $4 FROM webhooks \
                         WHERE record_uuid = $5",
                    )
                    .bind(d.event_id)
                    .bind(d.event_type)
                    .bind(d.payload)
                    .bind(to_ms(d.created_at))
                    .bind(d.record)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn claim_deliveries(
                    &self,
                    now: OffsetDateTime,
                    lease_until: OffsetDateTime,
                    claim: Uuid,
                    limit: u32,
                ) -> Result<Vec<ClaimedDelivery>> {
                    // The outer WHERE repeats the inner one: on PostgreSQL, a node that waited
                    // for another's row lock checks it again on the updated row and skips a
                    // delivery claimed meanwhile. SQLite has one writer at a time.
                    let rows = sqlx::query(
                        "UPDATE webhook_deliveries SET claim = $1, next_attempt_at = $2, \
                         attempts = attempts + 1 \
                         WHERE id IN (SELECT id FROM webhook_deliveries \
                           WHERE state = 'pending' AND next_attempt_at <= $3 \
                           ORDER BY next_attempt_at LIMIT $4) \
                         AND state = 'pending' AND next_attempt_at <= $3 \
                         RETURNING id, event_id, record_uuid, event_type, payload, attempts",
                    )
                    .bind(claim)
                    .bind(to_ms(lease_until))
                    .bind(to_ms(now))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(ClaimedDelivery {
                                id: row.try_get("id")?,
                                event_id: row.try_get("event_id")?,
                                record: row.try_get("record_uuid")?,
                                event_type: row.try_get("event_type")?,
                                payload: row.try_get("payload")?,
                                attempts: row.try_get("attempts")?,
                            })
                        })
                        .collect()
                }

                async fn finish_delivery(
                    &self,
                    id: i64,
                    claim: Uuid,
                    end: DeliveryEnd<'_>,
                    now: OffsetDateTime,
                ) -> Result<bool> {
                    let (state, next, status, error, done_at) = match end {
                        DeliveryEnd::Delivered { status } => {
                            ("delivered", now, Some(status), None, Some(to_ms(now)))
                        }
                        DeliveryEnd::Retry { at, status, error } => {
                            ("pending", at, status, Some(error), None)
                        }
                        DeliveryEnd::GaveUp { status, error } => {
                            ("failed", now, status, Some(error), Some(to_ms(now)))
                        }
                    };
                    let done = sqlx::query(
                        "UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, \
                         last_status = $3, last_error = $4, done_at = $5, claim = NULL \
                         WHERE id = $6 AND claim = $7",
                    )
                    .bind(state)
                    .bind(to_ms(next))
                    .bind(status)
                    .bind(error)
                    .bind(done_at)
                    .bind(id)
                    .bind(claim)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn deliveries(&self, record: Uuid, limit: u32) -> Result<Vec<DeliveryRow>> {
                    let rows = sqlx::query(
                        "SELECT event_id, event_type, state, attempts, created_at, \
                         next_attempt_at, last_status FROM webhook_deliveries \
                         WHERE record_uuid = $1 ORDER BY id DESC LIMIT $2",
                    )
                    .bind(record)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(DeliveryRow {
                                event_id: row.try_get("event_id")?,
                                event_type: row.try_get("event_type")?,
                                state: row.try_get("state")?,
                                attempts: row.try_get("attempts")?,
                                created_at: from_ms(row.try_get("created_at")?)?,
                                next_attempt_at: from_ms(row.try_get("next_attempt_at")?)?,
                                last_status: row.try_get("last_status")?,
                            })
                        })
                        .collect()
                }

                async fn prune_deliveries(&self, before: OffsetDateTime) -> Result<u64> {
                    let done = sqlx::query(
                        "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND done_at < $1",
                    )
                    .bind(to_ms(before))
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }
            }
        }
    };
}

pub(crate) use impl_webhook_store;
