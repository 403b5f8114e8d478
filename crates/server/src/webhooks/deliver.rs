//! The delivery worker: claims due deliveries from the queue in the database, signs and sends
//! each, and records how it went (in the queue, and in the record's timeline).
//!
//! Signature: `Brine-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! the key being the secret's text (`whsec_...`) as bytes. The receiver recomputes it over the
//! raw body, compares in constant time, and refuses old timestamps (replays).

use std::sync::Arc;
use std::time::Duration;

use brine_bridge::ssrf::{GuardedResolver, check_url, find_ssrf_error};
use brine_store::{ClaimedDelivery, DeliveryEnd};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::watch;
use uuid::Uuid;

use super::{SECRET_FIELD, SigningSecret, URL_FIELD, WebhookSettings, Webhooks};
use crate::audit::{Channel, Event, Outcome};
use crate::clock::now_ms;
use crate::extract::ClientInfo;

/// Deliveries claimed at once; they are sent concurrently.
const BATCH: u32 = 16;
/// Finished deliveries are kept this long for the owner's list, then deleted.
const KEEP_DONE: time::Duration = time::Duration::days(30);

/// The outbound client: no proxies from the environment, no redirects followed, a resolver that
/// refuses internal addresses at connect time (the bridges' SSRF guard), and timeouts.
pub fn client(settings: &WebhookSettings, allow_private: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver::new(allow_private)))
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .timeout(Duration::from_millis(settings.timeout_ms))
        .user_agent(concat!("brine-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The `v1` signature of `body` sent at unix time `t`: hex of HMAC-SHA256 keyed with the
/// secret's text, over `"<t>.<body>"`.
pub fn signature_header(secret: &str, t: i64, body: &str) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={sig}")
}

/// Why an attempt failed. Never carries the URL or the receiver's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The receiver answered with a status outside 2xx (a redirect included).
    Status(u16),
    Timeout,
    Unreachable,
    /// The URL's address may not be called.
    Refused,
    /// The webhook is gone, or its stored data cannot be opened.
    Gone,
}

impl Failure {
    fn error(self) -> &'static str {
        match self {
            Failure::Status(_) => "the receiver did not answer 2xx",
            Failure::Timeout => "the receiver did not answer in time",
            Failure::Unreachable => "the receiver could not be reached",
            Failure::Refused => "the URL's address is not allowed (internal or reserved network)",
            Failure::Gone => "the webhook is gone",
        }
    }

    fn status(self) -> Option<i64> {
        match self {
            Failure::Status(s) => Some(i64::from(s)),
            _ => None,
        }
    }
}

pub async fn run(hooks: Webhooks, client: reqwest::Client, mut stop: watch::Receiver<bool>) {
    // A claim per process: a restarted node does not own what its earlier run claimed (that
    // waits for its lease to end).
    let claim = Uuid::new_v4();
    let lease = time::Duration::milliseconds(
        i64::try_from(hooks.settings.timeout_ms).unwrap_or(i64::MAX / 2) + 30_000,
    );
    let poll = Duration::from_millis(hooks.settings.poll_ms);
    let mut pruned_at: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let now = now_ms();
        let claimed = match hooks
            .store
            .claim_deliveries(now, now + lease, claim, BATCH)
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "cannot claim webhook deliveries");
                Vec::new()
            }
        };
        let full = claimed.len() == BATCH as usize;
        futures_util::future::join_all(
            claimed
                .into_iter()
                .map(|d| attempt(&hooks, &client, claim, d)),
        )
        .await;
        if pruned_at.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
            pruned_at = Some(tokio::time::Instant::now());
            if let Err(error) = hooks.store.prune_deliveries(now_ms() - KEEP_DONE).await {
                tracing::warn!(%error, "cannot delete old webhook deliveries");
            }
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = hooks.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The wait before retry number `attempts` (1 after the first failure): doubling from the
/// base, capped.
fn backoff(settings: &WebhookSettings, attempts: i64) -> time::Duration {
    let doublings = u32::try_from((attempts - 1).clamp(0, 30)).unwrap_or(30);
    let ms = settings
        .retry_base_ms
        .saturating_mul(1u64 << doublings)
        .min(settings.retry_max_ms);
    time::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX / 2))
}

async fn attempt(hooks: &Webhooks, client: &reqwest::Client, claim: Uuid, d: ClaimedDelivery) {
    let sent = send(hooks, client, &d).await;
    let now = now_ms();
    let max = i64::from(hooks.settings.max_attempts);
    let mut detail = json!({
        "event_type": d.event_type,
        "event_id": d.event_id,
        "attempt": d.attempts,
    });
    let (end, outcome) = match sent {
        Ok(status) => {
            detail["status"] = json!(status);
            (
                DeliveryEnd::Delivered {
                    status: i64::from(status),
                },
                Outcome::Delivered,
            )
        }
        Err(Failure::Gone) => return,
        Err(failure) => {
            detail["status"] = json!(failure.status());
            detail["error"] = json!(failure.error());
            let end = if d.attempts >= max {
                detail["gave_up"] = json!(true);
                DeliveryEnd::GaveUp {
                    status: failure.status(),
                    error: failure.error(),
                }
            } else {
                let at = now + backoff(&hooks.settings, d.attempts);
                detail["next_attempt_at"] = json!(
                    at.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                );
                DeliveryEnd::Retry {
                    at,
                    status: failure.status(),
                    error: failure.error(),
                }
            };
            (end, Outcome::DeliveryFailed)
        }
    };
    match hooks.store.finish_delivery(d.id, claim, end, now).await {
        Ok(true) => {}
        // The webhook was removed meanwhile, or the lease ran out and another node took it.
        Ok(false) => return,
        Err(error) => tracing::warn!(%error, "cannot record a webhook delivery"),
    }
    tracing::info!(
        record = %d.record,
        event = %d.event_id,
        attempt = d.attempts,
        outcome = outcome.as_str(),
        "webhook delivery attempt"
    );
    let event = Event::new(d.record, Channel::Webhook, outcome, &ClientInfo::default())
        .detail(detail.to_string());
    if hooks.audit.append(event).await.is_err() {
        tracing::warn!(record = %d.record, "a webhook delivery was not recorded in the timeline");
    }
}

async fn send(
    hooks: &Webhooks,
    client: &reqwest::Client,
    d: &ClaimedDelivery,
) -> Result<u16, Failure> {
    let hook = match hooks.store.webhook(d.record).await {
        Ok(Some(hook)) => hook,
        Ok(None) => return Err(Failure::Gone),
        Err(error) => {
            tracing::warn!(%error, "cannot read a webhook");
            return Err(Failure::Unreachable);
        }
    };
    let opened = hooks
        .key
        .open(d.record, URL_FIELD, hook.url_key_version, &hook.url)
        .ok()
        .and_then(|u| String::from_utf8(u.to_vec()).ok())
        .and_then(|u| url::Url::parse(&u).ok());
    let secret = hooks
        .key
        .open(
            d.record,
            SECRET_FIELD,
            hook.secret_key_version,
            &hook.secret,
        )
        .and_then(SigningSecret::from_bytes);
    let (Some(url), Ok(secret)) = (opened, secret) else {
        tracing::error!(record = %d.record, "a webhook's URL or secret cannot be opened");
        return Err(Failure::Gone);
    };
    if check_url(&url, hooks.allow_private).is_err() {
        return Err(Failure::Refused);
    }
    let t = now_ms().unix_timestamp();
    let mut headers = HeaderMap::new();
    // A webhook pointed at brine itself is refused as a loop, like a bridge that calls itself.
    hooks.loops.mark(&mut headers);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let signature = HeaderValue::from_str(&signature_header(secret.expose(), t, &d.payload))
        .map_err(|_| Failure::Gone)?;
    headers.insert("brine-signature", signature);
    let text = |s: &str| HeaderValue::from_str(s).map_err(|_| Failure::Gone);
    headers.insert("brine-event-id", text(&d.event_id.to_string())?);
    headers.insert("brine-event-type", text(&d.event_type)?);
    headers.insert("brine-delivery-attempt", text(&d.attempts.to_string())?);
    let sent = client
        .post(url)
        .headers(headers)
        .body(d.payload.clone())
        .send()
        .await;
    match sent {
        Ok(res) if res.status().is_success() => Ok(res.status().as_u16()),
        Ok(res) => Err(Failure::Status(res.status().as_u16())),
        // reqwest's messages name the URL: only the kind of failure is kept.
        Err(e) if find_ssrf_error(&e).is_some() => Err(Failure::Refused),
        Err(e) if e.is_timeout() => Err(Failure::Timeout),
        Err(_) => Err(Failure::Unreachable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = WebhookSettings {
            retry_base_ms: 1_000,
            retry_max_ms: 5_000,
            ..WebhookSettings::default()
        };
        let secs: Vec<i64> = (1..=5).map(|a| backoff(&s, a).whole_seconds()).collect();
        assert_eq!(secs, [1, 2, 4, 5, 5]);
        assert_eq!(backoff(&s, 1_000).whole_seconds(), 5);
    }

    #[test]
    fn the_signature_covers_time_and_body() {
        let a = signature_header("whsec_test", 1_700_000_000, r#"{"a":1}"#);
        assert!(a.starts_with("t=1700000000,v1="), "{a}");
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(
            a,
            signature_header("whsec_test", 1_700_000_001, r#"{"a":1}"#)
        );
        assert_ne!(
            a,
            signature_header("whsec_test", 1_700_000_000, r#"{"a":2}"#)
        );
        assert_ne!(
            a,
            signature_header("whsec_other", 1_700_000_000, r#"{"a":1}"#)
        );
    }
}
