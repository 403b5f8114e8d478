//! Audit retention: events older than `audit_retention_days` are deleted, at start and then
//! every hour, in small batches so that the audit writer is never held up for long.

use std::sync::{Arc, Weak};
use std::time::Duration;

use brine_store::Store;

use crate::clock::now_ms;

const EVERY: Duration = Duration::from_secs(3600);
const BATCH: u32 = 5_000;

/// Starts the sweep; it stops by itself once the server has let go of its store.
pub fn start(store: &Arc<dyn Store>, days: u32) {
    let store = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            ticks.tick().await;
            if !sweep(&store, days).await {
                break;
            }
        }
    });
}

/// One pass; `false` when the store is gone.
async fn sweep(store: &Weak<dyn Store>, days: u32) -> bool {
    let cutoff = now_ms() - time::Duration::days(i64::from(days));
    let mut deleted = 0u64;
    loop {
        let Some(store) = store.upgrade() else {
            return false;
        };
        match store.delete_events_before(cutoff, BATCH).await {
            Ok(n) => {
                deleted += n;
                if n < u64::from(BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot delete audit events past their retention");
                break;
            }
        }
        // Let requests' own writes in between batches.
        tokio::task::yield_now().await;
    }
    if deleted > 0 {
        tracing::info!(deleted, days, "audit events past their retention deleted");
    }
    true
}
