//! The owner's management API for records.

use std::collections::BTreeMap;

use brine_core::{Access, BridgePolicy, Quota, RateLimit, RecordKind, RecordStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{Timestamp, nullable};

/// A record as its owner sees it: metadata only, never the value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordView {
    pub uuid: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: RecordKind,
    pub access: Access,
    /// Only the X-API-Key or the password opens it; the owner cannot view it.
    pub sealed: bool,
    pub has_api_key: bool,
    pub has_password: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub max_reads: Option<i64>,
    /// Reads counted against `max_reads`.
    pub reads: i64,
    /// Whether `/r/{uuid}` serves it, and if not, why (`disabled` whatever its expiry).
    pub status: RecordStatus,
    /// When it was last opened successfully: a read, a bridge call or a secure-page reveal
    /// (the owner's own actions do not count). `null` when never.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Where code reads it.
    #[schema(example = "/r/6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978")]
    pub path: String,
    /// The password-protected page for a person, when enabled.
    pub secure_page: Option<SecurePageView>,
    /// A bridge's policy (its URL and headers are secret: see `/value`).
    pub bridge: Option<BridgePolicy>,
    /// A credential's declared `{{param}}` names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Requests taken from the quota in the current period (on `GET /api/v1/records/{uuid}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_used: Option<i64>,
    /// Problems with the record as stored, for its owner to fix (on
    /// `GET /api/v1/records/{uuid}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecurePageView {
    /// Where the person opens it. Send the password over another channel.
    #[schema(example = "/secure/6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978")]
    pub path: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub max_views: Option<i64>,
    /// Reveals counted against `max_views`.
    pub views: i64,
    /// Whether the page still reveals, and if not, why.
    pub status: RecordStatus,
    /// Shown on the page before the password, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordWithKey {
    pub record: RecordView,
    /// The record's X-API-Key. Shown in this response only: store it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Advice about the record's set-up, for a person to read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordList {
    pub records: Vec<RecordView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyBody {
    /// The new X-API-Key. Shown once; the previous key no longer works.
    pub api_key: String,
}

/// A record's value as its owner sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevealBody {
    /// A credential's value (a string), or a bridge's `{url, headers, fallback_urls}`.
    #[schema(value_type = Value)]
    pub data: serde_json::Value,
}

/// The secure page's settings.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurePageBody {
    pub enabled: bool,
    /// Required when enabling: at least 8 characters. Send it to the person over a different
    /// channel than the link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The page stops revealing at this time (the record's own expiry applies too).
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// The page reveals at most this many times. The owner's own reveals do not count.
    #[schema(minimum = 1)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_views: Option<i64>,
    /// Plain text shown on the page before the password (1 to 200 characters), so the person
    /// knows what they are opening. Without one, the page shows the same form for every uuid.
    /// Not a secret: anyone with the link sees it.
    #[schema(example = "Stripe test key for the checkout work, from Ana at Acme")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What the owner sends to create or replace a bridge: the secret part (URL, headers,
/// fallbacks), sealed like any record value, and the policy, stored in the clear.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BridgeBody {
    /// The upstream URL, with optional `{{param}}` placeholders in its path and query.
    #[schema(example = "https://api.openai.com/v1")]
    pub url: String,
    /// Headers added to every upstream call, replacing any the caller sent.
    #[serde(default)]
    #[schema(example = json!({"Authorization": "Bearer sk-..."}))]
    pub headers: BTreeMap<String, String>,
    /// Tried in order when the upstream fails (connection error, timeout or 5xx); at most 3.
    #[serde(default)]
    pub fallback_urls: Vec<String>,
    #[serde(flatten)]
    pub policy: BridgePolicy,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRecord {
    #[schema(example = "Stripe live key")]
    pub name: String,
    /// Defaults to `credential`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RecordKind>,
    pub access: Access,
    /// The secret value (credentials).
    #[schema(example = "sk_live_51H...")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The upstream and its policy (bridges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeBody>,
    /// Names of `{{name}}` placeholders in a credential's value, filled from query parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<String>>,
    /// A record password that also opens a private record (`POST /r/{uuid}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// No server slot: only the X-API-Key or the password decrypts it.
    #[serde(default)]
    pub sealed: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[schema(minimum = 1)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_reads: Option<i64>,
    /// For private records: whether code can read it with an X-API-Key (default true). A record
    /// meant only for a person's secure page needs none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<bool>,
    /// A password-protected page for a person (private records only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_page: Option<SecurePageBody>,
    /// Rate limits on `/r/{uuid}`, e.g. `{"per_ip": "60/min", "total": "1000/hour"}`.
    #[schema(value_type = Option<RateLimit>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<serde_json::Value>,
    /// A usage budget per calendar period, e.g. `{"requests": 10000, "per": "month"}`.
    #[schema(value_type = Option<Quota>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<serde_json::Value>,
}

#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// A new value (credentials). On a sealed record this issues a new X-API-Key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Changes to the upstream and policy (bridges), as a JSON merge patch (RFC 7396) of the
    /// stored bridge in `BridgeBody`'s shape: fields left out stay, `null` removes (a header
    /// named with `null` is removed), objects merge (headers by name), arrays replace.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<serde_json::Value>,
    /// New `{{name}}` placeholder names (credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<String>>,
    /// Sets or changes the record password; `null` removes it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
    /// `null` removes the expiry.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<Timestamp>>,
    /// `null` removes the limit.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>)]
    pub max_reads: Option<Option<i64>>,
    /// New rate limits, replacing the old ones; `null` removes them.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<RateLimit>)]
    pub rate_limit: Option<Option<serde_json::Value>>,
    /// A new quota (usage so far in the period is kept); `null` removes it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Quota>)]
    pub quota: Option<Option<serde_json::Value>>,
    /// For a bridge with a probe whose URL, headers or fallbacks change: `false` saves them
    /// without sending the probe first. By default (`true`) the probe is sent with the new
    /// values and the change is refused unless the upstream accepts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
}

/// Only for sealed records, which the server cannot re-wrap on its own.
#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRecord {
    /// A new value, replacing the old one under a fresh data key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The record password to keep (required with `data` when the record has one); `null`
    /// drops it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `read` (X-API-Key or public), `password` (record password), `secure_page`, `bridge`,
    /// `batch` or `owner` (the owner's own actions).
    pub channel: String,
    /// What happened: `ok`, `denied`, `forbidden`, `gone`, `rate_limited`, `opened`, `attempt`,
    /// `revealed`, `rotated`, `updated`, ... (docs/api.md lists them all).
    pub outcome: String,
    /// Details: of a proxied call (method, path, upstream status, latency, bytes, hop, origin),
    /// of a refusal, or the repeats counted in an `opened` event.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The record the event is about.
    #[serde(default)]
    pub record: Uuid,
    /// In the account's log: the record's name, and whether it has been deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_name: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record_deleted: bool,
    /// Where the client was, when the server has a GeoIP database (ISO country code, city).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// For a refusal or a failed call: the HTTP status and the error title the caller received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventView>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// At most this many events (default 100); values outside 1 to 500 are clamped to it.
    /// (Any 32-bit unsigned number is accepted: the document says so for fuzzers and clients.)
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only events older than this event id (for paging: the `id` of the last event of the
    /// previous page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Only events of this channel (`read`, `bridge`, `secure_page`, `owner`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Only events with this outcome (`ok`, `denied`, `revealed`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Only events from this client address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Only events whose user agent or detail holds this text, whatever its case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

/// A call from the owner's playground.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TryCall {
    /// Default GET.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A path below the bridge's URL (must be in `allowed_paths`).
    #[serde(default)]
    pub path: String,
    /// Query parameters, as a caller would send them (declared params fill the URL).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A string is sent as is; anything else as JSON.
    #[schema(value_type = Option<Value>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
}

/// What the playground shows: the answer a caller would get, and how long it took.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TryResult {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// JSON when the answer is JSON, else text.
    #[schema(value_type = Value)]
    pub body: serde_json::Value,
    /// 0 when the primary URL answered, 1 for the first fallback, ...
    pub hop: usize,
    pub duration_ms: u64,
}

/// What the upstream answered to a bridge's probe, sent with the stored key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyTestResult {
    /// The probe as sent, e.g. `GET /models`.
    #[schema(example = "GET /models")]
    pub request: String,
    /// The upstream's status.
    pub status: u16,
    /// Whether the status is one of the probe's `accepted` ones (401 and 403 never are).
    pub accepted: bool,
    /// 0 when the primary URL answered, 1 for the first fallback, ...
    pub hop: usize,
    pub duration_ms: u64,
    /// The start of the upstream's answer (at most 200 characters, on one line), with the
    /// bridge's stored secrets scrubbed out. Not kept anywhere.
    pub excerpt: String,
}
