//! Audit events. Each attempt on a record is stored before its answer leaves the server; if the
//! event cannot be stored, the attempt fails (a secret is never served unaccounted).

use time::OffsetDateTime;
use uuid::Uuid;

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
    /// The owner's reveal in the dashboard API.
    Owner,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Read => "read",
            Channel::Password => "password",
            Channel::Owner => "owner",
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
    /// Expired, or out of reads.
    Gone,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Forbidden => "forbidden",
            Outcome::Gone => "gone",
        }
    }
}

pub async fn record_event(
    state: &AppState,
    record: Uuid,
    channel: Channel,
    outcome: Outcome,
    client: &ClientInfo,
) -> ApiResult<()> {
    state
        .store
        .append_event(&brine_store::NewAuditEvent {
            record,
            at: OffsetDateTime::now_utc(),
            channel: channel.as_str(),
            outcome: outcome.as_str(),
            client_ip: client.ip.as_deref(),
            user_agent: client.user_agent.as_deref(),
        })
        .await?;
    Ok(())
}
