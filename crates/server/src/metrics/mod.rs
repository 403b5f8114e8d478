//! Metrics for operators, served in Prometheus's text format on a listener of their own
//! (`metrics_listen`), apart from the API. They count what a node does, never who asked or for
//! which record: requests by route template, record type and status class; database calls by
//! kind; audit groups and their write times; refusals by limits and lockouts; upstream latency;
//! the record cache; Redis calls; key derivations. Every label value comes from the code (docs:
//! logs.md, "Metrics"). `bench/run` divides some of them by the requests it made to report round
//! trips per request.
//!
//! Hand-written rather than the `metrics` crate's global recorder: several servers run in one
//! process in the tests, and each keeps its own counts.

mod histogram;
mod requests;

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use self::histogram::Histogram;
use self::requests::Requests;
pub use self::requests::{CountRequests, note_record};

/// A database call, by what it is for.
#[derive(Debug, Clone, Copy)]
pub enum DbCall {
    /// A record read (a cache miss, or a channel that reads the database).
    Record,
    /// One group of audit events and settles, in one transaction.
    AuditGroup,
    ClaimRead,
    ClaimView,
    Quota,
    /// The lockout's count of recent failures.
    Failures,
}

const DB_CALLS: [(DbCall, &str); 6] = [
    (DbCall::Record, "record"),
    (DbCall::AuditGroup, "audit_group"),
    (DbCall::ClaimRead, "claim_read"),
    (DbCall::ClaimView, "claim_view"),
    (DbCall::Quota, "quota"),
    (DbCall::Failures, "lockout_count"),
];

/// Why a limit refused a call to a record, or a sign-in.
#[derive(Debug, Clone, Copy)]
pub enum LimitRefusal {
    /// Over a record's (or the account's) rate limit.
    Rate,
    /// The shared limits store is down and the record fails closed.
    Unavailable,
    /// The record's quota for the period is used up.
    Quota,
    /// Too many sign-in or sign-up attempts from one address or for one email.
    SignIn,
}

const LIMIT_REFUSALS: [(LimitRefusal, &str); 4] = [
    (LimitRefusal::Rate, "rate"),
    (LimitRefusal::Unavailable, "unavailable"),
    (LimitRefusal::Quota, "quota"),
    (LimitRefusal::SignIn, "sign_in"),
];

/// Which password a lockout protects.
#[derive(Debug, Clone, Copy)]
pub enum Locked {
    /// A record password (`POST /r/{uuid}`).
    RecordPassword,
    /// A secure page's password.
    SecurePage,
}

const LOCKOUTS: [(Locked, &str); 2] = [
    (Locked::RecordPassword, "password"),
    (Locked::SecurePage, "secure_page"),
];

/// How a call to an upstream ended.
#[derive(Debug, Clone, Copy)]
pub enum UpstreamResult {
    /// It answered with this status (its head arrived).
    Status(axum::http::StatusCode),
    Timeout,
    /// It could not be reached, or refused the connection.
    Error,
}

const UPSTREAM_RESULTS: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "timeout", "error"];

impl UpstreamResult {
    fn index(self) -> usize {
        match self {
            UpstreamResult::Status(s) => usize::from(s.as_u16() / 100).clamp(1, 5) - 1,
            UpstreamResult::Timeout => 5,
            UpstreamResult::Error => 6,
        }
    }
}

struct Counters {
    db: [AtomicU64; 6],
    audit_events: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    stale_retries: AtomicU64,
    redis_calls: AtomicU64,
    upstream_calls: AtomicU64,
    limit_refusals: [AtomicU64; 4],
    lockouts: [AtomicU64; 2],
    upstream_seconds: [Histogram; 7],
    audit_group_events: Histogram,
    audit_write_seconds: Histogram,
    requests: Requests,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            db: Default::default(),
            audit_events: AtomicU64::default(),
            cache_hits: AtomicU64::default(),
            cache_misses: AtomicU64::default(),
            stale_retries: AtomicU64::default(),
            redis_calls: AtomicU64::default(),
            upstream_calls: AtomicU64::default(),
            limit_refusals: Default::default(),
            lockouts: Default::default(),
            upstream_seconds: std::array::from_fn(|_| {
                Histogram::new(histogram::UPSTREAM_MICROS, MICROS)
            }),
            audit_group_events: Histogram::new(histogram::GROUP_SIZES, 1.0),
            audit_write_seconds: Histogram::new(histogram::WRITE_MICROS, MICROS),
            requests: Requests::default(),
        }
    }
}

const MICROS: f64 = 1e6;

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The key-derivation threads' load, which they count themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct KdfLoad {
    /// Runs started so far.
    pub runs: u64,
    /// Calls waiting for a thread.
    pub waiting: u64,
    /// Calls running on one.
    pub running: u64,
}

/// This node's counters. Cheap to clone; counting is one or two relaxed atomic adds.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Counters>);

impl Metrics {
    pub fn db(&self, call: DbCall) {
        self.0.db[call as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn audit_events(&self, n: usize) {
        self.0.audit_events.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// One group of audit jobs written in `took`.
    pub fn audit_group(&self, jobs: usize, took: Duration) {
        self.0.audit_group_events.observe(jobs as u64);
        self.0.audit_write_seconds.observe(micros(took));
    }

    pub fn cache(&self, hit: bool) {
        let counter = if hit {
            &self.0.cache_hits
        } else {
            &self.0.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stale_retry(&self) {
        self.0.stale_retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn redis_call(&self) {
        self.0.redis_calls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn upstream_call(&self) {
        self.0.upstream_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// One call to an upstream, from sending it until its answer's head (or its failure).
    pub fn upstream_latency(&self, result: UpstreamResult, took: Duration) {
        self.0.upstream_seconds[result.index()].observe(micros(took));
    }

    pub fn limit_refusal(&self, why: LimitRefusal) {
        self.0.limit_refusals[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn lockout(&self, which: Locked) {
        self.0.lockouts[which as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters in Prometheus's text exposition format (version 0.0.4).
    pub fn render(&self, kdf: KdfLoad) -> String {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = Text(String::with_capacity(8192));

        let requests = c.requests.samples();
        out.family(
            "brine_http_requests_total",
            "counter",
            "Requests answered, by route template, type of the record opened and status class.",
        );
        for (route, record, status, n) in requests {
            let labels = [
                ("route", route),
                ("record_type", record),
                ("status", status),
            ];
            out.sample("brine_http_requests_total", &labels, n);
        }

        out.family(
            "brine_db_calls_total",
            "counter",
            "Database calls made while serving records, by what they are for.",
        );
        for (call, name) in DB_CALLS {
            out.sample(
                "brine_db_calls_total",
                &[("call", name)],
                get(&c.db[call as usize]),
            );
        }
        out.single(
            "brine_audit_events_total",
            "Audit events and settles written.",
            get(&c.audit_events),
        );
        out.family(
            "brine_audit_write_group_size",
            "histogram",
            "Audit events and settles written together in one transaction.",
        );
        out.histogram("brine_audit_write_group_size", &[], &c.audit_group_events);
        out.family(
            "brine_audit_write_seconds",
            "histogram",
            "Time to write one group of audit events and settles.",
        );
        out.histogram("brine_audit_write_seconds", &[], &c.audit_write_seconds);

        out.family(
            "brine_record_cache_total",
            "counter",
            "Record lookups served from memory (hit) or the database (miss).",
        );
        out.sample(
            "brine_record_cache_total",
            &[("result", "hit")],
            get(&c.cache_hits),
        );
        out.sample(
            "brine_record_cache_total",
            &[("result", "miss")],
            get(&c.cache_misses),
        );
        out.single(
            "brine_stale_retries_total",
            "Requests started again because their record changed under them.",
            get(&c.stale_retries),
        );
        out.single(
            "brine_redis_calls_total",
            "Calls to the shared rate-limit store.",
            get(&c.redis_calls),
        );

        out.family(
            "brine_rate_limit_refusals_total",
            "counter",
            "Calls refused by a limit: a record's rate limit, the shared limits being down (a \
             fail-closed record), a quota, the sign-in limits.",
        );
        for (why, name) in LIMIT_REFUSALS {
            let n = get(&c.limit_refusals[why as usize]);
            out.sample("brine_rate_limit_refusals_total", &[("limit", name)], n);
        }
        out.family(
            "brine_lockout_refusals_total",
            "counter",
            "Password attempts refused because too many recent ones failed, by which password.",
        );
        for (which, name) in LOCKOUTS {
            let n = get(&c.lockouts[which as usize]);
            out.sample("brine_lockout_refusals_total", &[("password", name)], n);
        }

        out.single(
            "brine_upstream_calls_total",
            "Calls made to bridges' upstreams (each fallback hop counts).",
            get(&c.upstream_calls),
        );
        out.family(
            "brine_upstream_latency_seconds",
            "histogram",
            "Time from sending a call to an upstream until its answer's head arrived (or the \
             call failed), by result: the answer's status class, timeout or error.",
        );
        for (result, h) in UPSTREAM_RESULTS.into_iter().zip(&c.upstream_seconds) {
            out.histogram("brine_upstream_latency_seconds", &[("result", result)], h);
        }

        out.single(
            "brine_kdf_runs_total",
            "Argon2id runs (password checks, decoys, new password slots, sign-ins).",
            kdf.runs,
        );
        out.family(
            "brine_kdf_queue_depth",
            "gauge",
            "Argon2id calls waiting for a key-derivation thread, and running on one.",
        );
        out.sample(
            "brine_kdf_queue_depth",
            &[("state", "waiting")],
            kdf.waiting,
        );
        out.sample(
            "brine_kdf_queue_depth",
            &[("state", "running")],
            kdf.running,
        );
        out.0
    }
}

/// Prometheus text, written line by line. Label values here come from the code (names, route
/// templates), never from a request; they are escaped all the same.
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// A family of one unlabelled counter.
    fn single(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.0, " {value}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        let extra = le.map(|le| ("le", le));
        let mut all = labels.iter().copied().chain(extra).peekable();
        if all.peek().is_none() {
            return;
        }
        self.0.push('{');
        for (i, (name, value)) in all.enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.0.push_str(name);
            self.0.push_str("=\"");
            for ch in value.chars() {
                match ch {
                    '\\' => self.0.push_str("\\\\"),
                    '"' => self.0.push_str("\\\""),
                    '\n' => self.0.push_str("\\n"),
                    ch => self.0.push(ch),
                }
            }
            self.0.push('"');
        }
        self.0.push('}');
    }

    /// `_bucket` lines (cumulative, ending with `+Inf`), `_sum` and `_count`. A histogram with
    /// no observations is left out, to keep the label sets that never happen off the page.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let s = h.snapshot();
        if s.count == 0 && !labels.is_empty() {
            return;
        }
        for (le, n) in s.buckets {
            let le = le.map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = write!(self.0, "{name}_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.0, " {n}");
        }
        self.sample(&format!("{name}_sum"), labels, s.sum);
        self.sample(&format!("{name}_count"), labels, s.count);
    }
}

/// Serves `GET /metrics` on `listener` until the task is stopped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    vault: crate::vault::Vault,
) {
    let page = move || {
        let text = metrics.render(vault.kdf_load());
        async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                text,
            )
        }
    };
    let router = axum::Router::new().route("/metrics", axum::routing::get(page));
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let m = Metrics::default();
        m.db(DbCall::Record);
        m.db(DbCall::AuditGroup);
        m.db(DbCall::AuditGroup);
        m.cache(true);
        m.audit_events(3);
        let text = m.render(KdfLoad {
            runs: 7,
            waiting: 2,
            running: 1,
        });
        assert!(
            text.contains("brine_db_calls_total{call=\"audit_group\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("brine_db_calls_total{call=\"record\"} 1\n"));
        assert!(text.contains("brine_record_cache_total{result=\"hit\"} 1\n"));
        assert!(text.contains("brine_audit_events_total 3\n"));
        assert!(text.contains("brine_kdf_runs_total 7\n"));
        assert!(text.contains("# TYPE brine_redis_calls_total counter\n"));
        assert!(text.contains("brine_kdf_queue_depth{state=\"waiting\"} 2\n"));
        assert!(text.contains("# TYPE brine_kdf_queue_depth gauge\n"));
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let m = Metrics::default();
        m.audit_group(3, Duration::from_micros(700));
        m.audit_group(40, Duration::from_millis(30));
        m.upstream_latency(
            UpstreamResult::Status(axum::http::StatusCode::BAD_GATEWAY),
            Duration::from_millis(20),
        );
        let text = m.render(KdfLoad::default());
        for line in [
            "# TYPE brine_audit_write_group_size histogram\n",
            "brine_audit_write_group_size_bucket{le=\"2\"} 0\n",
            "brine_audit_write_group_size_bucket{le=\"4\"} 1\n",
            "brine_audit_write_group_size_bucket{le=\"64\"} 2\n",
            "brine_audit_write_group_size_bucket{le=\"+Inf\"} 2\n",
            "brine_audit_write_group_size_sum 43\n",
            "brine_audit_write_group_size_count 2\n",
            "brine_audit_write_seconds_bucket{le=\"0.0005\"} 0\n",
            "brine_audit_write_seconds_bucket{le=\"0.001\"} 1\n",
            "brine_audit_write_seconds_bucket{le=\"0.05\"} 2\n",
            "brine_audit_write_seconds_sum 0.0307\n",
            "brine_upstream_latency_seconds_bucket{result=\"5xx\",le=\"0.025\"} 1\n",
            "brine_upstream_latency_seconds_count{result=\"5xx\"} 1\n",
        ] {
            assert!(text.contains(line), "no {line} in:\n{text}");
        }
        // Results that never happened stay off the page.
        assert!(!text.contains("result=\"2xx\""), "{text}");
    }
}
