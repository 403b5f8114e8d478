//! Audit events. Each attempt on a record is stored before its answer leaves the server; if the
//! event cannot be stored, the attempt fails (a secret is never served unaccounted).

use uuid::Uuid;

use crate::clock::now_ms;
use crate::error::ApiResult;
use crate::extract::ClientInfo;
use crate::state::AppState;

/// How a record was reached.
#[derive(Debug, Clone, Copy)]
pub enum Channel {
    /// `/r/{uuid}` with an X-API-Key, or without one for public records.
    Read,
    /// `POST /r/{uuid}` with the record password.
    Password,
    /// The owner's actions in the management API: reveal, rotation, changes.
    Owner,
    /// The password-protected page for a person, `/secure/{uuid}`.
    SecurePage,
    /// A call proxied by a bridge.
    Bridge,
    /// A read or proxied call made as one item of `POST /batch`.
    Batch,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Read => "read",
            Channel::Password => "password",
            Channel::Owner => "owner",
            Channel::SecurePage => "secure_page",
            Channel::Bridge => "bridge",
            Channel::Batch => "batch",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Ok,
    /// Missing or wrong X-API-Key or password.
    Denied,
    /// An owner-only record asked for on the public endpoint.
    Forbidden,
    /// Expired, or out of reads or views.
    Gone,
    /// Refused by a lockout or rate limit before any check.
    RateLimited,
    /// A secure page was loaded (no secret shown): a person, or a link-preview bot.
    Opened,
    /// An unlock attempt still being checked (settled as revealed, denied, gone, ...).
    Attempt,
    /// A secure page showed the value.
    Revealed,
    Rotated,
    KeyRemoved,
    PageEnabled,
    PageDisabled,
    Updated,
    /// The owner ran a bridge from the playground.
    Tried,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Forbidden => "forbidden",
            Outcome::Gone => "gone",
            Outcome::RateLimited => "rate_limited",
            Outcome::Opened => "opened",
            Outcome::Attempt => "attempt",
            Outcome::Revealed => "revealed",
            Outcome::Rotated => "rotated",
            Outcome::KeyRemoved => "key_removed",
            Outcome::PageEnabled => "secure_page_enabled",
            Outcome::PageDisabled => "secure_page_disabled",
            Outcome::Updated => "updated",
            Outcome::Tried => "tried",
        }
    }
}

/// Stores an event; returns its id (to settle an `Attempt` later).
pub async fn record_event(
    state: &AppState,
    record: Uuid,
    channel: Channel,
    outcome: Outcome,
    client: &ClientInfo,
) -> ApiResult<i64> {
    record_event_with_detail(state, record, channel, outcome, client, None).await
}

/// [`record_event`] with details (JSON) of a proxied call.
pub async fn record_event_with_detail(
    state: &AppState,
    record: Uuid,
    channel: Channel,
    outcome: Outcome,
    client: &ClientInfo,
    detail: Option<&str>,
) -> ApiResult<i64> {
    Ok(state
        .store
        .append_event(&brine_store::NewAuditEvent {
            record,
            at: now_ms(),
            channel: channel.as_str(),
            outcome: outcome.as_str(),
            client_ip: client.ip.as_deref(),
            user_agent: client.user_agent.as_deref(),
            detail,
        })
        .await?)
}
