//! The usage logs: the account's sums per record, its series over time, its event log.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::Timestamp;
use crate::records::EventView;

// Query structs repeat `from` and `to` rather than flatten a shared struct: a flattened query
// string reaches numbers as text, which serde then refuses.
// Every query struct here and in `records` refuses unknown parameters: a misspelt filter
// (`outcom=denied`) must not silently widen what an owner reads from the audit log.

#[derive(Debug, Default, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// Start of the range (RFC 3339); by default 24 hours before `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    /// End of the range (RFC 3339); by default now.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    /// `requests` (default), `errors`, `bytes`, `p95`, `last_seen` or `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// Start of the range (RFC 3339); by default 24 hours before `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    /// End of the range (RFC 3339); by default now.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    /// `minute`, `hour` or `day`; by default the one that fits the range (minutes up to 3
    /// hours, hours up to 7 days, days beyond).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Only this record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Uuid>,
}

/// Errors by class: what the callers received.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ErrorCounts {
    /// A missing or wrong key or password, a forbidden origin (401, 403).
    pub denied: i64,
    /// Rate limits, quotas, lockouts (429).
    pub limited: i64,
    /// Expired, out of reads or views (answered as 404).
    pub gone: i64,
    /// A bridge call the caller's input could not make (400).
    pub invalid: i64,
    /// The upstream answered 4xx.
    pub upstream_4xx: i64,
    /// The upstream answered 5xx, timed out or could not be reached (502, 504).
    pub upstream_5xx: i64,
}

impl ErrorCounts {
    pub fn total(&self) -> i64 {
        self.denied
            + self.limited
            + self.gone
            + self.invalid
            + self.upstream_4xx
            + self.upstream_5xx
    }
}

/// One record's usage over the range.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordUsageView {
    pub uuid: Uuid,
    pub name: String,
    /// `credential`, `bridge`, ... as the record's `kind`.
    pub kind: String,
    /// The record was deleted; its history is kept for the retention period.
    pub deleted: bool,
    /// Requests (reads, bridge calls, page loads and unlocks), whatever their outcome.
    pub requests: i64,
    pub errors: ErrorCounts,
    /// Every error, whatever its class.
    pub errors_total: i64,
    /// Bytes relayed to callers by bridge calls.
    pub bytes: i64,
    /// Upstream latency of bridge calls at the 50th and 95th percentile, in milliseconds, as
    /// the upper bound of its histogram bucket (exact to a bucket; `null` without calls, or
    /// past the last bound of 10 s).
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageSummary {
    /// The range the sums cover: the asked range widened to whole buckets of `resolution`.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub to: OffsetDateTime,
    /// `minute` or `hour`: the roll-ups read.
    pub resolution: String,
    pub requests: i64,
    pub errors: ErrorCounts,
    pub errors_total: i64,
    pub bytes: i64,
    /// Records with any request in the range, sorted as asked.
    pub records: Vec<RecordUsageView>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SeriesPoint {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    pub requests: i64,
    pub errors: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordSeries {
    pub uuid: Uuid,
    pub name: String,
    pub deleted: bool,
    /// One point per bucket of the range, zero where nothing happened.
    pub points: Vec<SeriesPoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageSeries {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub to: OffsetDateTime,
    /// `minute`, `hour` or `day`.
    pub bucket: String,
    /// Every record together, one point per bucket.
    pub total: Vec<SeriesPoint>,
    /// Each record with any request in the range.
    pub records: Vec<RecordSeries>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Start of the range (RFC 3339); by default 24 hours before `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    /// End of the range (RFC 3339); by default now.
    #[param(value_type = Option<String>, format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    /// At most this many events (default 100); values outside 1 to 500 are clamped to it.
    /// (Any 32-bit unsigned number is accepted: the document says so for fuzzers and clients.)
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only events older than this event id (the `next_before` of the previous page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Only this record's events (deleted records too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Text in the user agent or the detail, whatever its case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// `jsonl` (default) or `csv`; export only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogEventList {
    pub events: Vec<EventView>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}
