//! A bridge's key, tested (issue 17): a probe stored with the bridge is sent upstream with a new
//! key before it is stored, and on demand. Against a real local upstream that accepts one key
//! and answers 401, echoing the key it was given (as some APIs do), to any other.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::upstream::closed_port;
use crate::web::{Driver, chromedriver_path};

const OLD_KEY: &str = "sk-old-WORKING-key-1111";
const GOOD_KEY: &str = "sk-new-GOOD-key-2222";
const TYPO_KEY: &str = "sk-new-TYPO-key-3333";

/// An upstream that accepts `Authorization: Bearer {accepted}` and nothing else.
pub struct KeyedUpstream {
    pub base: String,
    /// Each call's path and the Authorization it carried.
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl KeyedUpstream {
    pub async fn start(accepted: &str) -> Self {
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let state = (format!("Bearer {accepted}"), seen.clone());
        let app = Router::new().fallback(any(answer)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, seen }
    }

    pub fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

type Keyed = (String, Arc<Mutex<Vec<(String, String)>>>);

async fn answer(State((accepted, seen)): State<Keyed>, uri: Uri, headers: HeaderMap) -> Response {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    seen.lock()
        .unwrap()
        .push((uri.path().to_owned(), given.clone()));
    if given == accepted {
        axum::Json(json!({"object": "list", "data": [{"id": "model-1"}]})).into_response()
    } else {
        let key = given.trim_start_matches("Bearer ");
        (
            AxumStatus::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": format!("Incorrect API key provided: {key}")}})),
        )
            .into_response()
    }
}

async fn server() -> TestServer {
    TestServer::start_with(|c| c.allow_private_upstreams = true).await
}

fn bearer(key: &str) -> Value {
    json!({"Authorization": format!("Bearer {key}")})
}

/// A public bridge to `{base}/v1` holding `key`, with `probe` (or none).
async fn bridge(
    s: &TestServer,
    token: &str,
    base: &str,
    key: &str,
    probe: Option<Value>,
) -> String {
    let mut bridge = json!({
        "url": format!("{base}/v1"),
        "headers": bearer(key),
        "allowed_paths": ["/chat"],
    });
    if let Some(probe) = probe {
        bridge["probe"] = probe;
    }
    let created = s
        .create(
            token,
            json!({"name": "OpenAI", "type": "bridge", "access": "public", "bridge": bridge}),
        )
        .await;
    uuid_of(&created)
}

async fn patch(s: &TestServer, token: &str, uuid: &str, body: Value) -> reqwest::Response {
    s.request(Method::PATCH, &format!("/api/v1/records/{uuid}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn test_key(s: &TestServer, token: &str, uuid: &str) -> reqwest::Response {
    s.post(&format!("/api/v1/records/{uuid}/test-key"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn events(s: &TestServer, token: &str, uuid: &str) -> Vec<Value> {
    let res = s
        .get(&format!("/api/v1/records/{uuid}/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    body(res).await["events"].as_array().unwrap().clone()
}

/// A caller's call through the bridge; returns the key the upstream received.
async fn call_through(s: &TestServer, up: &KeyedUpstream, uuid: &str) -> String {
    let res = s.get(&format!("/r/{uuid}/chat")).send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(
        !text.contains("sk-"),
        "a key came back to the caller: {text}"
    );
    let (path, key) = up.seen().last().unwrap().clone();
    assert_eq!(path, "/v1/chat", "status {status}");
    key
}

fn models_probe() -> Value {
    json!({"method": "GET", "path": "/models", "accepted": [200]})
}

each_backend! {
async fn a_wrong_key_is_refused_before_it_replaces_the_working_one_and_a_right_one_is_saved() {
    let s = server().await;
    let up = KeyedUpstream::start(GOOD_KEY).await;
    let token = s.signup("ana@example.com").await;
    let uuid = bridge(&s, &token, &up.base, OLD_KEY, Some(models_probe())).await;
    assert_eq!(call_through(&s, &up, &uuid).await, format!("Bearer {OLD_KEY}"));
    let calls_before = up.seen().len();

    // A typo: the probe goes upstream with it, the upstream answers 401, nothing changes.
    let res = patch(&s, &token, &uuid, json!({"bridge": {"headers": bearer(TYPO_KEY)}})).await;
    let refused = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["error"], "Key rejected");
    assert_eq!(
        refused["message"],
        "The upstream answered 401 to GET /models with the new key; nothing was changed."
    );
    assert!(!refused.to_string().contains(TYPO_KEY));
    let probed = up.seen()[calls_before].clone();
    assert_eq!(probed, ("/v1/models".to_owned(), format!("Bearer {TYPO_KEY}")));
    assert_eq!(call_through(&s, &up, &uuid).await, format!("Bearer {OLD_KEY}"), "the old key is still used");

    // The refusal is in the timeline, with the request and the status, and no key.
    let timeline = events(&s, &token, &uuid).await;
    let refusal = timeline.iter().find(|e| e["outcome"] == "key_refused").unwrap();
    assert_eq!(refusal["channel"], "owner");
    assert_eq!(refusal["detail"], json!({"request": "GET /models", "status": 401}));
    let all = serde_json::to_string(&timeline).unwrap();
    for key in [OLD_KEY, GOOD_KEY, TYPO_KEY] {
        assert!(!all.contains(key), "{key} in the events: {all}");
    }

    // The right key: tested, accepted, saved.
    let res = patch(&s, &token, &uuid, json!({"bridge": {"headers": {"authorization": format!("Bearer {GOOD_KEY}")}}})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let saved = body(res).await;
    assert!(!saved.to_string().contains(GOOD_KEY));
    assert_eq!(up.seen().last().unwrap(), &("/v1/models".to_owned(), format!("Bearer {GOOD_KEY}")));
    assert_eq!(call_through(&s, &up, &uuid).await, format!("Bearer {GOOD_KEY}"));
    let updated = events(&s, &token, &uuid).await.into_iter().find(|e| e["outcome"] == "updated").unwrap();
    assert_eq!(
        updated["detail"],
        json!({"key_check": "accepted", "request": "GET /models", "status": 200})
    );

    // A change that leaves the key alone sends no probe.
    let before = up.seen().len();
    let res = patch(&s, &token, &uuid, json!({"bridge": {"allowed_methods": ["GET", "POST"]}})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(up.seen().len(), before, "no probe for a change of policy alone");
}

async fn an_unreachable_upstream_blocks_the_change_unless_the_owner_saves_without_testing() {
    let s = server().await;
    let up = KeyedUpstream::start(OLD_KEY).await;
    let token = s.signup("ana@example.com").await;
    let uuid = bridge(&s, &token, &up.base, OLD_KEY, Some(models_probe())).await;
    let nowhere = format!("{}/v1", closed_port().await);

    let res = patch(&s, &token, &uuid, json!({"bridge": {"url": nowhere, "headers": bearer(GOOD_KEY)}})).await;
    let refused = expect_error(res, StatusCode::BAD_GATEWAY).await;
    assert_eq!(refused["error"], "Key not tested");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("could not be reached") && message.contains("GET /models"), "{message}");
    assert!(message.contains("\"verify\": false"), "{message}");
    assert_eq!(call_through(&s, &up, &uuid).await, format!("Bearer {OLD_KEY}"), "nothing changed");
    let refusal = events(&s, &token, &uuid).await.into_iter().find(|e| e["outcome"] == "key_refused").unwrap();
    assert_eq!(refusal["detail"], json!({"request": "GET /models", "error": "unreachable"}));

    // The owner's explicit choice: saved untested, and the timeline says so.
    let res = patch(&s, &token, &uuid, json!({"bridge": {"headers": bearer(GOOD_KEY)}, "verify": false})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(call_through(&s, &up, &uuid).await, format!("Bearer {GOOD_KEY}"));
    let updated = events(&s, &token, &uuid).await.into_iter().find(|e| e["outcome"] == "updated").unwrap();
    assert_eq!(updated["detail"], json!({"key_check": "skipped"}));
}

async fn without_a_probe_a_key_is_replaced_as_before() {
    let s = server().await;
    let up = KeyedUpstream::start(GOOD_KEY).await;
    let token = s.signup("ana@example.com").await;
    let uuid = bridge(&s, &token, &up.base, GOOD_KEY, None).await;
    let res = patch(&s, &token, &uuid, json!({"bridge": {"headers": bearer(TYPO_KEY)}})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(up.seen().is_empty(), "no probe was sent");
    assert_eq!(call_through(&s, &up, &uuid).await, format!("Bearer {TYPO_KEY}"));
    // Removing the probe in the same change as the key is the owner's way to skip it, too.
    let uuid = bridge(&s, &token, &up.base, GOOD_KEY, Some(models_probe())).await;
    let res = patch(&s, &token, &uuid, json!({"bridge": {"headers": bearer(TYPO_KEY), "probe": null}})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let shown = body(s.get(&format!("/api/v1/records/{uuid}")).bearer_auth(&token).send().await.unwrap()).await;
    assert!(shown["bridge"].get("probe").is_none(), "{shown}");
}

async fn the_stored_key_is_tested_on_demand() {
    let s = server().await;
    let up = KeyedUpstream::start(GOOD_KEY).await;
    let token = s.signup("ana@example.com").await;
    let uuid = bridge(&s, &token, &up.base, GOOD_KEY, None).await;

    // No probe yet.
    let none = expect_error(test_key(&s, &token, &uuid).await, StatusCode::CONFLICT).await;
    assert_eq!(none["error"], "No probe");
    // Setting a probe alone (the key unchanged) sends nothing.
    let res = patch(&s, &token, &uuid, json!({"bridge": {"probe": {"path": "/models"}}})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let shown = body(res).await;
    assert_eq!(shown["record"]["bridge"]["probe"], json!({"method": "GET", "path": "/models", "accepted": [200]}));
    assert!(up.seen().is_empty());

    let res = test_key(&s, &token, &uuid).await;
    assert_eq!(res.status(), StatusCode::OK);
    let result = body(res).await;
    assert_eq!(result["request"], "GET /models");
    assert_eq!(result["status"], 200);
    assert_eq!(result["accepted"], true);
    assert_eq!(result["hop"], 0);
    assert!(result["excerpt"].as_str().unwrap().contains("model-1"), "{result}");
    assert_eq!(up.seen().last().unwrap(), &("/v1/models".to_owned(), format!("Bearer {GOOD_KEY}")));

    // A key the upstream no longer takes (saved untested): the test says so, and the upstream's
    // answer, which echoes the key, comes back scrubbed.
    let res = patch(&s, &token, &uuid, json!({"bridge": {"headers": bearer(TYPO_KEY)}, "verify": false})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = test_key(&s, &token, &uuid).await;
    assert_eq!(res.status(), StatusCode::OK);
    let result = body(res).await;
    assert_eq!((result["status"].as_u64(), result["accepted"].as_bool()), (Some(401), Some(false)));
    let excerpt = result["excerpt"].as_str().unwrap();
    assert!(excerpt.contains("Incorrect API key provided: [REDACTED]"), "{excerpt}");
    assert!(!result.to_string().contains(TYPO_KEY), "{result}");

    // Both tests are in the timeline, without the answer or a key.
    let tests: Vec<Value> = events(&s, &token, &uuid).await.into_iter().filter(|e| e["outcome"] == "key_tested").collect();
    assert_eq!(tests.len(), 2);
    assert_eq!(tests[0]["detail"], json!({"request": "GET /models", "status": 401, "accepted": false}));
    assert_eq!(tests[1]["detail"], json!({"request": "GET /models", "status": 200, "accepted": true}));

    // An upstream that is gone: the envelope, and an event.
    let nowhere = format!("{}/v1", closed_port().await);
    let res = patch(&s, &token, &uuid, json!({"bridge": {"url": nowhere}, "verify": false})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let gone = expect_error(test_key(&s, &token, &uuid).await, StatusCode::BAD_GATEWAY).await;
    assert_eq!(gone["error"], "Upstream unreachable");
    let last = events(&s, &token, &uuid).await.remove(0);
    assert_eq!((last["outcome"].as_str(), last["detail"]["error"].as_str()), (Some("key_tested"), Some("unreachable")));

    // Only the owner's bridges, and only bridges.
    let other = s.signup("eve@example.com").await;
    expect_error(test_key(&s, &other, &uuid).await, StatusCode::NOT_FOUND).await;
    let credential = uuid_of(&s.create(&token, json!({"name": "c", "access": "owner_only", "data": "v"})).await);
    expect_error(test_key(&s, &token, &credential).await, StatusCode::BAD_REQUEST).await;
    let res = s.post(&format!("/api/v1/records/{uuid}/test-key")).send().await.unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
}

async fn bad_probes_are_refused_with_the_envelope_and_change_nothing() {
    let s = server().await;
    let up = KeyedUpstream::start(GOOD_KEY).await;
    let token = s.signup("ana@example.com").await;
    let uuid = bridge(&s, &token, &up.base, GOOD_KEY, Some(models_probe())).await;
    for (probe, says) in [
        (json!({"method": "POST", "path": "/models"}), "GET or HEAD"),
        (json!({"path": "models"}), "plain path"),
        (json!({"path": "/../admin"}), "plain path"),
        (json!({"path": "/models?key=1"}), "plain path"),
        (json!({"accepted": [200, 401]}), "401 and 403 always mean"),
        (json!({"accepted": []}), "1 to 20"),
        (json!({"accepted": [700]}), "700 is not"),
        (json!({"accepted": ["ok"]}), "probe an object"),
        (json!({"path": "/models", "status": 200}), "unknown fields"),
        (json!("GET /models"), "probe an object"),
    ] {
        // On a change...
        let res = patch(&s, &token, &uuid, json!({"bridge": {"probe": probe.clone(), "headers": bearer(TYPO_KEY)}})).await;
        let refused = expect_error(res, StatusCode::BAD_REQUEST).await;
        let message = refused["message"].as_str().unwrap();
        assert!(message.contains(says), "{probe}: {message}");
        assert!(!message.contains(TYPO_KEY));
        // ...and on create.
        let res = s
            .post("/api/v1/records")
            .bearer_auth(&token)
            .json(&json!({"name": "x", "type": "bridge", "access": "public",
                          "bridge": {"url": format!("{}/v1", up.base), "probe": probe}}))
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
    assert!(up.seen().is_empty(), "no bad probe was sent");
    let shown = body(s.get(&format!("/api/v1/records/{uuid}")).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(shown["bridge"]["probe"], models_probe());
    assert_eq!(call_through(&s, &up, &uuid).await, format!("Bearer {GOOD_KEY}"));
}

async fn a_probe_fills_the_urls_params_and_stays_under_it() {
    let s = server().await;
    let up = KeyedUpstream::start(GOOD_KEY).await;
    let token = s.signup("ana@example.com").await;
    let created = s.create(&token, json!({"name": "Weather", "type": "bridge", "access": "public", "bridge": {
        "url": format!("{}/v1/{{{{city}}}}/now", up.base),
        "params": ["city"],
        "headers": bearer(GOOD_KEY),
    }})).await;
    let uuid = uuid_of(&created);
    // Without a value for {{city}}, the probe cannot be sent: said plainly, nothing changed.
    let res = patch(&s, &token, &uuid, json!({"bridge": {"probe": {"path": "/status"}, "headers": bearer(TYPO_KEY)}})).await;
    let refused = expect_error(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(refused["error"], "Key not tested");
    assert!(refused["message"].as_str().unwrap().contains("city"), "{refused}");
    // With one, it goes to the bridge's URL, filled, with the path below it.
    let res = patch(&s, &token, &uuid, json!({"bridge": {"probe": {"path": "/status", "params": {"city": "Lisbon"}}}})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let result = body(test_key(&s, &token, &uuid).await).await;
    assert_eq!(result["accepted"], true, "{result}");
    assert_eq!(up.seen().last().unwrap().0, "/v1/Lisbon/now/status");
}
}

each_backend! {
async fn the_bridge_form_sets_a_key_test_and_the_button_runs_it() {
    let Some(chromedriver) = chromedriver_path() else { return };
    let s = server().await;
    let up = KeyedUpstream::start(GOOD_KEY).await;
    let driver = Driver::start(&chromedriver);
    let web = driver.browser(&s.base).await;
    web.goto("/").await;
    web.follow("Create an account").await;
    web.fill("Email", "ana@example.com").await;
    web.fill("Password", PASSWORD).await;
    web.press("Create account").await;

    web.follow("Add secret").await;
    web.tick("Bridge").await;
    web.fill("Name", "OpenAI").await;
    web.tick("Public").await;
    web.fill("Upstream URL", &format!("{}/v1", up.base)).await;
    web.labelled("Header name", 0).await.send_keys("Authorization").await.unwrap();
    web.labelled("Header value", 0).await.send_keys(&format!("Bearer {GOOD_KEY}")).await.unwrap();
    // The key test, set as the bridge is made (creating sends nothing upstream).
    web.expand("Key test").await;
    web.tick("Test new keys before saving them").await;
    web.choose("Probe method", "GET").await;
    web.fill("Probe path", "/models").await;
    web.fill("Statuses that mean accepted", "200").await;
    web.assert_accessible("add a bridge with a key test").await;
    web.press("Save secret").await;
    let uuid = web.path().await.trim_start_matches("/records/").to_owned();
    assert_eq!(uuid.len(), 36, "{}", web.main_text().await);
    assert!(up.seen().is_empty(), "creating a bridge sent nothing upstream");

    // The bridge form shows it and changes it; a change of the policy alone sends nothing.
    let path = web.field("Probe path").await;
    assert_eq!(path.prop("value").await.unwrap().as_deref(), Some("/models"));
    web.fill("Statuses that mean accepted", "200, 204").await;
    web.press("Save bridge").await;
    let accepted = web.field("Statuses that mean accepted").await;
    assert_eq!(accepted.prop("value").await.unwrap().as_deref(), Some("200, 204"));
    assert!(up.seen().is_empty(), "saving the policy sent nothing upstream");
    web.wait_for_text("Sends GET /models upstream with the stored key").await;
    web.run("document.getElementById('probe_path').scrollIntoView({block: 'center'}); return true;").await;
    web.screenshot("bridge-key-test-form-desktop").await;

    // The button: the stored key, accepted.
    web.press("Test this bridge's key").await;
    web.wait_for_text("Key accepted: the upstream answered 200 to GET /models").await;
    assert_eq!(up.seen().last().unwrap(), &("/v1/models".to_owned(), format!("Bearer {GOOD_KEY}")));
    web.assert_accessible("key test").await;
    web.screenshot("bridge-key-test-desktop").await;
    web.dark(true).await;
    web.assert_accessible("key test (dark)").await;
    web.screenshot("bridge-key-test-dark").await;
    web.dark(false).await;

    // A mistyped key: refused beside the form, the old key kept.
    web.labelled("Header name", 0).await.send_keys("Authorization").await.unwrap();
    web.labelled("Header value", 0).await.send_keys(&format!("Bearer {TYPO_KEY}")).await.unwrap();
    web.press("Save bridge").await;
    let text = web
        .wait_for_text("The upstream answered 401 to GET /models with the new key; nothing was changed.")
        .await;
    assert!(!text.contains(TYPO_KEY) && !text.contains(GOOD_KEY), "{text}");
    web.assert_accessible("key refused").await;
    web.screenshot("bridge-key-refused-desktop").await;
    let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(up.seen().last().unwrap().1, format!("Bearer {GOOD_KEY}"), "the old key is still used");

    // An upstream that cannot be reached: refused too, and the form says how to save anyway.
    web.fill("Upstream URL", &format!("{}/v1", closed_port().await)).await;
    web.press("Save bridge").await;
    let text = web.wait_for_text("The new key could not be tested: the upstream could not be reached").await;
    assert!(text.contains("tick \"Save without testing\""), "{text}");

    // The owner's choice to save it untested; the button then shows the refusal.
    web.goto(&format!("/records/{uuid}")).await;
    web.wait_for_text("A new key was not saved: the upstream answered 401 to GET /models").await;
    web.labelled("Header name", 0).await.send_keys("Authorization").await.unwrap();
    web.labelled("Header value", 0).await.send_keys(&format!("Bearer {TYPO_KEY}")).await.unwrap();
    web.tick("Save without testing").await;
    web.press("Save bridge").await;
    web.wait_for_text("You changed the bridge's key without testing it").await;
    web.press("Test this bridge's key").await;
    let text = web.wait_for_text("Key refused: the upstream answered 401 to GET /models").await;
    assert!(text.contains("Incorrect API key provided: [REDACTED]"), "{text}");
    assert!(!text.contains(TYPO_KEY), "{text}");
    web.assert_accessible("key test refused").await;
    web.phone(true).await;
    assert!(web.fits_width().await, "the key test is wider than a phone");
    web.phone(false).await;

    // Unticking the key test removes it.
    web.goto(&format!("/records/{uuid}")).await;
    let probe_on = web.field("Test new keys before saving them").await;
    probe_on.click().await.unwrap();
    web.press("Save bridge").await;
    web.wait_for_text("Set a key test above").await;
    web.close().await;
}
}
