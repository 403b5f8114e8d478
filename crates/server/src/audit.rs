//! Audit events. Each attempt on a record is stored before its answer leaves the server; if the
//! event cannot be stored, the attempt fails (a secret is never served unaccounted).

use std::sync::Arc;

use brine_store::{NewAuditEvent, Settle, Store};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
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
    /// A bridge call the caller's input could not make (missing or hostile parameter).
    BadRequest,
    /// A bridge upstream at an address that may not be called.
    Refused,
    Timeout,
    Unreachable,
    /// An upstream answer that could not be relayed (too large, compressed).
    Error,
    /// A request that brine itself sent came back to it (a bridge that calls itself).
    Loop,
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
            Outcome::BadRequest => "bad_request",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::Error => "error",
            Outcome::Loop => "loop",
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
    state
        .audit
        .append(Pending {
            record,
            at: now_ms(),
            channel,
            outcome,
            client_ip: client.addr.map(|ip| ip.to_string()),
            user_agent: client.user_agent.clone(),
            detail: detail.map(str::to_owned),
        })
        .await
}

/// An event on its way to the log.
pub struct Pending {
    record: Uuid,
    at: OffsetDateTime,
    channel: Channel,
    outcome: Outcome,
    client_ip: Option<String>,
    user_agent: Option<String>,
    detail: Option<String>,
}

/// A job for the writer: a new event (answered with its id), or the outcome of an earlier one.
enum Job {
    Append(Pending, oneshot::Sender<Result<i64, ()>>),
    Settle {
        id: i64,
        outcome: Outcome,
        detail: Option<String>,
        done: Option<oneshot::Sender<Result<i64, ()>>>,
    },
}

/// Writes audit events with group commits: whatever arrives while one transaction is being
/// written goes into the next, so a busy server writes many events per commit instead of
/// queueing on the database's write lock. Each caller still waits until its own event is stored.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Job>,
}

const MAX_GROUP: usize = 512;

impl AuditLog {
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (queue, mut incoming) = mpsc::channel::<Job>(4 * MAX_GROUP);
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(MAX_GROUP);
            while incoming.recv_many(&mut group, MAX_GROUP).await > 0 {
                write_group(store.as_ref(), &mut group).await;
            }
        });
        Self { queue }
    }

    async fn append(&self, event: Pending) -> ApiResult<i64> {
        let (reply, stored) = oneshot::channel();
        self.queue
            .send(Job::Append(event, reply))
            .await
            .map_err(|_| ApiError::internal())?;
        // No answer leaves before its event is stored: a failure here fails the request.
        stored
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|()| ApiError::internal())
    }

    /// Settles an event and waits until that is stored.
    pub async fn settle(&self, id: i64, outcome: Outcome, detail: Option<String>) -> ApiResult<()> {
        let (done, stored) = oneshot::channel();
        self.queue
            .send(Job::Settle {
                id,
                outcome,
                detail,
                done: Some(done),
            })
            .await
            .map_err(|_| ApiError::internal())?;
        stored
            .await
            .map_err(|_| ApiError::internal())?
            .map(|_| ())
            .map_err(|()| ApiError::internal())
    }

    /// Settles an event in the background (for details known only after the answer is gone).
    pub fn settle_later(&self, id: i64, outcome: Outcome, detail: String) {
        let job = Job::Settle {
            id,
            outcome,
            detail: Some(detail),
            done: None,
        };
        if self.queue.try_send(job).is_err() {
            tracing::warn!(
                event = id,
                "audit queue full: a call's final details were not recorded"
            );
        }
    }
}

async fn write_group(store: &dyn Store, group: &mut Vec<Job>) {
    let mut events = Vec::new();
    let mut settles = Vec::new();
    for job in group.iter() {
        match job {
            Job::Append(p, _) => events.push(NewAuditEvent {
                record: p.record,
                at: p.at,
                channel: p.channel.as_str(),
                outcome: p.outcome.as_str(),
                client_ip: p.client_ip.as_deref(),
                user_agent: p.user_agent.as_deref(),
                detail: p.detail.as_deref(),
            }),
            Job::Settle {
                id,
                outcome,
                detail,
                ..
            } => settles.push(Settle {
                id: *id,
                outcome: outcome.as_str(),
                detail: detail.as_deref(),
            }),
        }
    }
    let stored = store.append_events(&events, &settles).await;
    drop((events, settles));
    let (stored, mut ids) = match stored {
        Ok(ids) => (true, ids.into_iter()),
        Err(e) => {
            tracing::error!(error = %e, jobs = group.len(), "cannot store audit events");
            (false, Vec::new().into_iter())
        }
    };
    for job in group.drain(..) {
        match job {
            Job::Append(_, reply) => {
                let _ = reply.send(ids.next().ok_or(()));
            }
            Job::Settle {
                done: Some(done), ..
            } => {
                let _ = done.send(if stored { Ok(0) } else { Err(()) });
            }
            Job::Settle { done: None, .. } => {}
        }
    }
}
