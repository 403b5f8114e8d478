//! Intake links ("request a secret"): a one-time link on which someone outside the account
//! submits a value for its owner, into a new private credential or a bridge's header.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Timestamp;

/// Where a link's value goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum IntakeInto {
    /// A new private credential with its own X-API-Key. The key is issued when the link is made
    /// and shown once, in that answer; the record appears when the value arrives.
    Credential {
        /// The new record's name (default: what the link asks for).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(example = "Staging database URL")]
        name: Option<String>,
    },
    /// A header of one of your bridges, set to `template` with `{{value}}` replaced by the
    /// value (the bridge's other headers and settings stay as they are).
    BridgeHeader {
        bridge: Uuid,
        #[schema(example = "Authorization")]
        header: String,
        #[schema(example = "Bearer {{value}}")]
        template: String,
    },
}

/// Makes an intake link.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntake {
    /// What the person is asked for, shown on the link's page (not secret).
    #[schema(example = "the staging database URL")]
    pub asked_for: String,
    /// A password the person must type to submit (send it through another channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The link stops accepting a value at this time.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    pub into: IntakeInto,
}

/// An intake link as its owner sees it (never its token or the value).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntakeView {
    pub id: Uuid,
    pub asked_for: String,
    /// `open`, `used`, `expired` or `revoked`.
    #[schema(example = "open")]
    pub state: String,
    pub into: IntakeInto,
    /// The record that gets the value: the new credential's uuid (it exists once the link is
    /// used), or the bridge's.
    pub record: Uuid,
    pub has_password: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A new link: its address and, for a credential, the X-API-Key, each shown only here.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntakeCreated {
    #[serde(flatten)]
    pub link: IntakeView,
    /// The link to send (it holds the link's secret token; brine keeps only its hash).
    #[schema(example = "https://brine.example.com/intake/3q2-7wQ...")]
    pub url: String,
    /// For a credential: the new record's X-API-Key. It opens the value once it arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntakeList {
    pub links: Vec<IntakeView>,
}
