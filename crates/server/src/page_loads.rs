//! Loads of a secure page's form, coalesced per client. Loading the form shows nothing secret and
//! is not an attempt to open the record, so a client that reloads it (or a bot that fetches it
//! in a loop) must not grow the audit table: its first load in a minute is stored as an `opened`
//! event, and further loads from the same client within that minute are counted in that event's
//! `detail.repeats`. Unlock attempts are never coalesced.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::audit::{AuditLog, Outcome};

/// How long one stored event collects the repeats of its client.
const WINDOW: Duration = Duration::from_secs(60);
/// How often counted repeats are written to their events.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Clients remembered at once; past this (a flood from very many addresses), loads are stored
/// one event each rather than letting this memory grow.
const MAX_ENTRIES: usize = 100_000;

type Key = (Uuid, Option<IpAddr>);

struct Entry {
    started: Instant,
    /// The stored event, once its id is known.
    event: Option<i64>,
    repeats: u64,
    written: u64,
}

#[derive(Clone, Default)]
pub struct PageLoads(Arc<Mutex<HashMap<Key, Entry>>>);

/// What to do with one load.
pub enum Load {
    /// Store a new `opened` event, then [`PageLoads::stored`] its id.
    Store,
    /// Counted in an event already stored (or being stored).
    Counted,
}

impl PageLoads {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes counted repeats to their events every second, for as long as this log exists.
    pub fn start_flushing(&self, audit: AuditLog) {
        let weak = Arc::downgrade(&self.0);
        tokio::spawn(flush_loop(weak, audit));
    }

    /// A load of `record`'s form by `client` (an address, or its IPv6 /64).
    pub fn load(&self, record: Uuid, client: Option<IpAddr>) -> Load {
        let now = Instant::now();
        let mut entries = self.lock();
        let full = entries.len() >= MAX_ENTRIES;
        match entries.get_mut(&(record, client)) {
            Some(entry) if now.duration_since(entry.started) < WINDOW => {
                entry.repeats += 1;
                Load::Counted
            }
            _ if full => Load::Store,
            _ => {
                entries.insert(
                    (record, client),
                    Entry {
                        started: now,
                        event: None,
                        repeats: 0,
                        written: 0,
                    },
                );
                Load::Store
            }
        }
    }

    /// The id of the event stored for a [`Load::Store`].
    pub fn stored(&self, record: Uuid, client: Option<IpAddr>, event: i64) {
        if let Some(entry) = self.lock().get_mut(&(record, client)) {
            entry.event = Some(event);
        }
    }

    /// Repeats not yet written, as (event, repeats); forgets entries whose window has passed
    /// once everything they counted is written.
    fn take_unwritten(&self) -> Vec<(i64, u64)> {
        let now = Instant::now();
        let mut out = Vec::new();
        self.lock().retain(|_, entry| {
            if let Some(event) = entry.event
                && entry.repeats > entry.written
            {
                out.push((event, entry.repeats));
                entry.written = entry.repeats;
            }
            let age = now.duration_since(entry.started);
            let settled = entry.event.is_some() && entry.written == entry.repeats;
            // An entry whose event was never stored (the write failed) goes after two windows.
            !((settled && age >= WINDOW) || age >= 2 * WINDOW)
        });
        out
    }
}

async fn flush_loop(entries: Weak<Mutex<HashMap<Key, Entry>>>, audit: AuditLog) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The server is gone once nothing else holds the log.
        let Some(entries) = entries.upgrade() else {
            return;
        };
        for (event, repeats) in PageLoads(entries).take_unwritten() {
            let detail = serde_json::json!({ "repeats": repeats }).to_string();
            audit.settle_now(event, Outcome::Opened, detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_from_one_client_are_counted_in_its_first_event() {
        let loads = PageLoads::default();
        let (page, other) = (Uuid::new_v4(), Uuid::new_v4());
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        assert!(matches!(loads.load(page, ip), Load::Store));
        // Repeats while the first event is still being stored count too.
        assert!(matches!(loads.load(page, ip), Load::Counted));
        loads.stored(page, ip, 7);
        for _ in 0..3 {
            assert!(matches!(loads.load(page, ip), Load::Counted));
        }
        assert!(matches!(loads.load(other, ip), Load::Store), "pages apart");
        assert!(matches!(
            loads.load(page, Some(IpAddr::from([192, 0, 2, 2]))),
            Load::Store
        ));
        assert_eq!(loads.take_unwritten(), [(7, 4)]);
        assert!(loads.take_unwritten().is_empty(), "written once");
        assert!(matches!(loads.load(page, ip), Load::Counted));
        assert_eq!(loads.take_unwritten(), [(7, 5)]);
    }
}
