//! Webhooks: a real receiver on loopback that checks every signature with its own HMAC
//! computation, following docs/logs.md (Webhooks) (not brine's signer); the three triggers; a
//! failing receiver retried; a delivery that outlives a restart; the SSRF guard on URLs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::*;

const PAGE_PASSWORD: &str = "sms-me-this 42";
/// A path that must never be found in the database (the URL is stored encrypted).
const HOOK_PATH: &str = "/hooks/canary-path-7f3a";

/// One request the receiver got.
#[derive(Clone)]
struct Got {
    headers: HeaderMap,
    body: String,
    /// What the receiver answered.
    status: u16,
}

/// A receiver that records every request, and fails (503) while `failing` is set.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    failing: Arc<AtomicBool>,
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Self::default();
        let app = axum::Router::new()
            .route(HOOK_PATH, axum::routing::post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{HOOK_PATH}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (boundedly) until `done` holds for what was received.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        for _ in 0..600 {
            let got = self.got();
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the receiver never got {what}: {} requests",
            self.got().len()
        );
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let status = if r.failing.load(Ordering::SeqCst) {
        AxumStatus::SERVICE_UNAVAILABLE
    } else {
        AxumStatus::OK
    };
    r.got.lock().unwrap().push(Got {
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
        status: status.as_u16(),
    });
    status
}

/// Checks a delivery as the documented receiver does: `Brine-Signature: t=<secs>,v1=<hex>`,
/// where v1 is HMAC-SHA256 keyed with the secret's text over "<t>.<raw body>".
fn verify(secret: &str, got: &Got) -> Value {
    let header = got.headers["brine-signature"].to_str().unwrap();
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (t, v1) = (t.expect("a t= part"), v1.expect("a v1= part"));
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", got.body).as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "the signature does not verify");
    // Fresh: within five minutes of now.
    let sent: i64 = t.parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - sent).abs() < 300, "t={sent}, now={now}");
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(
        got.headers["brine-event-id"].to_str().unwrap(),
        body["id"].as_str().unwrap()
    );
    assert_eq!(
        got.headers["brine-event-type"].to_str().unwrap(),
        body["type"].as_str().unwrap()
    );
    assert_eq!(got.headers["content-type"], "application/json");
    body
}

/// Settings for a test server whose receivers are on loopback, with quick retries.
fn quick(s: &mut brine_server::Settings) {
    s.allow_private_upstreams = true;
    s.webhooks.retry_base_ms = 100;
    s.webhooks.retry_max_ms = 400;
    s.webhooks.max_attempts = 100;
    s.webhooks.poll_ms = 100;
    s.webhooks.refresh_ms = 200;
}

async fn put_webhook(s: &TestServer, token: &str, uuid: &str, spec: Value) -> reqwest::Response {
    s.request(Method::PUT, &format!("/api/v1/records/{uuid}/webhook"))
        .bearer_auth(token)
        .json(&spec)
        .send()
        .await
        .unwrap()
}

async fn timeline(s: &TestServer, token: &str, uuid: &str, query: &str) -> Vec<Value> {
    let res = s
        .get(&format!("/api/v1/records/{uuid}/events?limit=500{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    body(res).await["events"].as_array().unwrap().clone()
}

/// Waits (boundedly) until the record's timeline has `n` webhook events with `outcome`.
async fn wait_timeline(
    s: &TestServer,
    token: &str,
    uuid: &str,
    outcome: &str,
    n: usize,
) -> Vec<Value> {
    let query = format!("&channel=webhook&outcome={outcome}");
    for _ in 0..600 {
        let events = timeline(s, token, uuid, &query).await;
        if events.len() >= n {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the timeline never showed {n} webhook {outcome} events");
}

async fn reveal(s: &TestServer, uuid: &str) {
    let url = s.url(&format!("/secure/{uuid}"));
    let form = LoadedForm::load(s.http.get(&url)).await;
    let res = form
        .post(&s.http, &url, &[("password", PAGE_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("sk_live_webhooked"));
}

fn of_type<'a>(got: &'a [Got], kind: &str) -> Vec<&'a Got> {
    got.iter()
        .filter(|g| g.headers["brine-event-type"] == kind)
        .collect()
}

each_backend! {
async fn each_trigger_fires_once_with_a_signature_that_verifies() {
    let s = TestServer::start_with(quick).await;
    let (receiver, url) = Receiver::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({
            "name": "Stripe for the contractor",
            "access": "private",
            "data": "sk_live_webhooked",
            "secure_page": {"enabled": true, "password": PAGE_PASSWORD},
        }))
        .await;
    let (uuid, first_key) = (uuid_of(&created), key_of(&created));

    let res = put_webhook(&s, &token, &uuid, json!({
        "url": url,
        "events": ["secure_page.first_reveal", "record.first_use_after_rotation",
                   "record.failed_attempts_burst"],
        "failed_attempts": {"threshold": 3, "window_secs": 600},
    }))
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let hook = body(res).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    assert_eq!(hook["url"], url.as_str());

    // Shown once: never in what GET answers.
    let res = s
        .get(&format!("/api/v1/records/{uuid}/webhook"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let shown = res.text().await.unwrap();
    assert!(!shown.contains(&secret) && !shown.contains("\"secret\""), "{shown}");
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["failed_attempts"], json!({"threshold": 3, "window_secs": 600}));

    // A use with the record's first key is no use after a rotation.
    assert_eq!(s.read(&uuid, Some(&first_key)).await.status(), StatusCode::OK);

    // Two reveals of the page: one notification.
    reveal(&s, &uuid).await;
    reveal(&s, &uuid).await;
    let got = receiver
        .wait_for("the first reveal", |g| !of_type(g, "secure_page.first_reveal").is_empty())
        .await;
    let reveal_body = verify(&secret, of_type(&got, "secure_page.first_reveal")[0]);
    assert_eq!(reveal_body["record"]["uuid"], uuid.as_str());
    assert_eq!(reveal_body["record"]["name"], "Stripe for the contractor");
    assert_eq!(reveal_body["data"]["client_ip"], "127.0.0.1");

    // A rotation, then two reads with the new key: one notification.
    let res = s
        .post(&format!("/api/v1/records/{uuid}/api-key"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let new_key = body(res).await["api_key"].as_str().unwrap().to_owned();
    assert_eq!(s.read(&uuid, Some(&new_key)).await.status(), StatusCode::OK);
    assert_eq!(s.read(&uuid, Some(&new_key)).await.status(), StatusCode::OK);
    let got = receiver
        .wait_for("the first use after the rotation", |g| {
            !of_type(g, "record.first_use_after_rotation").is_empty()
        })
        .await;
    let use_body = verify(&secret, of_type(&got, "record.first_use_after_rotation")[0]);
    assert_eq!(use_body["data"]["channel"], "read");

    // Five wrong keys, three make a burst: one notification for the window.
    for _ in 0..5 {
        let res = s.read(&uuid, Some("brk_wrong_key")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let got = receiver
        .wait_for("the burst", |g| !of_type(g, "record.failed_attempts_burst").is_empty())
        .await;
    let burst = verify(&secret, of_type(&got, "record.failed_attempts_burst")[0]);
    assert!(burst["data"]["failures"].as_i64().unwrap() >= 3, "{burst}");
    assert_eq!(burst["data"]["threshold"], 3);

    // Each delivery shows in the timeline; then nothing more arrives: each fired once.
    wait_timeline(&s, &token, &uuid, "delivered", 3).await;
    // Another reveal, read and failure after the timeline settled: still nothing new.
    reveal(&s, &uuid).await;
    assert_eq!(s.read(&uuid, Some(&new_key)).await.status(), StatusCode::OK);
    assert_eq!(s.read(&uuid, Some("brk_wrong_key")).await.status(), StatusCode::UNAUTHORIZED);
    // The owner's own action passes through the same writer after those events, so once it is
    // in the timeline, the triggers have seen them.
    let res = s
        .get(&format!("/api/v1/records/{uuid}/value"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.got();
    assert_eq!(got.len(), 3, "one delivery per trigger");
    for g in &got {
        verify(&secret, g);
        assert!(!g.body.contains("sk_live_webhooked") && !g.body.contains(&new_key));
    }
    let delivered = wait_timeline(&s, &token, &uuid, "delivered", 3).await;
    assert_eq!(delivered.len(), 3);
    let detail = &delivered[0]["detail"];
    assert_eq!(detail["attempt"], 1);
    assert_eq!(detail["status"], 200);
    assert!(detail["event_type"].as_str().unwrap().contains('.'));
    let deliveries = body(
        s.get(&format!("/api/v1/records/{uuid}/webhook"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await["deliveries"]
        .clone();
    assert_eq!(deliveries.as_array().unwrap().len(), 3);
    assert!(deliveries.as_array().unwrap().iter().all(|d| d["state"] == "delivered"));

    // The secret and the URL are nowhere in the database in plaintext (SQLite: the file).
    let s = TestServer::restart_with(s.stop().await, quick).await;
    if !s.database_url().starts_with("postgres") {
        let mut bytes = Vec::new();
        for suffix in ["brine.db", "brine.db-wal"] {
            if let Ok(b) = std::fs::read(s.data_dir.join(suffix)) {
                bytes.extend(b);
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&secret), "the signing secret is stored in plaintext");
        assert!(!text.contains("canary-path-7f3a"), "the webhook URL is stored in plaintext");
    }

    // Rotating the secret: the old one is never shown again, the new one signs.
    let res = s
        .post(&format!("/api/v1/records/{uuid}/webhook/secret"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotated = body(res).await["secret"].as_str().unwrap().to_owned();
    assert_ne!(rotated, secret);

    // Removing it: GET answers 404 with the envelope, and so does a second DELETE.
    let res = s
        .request(Method::DELETE, &format!("/api/v1/records/{uuid}/webhook"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::DELETE] {
        let res = s
            .request(method, &format!("/api/v1/records/{uuid}/webhook"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let error = expect_error(res, StatusCode::NOT_FOUND).await;
        assert_eq!(error["message"], "This record has no webhook.");
    }
}

async fn a_failing_receiver_is_retried_and_the_delivery_survives_a_restart() {
    let s = TestServer::start_with(quick).await;
    let (receiver, url) = Receiver::start().await;
    receiver.failing.store(true, Ordering::SeqCst);
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({"name": "Busy", "access": "private", "data": "v"}))
        .await;
    let uuid = uuid_of(&created);
    let res = put_webhook(&s, &token, &uuid, json!({
        "url": url,
        "events": ["record.failed_attempts_burst"],
        "failed_attempts": {"threshold": 2, "window_secs": 600},
    }))
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let secret = body(res).await["secret"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        assert_eq!(s.read(&uuid, Some("brk_wrong")).await.status(), StatusCode::UNAUTHORIZED);
    }

    // The receiver fails: brine tries again, each failure in the timeline.
    receiver.wait_for("a retry", |g| g.len() >= 2).await;
    let failed = wait_timeline(&s, &token, &uuid, "delivery_failed", 2).await;
    assert_eq!(failed[0]["detail"]["status"], 503);
    assert_eq!(failed[0]["detail"]["event_type"], "record.failed_attempts_burst");
    assert!(failed[0]["detail"]["next_attempt_at"].is_string());

    // The server stops with the delivery still queued; the receiver recovers meanwhile.
    let leftovers = s.stop().await;
    let before = receiver.got();
    assert!(before.iter().all(|g| g.status == 503));
    let event_id = before[0].headers["brine-event-id"].clone();
    assert!(before.iter().all(|g| g.headers["brine-event-id"] == event_id), "one event, retried");
    receiver.failing.store(false, Ordering::SeqCst);

    let s = TestServer::restart_with(leftovers, quick).await;
    let got = receiver.wait_for("the delivery after the restart", |g| {
        g.iter().any(|g| g.status == 200)
    })
    .await;
    let ok: Vec<&Got> = got.iter().filter(|g| g.status == 200).collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].headers["brine-event-id"], event_id);
    let attempt: usize = ok[0].headers["brine-delivery-attempt"].to_str().unwrap().parse().unwrap();
    assert!(attempt > before.len().min(2), "attempt {attempt} after {} failures", before.len());
    let body = verify(&secret, ok[0]);
    assert_eq!(body["type"], "record.failed_attempts_burst");
    let delivered = wait_timeline(&s, &token, &uuid, "delivered", 1).await;
    assert_eq!(delivered[0]["detail"]["event_id"], event_id.to_str().unwrap());
}
}

each_backend! {
async fn two_nodes_send_each_first_once() {
    let a = TestServer::start_with(quick).await;
    let mut settings = settings_in(&a.data_dir);
    settings.database_url = Some(a.database_url());
    quick(&mut settings);
    let b = TestServer::start_settings(settings).await.unwrap();
    let (receiver, url) = Receiver::start().await;
    let token = a.signup("ana@example.com").await;
    let created = a
        .create(&token, json!({
            "name": "Shared twice",
            "access": "private",
            "data": "sk_live_webhooked",
            "secure_page": {"enabled": true, "password": PAGE_PASSWORD},
        }))
        .await;
    let uuid = uuid_of(&created);
    let res = put_webhook(&a, &token, &uuid, json!({"url": url, "events": ["secure_page.first_reveal"]})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let secret = body(res).await["secret"].as_str().unwrap().to_owned();

    // Both nodes reveal at once, again and again, until a delivery arrives (B learns of the
    // webhook when it reloads its list): the two nodes' triggers race, one notifies.
    for _ in 0..100 {
        tokio::join!(reveal(&a, &uuid), reveal(&b, &uuid));
        if !receiver.got().is_empty() {
            break;
        }
    }
    let got = receiver.wait_for("the first reveal", |g| !g.is_empty()).await;
    verify(&secret, &got[0]);
    // More reveals on each node, now that both watch the record: still one delivery.
    for node in [&a, &b] {
        reveal(node, &uuid).await;
    }
    wait_timeline(&a, &token, &uuid, "delivered", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 1, "one first reveal, whatever the node");
}
}

/// Bad input answers the envelope and changes nothing; internal addresses are refused unless
/// the operator allows them, and a name that resolves to one is refused when delivering.
#[tokio::test]
async fn webhook_urls_go_through_the_ssrf_guard_and_bad_input_changes_nothing() {
    let s = TestServer::start_with(|c| {
        c.webhooks.retry_base_ms = 100;
        c.webhooks.retry_max_ms = 200;
        c.webhooks.max_attempts = 2;
        c.webhooks.poll_ms = 100;
    })
    .await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Guarded", "access": "private", "data": "v"}),
        )
        .await;
    let uuid = uuid_of(&created);
    let burst = "record.failed_attempts_burst";
    for (spec, field) in [
        (
            json!({"url": "http://127.0.0.1:9/hook", "events": [burst]}),
            "address",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "events": [burst]}),
            "address",
        ),
        (
            json!({"url": "http://[::1]/hook", "events": [burst]}),
            "address",
        ),
        (
            json!({"url": "http://10.0.0.1/hook", "events": [burst]}),
            "address",
        ),
        (
            json!({"url": "ftp://example.com/hook", "events": [burst]}),
            "http",
        ),
        (json!({"url": "not a url", "events": [burst]}), "http"),
        (
            json!({"url": "https://example.com/hook", "events": ["record.read"]}),
            "Unknown event",
        ),
        (
            json!({"url": "https://example.com/hook", "events": []}),
            "at least one",
        ),
        (
            json!({"url": "https://example.com/hook", "events": [burst],
                "failed_attempts": {"threshold": 1, "window_secs": 60}}),
            "burst",
        ),
    ] {
        let res = put_webhook(&s, &token, &uuid, spec.clone()).await;
        let error = expect_error(res, StatusCode::BAD_REQUEST).await;
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{spec}: {error}"
        );
    }
    let res = put_webhook(
        &s,
        &token,
        &uuid,
        json!({"url": "https://example.com/h", "events": [burst], "extra": 1}),
    )
    .await;
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let res = s
        .request(Method::PUT, &format!("/api/v1/records/{uuid}/webhook"))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    // Nothing was set.
    let res = s
        .get(&format!("/api/v1/records/{uuid}/webhook"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;
    // Another account's record looks like no record.
    let other = s.signup("bo@example.com").await;
    let res = put_webhook(
        &s,
        &other,
        &uuid,
        json!({"url": "https://example.com/h", "events": [burst]}),
    )
    .await;
    expect_error(res, StatusCode::NOT_FOUND).await;

    // A name passes at set time; the resolver refuses its loopback address when delivering,
    // before any connection.
    let res = put_webhook(
        &s,
        &token,
        &uuid,
        json!({
            "url": "http://localhost:9/hook",
            "events": [burst],
            "failed_attempts": {"threshold": 2, "window_secs": 60},
        }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    for _ in 0..2 {
        assert_eq!(
            s.read(&uuid, Some("brk_wrong")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let failed = wait_timeline(&s, &token, &uuid, "delivery_failed", 2).await;
    for event in &failed {
        let error = event["detail"]["error"].as_str().unwrap();
        assert!(error.contains("not allowed"), "{event}");
        assert!(!event.to_string().contains("localhost"), "{event}");
    }
    assert_eq!(failed[0]["detail"]["gave_up"], true);
}

/// The record page's Webhook section in a real browser: set by its labels, the secret shown
/// once, a delivery in the timeline and the list, removed; every state checked with axe-core.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_sets_and_removes_a_webhook_in_the_dashboard() {
    use crate::web::{Driver, chromedriver_path};
    let Some(chromedriver) = chromedriver_path() else {
        return;
    };
    let s = TestServer::start_with(quick).await;
    let (receiver, url) = Receiver::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Watched", "access": "private", "data": "sk_live_watched"}),
        )
        .await;
    let uuid = uuid_of(&created);
    let driver = Driver::start(&chromedriver);
    let web = driver.browser(&s.base).await;
    web.goto("/signin").await;
    web.fill("Email", "ana@example.com").await;
    web.fill("Password", PASSWORD).await;
    web.press("Sign in").await;

    web.goto(&format!("/records/{uuid}")).await;
    assert!(
        web.main_text()
            .await
            .contains("Off. brine can POST a signed notice")
    );
    // A URL that is no http(s) URL: the error beside the form, nothing set.
    web.fill("Receiver URL", "ftp://example.com/hook").await;
    web.press("Set webhook").await;
    web.wait_for_text("must be an http or https URL").await;
    web.assert_accessible("webhook refused").await;
    let res = s
        .get(&format!("/api/v1/records/{uuid}/webhook"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;

    web.fill("Receiver URL", &url).await;
    web.press("Set webhook").await;
    web.wait_for_text("shown only this once").await;
    let secret = web
        .client
        .find(fantoccini::Locator::Id("webhook-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    web.assert_accessible("webhook secret").await;

    // Ten wrong keys make the default burst: delivered, signed with the secret shown.
    for _ in 0..10 {
        assert_eq!(
            s.read(&uuid, Some("brk_wrong")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let got = receiver.wait_for("the burst", |g| !g.is_empty()).await;
    verify(&secret, &got[0]);
    wait_timeline(&s, &token, &uuid, "delivered", 1).await;

    web.goto(&format!("/records/{uuid}")).await;
    let page = web.main_text().await;
    assert!(!page.contains(&secret), "the secret is shown once");
    assert!(
        page.contains(
            "Webhook delivered: record.failed_attempts_burst, attempt 1 (receiver answered 200)"
        ),
        "{page}"
    );
    assert!(
        page.contains("Newest deliveries") && page.contains("delivered"),
        "{page}"
    );
    web.assert_accessible("webhook set").await;

    web.click("Remove webhook").await; // asks first, in a dialog
    web.click("Remove webhook").await; // the dialog's button
    web.wait_for_text("Off. brine can POST a signed notice")
        .await;
    assert!(web.main_text().await.contains("You removed the webhook"));
    let res = s
        .get(&format!("/api/v1/records/{uuid}/webhook"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;
    web.close().await;
}

/// A real `brine serve` at debug level: a webhook set, delivered and re-keyed leaves neither its
/// secret nor its URL in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_secret_and_the_url_never_reach_the_log() {
    let (receiver, url) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let server = BrineProcess::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir,
            "--allow-private-upstreams",
        ],
        &[("BRINE_LOG", "debug")],
    );
    let base = server.base.clone();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = body(res).await["token"].as_str().unwrap().to_owned();
    let res = http
        .post(format!("{base}/api/v1/records"))
        .bearer_auth(&token)
        .json(&json!({"name": "Logged", "access": "private", "data": "v"}))
        .send()
        .await
        .unwrap();
    let uuid = uuid_of(&body(res).await);
    let res = http
        .put(format!("{base}/api/v1/records/{uuid}/webhook"))
        .bearer_auth(&token)
        .json(
            &json!({"url": url, "events": ["record.failed_attempts_burst"],
                      "failed_attempts": {"threshold": 2, "window_secs": 60}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let secret = body(res).await["secret"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let res = http
            .get(format!("{base}/r/{uuid}"))
            .header("X-API-Key", "brk_wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let got = receiver.wait_for("the burst", |g| !g.is_empty()).await;
    verify(&secret, &got[0]);
    let res = http
        .post(format!("{base}/api/v1/records/{uuid}/webhook/secret"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let rotated = body(res).await["secret"].as_str().unwrap().to_owned();
    let log = server.stop();
    assert!(
        log.contains("webhook delivery attempt"),
        "the attempt is logged: {log}"
    );
    // (At debug level, hyper's own connection lines name the address connected to, as for
    // bridges; the URL's path and query, where tokens live, never appear.)
    for canary in [
        secret.as_str(),
        rotated.as_str(),
        "canary-path-7f3a",
        "whsec_",
    ] {
        assert!(!log.contains(canary), "{canary} is in the log");
    }
}
