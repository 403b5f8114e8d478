//! A record's webhook: a signed POST to its owner's URL on first reveal of a secure page, first
//! use after a rotation, and a burst of failed attempts.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Sets (or replaces) a record's webhook.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// Where to POST: an `http` or `https` URL. Stored encrypted, since such URLs often carry a
    /// token; never an internal address unless the operator allows private upstreams.
    #[schema(example = "https://hooks.example.com/brine")]
    pub url: String,
    /// Which events to send: `secure_page.first_reveal`, `record.first_use_after_rotation`,
    /// `record.failed_attempts_burst`, `record.intake_received`.
    pub events: Vec<String>,
    /// What counts as a burst of failed attempts (default: 10 within 300 seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_attempts: Option<BurstRule>,
}

/// A burst: at least `threshold` refused attempts (wrong key or password, a forbidden origin)
/// within `window_secs`. At most one notification per window.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BurstRule {
    #[schema(minimum = 2, maximum = 10000, example = 10)]
    pub threshold: u32,
    #[schema(minimum = 10, maximum = 86400, example = 300)]
    pub window_secs: u32,
}

/// A delivery in the record's queue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// The event's id (the `Brine-Event-Id` header, the body's `id`).
    pub event_id: uuid::Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `pending`, `delivered`, or `failed` (no attempts left).
    pub state: String,
    pub attempts: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a pending delivery is tried next.
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    /// The receiver's last HTTP status, when it answered.
    pub last_status: Option<i64>,
}

/// A record's webhook (the signing secret is shown only when issued).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    pub url: String,
    pub events: Vec<String>,
    pub failed_attempts: BurstRule,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The newest deliveries, newest first (at most 20).
    #[serde(default)]
    pub deliveries: Vec<DeliveryView>,
    /// The signing secret (`whsec_...`): present only in the answer that created the webhook;
    /// keep it, it is never shown again (rotate it to get a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A new signing secret, shown once.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct WebhookSecret {
    #[schema(example = "whsec_...")]
    pub secret: String,
}
