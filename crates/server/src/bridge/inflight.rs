//! Bounds the upstream calls in flight through each bridge on this node, so that one busy or
//! abused bridge cannot take every connection and worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use uuid::Uuid;

#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashMap<Uuid, u32>>>);

/// One call's place; dropping it (when the relayed body ends) frees the place.
pub struct Ticket {
    counts: InFlight,
    bridge: Uuid,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, u32>> {
        // The map only holds counters: a panic elsewhere cannot leave it inconsistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A place for one more call, unless `limit` calls are already in flight.
    pub fn enter(&self, bridge: Uuid, limit: u32) -> Option<Ticket> {
        let mut counts = self.lock();
        let count = counts.entry(bridge).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Ticket {
            counts: self.clone(),
            bridge,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        if let Some(count) = counts.get_mut(&self.bridge) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.bridge);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back() {
        let inflight = InFlight::default();
        let id = Uuid::new_v4();
        let a = inflight.enter(id, 2);
        let b = inflight.enter(id, 2);
        assert!(a.is_some() && b.is_some());
        assert!(inflight.enter(id, 2).is_none());
        assert!(
            inflight.enter(Uuid::new_v4(), 2).is_some(),
            "bridges are counted apart"
        );
        drop(a);
        assert!(inflight.enter(id, 2).is_some());
        drop(b);
        assert!(inflight.lock().is_empty() || inflight.lock().len() == 1);
    }
}
