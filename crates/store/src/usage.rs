//! Usage roll-ups: per record, per minute and per hour, the sums that the Logs views show
//! (requests, errors by class, bytes, a latency histogram), so that a summary over 30 days reads
//! a few thousand rows however many events there were.
//!
//! The audit writers keep them in the same transaction as the events: an event adds its
//! [`Tally`], and a settle (an event's outcome or details changed later) adds the difference
//! between the event's tally after and before. So a roll-up always equals the tallies of the
//! events as they stand, including those that retention has since deleted.

use std::collections::BTreeMap;

use uuid::Uuid;

/// Bucket widths, in milliseconds.
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;

/// Upper bounds (inclusive, in milliseconds) of the latency histogram's buckets; the last
/// bucket takes everything slower. Fixed, so that percentiles are exact to a bucket.
pub const LATENCY_BOUNDS_MS: [u64; 11] =
    [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// The classes of error a caller can receive, as counted in roll-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A missing or wrong key or password, a forbidden origin or method (401, 403).
    Denied,
    /// A rate limit, quota, lockout or cap on calls in flight (429).
    Limited,
    /// Expired, or out of reads or views (410).
    Gone,
    /// A bridge call the caller's input could not make (400).
    Invalid,
    /// The upstream answered 4xx (often: its key was refused).
    Upstream4xx,
    /// The upstream answered 5xx, timed out, could not be reached or relayed (502, 504).
    Upstream5xx,
}

/// What one event adds to its record's roll-ups. One event can stand for several requests: a
/// page load counts the reloads coalesced into it, a rate-limit refusal the refusals not
/// logged since the previous one (at most one is logged a second per client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub requests: i64,
    /// The class of error of every request the event stands for.
    pub error: Option<ErrorClass>,
    pub bytes: i64,
    pub latency_bucket: Option<usize>,
    /// A successful use: what "last used" means (a read, a bridge call, a reveal).
    pub used: bool,
}

/// The channels through which callers reach records; the owner's own actions and webhook
/// deliveries are not requests.
const REQUEST_CHANNELS: [&str; 5] = ["read", "password", "secure_page", "bridge", "batch"];

#[derive(serde::Deserialize, Default)]
struct Detail {
    status: Option<u16>,
    latency_ms: Option<u64>,
    bytes: Option<u64>,
    repeats: Option<u64>,
    unlogged_refusals: Option<u64>,
}

/// The tally of an event as it stands: nothing for events that are not requests, or not
/// finished (`attempt`).
pub fn tally(channel: &str, outcome: &str, detail: Option<&str>) -> Option<Tally> {
    if !REQUEST_CHANNELS.contains(&channel) || outcome == "attempt" {
        return None;
    }
    let detail: Detail = detail
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let status_class = |status: Option<u16>| match status {
        Some(500..) => Some(ErrorClass::Upstream5xx),
        Some(400..=499) => Some(ErrorClass::Upstream4xx),
        _ => None,
    };
    let (error, used) = match outcome {
        "ok" => (status_class(detail.status), true),
        "revealed" => (None, true),
        "opened" => (None, false),
        "denied" | "forbidden" => (Some(ErrorClass::Denied), false),
        "rate_limited" => (Some(ErrorClass::Limited), false),
        "gone" => (Some(ErrorClass::Gone), false),
        "bad_request" => (Some(ErrorClass::Invalid), false),
        "timeout" | "unreachable" | "error" | "refused" | "loop" => {
            (Some(ErrorClass::Upstream5xx), false)
        }
        _ => (None, false),
    };
    let repeats = match outcome {
        "opened" => detail.repeats.unwrap_or(0),
        "rate_limited" => detail.unlogged_refusals.unwrap_or(0),
        _ => 0,
    };
    Some(Tally {
        requests: 1 + saturating_i64(repeats),
        error,
        bytes: saturating_i64(detail.bytes.unwrap_or(0)),
        latency_bucket: detail.latency_ms.map(latency_bucket),
        used,
    })
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The histogram bucket of a latency.
pub fn latency_bucket(ms: u64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// The sums of one roll-up row (or of a difference to add to one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: i64,
    pub denied: i64,
    pub limited: i64,
    pub gone: i64,
    pub invalid: i64,
    pub upstream_4xx: i64,
    pub upstream_5xx: i64,
    pub bytes: i64,
    pub latency: [i64; LATENCY_BUCKETS],
}

impl Counts {
    fn add(&mut self, tally: &Tally, sign: i64) {
        self.requests += sign * tally.requests;
        if let Some(class) = tally.error {
            *self.error_mut(class) += sign * tally.requests;
        }
        self.bytes += sign * tally.bytes;
        if let Some(bucket) = tally.latency_bucket {
            self.latency[bucket] += sign;
        }
    }

    fn error_mut(&mut self, class: ErrorClass) -> &mut i64 {
        match class {
            ErrorClass::Denied => &mut self.denied,
            ErrorClass::Limited => &mut self.limited,
            ErrorClass::Gone => &mut self.gone,
            ErrorClass::Invalid => &mut self.invalid,
            ErrorClass::Upstream4xx => &mut self.upstream_4xx,
            ErrorClass::Upstream5xx => &mut self.upstream_5xx,
        }
    }

    /// Every error, whatever its class.
    pub fn errors(&self) -> i64 {
        self.denied
            + self.limited
            + self.gone
            + self.invalid
            + self.upstream_4xx
            + self.upstream_5xx
    }

    pub fn merge(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.denied += other.denied;
        self.limited += other.limited;
        self.gone += other.gone;
        self.invalid += other.invalid;
        self.upstream_4xx += other.upstream_4xx;
        self.upstream_5xx += other.upstream_5xx;
        self.bytes += other.bytes;
        for (sum, n) in self.latency.iter_mut().zip(other.latency) {
            *sum += n;
        }
    }

    /// The latency under which `quantile` (0..1) of the measured calls fell, as the upper
    /// bound of its bucket (`None` past the last bound, or when nothing was measured).
    pub fn latency_quantile_ms(&self, quantile: f64) -> Option<u64> {
        let total: i64 = self.latency.iter().sum();
        if total <= 0 {
            return None;
        }
        let rank = (quantile * total as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (bucket, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return LATENCY_BOUNDS_MS.get(bucket).copied();
            }
        }
        None
    }

    fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// A roll-up row's key: the record, the bucket's width and its start (unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RollupKey {
    pub record: Uuid,
    pub span: i64,
    pub start: i64,
}

/// What to add to one roll-up row.
#[derive(Debug, Clone, Copy, Default)]
pub struct RollupDelta {
    pub owner: Uuid,
    pub counts: Counts,
    pub last_at: Option<i64>,
    pub last_ok_at: Option<i64>,
}

/// The roll-up changes of one group of events, summed per row and kept in key order (so that
/// writers on several nodes lock rows in the same order and never deadlock).
#[derive(Debug, Default)]
pub struct RollupBatch(BTreeMap<RollupKey, RollupDelta>);

impl RollupBatch {
    /// Adds the change of one event, from its tally `before` (None for a new event) to `after`.
    pub fn change(
        &mut self,
        owner: Uuid,
        record: Uuid,
        at: i64,
        before: Option<Tally>,
        after: Option<Tally>,
    ) {
        if before == after {
            return;
        }
        for span in [MINUTE, HOUR] {
            let key = RollupKey {
                record,
                span,
                start: at.div_euclid(span) * span,
            };
            let delta = self.0.entry(key).or_insert_with(|| RollupDelta {
                owner,
                ..Default::default()
            });
            if let Some(before) = &before {
                delta.counts.add(before, -1);
            }
            if let Some(after) = &after {
                delta.counts.add(after, 1);
                delta.last_at = delta.last_at.max(Some(at));
                if after.used {
                    delta.last_ok_at = delta.last_ok_at.max(Some(at));
                }
            }
        }
    }

    /// The rows to write: those whose sums or times change.
    pub fn rows(&self) -> impl Iterator<Item = (&RollupKey, &RollupDelta)> {
        self.0
            .iter()
            .filter(|(_, d)| !d.counts.is_zero() || d.last_at.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tallied_by_what_the_caller_received() {
        assert_eq!(tally("owner", "rotated", None), None);
        assert_eq!(tally("bridge", "attempt", None), None);
        let read = tally("read", "ok", None).unwrap();
        assert_eq!((read.requests, read.error, read.used), (1, None, true));
        assert_eq!(
            tally("read", "denied", None).unwrap().error,
            Some(ErrorClass::Denied)
        );
        let call = tally(
            "bridge",
            "ok",
            Some(r#"{"status":503,"latency_ms":30,"bytes":12}"#),
        )
        .unwrap();
        assert_eq!(call.error, Some(ErrorClass::Upstream5xx));
        assert_eq!((call.bytes, call.latency_bucket), (12, Some(3)));
        assert_eq!(
            tally("bridge", "timeout", None).unwrap().error,
            Some(ErrorClass::Upstream5xx)
        );
        let loads = tally("secure_page", "opened", Some(r#"{"repeats":4}"#)).unwrap();
        assert_eq!((loads.requests, loads.used), (5, false));
        let flood = tally("read", "rate_limited", Some(r#"{"unlogged_refusals":9}"#)).unwrap();
        assert_eq!(
            (flood.requests, flood.error),
            (10, Some(ErrorClass::Limited))
        );
    }

    #[test]
    fn a_settle_moves_an_event_from_one_count_to_another() {
        let (owner, record) = (Uuid::new_v4(), Uuid::new_v4());
        let at = 10 * HOUR + 5 * MINUTE + 7;
        let mut batch = RollupBatch::default();
        // Stored as an attempt (not a request yet), then settled as a call with a 500, then
        // its size is added: one request, one upstream error, the final bytes.
        let first = tally("bridge", "ok", Some(r#"{"status":500,"latency_ms":3}"#));
        batch.change(owner, record, at, None, first);
        let last = tally(
            "bridge",
            "ok",
            Some(r#"{"status":500,"latency_ms":3,"bytes":99}"#),
        );
        batch.change(owner, record, at, first, last);
        let rows: Vec<_> = batch.rows().collect();
        assert_eq!(rows.len(), 2, "one minute row and one hour row");
        for (key, delta) in rows {
            assert_eq!(key.start % key.span, 0);
            assert!(key.start <= at && at < key.start + key.span);
            assert_eq!(delta.counts.requests, 1);
            assert_eq!(delta.counts.upstream_5xx, 1);
            assert_eq!(delta.counts.bytes, 99);
            assert_eq!(delta.counts.latency[0], 1);
            assert_eq!(delta.last_ok_at, Some(at));
        }
    }

    #[test]
    fn percentiles_are_the_upper_bounds_of_their_buckets() {
        let mut counts = Counts::default();
        assert_eq!(counts.latency_quantile_ms(0.5), None);
        counts.latency[latency_bucket(3)] = 90;
        counts.latency[latency_bucket(700)] = 10;
        assert_eq!(counts.latency_quantile_ms(0.5), Some(5));
        assert_eq!(counts.latency_quantile_ms(0.95), Some(1_000));
        counts.latency[LATENCY_BUCKETS - 1] = 1_000;
        assert_eq!(counts.latency_quantile_ms(0.95), None);
    }
}
