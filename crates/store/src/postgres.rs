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
use crate::{Appended, NewAuditEvent, Result, Settle};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
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
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
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
        let versions: HashMap<Uuid, i64> = if events.is_empty() {
            HashMap::new()
        } else {
            sqlx::query_as("SELECT uuid, version FROM records WHERE uuid = ANY($1)")
                .bind(&uuids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect()
        };
        if !settles.is_empty() {
            let settles = folded(settles);
            let ids: Vec<i64> = settles.iter().map(|s| s.id).collect();
            let outcomes: Vec<&str> = settles.iter().map(|s| s.outcome).collect();
            let details: Vec<Option<&str>> = settles.iter().map(|s| s.detail).collect();
            sqlx::query(
                "UPDATE audit_events AS e SET outcome = s.outcome, \
                 detail = COALESCE(s.detail, e.detail) \
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS s(id, outcome, detail) \
                 WHERE e.id = s.id",
            )
            .bind(&ids)
            .bind(&outcomes)
            .bind(&details)
            .execute(&mut *tx)
            .await?;
        }
        let fresh: Vec<&NewAuditEvent<'_>> = events
            .iter()
            .filter(|e| match (versions.get(&e.record), e.expect_version) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(now), Some(expected)) => *now == expected,
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
                 (id, record_uuid, at, channel, outcome, client_ip, user_agent, detail) \
                 OVERRIDING SYSTEM VALUE \
                 SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::bigint[], $4::text[], \
                 $5::text[], $6::text[], $7::text[], $8::text[])",
            )
            .bind(&ids)
            .bind(fresh.iter().map(|e| e.record).collect::<Vec<_>>())
            .bind(fresh.iter().map(|e| to_ms(e.at)).collect::<Vec<_>>())
            .bind(fresh.iter().map(|e| e.channel).collect::<Vec<_>>())
            .bind(fresh.iter().map(|e| e.outcome).collect::<Vec<_>>())
            .bind(fresh.iter().map(|e| e.client_ip).collect::<Vec<_>>())
            .bind(fresh.iter().map(|e| e.user_agent).collect::<Vec<_>>())
            .bind(fresh.iter().map(|e| e.detail).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let mut ids = ids.into_iter();
        Ok(events
            .iter()
            .map(|e| {
                let stored = fresh.iter().any(|f| std::ptr::eq(*f, e));
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
