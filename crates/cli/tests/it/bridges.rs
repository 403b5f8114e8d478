//! Bridges: `/r/{uuid}` forwarding to real local upstream servers.

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::upstream::{Upstream, as_json, closed_port};

const STORED_KEY: &str = "sk-upstream-SECRET-4242";

/// A server whose bridges may reach loopback upstreams (as an operator would allow for
/// internal APIs).
async fn server() -> TestServer {
    TestServer::start_with(|c| c.allow_private_upstreams = true).await
}

async fn bridge(s: &TestServer, token: &str, bridge: Value) -> Value {
    bridge_with(s, token, "public", bridge).await
}

async fn bridge_with(s: &TestServer, token: &str, access: &str, bridge: Value) -> Value {
    s.create(
        token,
        json!({"name": "API", "type": "bridge", "access": access, "bridge": bridge}),
    )
    .await
}

fn auth(key: &str) -> Value {
    json!({"Authorization": format!("Bearer {key}")})
}

each_backend! {
async fn stored_headers_replace_the_callers_and_private_headers_never_go_upstream() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let created = bridge(&s, &token, json!({
        "url": up.url("/echo"),
        "headers": auth(STORED_KEY),
        "allowed_methods": ["GET", "POST"],
    })).await;
    let uuid = uuid_of(&created);
    let res = s
        .post(&format!("/r/{uuid}"))
        .header("Authorization", "Bearer caller-chosen")
        .header("Cookie", "session=caller")
        .header("X-API-Key", "brk_not_for_upstream")
        .header("Proxy-Authorization", "Basic x")
        .header("X-Forwarded-For", "6.6.6.6")
        .header("Forwarded", "for=6.6.6.6")
        .header("X-Real-IP", "6.6.6.6")
        .header("Connection", "x-hop")
        .header("X-Hop", "hop-by-hop")
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .header("X-Custom", "kept")
        .body(r#"{"prompt":"hi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-brine-hop"], "0");
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.body, r#"{"prompt":"hi"}"#);
    let h = &seen.headers;
    assert_eq!(h["authorization"], format!("Bearer {STORED_KEY}"));
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["accept"], "application/json");
    assert_eq!(h["x-custom"], "kept");
    for gone in ["cookie", "x-api-key", "proxy-authorization", "x-forwarded-for", "forwarded", "x-real-ip", "x-hop", "origin"] {
        assert!(!h.contains_key(gone), "{gone} reached the upstream: {h:?}");
    }
    // The answer comes back; the stored key does not.
    let text = res.text().await.unwrap();
    assert!(!text.contains(STORED_KEY), "{text}");
}

async fn answers_come_back_without_cookies_or_hop_headers() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&bridge(&s, &token, json!({"url": up.url("/cookie")})).await);
    let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("set-cookie").is_none());
    assert_eq!(res.headers()["x-upstream"], "yes");
    assert_eq!(res.text().await.unwrap(), "with a cookie");
}

async fn templating_fills_declared_params_and_refuses_hostile_values() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&bridge(&s, &token, json!({
        "url": format!("{}/echo/{{{{city}}}}?units={{{{units}}}}&key=stored-query-secret", up.base),
        "params": ["city", "units"],
    })).await);
    let call = |query: &'static str| s.get(&format!("/r/{uuid}?{query}")).send();

    let res = call("city=Paris&units=metric&lang=fr&select=path").await.unwrap();
    let echoed = as_json(&res.text().await.unwrap());
    assert_eq!(echoed, Value::String("/echo/Paris".into()), "select applies to the answer");
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.path, "/echo/Paris");
    let query = seen.query.unwrap();
    assert!(query.contains("units=metric") && query.contains("lang=fr"), "{query}");
    assert!(!query.contains("select"), "select is brine's, not the upstream's");

    // Hostile values stay inside their one segment or value; the host never changes.
    for (value, expected_path) in [
        ("a%2Fb", "/echo/a%2Fb"),
        ("%40evil.com", "/echo/%40evil.com"),
        ("x%23frag", "/echo/x%23frag"),
        ("line%0D%0Abreak", "/echo/line%0D%0Abreak"),
        ("q%3Fx%3D1", "/echo/q%3Fx%3D1"),
    ] {
        let res = s.get(&format!("/r/{uuid}?units=u&city={value}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{value}");
        let seen = up.seen().pop().unwrap();
        assert_eq!(seen.path, expected_path);
        assert_eq!(seen.headers["host"], up.base.trim_start_matches("http://"));
    }
    for hostile in ["..", "%2e%2e", "../admin", ".%2E"] {
        let before = up.seen().len();
        let res = s.get(&format!("/r/{uuid}?units=u&city={hostile}")).send().await.unwrap();
        expect_error(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(up.seen().len(), before, "{hostile} never reaches the upstream");
    }
    let res = call("city=Paris").await.unwrap();
    let err = expect_error(res, StatusCode::BAD_REQUEST).await;
    assert!(err["message"].as_str().unwrap().contains("units"), "{err}");
    // Names are case-sensitive.
    let res = call("City=Paris&units=u").await.unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
}

async fn select_picks_from_json_answers() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&bridge(&s, &token, json!({"url": up.url("/weather")})).await);
    for (select, expected) in [
        ("current.temp_c", json!(21.5)),
        ("items.%23", json!(3)),
        ("%7Btemp:current.temp_c,city:location.name%7D", json!({"temp": 21.5, "city": "Paris"})),
        ("nothing.here", Value::Null),
    ] {
        let res = s.get(&format!("/r/{uuid}?select={select}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        assert_eq!(as_json(&res.text().await.unwrap()), expected, "{select}");
    }
    let before = up.seen().len();
    let res = s.get(&format!("/r/{uuid}?select=%7Bbroken")).send().await.unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(up.seen().len(), before, "a bad select costs no upstream call");
}

async fn fallbacks_are_tried_in_order_for_idempotent_calls() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let dead = closed_port().await;
    let uuid = uuid_of(&bridge(&s, &token, json!({
        "url": format!("{dead}/weather"),
        "fallback_urls": [up.url("/fail"), up.url("/weather")],
        "allowed_methods": ["GET", "POST"],
    })).await);
    let res = s.get(&format!("/r/{uuid}?select=location.name")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-brine-hop"], "2");
    assert_eq!(res.text().await.unwrap(), "\"Paris\"");
    let paths: Vec<String> = up.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(paths, ["/fail", "/weather"]);

    // POST is not retried elsewhere (it might run twice upstream).
    let res = s.post(&format!("/r/{uuid}")).body("{}").send().await.unwrap();
    expect_error(res, StatusCode::BAD_GATEWAY).await;
    assert_eq!(up.seen().len(), 2);

    // Every hop down: 502.
    let other = closed_port().await;
    let uuid = uuid_of(&bridge(&s, &token, json!({"url": dead, "fallback_urls": [other]})).await);
    expect_error(s.get(&format!("/r/{uuid}")).send().await.unwrap(), StatusCode::BAD_GATEWAY).await;
}

async fn a_slow_upstream_times_out_with_504() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&bridge(&s, &token, json!({"url": up.url("/slow?ms=3000"), "timeout_ms": 200})).await);
    let err = expect_error(s.get(&format!("/r/{uuid}")).send().await.unwrap(), StatusCode::GATEWAY_TIMEOUT).await;
    assert_eq!(err["error"], "Upstream timeout");
}

async fn streams_pass_through_and_never_fall_back_after_the_first_byte() {
    let s = server().await;
    let up = Upstream::start().await;
    let backup = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&bridge(&s, &token, json!({
        "url": up.url("/sse"),
        "fallback_urls": [backup.url("/weather")],
        "headers": auth(STORED_KEY),
    })).await);
    let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.bytes_stream();
    // The first event arrives while the upstream is still holding the rest back.
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: {\"n\":1}\n\n");
    up.release_stream();
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"data: {\"n\":2}\n\ndata: [DONE]\n\n");
    assert!(backup.seen().is_empty(), "no fallback once the stream had begun");
}

async fn origins_are_matched_exactly_and_refused_before_any_upstream_call() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&bridge(&s, &token, json!({
        "url": up.url("/weather"),
        "allowed_methods": ["GET", "POST"],
        "allowed_origins": ["https://app.example.com"],
    })).await);
    let path = format!("/r/{uuid}");

    let res = s.get(&path).header("Origin", "https://app.example.com").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(res.headers()["vary"].to_str().unwrap().contains("Origin"));

    for origin in ["https://evil.example.com", "https://app.example.com.evil.com", "null", "http://app.example.com"] {
        let res = s.get(&path).header("Origin", origin).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.headers().get("access-control-allow-origin").is_none());
        assert_eq!(
            res.text().await.unwrap(),
            r#"{"error":"Origin not allowed","message":"Your origin is not authorized to access this endpoint."}"#
        );
    }
    assert_eq!(up.seen().len(), 1, "refused origins never reach the upstream");

    // No Origin (curl, a server): passes. CORS is browser hygiene, not authentication.
    assert_eq!(s.get(&path).send().await.unwrap().status(), StatusCode::OK);

    // Preflight is answered here, from the policy.
    let res = s
        .request(Method::OPTIONS, &path)
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-methods"], "GET, POST");
    assert_eq!(h["access-control-allow-headers"], "content-type");
    let res = s
        .request(Method::OPTIONS, &path)
        .header("Origin", "https://evil.example.com")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(up.seen().len(), 2);
}

async fn methods_paths_and_keys_are_enforced() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let created = bridge_with(&s, &token, "private", json!({
        "url": up.url("/v1"),
        "headers": auth(STORED_KEY),
        "allowed_methods": ["POST"],
        "allowed_paths": ["/chat/completions", "/models"],
    })).await;
    let uuid = uuid_of(&created);
    let key = key_of(&created);

    let res = s.get(&format!("/r/{uuid}")).header("X-API-Key", &key).send().await.unwrap();
    assert_eq!(res.headers()["allow"], "POST");
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED).await;

    let res = s.post(&format!("/r/{uuid}/chat/completions")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), MISSING_KEY);
    let res = s
        .post(&format!("/r/{uuid}/chat/completions"))
        .header("X-API-Key", &key)
        .json(&json!({"model": "m", "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert!(!seen.headers.contains_key("x-api-key"));

    for path in ["/admin", "/chat/completions/../../admin", "/modelsX"] {
        let res = s.post(&format!("/r/{uuid}{path}")).header("X-API-Key", &key).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(up.seen().len(), 1);
}

async fn secrets_echoed_by_the_upstream_are_scrubbed() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&bridge(&s, &token, json!({"url": up.url("/echo-key"), "headers": auth(STORED_KEY)})).await);
    let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the upstream's status comes back");
    let echoed_header = res.headers()["x-echo"].to_str().unwrap().to_owned();
    let text = res.text().await.unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(STORED_KEY);
    for leak in [STORED_KEY, b64.as_str()] {
        assert!(!text.contains(leak), "{text}");
        assert!(!echoed_header.contains(leak), "{echoed_header}");
    }
    assert!(text.contains("[REDACTED]"), "{text}");
}

async fn bridges_are_audited_with_call_details() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&bridge(&s, &token, json!({
        "url": up.url("/weather"),
        "allowed_origins": ["https://app.example.com"],
    })).await);
    s.get(&format!("/r/{uuid}?q=secret-query-value"))
        .header("Origin", "https://app.example.com")
        .header("User-Agent", "browser/1")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    s.get(&format!("/r/{uuid}")).header("Origin", "https://evil.example.com").send().await.unwrap();
    // The byte count is written when the body has been relayed; give that a moment.
    let mut events = Value::Null;
    for _ in 0..50 {
        let res = s.get(&format!("/api/v1/records/{uuid}/events")).bearer_auth(&token).send().await.unwrap();
        events = body(res).await;
        if events["events"][1]["detail"]["bytes"].is_number() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let list = events["events"].as_array().unwrap();
    assert_eq!(list[0]["channel"], "bridge");
    assert_eq!(list[0]["outcome"], "forbidden");
    let ok = &list[1];
    assert_eq!(ok["outcome"], "ok");
    assert_eq!(ok["user_agent"], "browser/1");
    let d = &ok["detail"];
    assert_eq!((d["method"].as_str(), d["status"].as_u64(), d["hop"].as_u64()), (Some("GET"), Some(200), Some(0)));
    assert_eq!(d["origin"], "https://app.example.com");
    assert!(d["bytes"].as_u64().unwrap() > 10);
    assert!(d["latency_ms"].is_number());
    assert!(!events.to_string().contains("secret-query-value"), "no query strings in the log");
}

async fn owners_see_the_policy_reveal_the_secrets_and_try_calls() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let created = bridge(&s, &token, json!({
        "url": up.url("/weather"),
        "headers": auth(STORED_KEY),
        "allowed_origins": ["https://app.example.com"],
    })).await;
    let uuid = uuid_of(&created);
    assert!(!created.to_string().contains(STORED_KEY));
    assert!(!created.to_string().contains(&up.base));
    assert_eq!(created["record"]["type"], "bridge");
    assert_eq!(created["record"]["bridge"]["allowed_origins"][0], "https://app.example.com");

    let res = s.get(&format!("/api/v1/records/{uuid}/value")).bearer_auth(&token).send().await.unwrap();
    let revealed = body(res).await;
    assert_eq!(revealed["data"]["url"], up.url("/weather"));
    assert_eq!(revealed["data"]["headers"]["Authorization"], format!("Bearer {STORED_KEY}"));

    let res = s
        .post(&format!("/api/v1/records/{uuid}/try"))
        .bearer_auth(&token)
        .json(&json!({"select": "current.temp_c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let tried = body(res).await;
    assert_eq!(tried["status"], 200);
    assert_eq!(tried["body"], json!(21.5));
    assert_eq!(tried["hop"], 0);
    assert!(tried["duration_ms"].is_number());
    assert_eq!(up.seen().pop().unwrap().headers["authorization"], format!("Bearer {STORED_KEY}"));

    // Replacing the upstream with PATCH.
    let res = s
        .request(Method::PATCH, &format!("/api/v1/records/{uuid}"))
        .bearer_auth(&token)
        .json(&json!({"bridge": {"url": up.url("/echo"), "headers": auth("sk-new-key-000000")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    s.get(&format!("/r/{uuid}")).send().await.unwrap();
    let seen = up.seen().pop().unwrap();
    assert_eq!((seen.path.as_str(), seen.headers["authorization"].as_str()), ("/echo", "Bearer sk-new-key-000000"));
}

async fn encoded_dots_headers_and_stored_params_cannot_be_used_against_the_bridge() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let created = bridge(&s, &token, json!({
        "url": format!("{}/v1?key=stored-query-secret", up.base),
        "headers": {"Authorization": format!("Bearer {STORED_KEY}"), "Accept": "application/json"},
        "allowed_methods": ["GET"],
        "allowed_paths": ["/chat/completions"],
        "params": ["city"],
    })).await;
    let uuid = uuid_of(&created);
    for path in [
        "/chat/completions/.%252e/.%252e/x",
        "/chat/completions/.%2e/.%2e/x",
        "/chat/completions/%2e%2e/x",
        "/chat/completions/..%5cx",
    ] {
        let res = s.get(&format!("/r/{uuid}{path}")).send().await.unwrap();
        assert!(res.status().is_client_error(), "{path}: {}", res.status());
    }
    assert!(up.seen().is_empty(), "no escape reached the upstream");

    // A caller cannot override the bridge's own query parameters.
    let res = s.get(&format!("/r/{uuid}/chat/completions?key=mine")).send().await.unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
    assert!(up.seen().is_empty());

    // Compression is never offered upstream (answers must be readable to scrub them), and a
    // benign stored header is not treated as a secret.
    let res = s
        .get(&format!("/r/{uuid}/chat/completions?lang=fr"))
        .header("Accept-Encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let seen = up.seen().pop().unwrap();
    assert!(!seen.headers.contains_key("accept-encoding"));
    assert_eq!(seen.headers["accept"], "application/json");
    assert_eq!(seen.query.as_deref(), Some("key=stored-query-secret&lang=fr"));
    let text = res.text().await.unwrap();
    assert!(!text.contains("stored-query-secret"), "{text}");

    // A bridge never gets a secure page (its secrets are not for people).
    let res = s
        .request(Method::PUT, &format!("/api/v1/records/{uuid}/secure-page"))
        .bearer_auth(&token)
        .json(&json!({"enabled": true, "password": "page password"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
}

async fn calls_that_cannot_be_made_do_not_use_up_reads() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&s.create(&token, json!({"name": "once", "type": "bridge", "access": "public",
        "max_reads": 1, "bridge": {"url": format!("{}/echo/{{{{city}}}}", up.base), "params": ["city"]}})).await);
    expect_error(s.get(&format!("/r/{uuid}")).send().await.unwrap(), StatusCode::BAD_REQUEST).await;
    expect_error(s.get(&format!("/r/{uuid}?city=..")).send().await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert_eq!(s.get(&format!("/r/{uuid}?city=Paris")).send().await.unwrap().status(), StatusCode::OK);
    expect_error(s.get(&format!("/r/{uuid}?city=Paris")).send().await.unwrap(), StatusCode::NOT_FOUND).await;
}

async fn bad_bridges_are_refused() {
    let s = server().await;
    let token = s.signup("ana@example.com").await;
    for bad in [
        json!({"url": "ftp://example.com/x"}),
        json!({"url": "not a url"}),
        json!({"url": "https://{{host}}/x", "params": ["host"]}),
        json!({"url": "https://api.example.com:{{port}}/", "params": ["port"]}),
        json!({"url": "https://api.example.com/{{undeclared}}"}),
        json!({"url": "https://api.example.com/", "allowed_origins": ["*"]}),
        json!({"url": "https://api.example.com/", "allowed_origins": ["null"]}),
        json!({"url": "https://api.example.com/", "allowed_origins": ["https://app.example.com/path"]}),
        json!({"url": "https://api.example.com/", "allowed_methods": ["GE T"]}),
        json!({"url": "https://api.example.com/", "allowed_methods": []}),
        json!({"url": "https://api.example.com/", "allowed_paths": ["no-slash"]}),
        json!({"url": "https://api.example.com/", "headers": {"Bad Header": "x"}}),
        json!({"url": "https://api.example.com/",
               "headers": {"X-Api-Key": "first-0123456789", "x-api-key": "second-0123456789"}}),
        json!({"url": "https://api.example.com/", "timeout_ms": 0}),
        json!({"url": "https://api.example.com/", "colour": "blue"}),
    ] {
        let res = s
            .post("/api/v1/records")
            .bearer_auth(&token)
            .json(&json!({"name": "b", "type": "bridge", "access": "public", "bridge": bad}))
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
    let res = s
        .post("/api/v1/records")
        .bearer_auth(&token)
        .json(&json!({"name": "b", "type": "bridge", "access": "public", "data": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_in_flight_through_one_bridge_are_bounded() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(
        &bridge(
            &s,
            &token,
            json!({"url": up.url("/sse"), "max_concurrent": 1}),
        )
        .await,
    );
    // The first call holds its place while its stream is open.
    let first = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let mut stream = first.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let busy = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    assert_eq!(busy.headers()["retry-after"], "1");
    let err = expect_error(busy, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(err["error"], "Bridge busy");
    // Once it ends, the place is free again.
    up.release_stream();
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
    }
    drop(stream);
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        let res = s.get(&format!("/r/{uuid}?select=x")).send().await.unwrap();
        status = res.status();
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::OK);
    up.release_stream();
}

/// Without `allow_private_upstreams`, no bridge reaches a loopback address: not by literal IP,
/// not through a hostname that resolves to one. Other address classes are tested as a pure
/// function in the bridge crate; over the network, only loopback is ever used.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_addresses_are_refused_by_default() {
    let s = TestServer::start().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let port = up.base.rsplit(':').next().unwrap().to_owned();
    for url in [
        up.url("/weather"),
        format!("http://localhost:{port}/weather"),
        format!("http://[::ffff:127.0.0.1]:{port}/weather"),
    ] {
        let uuid = uuid_of(&bridge(&s, &token, json!({"url": url})).await);
        let err = expect_error(
            s.get(&format!("/r/{uuid}")).send().await.unwrap(),
            StatusCode::BAD_GATEWAY,
        )
        .await;
        assert_eq!(err["error"], "Upstream not allowed", "{url}");
    }
    assert!(
        up.seen().is_empty(),
        "the internal upstream was never called"
    );
}

/// Redirects are passed back, never followed: an upstream cannot bounce brine to an internal
/// address.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_redirects_are_not_followed() {
    let s = server().await;
    let up = Upstream::start().await;
    let internal = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let target: String =
        url::form_urlencoded::byte_serialize(internal.url("/admin").as_bytes()).collect();
    let uuid = uuid_of(
        &bridge(
            &s,
            &token,
            json!({"url": format!("{}/redirect?to={target}", up.base)}),
        )
        .await,
    );
    // A client that does not follow redirects either, to see what brine answered.
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http.get(s.url(&format!("/r/{uuid}"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    // (The target came from the stored URL's query, a secret part, so it is scrubbed too.)
    assert!(res.headers().contains_key("location"));
    assert!(internal.seen().is_empty());
}
