//! Bounds the upstream calls in flight on this node, per bridge and per client address, so that
//! one busy or abused bridge, or one greedy client, cannot take every connection and worker.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use uuid::Uuid;

/// What calls in flight are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holder {
    Bridge(Uuid),
    Client(IpAddr),
}

#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashMap<Holder, u32>>>);

/// One call's places; dropping it (when the relayed body ends) frees them.
pub struct Ticket {
    counts: InFlight,
    holders: [Option<Holder>; 2],
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<Holder, u32>> {
        // The map only holds counters: a panic elsewhere cannot leave it inconsistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A place for one more call through `bridge` and one more from `client`, unless either
    /// already has its limit in flight. Returns which one is full when refused.
    pub fn enter(
        &self,
        bridge: (Uuid, u32),
        client: Option<(IpAddr, u32)>,
    ) -> Result<Ticket, Holder> {
        let wanted = [
            Some((Holder::Bridge(bridge.0), bridge.1)),
            client.map(|(ip, limit)| (Holder::Client(ip), limit)),
        ];
        let mut counts = self.lock();
        for (holder, limit) in wanted.iter().flatten() {
            if counts.get(holder).copied().unwrap_or(0) >= *limit {
                return Err(*holder);
            }
        }
        for (holder, _) in wanted.iter().flatten() {
            *counts.entry(*holder).or_insert(0) += 1;
        }
        Ok(Ticket {
            counts: self.clone(),
            holders: wanted.map(|w| w.map(|(holder, _)| holder)),
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        for holder in self.holders.iter().flatten() {
            if let Some(count) = counts.get_mut(holder) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(holder);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_per_bridge_and_per_client_and_given_back() {
        let inflight = InFlight::default();
        let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
        let ip = |n: u8| IpAddr::from([192, 0, 2, n]);
        let a = inflight.enter((one, 2), Some((ip(1), 3)));
        let b = inflight.enter((one, 2), Some((ip(2), 3)));
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(
            inflight.enter((one, 2), Some((ip(3), 3))).err(),
            Some(Holder::Bridge(one))
        );
        // The client at 192.0.2.1 may have three in flight, across bridges.
        let c = inflight.enter((two, 9), Some((ip(1), 3)));
        let d = inflight.enter((two, 9), Some((ip(1), 3)));
        assert!(c.is_ok() && d.is_ok());
        assert_eq!(
            inflight.enter((two, 9), Some((ip(1), 3))).err(),
            Some(Holder::Client(ip(1)))
        );
        // A refusal takes no place: the bridge still has room for another client.
        assert!(inflight.enter((two, 9), Some((ip(4), 3))).is_ok());
        drop((a, b, c, d));
        assert!(inflight.lock().is_empty(), "every place is given back");
    }
}
