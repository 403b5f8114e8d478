//! Handoffs: one value handed to someone until an end date, as two records — a secure page for
//! the person and a private record with its own X-API-Key for their code.

use brine_core::RecordStatus;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Timestamp;

/// Starts a handoff. The answer holds the page password and the X-API-Key, once.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHandoff {
    /// For whom (1 to 120 characters; not secret). The two records are named after it.
    #[schema(example = "Ana (contractor)")]
    pub name: String,
    /// The value to hand over (stored encrypted in both records).
    pub data: String,
    /// When both records stop working (in the future, at most 400 days away).
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: Timestamp,
}

/// Whether the handoff still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandoffState {
    Active,
    Ended,
}

/// One of a handoff's two records.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HandoffRecord {
    pub uuid: Uuid,
    /// The record's name in your list.
    pub name: String,
    /// `/secure/{uuid}` for the person's record, `/r/{uuid}` for the code's.
    pub path: String,
    /// Whether it still answers, and if not, why (`disabled` once the handoff ended).
    pub status: RecordStatus,
    /// When it was last opened successfully (a reveal, a read); `null` when never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// What the owner must still do once a handoff has ended: whoever saw the key may have kept a
/// copy, which no vault can take back.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HandoffTodo {
    #[schema(example = "Rotate the upstream key at the provider")]
    pub task: String,
    /// When you ticked it; `null` while it is still to do.
    #[serde(with = "time::serde::rfc3339::option")]
    pub done_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HandoffView {
    pub id: Uuid,
    pub name: String,
    pub state: HandoffState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// `schedule` (the end date came) or `owner` (ended early).
    pub ended_by: Option<String>,
    /// The person's record (`null` once you deleted it).
    pub page_record: Option<HandoffRecord>,
    /// The code's record (`null` once you deleted it).
    pub code_record: Option<HandoffRecord>,
    /// Present once the handoff has ended.
    pub todo: Option<HandoffTodo>,
}

/// A new handoff, with what to send: the link and the password over different channels, the
/// X-API-Key to the person's code. The password and the key are shown in this answer only.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct HandoffCreated {
    pub handoff: HandoffView,
    /// The secure page's generated password. Send it over another channel than the link.
    pub page_password: String,
    /// The code record's X-API-Key.
    pub api_key: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HandoffList {
    /// Newest first.
    pub handoffs: Vec<HandoffView>,
}
