//! Counters for operators, served in Prometheus's text format on a listener of their own
//! (`metrics_listen`), apart from the API. They count what a node does, never who asked or for
//! which record: database calls by kind, audit groups, the record cache, Redis calls, key
//! derivations. `bench/run` divides them by the requests it made to report round trips per
//! request.
//!
//! Hand-written rather than the `metrics` crate's global recorder: several servers run in one
//! process in the tests, and each keeps its own counts.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

#[derive(Default)]
struct Counters {
    db: [AtomicU64; 6],
    audit_events: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    stale_retries: AtomicU64,
    redis_calls: AtomicU64,
    upstream_calls: AtomicU64,
}

/// This node's counters. Cheap to clone; counting is one relaxed atomic add.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Counters>);

impl Metrics {
    pub fn db(&self, call: DbCall) {
        self.0.db[call as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn audit_events(&self, n: usize) {
        self.0.audit_events.fetch_add(n as u64, Ordering::Relaxed);
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

    /// The counters in Prometheus's text exposition format; `kdf_runs` from the key-derivation
    /// threads, which count their own.
    pub fn render(&self, kdf_runs: u64) -> String {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let db: Vec<(String, u64)> = DB_CALLS
            .iter()
            .map(|(call, name)| (format!("{{call=\"{name}\"}}"), get(&c.db[*call as usize])))
            .collect();
        let db: Vec<(&str, u64)> = db.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        counter(
            "brine_db_calls_total",
            "Database calls made while serving records, by what they are for.",
            &db,
        );
        counter(
            "brine_audit_events_total",
            "Audit events and settles written.",
            &[("", get(&c.audit_events))],
        );
        counter(
            "brine_record_cache_total",
            "Record lookups served from memory (hit) or the database (miss).",
            &[
                ("{result=\"hit\"}", get(&c.cache_hits)),
                ("{result=\"miss\"}", get(&c.cache_misses)),
            ],
        );
        counter(
            "brine_stale_retries_total",
            "Requests started again because their record changed under them.",
            &[("", get(&c.stale_retries))],
        );
        counter(
            "brine_redis_calls_total",
            "Calls to the shared rate-limit store.",
            &[("", get(&c.redis_calls))],
        );
        counter(
            "brine_upstream_calls_total",
            "Calls made to bridges' upstreams (each fallback hop counts).",
            &[("", get(&c.upstream_calls))],
        );
        counter(
            "brine_kdf_runs_total",
            "Argon2id runs (password checks, decoys, new password slots, sign-ins).",
            &[("", kdf_runs)],
        );
        out
    }
}

/// Serves `GET /metrics` on `listener` until the task is stopped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    vault: crate::vault::Vault,
) {
    let page = move || {
        let text = metrics.render(vault.kdf_runs());
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
        let text = m.render(7);
        assert!(
            text.contains("brine_db_calls_total{call=\"audit_group\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("brine_db_calls_total{call=\"record\"} 1\n"));
        assert!(text.contains("brine_record_cache_total{result=\"hit\"} 1\n"));
        assert!(text.contains("brine_audit_events_total 3\n"));
        assert!(text.contains("brine_kdf_runs_total 7\n"));
        assert!(text.contains("# TYPE brine_redis_calls_total counter\n"));
    }
}
