//! The audit log. Every attempt on a record is stored before its answer leaves the server; if the
//! event cannot be stored, the attempt fails (a secret is never served unaccounted).
//!
//! One writer task commits events in groups: whatever arrives while a group is being written
//! goes into the next, so a busy server writes many events per transaction and each request
//! waits for one hand-off, its own event's commit. Outcomes of events already stored (`settle`)
//! are queued without waiting; [`AuditLog::flush`] waits until everything queued is stored, so
//! readers of the log see every settle made before they asked.

use std::sync::{Arc, OnceLock};

use brine_store::{Appended, NewAuditEvent, Settle, Store};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::audit_file::{AuditFile, Line, raw};
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::metrics::{DbCall, Metrics};

/// How a record was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// A webhook delivery to the owner's receiver (not an access to the record).
    Webhook,
    /// A value submitted on an intake link (the owner's "request a secret").
    Intake,
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
            Channel::Webhook => "webhook",
            Channel::Intake => "intake",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Missing or wrong X-API-Key or password; a call the record's rules do not allow.
    Denied,
    /// An owner-only record asked for on the public endpoint, or a browser origin not allowed.
    Forbidden,
    /// Expired, or out of reads or views.
    Gone,
    /// Refused by a lockout, a rate limit, a quota or a cap on calls in flight.
    RateLimited,
    /// A secure page was loaded (no secret shown): a person, or a link-preview bot.
    Opened,
    /// An unlock attempt or an upstream call still under way (settled when it ends).
    Attempt,
    /// A secure page showed the value.
    Revealed,
    Rotated,
    KeyRemoved,
    PageEnabled,
    PageDisabled,
    /// The owner disabled the record (public channels answer as for an unknown uuid).
    Disabled,
    /// The owner enabled it again.
    Enabled,
    Updated,
    /// The owner ran a bridge from the playground.
    Tried,
    /// The owner sent a bridge's probe with its stored key.
    KeyTested,
    /// A new key for a bridge was refused: its probe was not accepted, or could not be sent.
    KeyRefused,
    /// A bridge call the caller's input could not make (missing or hostile parameter).
    BadRequest,
    /// A bridge upstream at an address that may not be called.
    Refused,
    Timeout,
    Unreachable,
    /// An upstream answer that could not be relayed (too large, compressed, no memory).
    Error,
    /// A request that brine itself sent came back to it (a bridge that calls itself).
    Loop,
    /// The owner set or changed the record's webhook.
    WebhookSet,
    WebhookRemoved,
    WebhookSecretRotated,
    /// A webhook's receiver accepted a delivery.
    Delivered,
    /// A webhook delivery attempt failed (retried later unless it was the last).
    DeliveryFailed,
    /// A value arrived through an intake link (a new credential, or a bridge's header).
    Received,
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
            Outcome::Disabled => "disabled",
            Outcome::Enabled => "enabled",
            Outcome::Updated => "updated",
            Outcome::Tried => "tried",
            Outcome::KeyTested => "key_tested",
            Outcome::KeyRefused => "key_refused",
            Outcome::BadRequest => "bad_request",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::Error => "error",
            Outcome::Loop => "loop",
            Outcome::WebhookSet => "webhook_set",
            Outcome::WebhookRemoved => "webhook_removed",
            Outcome::WebhookSecretRotated => "webhook_secret_rotated",
            Outcome::Delivered => "delivered",
            Outcome::DeliveryFailed => "delivery_failed",
            Outcome::Received => "received",
        }
    }
}

/// Why an event was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The store failed, or the writer is gone.
    #[error("the audit log cannot store events")]
    Unavailable,
    /// The record is gone, or changed since the answer was made from it.
    #[error("the record changed")]
    Stale,
}

/// An event to store.
pub struct Event {
    pub record: Uuid,
    pub channel: Channel,
    pub outcome: Outcome,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Details (JSON): a proxied call's, a refusal's.
    pub detail: Option<String>,
    /// Where the client is, when a GeoIP database is configured.
    pub country: Option<String>,
    pub city: Option<String>,
    /// Store it only if the record is still at this version (see `brine_store::NewAuditEvent`).
    pub expect_version: Option<i64>,
    at: OffsetDateTime,
}

impl Event {
    /// When it happened.
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }
}

impl Event {
    pub fn new(record: Uuid, channel: Channel, outcome: Outcome, client: &ClientInfo) -> Self {
        Self {
            record,
            channel,
            outcome,
            client_ip: client.origin.client_ip.clone(),
            user_agent: client.origin.user_agent.clone(),
            detail: None,
            country: client.origin.country.clone(),
            city: client.origin.city.clone(),
            expect_version: None,
            at: now_ms(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn expect_version(mut self, version: Option<i64>) -> Self {
        self.expect_version = version;
        self
    }
}

/// A job for the writer.
enum Job {
    Append(Event, oneshot::Sender<Result<i64, AuditError>>),
    Settle {
        id: i64,
        outcome: Outcome,
        detail: Option<String>,
    },
    /// Answered once everything queued before it is stored.
    Flush(oneshot::Sender<Result<(), AuditError>>),
}

#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Job>,
    tap: Arc<OnceLock<Arc<dyn Tap>>>,
}

/// Sees events once their group is committed, on the writer's task (the webhooks' triggers).
/// Both calls must be quick and never wait.
pub trait Tap: Send + Sync {
    /// An event was stored with this id.
    fn stored(&self, id: i64, event: &Event);
    /// An earlier event's outcome was stored.
    fn settled(&self, id: i64, outcome: Outcome);
}

const MAX_GROUP: usize = 512;
/// Times the writer lets other tasks run before it writes a group (see `AuditLog::start`).
const TOP_UP_ROUNDS: usize = 2;

impl AuditLog {
    pub fn start(store: Arc<dyn Store>, metrics: Metrics) -> Self {
        Self::start_with(store, metrics, None)
    }

    /// [`Self::start`], also writing each stored event to `file` (see `audit_file`).
    pub fn start_with(store: Arc<dyn Store>, metrics: Metrics, file: Option<AuditFile>) -> Self {
        let (queue, mut incoming) = mpsc::channel::<Job>(4 * MAX_GROUP);
        let tap = Arc::new(OnceLock::<Arc<dyn Tap>>::new());
        let writer_tap = tap.clone();
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(MAX_GROUP);
            while incoming.recv_many(&mut group, MAX_GROUP).await > 0 {
                // Let the requests that are ready to run first add their events: a group costs
                // about the same to write with one event as with fifty. This waits for no timer;
                // when nothing else is ready, the group is written at once.
                for _ in 0..TOP_UP_ROUNDS {
                    tokio::task::yield_now().await;
                    let room = MAX_GROUP - group.len();
                    if room == 0 || incoming.is_empty() {
                        break;
                    }
                    incoming.recv_many(&mut group, room).await;
                }
                metrics.db(DbCall::AuditGroup);
                let jobs = group.iter().filter(|j| !matches!(j, Job::Flush(_))).count();
                metrics.audit_events(jobs);
                let started = std::time::Instant::now();
                write_group(store.as_ref(), &mut group, file.as_ref(), writer_tap.get()).await;
                metrics.audit_group(jobs, started.elapsed());
            }
        });
        Self { queue, tap }
    }

    /// Installs the one tap (later calls are ignored).
    pub fn set_tap(&self, tap: Arc<dyn Tap>) {
        let _ = self.tap.set(tap);
    }

    /// Stores an event and returns its id once it is committed.
    pub async fn append(&self, event: Event) -> Result<i64, AuditError> {
        let (reply, stored) = oneshot::channel();
        self.queue
            .send(Job::Append(event, reply))
            .await
            .map_err(|_| AuditError::Unavailable)?;
        stored.await.map_err(|_| AuditError::Unavailable)?
    }

    /// Queues the outcome (and details) of an event already stored, without waiting for it to be
    /// written; it is written after everything queued before it.
    pub async fn settle(&self, id: i64, outcome: Outcome, detail: Option<String>) {
        let job = Job::Settle {
            id,
            outcome,
            detail,
        };
        if self.queue.send(job).await.is_err() {
            tracing::warn!(event = id, "audit writer gone: an outcome was not recorded");
        }
    }

    /// [`Self::settle`] from code that cannot wait (a body that has just ended).
    pub fn settle_now(&self, id: i64, outcome: Outcome, detail: String) {
        let job = Job::Settle {
            id,
            outcome,
            detail: Some(detail),
        };
        if self.queue.try_send(job).is_err() {
            tracing::warn!(
                event = id,
                "audit queue full: a call's final details were not recorded"
            );
        }
    }

    /// Waits until everything queued so far is stored.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (reply, done) = oneshot::channel();
        self.queue
            .send(Job::Flush(reply))
            .await
            .map_err(|_| AuditError::Unavailable)?;
        done.await.map_err(|_| AuditError::Unavailable)?
    }
}

async fn write_group(
    store: &dyn Store,
    group: &mut Vec<Job>,
    file: Option<&AuditFile>,
    tap: Option<&Arc<dyn Tap>>,
) {
    let mut events = Vec::new();
    let mut settles = Vec::new();
    for job in group.iter() {
        match job {
            Job::Append(e, _) => events.push(NewAuditEvent {
                record: e.record,
                at: e.at,
                channel: e.channel.as_str(),
                outcome: e.outcome.as_str(),
                client_ip: e.client_ip.as_deref(),
                user_agent: e.user_agent.as_deref(),
                detail: e.detail.as_deref(),
                country: e.country.as_deref(),
                city: e.city.as_deref(),
                expect_version: e.expect_version,
            }),
            Job::Settle {
                id,
                outcome,
                detail,
            } => settles.push(Settle {
                id: *id,
                outcome: outcome.as_str(),
                detail: detail.as_deref(),
            }),
            Job::Flush(_) => {}
        }
    }
    let stored = store.append_events(&events, &settles).await;
    drop((events, settles));
    let (written, mut results) = match stored {
        Ok(results) => (true, results.into_iter()),
        Err(e) => {
            tracing::error!(error = %e, jobs = group.len(), "cannot store audit events");
            (false, Vec::new().into_iter())
        }
    };
    for job in group.drain(..) {
        match job {
            Job::Append(event, reply) => {
                let result = match results.next() {
                    Some(Appended::Stored(id)) => Ok(id),
                    Some(Appended::Stale) => Err(AuditError::Stale),
                    None => Err(AuditError::Unavailable),
                };
                if let (Some(tap), Ok(id)) = (tap, &result) {
                    tap.stored(*id, &event);
                }
                if let (Some(file), Ok(id)) = (file, result) {
                    file.write(&Line {
                        id,
                        at: event.at,
                        record: Some(event.record),
                        channel: Some(event.channel.as_str()),
                        outcome: event.outcome.as_str(),
                        client_ip: event.client_ip.as_deref(),
                        user_agent: event.user_agent.as_deref(),
                        country: event.country.as_deref(),
                        city: event.city.as_deref(),
                        detail: raw(event.detail.as_deref()),
                        settled: false,
                    });
                }
                let _ = reply.send(result);
            }
            Job::Flush(reply) => {
                let _ = reply.send(if written {
                    Ok(())
                } else {
                    Err(AuditError::Unavailable)
                });
            }
            Job::Settle {
                id,
                outcome,
                detail,
            } => {
                if let (Some(tap), true) = (tap, written) {
                    tap.settled(id, outcome);
                }
                if let Some(file) = file.filter(|_| written) {
                    file.write(&Line {
                        id,
                        at: now_ms(),
                        record: None,
                        channel: None,
                        outcome: outcome.as_str(),
                        client_ip: None,
                        user_agent: None,
                        country: None,
                        city: None,
                        detail: raw(detail.as_deref()),
                        settled: true,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_store;

    #[tokio::test]
    async fn settles_are_stored_by_the_next_flush_and_stale_events_never() {
        let t = temp_store().await;
        let log = AuditLog::start(t.store.clone(), Metrics::default());
        let client = ClientInfo::default();
        let event = |outcome| Event::new(t.record, Channel::Read, outcome, &client);
        let id = log.append(event(Outcome::Attempt)).await.unwrap();
        log.settle(id, Outcome::Denied, Some(r#"{"why":"test"}"#.into()))
            .await;
        log.flush().await.unwrap();
        let stored = t
            .store
            .events(t.record, 10, &Default::default())
            .await
            .unwrap();
        assert_eq!(stored[0].outcome, "denied");
        assert_eq!(stored[0].detail.as_deref(), Some(r#"{"why":"test"}"#));

        // An event made from version 1 of a record now at version 2 is refused.
        let changes = brine_store::RecordChanges {
            name: Some("renamed".into()),
            ..Default::default()
        };
        t.store
            .update_record(t.record, t.owner, &changes)
            .await
            .unwrap();
        let stale = log.append(event(Outcome::Ok).expect_version(Some(1))).await;
        assert_eq!(stale, Err(AuditError::Stale));
        let fresh = log.append(event(Outcome::Ok).expect_version(Some(2))).await;
        assert!(fresh.is_ok());
        assert_eq!(
            t.store
                .events(t.record, 10, &Default::default())
                .await
                .unwrap()
                .len(),
            2
        );
    }
}
