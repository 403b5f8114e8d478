//! Intake links ("request a secret"): someone outside the account sends a value once, and only
//! the owner can use it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::upstream::Upstream;

const VALUE: &str = "postgres://app:canary-intake-7Qx9@db.internal/staging";

async fn make(s: &TestServer, token: &str, spec: Value) -> Response {
    s.post("/api/v1/intake")
        .bearer_auth(token)
        .json(&spec)
        .send()
        .await
        .unwrap()
}

/// Makes a link and returns the 201 body.
async fn link(s: &TestServer, token: &str, spec: Value) -> Value {
    let res = make(s, token, spec.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED, "making {spec}");
    body(res).await
}

/// The person opens the link and sends `fields`, as a browser would.
async fn send(s: &TestServer, url: &str, fields: &[(&str, &str)]) -> Response {
    let form = LoadedForm::load(s.http.get(url)).await;
    form.post(&s.http, url, fields).send().await.unwrap()
}

/// The page without its form token, which differs from one browser to the next.
fn untokened(html: &str) -> String {
    match html.split_once("name=\"form_token\" value=\"") {
        Some((before, after)) => {
            let rest = after.split_once('"').map_or("", |(_, rest)| rest);
            format!("{before}name=\"form_token\" value=\"…\"{rest}")
        }
        None => html.to_owned(),
    }
}

async fn events(s: &TestServer, token: &str, uuid: &str) -> Value {
    let res = s
        .get(&format!("/api/v1/records/{uuid}/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    body(res).await
}

fn received(events: &Value) -> usize {
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["channel"] == "intake" && e["outcome"] == "received")
        .count()
}

/// Every file of a stopped SQLite server's data directory, as bytes.
fn files_hold(dir: &std::path::Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

each_backend! {
async fn an_intake_link_takes_one_value_and_only_its_owner_can_use_it() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let made = link(&s, &token, json!({
        "asked_for": "the staging database URL",
        "into": {"type": "credential", "name": "Staging DB"},
    })).await;
    assert_eq!(made["state"], "open");
    assert_eq!(made["into"], json!({"type": "credential", "name": "Staging DB"}));
    let url = made["url"].as_str().unwrap().to_owned();
    let key = made["api_key"].as_str().unwrap().to_owned();
    let record = made["record"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&s.url("/intake/")), "{url}");
    let link_token = url.rsplit('/').next().unwrap().to_owned();

    // Link-preview bots and repeated loads spend nothing; the record does not exist yet.
    for _ in 0..3 {
        let res = s.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(res.text().await.unwrap().contains("the staging database URL"));
    }
    assert_eq!(s.read(&record, Some(&key)).await.status(), StatusCode::NOT_FOUND);

    // The value is sent: a receipt, never the value.
    let res = send(&s, &url, &[("value", &format!("{VALUE}\n"))]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let receipt = res.text().await.unwrap();
    assert!(receipt.contains("Received"), "{receipt}");
    assert!(!receipt.contains("canary-intake"), "the receipt never shows the value");

    // A second use fails exactly as an unknown link does, before and after a form is loaded.
    let again = send_stale(&s, &url).await;
    let unknown_url = s.url("/intake/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let unknown = send_stale(&s, &unknown_url).await;
    assert_eq!(again.0, StatusCode::NOT_FOUND);
    assert_eq!(again, unknown, "a spent link is no existence oracle");
    assert!(!again.1.contains("canary-intake"));
    let res = s.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // The value reached the owner: code reads it with the key shown at creation, the owner
    // reveals it; the owner's list shows the link used.
    let res = s.read(&record, Some(&key)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await["data"], VALUE, "the pasted line break is trimmed");
    let res = s.get(&format!("/api/v1/records/{record}/value")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(body(res).await["data"], VALUE);
    let res = s.get(&format!("/api/v1/records/{record}")).bearer_auth(&token).send().await.unwrap();
    let shown = body(res).await;
    assert_eq!(shown["name"], "Staging DB");
    assert_eq!(shown["access"], "private");
    let res = s.get("/api/v1/intake").bearer_auth(&token).send().await.unwrap();
    let list = body(res).await;
    assert_eq!(list["links"][0]["id"], id.as_str());
    assert_eq!(list["links"][0]["state"], "used");
    assert!(list["links"][0]["used_at"].is_string());
    assert!(list["links"][0].get("url").is_none(), "the address is shown only once");

    // The timeline has the arrival, without the value.
    let timeline = events(&s, &token, &record).await;
    assert_eq!(received(&timeline), 1, "{timeline}");
    assert!(!timeline.to_string().contains("canary-intake"));

    // Another account sees nothing of it.
    let other = s.signup("eve@example.com").await;
    let res = s.get(&format!("/api/v1/intake/{id}")).bearer_auth(&other).send().await.unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;
    let res = s.request(Method::DELETE, &format!("/api/v1/intake/{id}")).bearer_auth(&other).send().await.unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;
    let res = s.get(&format!("/api/v1/records/{record}/value")).bearer_auth(&other).send().await.unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;
    // A used link cannot be revoked.
    let res = s.request(Method::DELETE, &format!("/api/v1/intake/{id}")).bearer_auth(&token).send().await.unwrap();
    expect_error(res, StatusCode::CONFLICT).await;

    // Neither the value nor the link's token is anywhere in the database's files.
    if s.database_url().starts_with("sqlite") {
        let data_dir = s.data_dir.clone();
        let _leftovers = s.stop().await;
        assert!(!files_hold(&data_dir, "canary-intake"), "the value is stored only encrypted");
        assert!(!files_hold(&data_dir, &link_token), "the link's token is stored only hashed");
    }
}

async fn passwords_are_checked_and_locked_out_and_links_expire_or_are_revoked() {
    let s = TestServer::start_with(|c| {
        c.lockout.per_client = 2;
        c.lockout.per_record = 3;
    })
    .await;
    let token = s.signup("ana@example.com").await;
    let made = link(&s, &token, json!({
        "asked_for": "the SMTP password",
        "password": "read-it-to-me 7",
        "into": {"type": "credential"},
    })).await;
    assert_eq!(made["has_password"], true);
    assert_eq!(made["into"]["name"], "the SMTP password", "named after what it asks for");
    let url = made["url"].as_str().unwrap().to_owned();
    let record = made["record"].as_str().unwrap().to_owned();
    let key = made["api_key"].as_str().unwrap().to_owned();

    // No password, a wrong one: refused, nothing stored, the link stays open.
    let res = send(&s, &url, &[("value", VALUE)]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for guess in ["guess 1234", "guess 2345"] {
        let res = send(&s, &url, &[("password", guess), ("value", VALUE)]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let page = res.text().await.unwrap();
        assert!(page.contains("the SMTP password"), "the form again");
        assert!(!page.contains("canary-intake"), "never the value");
    }
    assert_eq!(s.read(&record, Some(&key)).await.status(), StatusCode::NOT_FOUND);
    // Past the limit (two failures from one client), even the right password waits.
    let res = send(&s, &url, &[("password", "guess 5678"), ("value", VALUE)]).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    let res = send(&s, &url, &[("password", "read-it-to-me 7"), ("value", VALUE)]).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(s.read(&record, Some(&key)).await.status(), StatusCode::NOT_FOUND);

    // The right password on a fresh link works; an empty value does not spend it.
    let made = link(&s, &token, json!({
        "asked_for": "the SMTP password",
        "password": "read-it-to-me 7",
        "into": {"type": "credential", "name": "SMTP"},
    })).await;
    let url = made["url"].as_str().unwrap().to_owned();
    let res = send(&s, &url, &[("password", "read-it-to-me 7"), ("value", "  \n")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = send(&s, &url, &[("password", "read-it-to-me 7"), ("value", VALUE)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = s.read(made["record"].as_str().unwrap(), Some(made["api_key"].as_str().unwrap())).await;
    assert_eq!(body(res).await["data"], VALUE);

    // Expired: the page and the form refuse it, the list says so.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let made = link(&s, &token, json!({
        "asked_for": "a key that waits too long",
        "expires_at": soon,
        "into": {"type": "credential"},
    })).await;
    let url = made["url"].as_str().unwrap().to_owned();
    let form = LoadedForm::load(s.http.get(&url)).await;
    let mut expired = false;
    for _ in 0..100 {
        if s.http.get(&url).send().await.unwrap().status() == StatusCode::NOT_FOUND {
            expired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(expired, "the link closes at its expiry");
    let res = form.post(&s.http, &url, &[("value", VALUE)]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = s.get(&format!("/api/v1/intake/{}", made["id"].as_str().unwrap())).bearer_auth(&token).send().await.unwrap();
    assert_eq!(body(res).await["state"], "expired");

    // Revoked: at once; revoking again changes nothing.
    let made = link(&s, &token, json!({"asked_for": "never sent", "into": {"type": "credential"}})).await;
    let url = made["url"].as_str().unwrap().to_owned();
    let form = LoadedForm::load(s.http.get(&url)).await;
    let path = format!("/api/v1/intake/{}", made["id"].as_str().unwrap());
    let res = s.request(Method::DELETE, &path).bearer_auth(&token).send().await.unwrap();
    let revoked = body(res).await;
    assert_eq!(revoked["state"], "revoked");
    let res = s.request(Method::DELETE, &path).bearer_auth(&token).send().await.unwrap();
    assert_eq!(body(res).await["revoked_at"], revoked["revoked_at"]);
    let res = form.post(&s.http, &url, &[("value", VALUE)]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A post from another site's form changes nothing.
    let made = link(&s, &token, json!({"asked_for": "cross-site", "into": {"type": "credential"}})).await;
    let url = made["url"].as_str().unwrap().to_owned();
    let res = s.http.post(&url).form(&[("value", VALUE)]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = s.get(&format!("/api/v1/intake/{}", made["id"].as_str().unwrap())).bearer_auth(&token).send().await.unwrap();
    assert_eq!(body(res).await["state"], "open");
}

async fn of_two_values_sent_at_once_exactly_one_is_stored() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let made = link(&s, &token, json!({"asked_for": "a key", "into": {"type": "credential"}})).await;
    let url = made["url"].as_str().unwrap().to_owned();
    let (a, b) = (
        LoadedForm::load(s.http.get(&url)).await,
        LoadedForm::load(s.http.get(&url)).await,
    );
    let (x, y) = tokio::join!(
        a.post(&s.http, &url, &[("value", "first canary-intake")]).send(),
        b.post(&s.http, &url, &[("value", "second canary-intake")]).send(),
    );
    let mut statuses = [x.unwrap().status(), y.unwrap().status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::NOT_FOUND]);
    let res = s.read(made["record"].as_str().unwrap(), Some(made["api_key"].as_str().unwrap())).await;
    let data = body(res).await["data"].as_str().unwrap().to_owned();
    assert!(data == "first canary-intake" || data == "second canary-intake", "{data}");
    let timeline = events(&s, &token, made["record"].as_str().unwrap()).await;
    assert_eq!(received(&timeline), 1);
}

async fn bad_requests_get_the_envelope_and_change_nothing() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let other = s.signup("eve@example.com").await;
    let credential = s.create(&token, json!({"name": "plain", "access": "private", "data": "x"})).await;
    let theirs = s.create(&other, json!({"name": "API", "type": "bridge", "access": "private",
        "bridge": {"url": "https://api.example.com/v1"}})).await;
    let past = "2020-01-01T00:00:00Z";
    for (spec, status) in [
        (json!({"asked_for": "", "into": {"type": "credential"}}), StatusCode::BAD_REQUEST),
        (json!({"asked_for": "x", "password": "short", "into": {"type": "credential"}}), StatusCode::BAD_REQUEST),
        (json!({"asked_for": "x", "expires_at": past, "into": {"type": "credential"}}), StatusCode::BAD_REQUEST),
        (json!({"asked_for": "x", "into": {"type": "somewhere"}}), StatusCode::BAD_REQUEST),
        (json!({"asked_for": "x", "into": {"type": "bridge_header", "bridge": uuid_of(&credential),
            "header": "Authorization", "template": "Bearer {{value}}"}}), StatusCode::BAD_REQUEST),
        (json!({"asked_for": "x", "into": {"type": "bridge_header", "bridge": uuid_of(&theirs),
            "header": "Authorization", "template": "Bearer {{value}}"}}), StatusCode::NOT_FOUND),
        (json!({"asked_for": "x", "into": {"type": "bridge_header", "bridge": uuid_of(&theirs),
            "header": "Authorization", "template": "Bearer"}}), StatusCode::BAD_REQUEST),
    ] {
        let res = make(&s, &token, spec.clone()).await;
        assert_eq!(res.status(), status, "{spec}");
        expect_error(res, status).await;
    }
    let res = s.post("/api/v1/intake").json(&json!({"asked_for": "x", "into": {"type": "credential"}})).send().await.unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
    let res = s.get("/api/v1/intake/not-a-uuid").bearer_auth(&token).send().await.unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;
    let res = s.get("/api/v1/intake").bearer_auth(&token).send().await.unwrap();
    assert_eq!(body(res).await["links"], json!([]), "nothing was made");
}

async fn a_bridge_header_gets_the_value_through_its_template_and_the_webhook_hears_of_it() {
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let up = Upstream::start().await;
    let (hooks, hook_url) = Hooks::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s.create(&token, json!({
        "name": "OpenAI", "type": "bridge", "access": "private",
        "bridge": {
            "url": up.url("/v1/models"),
            "headers": {"Authorization": "Bearer sk-old-key", "X-Org": "org-kept"},
        },
    })).await;
    let bridge = uuid_of(&created);
    let bridge_key = key_of(&created);
    let res = s.request(Method::PUT, &format!("/api/v1/records/{bridge}/webhook"))
        .bearer_auth(&token)
        .json(&json!({"url": hook_url, "events": ["record.intake_received"]}))
        .send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let made = link(&s, &token, json!({
        "asked_for": "the new OpenAI key",
        "into": {"type": "bridge_header", "bridge": bridge, "header": "authorization",
                 "template": "Bearer {{value}}"},
    })).await;
    assert!(made.get("api_key").is_none(), "a bridge keeps its own key");
    assert_eq!(made["record"], bridge.as_str());
    let url = made["url"].as_str().unwrap().to_owned();
    let res = send(&s, &url, &[("value", "sk-new-canary-intake")]).await;
    assert_eq!(res.status(), StatusCode::OK);

    // A proxied call carries the new header (the stored one replaced, the others kept).
    let res = s.get(&format!("/r/{bridge}")).header("X-API-Key", &bridge_key).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen = up.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.headers["authorization"], "Bearer sk-new-canary-intake");
    assert_eq!(last.headers["x-org"], "org-kept");
    // The stored header's own spelling was kept: one Authorization, not a second beside it.
    let res = s.get(&format!("/api/v1/records/{bridge}/value")).bearer_auth(&token).send().await.unwrap();
    let stored = body(res).await;
    let names: Vec<&String> = stored["data"]["headers"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["Authorization", "X-Org"], "{names:?}");

    // The owner hears of it in the timeline and through the webhook; neither holds the value.
    let timeline = events(&s, &token, &bridge).await;
    assert_eq!(received(&timeline), 1);
    assert!(!timeline.to_string().contains("canary-intake"));
    let got = hooks.wait_for_one().await;
    let hook: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(hook["type"], "record.intake_received");
    assert_eq!(hook["record"]["uuid"], bridge.as_str());
    assert!(!got.contains("canary-intake"));

    // The link is spent: a second value changes nothing.
    let res = send_stale(&s, &url).await;
    assert_eq!(res.0, StatusCode::NOT_FOUND);
    s.get(&format!("/r/{bridge}")).header("X-API-Key", &bridge_key).send().await.unwrap();
    assert_eq!(up.seen().last().unwrap().headers["authorization"], "Bearer sk-new-canary-intake");
}
}

/// A value sent to `url` from a browser whose form token is good; the status and the page
/// without its token.
async fn send_stale(s: &TestServer, url: &str) -> (StatusCode, String) {
    // Form tokens belong to the browser, not the page: any page's form will do.
    let form = LoadedForm::load(
        s.http
            .get(s.url("/secure/00000000-0000-4000-8000-000000000000")),
    )
    .await;
    let res = form
        .post(&s.http, url, &[("value", "a second value, canary-intake")])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, untokened(&res.text().await.unwrap()))
}

/// A webhook receiver that keeps every body it gets.
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<String>>>);

impl Hooks {
    async fn start() -> (Self, String) {
        let hooks = Self::default();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(|State(h): State<Hooks>, body: Bytes| async move {
                    h.0.lock()
                        .unwrap()
                        .push(String::from_utf8(body.to_vec()).unwrap());
                }),
            )
            .with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hooks, url)
    }

    /// Waits (boundedly) for the first delivery.
    async fn wait_for_one(&self) -> String {
        for _ in 0..600 {
            if let Some(first) = self.0.lock().unwrap().first() {
                return first.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no webhook delivery arrived");
    }
}
