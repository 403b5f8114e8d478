//! The triggers: which committed events make a delivery.
//!
//! The audit writer calls the [`WebhookTap`] for every stored event and settled outcome; it
//! looks only at records in this node's watches (one hash lookup) and passes the few events
//! that can matter to the trigger task through a bounded queue, so requests never wait on it.
//! The task decides "first" conditions in the database, by a conditional insert that one call
//! wins on any number of nodes, and remembers its decisions so that a busy record costs no
//! query per request.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use brine_store::{NewDelivery, Record, SlotKind};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{EventType, Watch, Watches, Webhooks};
use crate::audit::{Channel, Event, Outcome, Tap};
use crate::clock::now_ms;
use crate::fault::Fault;

/// An event that may trigger a delivery.
#[derive(Debug, Clone)]
pub struct Seen {
    record: Uuid,
    channel: Channel,
    outcome: Outcome,
    at: OffsetDateTime,
    client_ip: Option<String>,
    user_agent: Option<String>,
    /// The record's version that the answer was made from.
    version: Option<i64>,
}

const QUEUE: usize = 4096;
/// Attempts (unlocks, bridge calls under way) remembered until their outcome is settled.
const PENDING: usize = 4096;
/// Decisions remembered; forgetting one costs a query, never a second notification.
const DECIDED: usize = 16_384;

pub struct WebhookTap {
    watches: Watches,
    /// Attempt events of watched records, by id, waiting for their outcome.
    pending: Mutex<HashMap<i64, Seen>>,
    seen: mpsc::Sender<Seen>,
}

pub fn tap(watches: Watches) -> (WebhookTap, mpsc::Receiver<Seen>) {
    let (seen, rx) = mpsc::channel(QUEUE);
    let tap = WebhookTap {
        watches,
        pending: Mutex::default(),
        seen,
    };
    (tap, rx)
}

fn is_use(channel: Channel) -> bool {
    matches!(
        channel,
        Channel::Read | Channel::Batch | Channel::Bridge | Channel::Password
    )
}

fn is_failure(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Denied | Outcome::Forbidden)
}

/// Whether `watch` cares about an event that ended so.
fn matters(watch: &Watch, channel: Channel, outcome: Outcome) -> bool {
    (watch.first_reveal && channel == Channel::SecurePage && outcome == Outcome::Revealed)
        || (watch.first_use && outcome == Outcome::Ok && is_use(channel))
        || (watch.burst.is_some() && is_failure(outcome))
        || (watch.intake && channel == Channel::Intake && outcome == Outcome::Received)
}

impl WebhookTap {
    fn send(&self, seen: Seen) {
        // Closed only once the server is stopping: nothing to say then.
        if let Err(mpsc::error::TrySendError::Full(_)) = self.seen.try_send(seen) {
            tracing::warn!("webhook trigger queue full: an event was not looked at");
        }
    }
}

impl Tap for WebhookTap {
    fn stored(&self, id: i64, event: &Event) {
        let Some(watch) = self
            .watches
            .read()
            .ok()
            .and_then(|w| w.get(&event.record).copied())
        else {
            return;
        };
        let seen = || Seen {
            record: event.record,
            channel: event.channel,
            outcome: event.outcome,
            at: event.at(),
            client_ip: event.client_ip.clone(),
            user_agent: event.user_agent.clone(),
            version: event.expect_version,
        };
        if event.outcome == Outcome::Attempt {
            if let Ok(mut pending) = self.pending.lock() {
                if pending.len() >= PENDING {
                    pending.clear();
                }
                pending.insert(id, seen());
            }
        } else if matters(&watch, event.channel, event.outcome) {
            self.send(seen());
        }
    }

    fn settled(&self, id: i64, outcome: Outcome) {
        let found = match self.pending.lock() {
            Ok(mut pending) if !pending.is_empty() => pending.remove(&id),
            _ => None,
        };
        if let Some(mut seen) = found {
            seen.outcome = outcome;
            self.send(seen);
        }
    }
}

/// What the task has decided already.
#[derive(Default)]
struct Decided {
    /// Marks known to exist: (record, kind, mark).
    marks: HashSet<(Uuid, &'static str, i64)>,
    /// The record version whose X-API-Key was last looked at, per record.
    key_checked: HashMap<Uuid, i64>,
}

pub async fn run(hooks: Webhooks, mut seen: mpsc::Receiver<Seen>) {
    let mut decided = Decided::default();
    while let Some(event) = seen.recv().await {
        let Some(watch) = hooks.watch(event.record) else {
            continue;
        };
        if decided.marks.len() >= DECIDED {
            decided.marks.clear();
        }
        if decided.key_checked.len() >= DECIDED {
            decided.key_checked.clear();
        }
        if let Err(error) = consider(&hooks, &mut decided, watch, &event).await {
            tracing::warn!(record = %event.record, %error, "webhook trigger failed");
        }
    }
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

async fn consider(
    hooks: &Webhooks,
    decided: &mut Decided,
    watch: Watch,
    event: &Seen,
) -> Result<(), Fault> {
    let uuid = event.record;
    if watch.first_reveal
        && event.channel == Channel::SecurePage
        && event.outcome == Outcome::Revealed
    {
        let Some(record) = current(hooks, uuid).await? else {
            return Ok(());
        };
        // One "first" per password: setting the page's password again starts a new page.
        let Some(slot) = record.slot(SlotKind::SecurePage) else {
            return Ok(());
        };
        let page_set = slot.created_at;
        if take(hooks, decided, uuid, EventType::FirstReveal, ms(page_set)).await? {
            let data = json!({
                "revealed_at": rfc3339(event.at),
                "page_set_at": rfc3339(page_set),
                "client_ip": event.client_ip,
                "user_agent": event.user_agent,
            });
            enqueue(hooks, EventType::FirstReveal, &record, data).await?;
        }
    }
    if watch.first_use && event.outcome == Outcome::Ok && is_use(event.channel) {
        if let (Some(v), Some(checked)) = (event.version, decided.key_checked.get(&uuid))
            && v <= *checked
        {
            return Ok(());
        }
        let Some(record) = current(hooks, uuid).await? else {
            return Ok(());
        };
        decided.key_checked.insert(uuid, record.version);
        if let Some(slot) = record.slot(SlotKind::ApiKey) {
            // A key issued after the record was made (a rotation, or code access turned on
            // again); the slot written with the record is its first key, not a rotation.
            let rotated = slot.version > 1
                || slot.created_at - record.created_at > time::Duration::seconds(1);
            let key_set = slot.created_at;
            if rotated
                && take(
                    hooks,
                    decided,
                    uuid,
                    EventType::FirstUseAfterRotation,
                    ms(key_set),
                )
                .await?
            {
                let data = json!({
                    "channel": event.channel.as_str(),
                    "used_at": rfc3339(event.at),
                    "key_set_at": rfc3339(key_set),
                    "client_ip": event.client_ip,
                    "user_agent": event.user_agent,
                });
                enqueue(hooks, EventType::FirstUseAfterRotation, &record, data).await?;
            }
        }
    }
    // Each arrival is its own event (a link is used once): no "first" to decide.
    if watch.intake && event.channel == Channel::Intake && event.outcome == Outcome::Received {
        let Some(record) = current(hooks, uuid).await? else {
            return Ok(());
        };
        let data = json!({
            "received_at": rfc3339(event.at),
            "client_ip": event.client_ip,
            "user_agent": event.user_agent,
        });
        enqueue(hooks, EventType::IntakeReceived, &record, data).await?;
    }
    if let Some((threshold, window_secs)) = watch.burst
        && is_failure(event.outcome)
    {
        let window_ms = window_secs.max(1) * 1000;
        let window = ms(event.at).div_euclid(window_ms);
        let kind = EventType::FailedAttemptsBurst.mark_kind();
        if decided.marks.contains(&(uuid, kind, window)) {
            return Ok(());
        }
        let since = event.at - time::Duration::seconds(window_secs);
        let failures = hooks
            .store
            .count_events_since(
                uuid,
                [Outcome::Denied.as_str(), Outcome::Forbidden.as_str()],
                since,
            )
            .await?;
        if failures >= threshold
            && take(hooks, decided, uuid, EventType::FailedAttemptsBurst, window).await?
        {
            let Some(record) = current(hooks, uuid).await? else {
                return Ok(());
            };
            let data = json!({
                "failures": failures,
                "threshold": threshold,
                "window_secs": window_secs,
                "last_at": rfc3339(event.at),
                "last_channel": event.channel.as_str(),
                "last_outcome": event.outcome.as_str(),
                "last_client_ip": event.client_ip,
                "last_user_agent": event.user_agent,
            });
            enqueue(hooks, EventType::FailedAttemptsBurst, &record, data).await?;
        }
    }
    Ok(())
}

/// The record as the gate sees it now (from memory when it is there).
async fn current(hooks: &Webhooks, uuid: Uuid) -> Result<Option<std::sync::Arc<Record>>, Fault> {
    Ok(hooks.records.get(uuid, true).await?.map(|(r, _)| r))
}

/// Takes the mark in the database unless it is known to exist; true when this call took it.
async fn take(
    hooks: &Webhooks,
    decided: &mut Decided,
    uuid: Uuid,
    event: EventType,
    mark: i64,
) -> Result<bool, Fault> {
    let key = (uuid, event.mark_kind(), mark);
    if decided.marks.contains(&key) {
        return Ok(false);
    }
    let won = hooks
        .store
        .take_webhook_mark(uuid, event.mark_kind(), mark)
        .await?;
    decided.marks.insert(key);
    Ok(won)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Queues a delivery and wakes this node's worker.
async fn enqueue(
    hooks: &Webhooks,
    event: EventType,
    record: &Record,
    data: serde_json::Value,
) -> Result<(), Fault> {
    let id = Uuid::new_v4();
    let now = now_ms();
    let body = json!({
        "id": id,
        "type": event.as_str(),
        "created_at": rfc3339(now),
        "record": {"uuid": record.uuid, "name": record.name},
        "data": data,
    })
    .to_string();
    let queued = hooks
        .store
        .enqueue_delivery(&NewDelivery {
            event_id: id,
            record: record.uuid,
            event_type: event.as_str(),
            payload: &body,
            created_at: now,
        })
        .await?;
    if queued {
        tracing::info!(record = %record.uuid, event = event.as_str(), "webhook delivery queued");
        hooks.wake.notify_one();
    }
    Ok(())
}
