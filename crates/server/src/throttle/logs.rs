//! What the limits remember about trouble: outages of the shared store (so that a store that
//! just failed is not asked again by every request, and the logs stay readable) and recent
//! refusals (so that a flood of them does not flood the audit log).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use super::FailMode;

/// The shared store's state. After a failure, requests skip the store for a second (each would
/// otherwise wait for its own failed connection attempt) and then one probes it again. Failures
/// are logged loudly but boundedly: the first at once, then at most one line every ten seconds
/// while the outage lasts, and one line when it ends.
#[derive(Default)]
pub struct Outage {
    down: AtomicBool,
    /// Unix milliseconds before which the store is not asked.
    resting_until_ms: AtomicU64,
    last_logged_secs: AtomicU64,
    unlogged: AtomicU64,
}

const REST_MS: u64 = 1_000;

impl Outage {
    /// Whether to skip the store: it failed less than a second ago.
    pub fn resting(&self) -> bool {
        self.down.load(Ordering::Relaxed)
            && unix_ms() < self.resting_until_ms.load(Ordering::Relaxed)
    }

    /// A request could not use the store: it failed with `error`, or it was resting (`None`).
    pub fn failed(&self, error: Option<&brine_limits::LimitError>, fail: FailMode) {
        if error.is_some() {
            self.resting_until_ms
                .store(unix_ms() + REST_MS, Ordering::Relaxed);
        }
        let now = unix_secs();
        let first = !self.down.swap(true, Ordering::Relaxed);
        let last = self.last_logged_secs.load(Ordering::Relaxed);
        if first || now >= last + 10 {
            self.last_logged_secs.store(now, Ordering::Relaxed);
            let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
            tracing::error!(
                error = error.map_or_else(|| "not answering".to_owned(), ToString::to_string),
                failing = ?fail,
                failures_since_last_report = unlogged,
                "SHARED RATE LIMITS UNAVAILABLE: fail-closed records answer 503, fail-open records \
                 are limited by this node alone"
            );
        } else {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn recovered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::warn!("shared rate limits are available again");
        }
    }
}

/// Node-local memory of recent refusals per record and client, for [`Limits::audit_refusal`].
#[derive(Default)]
pub struct RefusalLog(Mutex<Refusals>);

#[derive(Default)]
struct Refusals {
    /// The second of the last audited refusal, and how many have not been audited since.
    last: HashMap<(Uuid, Option<IpAddr>), (u64, u64)>,
    /// Forget old entries once the map grows beyond this (doubling, so sweeps stay rare).
    sweep_above: usize,
}

impl RefusalLog {
    /// `Some(refusals not logged since the last logged one)` when this one should be logged.
    pub fn admit(&self, record: Uuid, client: Option<IpAddr>) -> Option<u64> {
        let now = unix_secs();
        let mut refusals = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if refusals.last.len() > refusals.sweep_above.max(4096) {
            refusals.last.retain(|_, (second, _)| *second + 1 >= now);
            refusals.sweep_above = refusals.last.len() * 2;
        }
        let entry = refusals.last.entry((record, client)).or_insert((0, 0));
        if entry.0 == now {
            entry.1 += 1;
            return None;
        }
        let unlogged = entry.1;
        *entry = (now, 0);
        Some(unlogged)
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_is_audited_once_a_second() {
        let log = RefusalLog::default();
        let id = Uuid::new_v4();
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        assert_eq!(log.admit(id, ip), Some(0));
        // Within the same second, the rest are counted, not logged (unless the clock ticked).
        let logged = (0..100).filter(|_| log.admit(id, ip).is_some()).count();
        assert!(logged <= 1, "{logged}");
        assert_eq!(log.admit(Uuid::new_v4(), ip), Some(0), "records apart");
    }
}
