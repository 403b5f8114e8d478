//! The PostgreSQL backend, for several brine nodes sharing one database.
//!
//! Nothing is cached in the node: every request reads the database, so a rotation, deletion or
//! logout committed by one node is seen by every other node on its very next request.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use std::collections::HashMap;

use uuid::Uuid;

use crate::sql::impl_sql_store;
use crate::time_ms::to_ms;
use crate::usage::{RollupBatch, tally};
use crate::{Appended, NewAuditEvent, Result, Settle};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Whether the audit writes keep the usage roll-ups.
    rollups: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// One settle per event, as applying `settles` in order would leave it: one UPDATE over arrays
/// applies only one of several rows that match the same event, and does not say which.
fn folded<'a>(settles: &[Settle<'a>]) -> Vec<Settle<'a>> {
    let mut out: Vec<Settle<'a>> = Vec::with_capacity(settles.len());
    for s in settles {
        match out.iter_mut().find(|o| o.id == s.id) {
            Some(o) => {
                o.outcome = s.outcome;
                o.detail = s.detail.or(o.detail);
            }
            None => out.push(*s),
        }
    }
    out
}

/// A settled event: owner, record, time, channel, then outcome and detail before and after.
type SettledRow = (
    Uuid,
    Uuid,
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
);

/// Adds a group's roll-up changes in one statement over arrays (rows in key order, so that
/// nodes writing the same rows lock them in the same order).
async fn write_rollups(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    rollups: &RollupBatch,
) -> Result<()> {
    let rows: Vec<_> = rollups.rows().collect();
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: &dyn Fn(&crate::usage::RollupDelta) -> i64| -> Vec<i64> {
        rows.iter().map(|(_, d)| f(d)).collect()
    };
    let latency: Vec<Vec<i64>> = (0..crate::usage::LATENCY_BUCKETS)
        .map(|bucket| column(&|d| d.counts.latency[bucket]))
        .collect();
    sqlx::query(
        "INSERT INTO usage_rollups AS u (record_uuid, span, start, owner_id, requests, denied, \
         limited, gone, invalid, upstream_4xx, upstream_5xx, bytes, lat_0, lat_1, lat_2, lat_3, \
         lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11, last_at, last_ok_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::uuid[], $5::bigint[], \
         $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], \
         $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], \
         $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[], \
         $22::bigint[], $23::bigint[], $24::bigint[], $25::bigint[], $26::bigint[]) \
         ON CONFLICT (record_uuid, span, start) DO UPDATE SET \
         requests = u.requests + excluded.requests, denied = u.denied + excluded.denied, \
         limited = u.limited + excluded.limited, gone = u.gone + excluded.gone, \
         invalid = u.invalid + excluded.invalid, \
         upstream_4xx = u.upstream_4xx + excluded.upstream_4xx, \
         upstream_5xx = u.upstream_5xx + excluded.upstream_5xx, \
         bytes = u.bytes + excluded.bytes, \
         lat_0 = u.lat_0 + excluded.lat_0, lat_1 = u.lat_1 + excluded.lat_1, \
         lat_2 = u.lat_2 + excluded.lat_2, lat_3 = u.lat_3 + excluded.lat_3, \
         lat_4 = u.lat_4 + excluded.lat_4, lat_5 = u.lat_5 + excluded.lat_5, \
         lat_6 = u.lat_6 + excluded.lat_6, lat_7 = u.lat_7 + excluded.lat_7, \
         lat_8 = u.lat_8 + excluded.lat_8, lat_9 = u.lat_9 + excluded.lat_9, \
         lat_10 = u.lat_10 + excluded.lat_10, lat_11 = u.lat_11 + excluded.lat_11, \
         last_at = GREATEST(u.last_at, excluded.last_at), \
         last_ok_at = GREATEST(u.last_ok_at, excluded.last_ok_at)",
    )
    .bind(rows.iter().map(|(k, _)| k.record).collect::<Vec<_>>())
    .bind(rows.iter().map(|(k, _)| k.span).collect::<Vec<_>>())
    .bind(rows.iter().map(|(k, _)| k.start).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, d)| d.owner).collect::<Vec<_>>())
    .bind(column(&|d| d.counts.requests))
    .bind(column(&|d| d.counts.denied))
    .bind(column(&|d| d.counts.limited))
    .bind(column(&|d| d.counts.gone))
    .bind(column(&|d| d.counts.invalid))
    .bind(column(&|d| d.counts.upstream_4xx))
    .bind(column(&|d| d.counts.upstream_5xx))
    .bind(column(&|d| d.counts.bytes))
    .bind(&latency[0])
    .bind(&latency[1])
    .bind(&latency[2])
    .bind(&latency[3])
    .bind(&latency[4])
    .bind(&latency[5])
    .bind(&latency[6])
    .bind(&latency[7])
    .bind(&latency[8])
    .bind(&latency[9])
    .bind(&latency[10])
    .bind(&latency[11])
    .bind(rows.iter().map(|(_, d)| d.last_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, d)| d.last_ok_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl PgStore {
    /// Connects and applies pending migrations. sqlx holds a PostgreSQL advisory lock while it
    /// migrates, so nodes starting together apply each migration exactly once.
    pub async fn connect(url: &str) -> Result<Self> {
        let store = Self::connect_without_migrating(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without touching the schema (for `brine migrate` and tools).
    pub async fn connect_without_migrating(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("brine");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A connection not free (or not made) in 5 s means PostgreSQL is down or the node
            // overloaded: answer 503 rather than pile requests up behind a longer wait.
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            rollups: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        })
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// A group of events in one transaction and a fixed number of round trips, however large
    /// the group: the records' versions, ids for the new events, the settles and the inserts
    /// each in one statement over arrays.
    async fn write_events(
        &self,
        events: &[NewAuditEvent<'_>],
        settles: &[Settle<'_>],
    ) -> Result<Vec<Appended>> {
        let mut tx = self.pool.begin().await?;
        let uuids: Vec<Uuid> = events.iter().map(|e| e.record).collect();
        // Each record's version and owner.
        let records: HashMap<Uuid, (i64, Uuid)> = if events.is_empty() {
            HashMap::new()
        } else {
            sqlx::query_as::<_, (Uuid, i64, Uuid)>(
                "SELECT uuid, version, owner_id FROM records WHERE uuid = ANY($1)",
            )
            .bind(&uuids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(uuid, version, owner)| (uuid, (version, owner)))
            .collect()
        };
        let mut rollups = RollupBatch::default();
        if !settles.is_empty() {
            let settles = folded(settles);
            let ids: Vec<i64> = settles.iter().map(|s| s.id).collect();
            let outcomes: Vec<&str> = settles.iter().map(|s| s.outcome).collect();
            let details: Vec<Option<&str>> = settles.iter().map(|s| s.detail).collect();
            // The events before and after, for the difference the settles make to the
            // roll-ups: every part of one statement sees the table as it was before it.
            let changed: Vec<SettledRow> = sqlx::query_as(
                "WITH s AS (SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[]) \
                 AS s(id, outcome, detail)), \
                 old AS (SELECT e.id, e.outcome, e.detail FROM audit_events e \
                 JOIN s ON e.id = s.id) \
                 UPDATE audit_events AS e SET outcome = s.outcome, \
                 detail = COALESCE(s.detail, e.detail) FROM s, old \
                 WHERE e.id = s.id AND old.id = s.id \
                 RETURNING e.owner_id, e.record_uuid, e.at, e.channel, old.outcome, \
                 old.detail, e.outcome, e.detail",
            )
            .bind(&ids)
            .bind(&outcomes)
            .bind(&details)
            .fetch_all(&mut *tx)
            .await?;
            for (owner, record, at, channel, before, before_detail, after, after_detail) in changed
            {
                rollups.change(
                    owner,
                    record,
                    at,
                    tally(&channel, &before, before_detail.as_deref()),
                    tally(&channel, &after, after_detail.as_deref()),
                );
            }
        }
        let fresh: Vec<(&NewAuditEvent<'_>, Uuid)> = events
            .iter()
            .filter_map(|e| match (records.get(&e.record), e.expect_version) {
                (Some((_, owner)), None) => Some((e, *owner)),
                (Some((now, owner)), Some(expected)) if *now == expected => Some((e, *owner)),
                _ => None,
            })
            .collect();
        // Ids are taken first, so that each event's id is known without relying on the order
        // in which an INSERT returns rows.
        let ids: Vec<i64> = if fresh.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "SELECT nextval(pg_get_serial_sequence('audit_events', 'id')) \
                 FROM generate_series(1, $1)",
            )
            .bind(fresh.len() as i64)
            .fetch_all(&mut *tx)
            .await?
        };
        if !fresh.is_empty() {
            sqlx::query(
                "INSERT INTO audit_events \
                 (id, owner_id, record_uuid, at, channel, outcome, client_ip, user_agent, detail, \
                  country, city) \
                 OVERRIDING SYSTEM VALUE \
                 SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::bigint[], \
                 $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
                 $11::text[])",
            )
            .bind(&ids)
            .bind(fresh.iter().map(|(_, owner)| *owner).collect::<Vec<_>>())
            .bind(fresh.iter().map(|(e, _)| e.record).collect::<Vec<_>>())
            .bind(fresh.iter().map(|(e, _)| to_ms(e.at)).collect::<Vec<_>>())
            .bind(fresh.iter().map(|(e, _)| e.channel).collect::<Vec<_>>())
            .bind(fresh.iter().map(|(e, _)| e.outcome).collect::<Vec<_>>())
            .bind(fresh.iter().map(|(e, _)| e.client_ip).collect::<Vec<_>>())
            .bind(fresh.iter().map(|(e, _)| e.user_agent).collect::<Vec<_>>())
            .bind(fresh.iter().map(|(e, _)| e.detail).collect::<Vec<_>>())
            .bind(fresh.iter().map(|(e, _)| e.country).collect::<Vec<_>>())
            .bind(fresh.iter().map(|(e, _)| e.city).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
            for (e, owner) in &fresh {
                rollups.change(
                    *owner,
                    e.record,
                    to_ms(e.at),
                    None,
                    tally(e.channel, e.outcome, e.detail),
                );
            }
        }
        if self.rollups.load(std::sync::atomic::Ordering::Relaxed) {
            write_rollups(&mut tx, &rollups).await?;
        }
        tx.commit().await?;
        let mut ids = ids.into_iter();
        Ok(events
            .iter()
            .map(|e| {
                let stored = fresh.iter().any(|(f, _)| std::ptr::eq(*f, e));
                match stored.then(|| ids.next()).flatten() {
                    Some(id) => Appended::Stored(id),
                    None => Appended::Stale,
                }
            })
            .collect())
    }

    async fn close_writer(&self) {}
}

impl_sql_store!(PgStore, Postgres, PgRow);
crate::accounts::impl_account_store!(PgStore, PgRow);
crate::webhooks::impl_webhook_store!(PgStore, PgRow);
crate::handoffs::impl_handoff_store!(PgStore, PgRow);
crate::logs::impl_log_store!(PgStore, PgRow);
crate::key_versions::impl_key_version_store!(PgStore, PgRow);
crate::tokens::impl_token_store!(PgStore, PgRow);
crate::intake::impl_intake_store!(PgStore, PgRow);
