//! A histogram with fixed buckets, counted with atomics: observing is two relaxed adds.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the buckets, in the unit observed (`+Inf` is implied).
pub type Bounds = &'static [u64];

/// Time, observed in microseconds and shown in seconds: 1 ms to 60 s, for calls to upstreams.
pub const UPSTREAM_MICROS: Bounds = &[
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 30_000_000, 60_000_000,
];

/// Time, observed in microseconds and shown in seconds: 0.5 ms to 2.5 s, for database writes.
pub const WRITE_MICROS: Bounds = &[
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000,
];

/// Audit events in one write (at most 512 are written together).
pub const GROUP_SIZES: Bounds = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

pub struct Histogram {
    bounds: Bounds,
    /// One more than `bounds`: the last counts what lies above every bound. Not cumulative:
    /// the exposition adds them up.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    /// Units observed per unit shown (microseconds per second: 1e6). A division, not a
    /// multiplication, so that bounds print exactly (`0.0005`, not `0.0005000000000000001`).
    per_unit: f64,
}

impl Histogram {
    pub fn new(bounds: Bounds, per_unit: f64) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            per_unit,
        }
    }

    pub fn observe(&self, value: u64) {
        // Prometheus buckets hold what is less than or equal to their bound.
        let i = self.bounds.partition_point(|b| *b < value);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// The cumulative counts by upper bound (the last is `+Inf`: the count) and the sum, in the
    /// exposition's unit. The count is the buckets' total, so it always equals `+Inf` even while
    /// others observe; the sum may be a moment behind or ahead.
    pub fn snapshot(&self) -> Snapshot {
        let mut total = 0;
        let mut cumulative = Vec::with_capacity(self.buckets.len());
        for (i, bucket) in self.buckets.iter().enumerate() {
            total += bucket.load(Ordering::Relaxed);
            let le = self.bounds.get(i).map(|b| *b as f64 / self.per_unit);
            cumulative.push((le, total));
        }
        Snapshot {
            buckets: cumulative,
            sum: self.sum.load(Ordering::Relaxed) as f64 / self.per_unit,
            count: total,
        }
    }
}

pub struct Snapshot {
    /// `(upper bound, observations at or below it)`; `None` is `+Inf`.
    pub buckets: Vec<(Option<f64>, u64)>,
    pub sum: f64,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_hold_their_bound() {
        let h = Histogram::new(&[1, 2, 4], 1.0);
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.observe(v);
        }
        let s = h.snapshot();
        let counts: Vec<u64> = s.buckets.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [2, 3, 5, 7]);
        assert_eq!(s.buckets[3].0, None);
        assert_eq!(s.count, 7);
        assert_eq!(s.sum, 115.0);
    }

    #[test]
    fn microseconds_show_as_seconds() {
        let h = Histogram::new(WRITE_MICROS, 1e6);
        h.observe(1_500);
        let s = h.snapshot();
        assert_eq!(s.buckets[0], (Some(0.0005), 0));
        assert_eq!(s.buckets[2], (Some(0.0025), 1));
        assert!((s.sum - 0.0015).abs() < 1e-12);
    }
}
