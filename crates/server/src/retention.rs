//! Retention of the audit log, at start and then every hour, in small batches so that the audit
//! writer is never held up for long. Three tiers (docs/logs.md has the arithmetic):
//!
//! - successful requests' events (reads, bridge calls, page loads) after
//!   `audit_success_retention_hours`, when set: their counts stay in the roll-ups;
//! - minute roll-ups after 48 hours (the hour roll-ups hold the same sums);
//! - every other event, hour roll-ups and deleted records' names after `audit_retention_days`,
//!   when set.

use std::sync::{Arc, Weak};
use std::time::Duration;

use brine_store::Store;
use brine_store::usage::{HOUR, MINUTE};

use crate::clock::now_ms;
use crate::owner::logs::MINUTE_ROLLUPS_KEPT;

const EVERY: Duration = Duration::from_secs(3600);
const BATCH: u32 = 5_000;

/// How long each tier is kept; `None` keeps it for good.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub days: Option<u32>,
    pub success_hours: Option<u32>,
}

/// Starts the sweep; it stops by itself once the server has let go of its store.
pub fn start(store: &Arc<dyn Store>, retention: Retention) {
    let store = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            ticks.tick().await;
            if !sweep(&store, retention).await {
                break;
            }
        }
    });
}

/// One pass; `false` when the store is gone.
async fn sweep(store: &Weak<dyn Store>, retention: Retention) -> bool {
    let now = now_ms();
    let ms = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    let minute_cutoff = ms(now - MINUTE_ROLLUPS_KEPT);
    let mut alive = drain(store, "minute roll-ups", |s| {
        Box::pin(async move { s.delete_rollups_before(MINUTE, minute_cutoff, BATCH).await })
    })
    .await;
    if let Some(hours) = retention.success_hours {
        let cutoff = now - time::Duration::hours(i64::from(hours));
        alive &= drain(store, "successful requests' events", |s| {
            Box::pin(async move { s.delete_successes_before(cutoff, BATCH).await })
        })
        .await;
    }
    if let Some(days) = retention.days {
        let cutoff = now - time::Duration::days(i64::from(days));
        alive &= drain(store, "audit events", |s| {
            Box::pin(async move { s.delete_events_before(cutoff, BATCH).await })
        })
        .await;
        let hour_cutoff = ms(cutoff);
        alive &= drain(store, "hour roll-ups", |s| {
            Box::pin(async move { s.delete_rollups_before(HOUR, hour_cutoff, BATCH).await })
        })
        .await;
        if let Some(store) = store.upgrade()
            && let Err(e) = store.delete_tombstones_before(cutoff).await
        {
            tracing::error!(error = %e, "cannot forget deleted records past their retention");
        }
    }
    alive
}

type Deletion =
    std::pin::Pin<Box<dyn std::future::Future<Output = brine_store::Result<u64>> + Send + 'static>>;

/// Runs one kind of deletion in batches until a batch comes back short; `false` when the store
/// is gone.
async fn drain(
    store: &Weak<dyn Store>,
    what: &'static str,
    delete: impl Fn(Arc<dyn Store>) -> Deletion,
) -> bool {
    let mut deleted = 0u64;
    loop {
        let Some(store) = store.upgrade() else {
            return false;
        };
        match delete(store).await {
            Ok(n) => {
                deleted += n;
                if n < u64::from(BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, what, "cannot delete past their retention");
                break;
            }
        }
        // Let requests' own writes in between batches.
        tokio::task::yield_now().await;
    }
    if deleted > 0 {
        tracing::info!(deleted, what, "deleted past their retention");
    }
    true
}
