//! The owner's operations on a record's webhook: set, show, remove, rotate the signing secret.

use brine_bridge::ssrf::check_url;
use brine_proto::{BurstRule, DeliveryView, WebhookBody, WebhookView};
use brine_store::{Record, Webhook};
use serde_json::json;
use uuid::Uuid;

use super::{DEFAULT_BURST, EventType, SECRET_FIELD, SigningSecret, URL_FIELD, Watch, Webhooks};
use crate::audit::{Channel, Event, Outcome};
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::owner::{OwnerError, OwnerResult};

const MAX_URL: usize = 2048;
/// Deliveries listed with the webhook.
const LISTED: u32 = 20;

fn invalid(field: &'static str, message: impl Into<String>) -> OwnerError {
    OwnerError::Invalid {
        field,
        message: message.into(),
    }
}

/// A webhook as the owner asked for it, checked.
struct Setup {
    url: url::Url,
    events: Vec<EventType>,
    burst: (i64, i64),
}

fn parse(body: WebhookBody, allow_private: bool) -> OwnerResult<Setup> {
    let text = body.url.trim();
    if text.len() > MAX_URL {
        return Err(invalid("url", "The URL is longer than 2048 characters."));
    }
    let url = url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| {
            invalid(
                "url",
                "The URL must be an http or https URL, such as https://hooks.example.com/brine.",
            )
        })?;
    // The same guard as bridges: a name is checked again on each delivery, where it resolves.
    if check_url(&url, allow_private).is_err() {
        return Err(invalid(
            "url",
            "The URL's address is not allowed (an internal or reserved network).",
        ));
    }
    let mut events = Vec::new();
    for name in &body.events {
        let event = EventType::parse(name.trim()).ok_or_else(|| {
            invalid(
                "events",
                "Unknown event: choose from secure_page.first_reveal, \
                 record.first_use_after_rotation and record.failed_attempts_burst.",
            )
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    if events.is_empty() {
        return Err(invalid("events", "Choose at least one event."));
    }
    let burst = match body.failed_attempts {
        None => DEFAULT_BURST,
        Some(rule) => {
            if !(2..=10_000).contains(&rule.threshold) || !(10..=86_400).contains(&rule.window_secs)
            {
                return Err(invalid(
                    "failed_attempts",
                    "A burst is 2 to 10000 failed attempts within 10 to 86400 seconds.",
                ));
            }
            (i64::from(rule.threshold), i64::from(rule.window_secs))
        }
    };
    Ok(Setup { url, events, burst })
}

fn events_text(events: &[EventType]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl Webhooks {
    /// The owner's record, or `NotFound`.
    async fn owned(&self, owner: Uuid, uuid: Uuid) -> OwnerResult<Record> {
        match self.store.record(uuid).await? {
            Some(record) if record.owner_id == owner => Ok(record),
            _ => Err(OwnerError::NotFound),
        }
    }

    async fn audit(&self, uuid: Uuid, outcome: Outcome, client: &ClientInfo, detail: String) {
        let event = Event::new(uuid, Channel::Owner, outcome, client).detail(detail);
        if self.audit.append(event).await.is_err() {
            tracing::warn!(record = %uuid, "a webhook change was not recorded");
        }
    }

    /// Sets or replaces the record's webhook. A new webhook gets a signing secret, returned
    /// once in the answer; replacing keeps the secret. Returns the webhook and whether it is new.
    pub async fn put(
        &self,
        owner: Uuid,
        uuid: Uuid,
        body: WebhookBody,
        client: &ClientInfo,
    ) -> OwnerResult<(WebhookView, bool)> {
        let setup = parse(body, self.allow_private)?;
        self.owned(owner, uuid).await?;
        let now = now_ms();
        let earlier = self.store.webhook(uuid).await?;
        let (secret, sealed, created_at) = match &earlier {
            Some(hook) => (
                None,
                (hook.secret.clone(), hook.secret_key_version),
                hook.created_at,
            ),
            None => {
                let secret = SigningSecret::generate()?;
                let sealed = self
                    .key
                    .seal(uuid, SECRET_FIELD, secret.expose().as_bytes())?;
                (Some(secret), sealed, now)
            }
        };
        let (url, url_key_version) =
            self.key
                .seal(uuid, URL_FIELD, setup.url.as_str().as_bytes())?;
        let hook = Webhook {
            record: uuid,
            url,
            url_key_version,
            secret: sealed.0,
            secret_key_version: sealed.1,
            events: events_text(&setup.events),
            burst_threshold: setup.burst.0,
            burst_window_secs: setup.burst.1,
            created_at,
            updated_at: now,
        };
        self.store.put_webhook(&hook).await?;
        if let Ok(mut watches) = self.watches.write() {
            watches.insert(uuid, Watch::of(&watch_of(&hook)));
        }
        let detail = json!({"events": setup.events.iter().map(|e| e.as_str()).collect::<Vec<_>>()});
        self.audit(uuid, Outcome::WebhookSet, client, detail.to_string())
            .await;
        let mut view = self.view(&hook, setup.url.to_string()).await?;
        view.secret = secret.map(|s| s.expose().to_owned());
        Ok((view, earlier.is_none()))
    }

    /// The record's webhook (without its secret), or `None`.
    pub async fn show(&self, owner: Uuid, uuid: Uuid) -> OwnerResult<Option<WebhookView>> {
        self.owned(owner, uuid).await?;
        let Some(hook) = self.store.webhook(uuid).await? else {
            return Ok(None);
        };
        let url = self
            .key
            .open(uuid, URL_FIELD, hook.url_key_version, &hook.url)?;
        let url = String::from_utf8(url.to_vec())
            .map_err(|_| crate::fault::Fault::Internal("a webhook URL that is not text"))?;
        Ok(Some(self.view(&hook, url).await?))
    }

    /// Removes the webhook and its queued deliveries; false when there was none.
    pub async fn remove(&self, owner: Uuid, uuid: Uuid, client: &ClientInfo) -> OwnerResult<bool> {
        self.owned(owner, uuid).await?;
        let removed = self.store.delete_webhook(uuid).await?;
        if let Ok(mut watches) = self.watches.write() {
            watches.remove(&uuid);
        }
        if removed {
            self.audit(uuid, Outcome::WebhookRemoved, client, "{}".into())
                .await;
        }
        Ok(removed)
    }

    /// Issues a new signing secret (the old one stops signing at once); `None` when the record
    /// has no webhook.
    pub async fn rotate_secret(
        &self,
        owner: Uuid,
        uuid: Uuid,
        client: &ClientInfo,
    ) -> OwnerResult<Option<SigningSecret>> {
        self.owned(owner, uuid).await?;
        let secret = SigningSecret::generate()?;
        let (sealed, key_version) =
            self.key
                .seal(uuid, SECRET_FIELD, secret.expose().as_bytes())?;
        if !self
            .store
            .set_webhook_secret(uuid, &sealed, key_version, now_ms())
            .await?
        {
            return Ok(None);
        }
        self.audit(uuid, Outcome::WebhookSecretRotated, client, "{}".into())
            .await;
        Ok(Some(secret))
    }

    async fn view(&self, hook: &Webhook, url: String) -> OwnerResult<WebhookView> {
        let deliveries = self.store.deliveries(hook.record, LISTED).await?;
        Ok(WebhookView {
            url,
            events: hook
                .events
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            failed_attempts: BurstRule {
                threshold: u32::try_from(hook.burst_threshold).unwrap_or(u32::MAX),
                window_secs: u32::try_from(hook.burst_window_secs).unwrap_or(u32::MAX),
            },
            created_at: hook.created_at,
            updated_at: hook.updated_at,
            deliveries: deliveries
                .into_iter()
                .map(|d| DeliveryView {
                    event_id: d.event_id,
                    event_type: d.event_type,
                    state: d.state,
                    attempts: d.attempts,
                    created_at: d.created_at,
                    next_attempt_at: d.next_attempt_at,
                    last_status: d.last_status,
                })
                .collect(),
            secret: None,
        })
    }
}

fn watch_of(hook: &Webhook) -> brine_store::WebhookWatch {
    brine_store::WebhookWatch {
        record: hook.record,
        events: hook.events.clone(),
        burst_threshold: hook.burst_threshold,
        burst_window_secs: hook.burst_window_secs,
    }
}
