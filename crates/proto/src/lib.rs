//! The wire types of brine's HTTP API: every request and answer body, typed once and shared by
//! the server (which documents them in its OpenAPI) and the CLI, so the two cannot drift.
//!
//! Request types skip absent fields when serialized, so that a client never sends `null` where
//! it means "leave as it is" (`null` is meaningful in a PATCH).

mod auth;
mod logs;
mod read;
mod records;
mod time_format;
mod tokens;
mod webhooks;

pub use auth::{
    AccountEventList, AccountEventView, AccountView, ChangePassword, Credentials,
    PasswordConfirmation, RecoveryCodes, RefreshBody, SessionList, SessionView, TokenBody,
    TwoFactorCode, TwoFactorSetup,
};
pub use logs::{
    ErrorCounts, LogEventList, LogQuery, RecordSeries, RecordUsageView, SeriesPoint, SeriesQuery,
    SummaryQuery, UsageSeries, UsageSummary,
};
pub use read::{BatchItem, BatchRequest, BatchResponse, BatchResult, DataBody, UnlockBody};
pub use records::{
    ApiKeyBody, BridgeBody, CreateRecord, EventList, EventQuery, EventView, RecordList, RecordView,
    RecordWithKey, RevealBody, RotateRecord, SecurePageBody, SecurePageView, TryCall, TryResult,
    UpdateRecord,
};
pub use time_format::Timestamp;
pub use tokens::{
    CreateServiceToken, NewServiceToken, ServiceTokenList, ServiceTokenView, TokenRecord,
};
pub use webhooks::{BurstRule, DeliveryView, WebhookBody, WebhookSecret, WebhookView};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The error envelope: every error answer of brine has this shape.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A short title, stable enough to match on.
    #[schema(example = "Not found")]
    pub error: Cow<'static, str>,
    /// One sentence for a person.
    #[schema(example = "No record exists at this address.")]
    pub message: Cow<'static, str>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
