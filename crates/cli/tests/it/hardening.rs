//! Regression tests for the November 2026 red-team review: one test per class of finding, each
//! against a real server and real local upstreams (the self-loop through brine's own listening
//! address).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::upstream::{Upstream, closed_port};

/// Bridges of this server may call loopback addresses: its own included.
async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.allow_private_upstreams = true;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await
}

async fn bridge(s: &TestServer, token: &str, bridge: Value) -> String {
    let created = s
        .create(
            token,
            json!({"name": "API", "type": "bridge", "access": "public", "bridge": bridge}),
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

/// A record's events on channels other than `owner`, newest first.
async fn calls(s: &TestServer, token: &str, uuid: &str) -> Vec<Value> {
    let res = s
        .get(&format!("/api/v1/records/{uuid}/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    body(res).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["channel"] != "owner")
        .cloned()
        .collect()
}

fn outcomes(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bridge_that_calls_itself_makes_one_refused_call_whatever_the_address() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = bridge(&s, &token, json!({"url": up.url("/echo")})).await;
    let own = format!("{}/r/{uuid}", s.base);
    let by_name = own.replace("127.0.0.1", "localhost");
    let res = patch(
        &s,
        &token,
        &uuid,
        json!({"bridge": {"url": closed_port().await, "fallback_urls": [by_name, own, own],
                          "max_concurrent": 3}}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::LOOP_DETECTED);
    assert_eq!(
        res.headers()["x-brine-hop"],
        "1",
        "the first self-call ends the call"
    );
    let answer = body(res).await;
    assert_eq!(answer["error"], "Loop detected");

    let events = calls(&s, &token, &uuid).await;
    assert_eq!(outcomes(&events), ["loop", "ok"], "{events:?}");
    assert_eq!(events[1]["detail"]["status"], 508);
    assert!(up.seen().is_empty(), "nothing else was called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bridges_of_two_installations_calling_each_other_stop_at_the_first_return() {
    let a = server().await;
    let b = server().await;
    let up = Upstream::start().await;
    let (ta, tb) = (
        a.signup("a@example.com").await,
        b.signup("b@example.com").await,
    );
    let on_a = bridge(&a, &ta, json!({"url": up.url("/echo")})).await;
    let on_b = bridge(
        &b,
        &tb,
        json!({"url": format!("{}/r/{on_a}", a.base),
               "fallback_urls": [format!("{}/r/{on_a}", a.base), up.url("/fallback")]}),
    )
    .await;
    let res = patch(
        &a,
        &ta,
        &on_a,
        json!({"bridge": {"url": format!("{}/r/{on_b}", b.base)}}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    let res = a.get(&format!("/r/{on_a}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::LOOP_DETECTED);
    // A → B → A: A refuses what it sent itself; B does not try its fallbacks after that refusal.
    assert_eq!(outcomes(&calls(&a, &ta, &on_a).await), ["loop", "ok"]);
    assert_eq!(outcomes(&calls(&b, &tb, &on_b).await), ["ok"]);
    assert!(up.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_brine_upstream_is_not_answered_with_fallbacks() {
    let front = server().await;
    let back = server().await;
    let up = Upstream::start().await;
    let (tf, tb) = (
        front.signup("f@example.com").await,
        back.signup("b@example.com").await,
    );
    let busy = bridge(
        &back,
        &tb,
        json!({"url": up.url("/sse"), "max_concurrent": 1}),
    )
    .await;
    let front_bridge = bridge(
        &front,
        &tf,
        json!({"url": format!("{}/r/{busy}", back.base), "fallback_urls": [up.url("/fallback")]}),
    )
    .await;
    // One call holds the back bridge's only place while its stream stays open.
    let held = back.get(&format!("/r/{busy}")).send().await.unwrap();
    assert_eq!(held.status(), StatusCode::OK);

    let res = front
        .get(&format!("/r/{front_bridge}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["x-brine-refusal"], "busy");
    assert!(
        up.seen().iter().all(|s| s.path != "/fallback"),
        "brine's own busy answer is final"
    );
    up.release_stream();
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fallback_lists_are_bounded_and_one_call_makes_at_most_four_attempts() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let four: Vec<String> = (1..=4).map(|i| up.url(&format!("/fail?hop={i}"))).collect();
    let res = s
        .post("/api/v1/records")
        .bearer_auth(&token)
        .json(&json!({"name": "API", "type": "bridge", "access": "public",
                      "bridge": {"url": up.url("/fail?hop=0"), "fallback_urls": four}}))
        .send()
        .await
        .unwrap();
    let err = expect_error(res, StatusCode::BAD_REQUEST).await;
    assert!(
        err["message"].as_str().unwrap().contains("at most 3"),
        "{err}"
    );

    let uuid = bridge(
        &s,
        &token,
        json!({"url": up.url("/fail?hop=0"), "fallback_urls": &four[..3]}),
    )
    .await;
    let res = patch(
        &s,
        &token,
        &uuid,
        json!({"bridge": {"url": up.url("/fail?hop=0"), "fallback_urls": four}}),
    )
    .await;
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let res = patch(
        &s,
        &token,
        &uuid,
        json!({"rate_limit": {"per_ip": "1/min"}, "quota": {"requests": 1, "per": "day"}}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Every hop fails: 1 + 3 attempts, the last answer relayed, one unit of each limit spent.
    let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.headers()["x-brine-hop"], "3");
    assert_eq!(up.seen().len(), 4);
    let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    expect_error(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(up.seen().len(), 4, "a refused call reaches no upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_hop_starts_after_the_total_timeout() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let slow = |hop: u8| up.url(&format!("/slow?ms=5000&hop={hop}"));
    let uuid = bridge(
        &s,
        &token,
        json!({"url": slow(0), "fallback_urls": [slow(1), slow(2)],
               "timeout_ms": 1000, "total_timeout_ms": 1500}),
    )
    .await;
    let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    expect_error(res, StatusCode::GATEWAY_TIMEOUT).await;
    // The first hop used 1000 ms and the second the 500 left; the third would start after the
    // deadline and is never contacted.
    let hops: Vec<String> = up.seen().iter().filter_map(|s| s.query.clone()).collect();
    assert!(hops.len() <= 2, "{hops:?}");
    assert!(hops.iter().all(|q| !q.ends_with("hop=2")), "{hops:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn method_overrides_and_url_rewrites_never_reach_the_upstream() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = bridge(
        &s,
        &token,
        json!({"url": up.url("/api/public"), "allowed_methods": ["POST"]}),
    )
    .await;
    let overrides = [
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-HTTP-Method", "DELETE"),
        ("X-Method-Override", "DELETE"),
        ("X-Original-Method", "DELETE"),
        ("X-Original-URL", "/admin"),
        ("X-Original-URI", "/admin"),
        ("X-Rewrite-URL", "/admin"),
        ("X-Original-Host", "admin.internal"),
        ("X-Host", "admin.internal"),
        ("X-Forwarded-Prefix", "/admin"),
        ("X-Envoy-Original-Path", "/admin"),
        ("X-Middleware-Subrequest", "middleware"),
    ];
    let mut req = s.post(&format!("/r/{uuid}")).header("X-Kept", "yes");
    for (name, value) in overrides {
        req = req.header(name, value);
    }
    assert_eq!(req.send().await.unwrap().status(), StatusCode::OK);
    let seen = up.seen().pop().unwrap();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/api/public")
    );
    assert_eq!(seen.headers["x-kept"], "yes");
    for (name, _) in overrides {
        assert!(
            !seen.headers.contains_key(&name.to_ascii_lowercase()),
            "{name} was forwarded"
        );
    }
    // The query-string override is refused, not passed on.
    let res = s
        .post(&format!("/r/{uuid}?_method=DELETE"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(up.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path_parameters_cannot_step_out_of_allowed_paths() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let strict = bridge(
        &s,
        &token,
        json!({"url": up.url("/api"), "allowed_paths": ["/public"]}),
    )
    .await;
    for path in [
        "/public/..;/admin",
        "/public/..;x=1/admin",
        "/public;jsessionid=1/../admin",
        "/public;v=1",
        "/public/file;v=2",
        "/public/%3B/admin",
        "/public/%3b",
    ] {
        let res = s.get(&format!("/r/{strict}{path}")).send().await.unwrap();
        expect_error(res, StatusCode::NOT_FOUND).await;
    }
    assert!(up.seen().is_empty());

    let lenient = bridge(
        &s,
        &token,
        json!({"url": up.url("/api"), "allowed_paths": ["/public"], "allow_path_params": true}),
    )
    .await;
    let res = s
        .get(&format!("/r/{lenient}/public/file;v=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(up.seen().pop().unwrap().path, "/api/public/file;v=2");
    for path in ["/public/..;/admin", "/public/.;/x"] {
        let res = s.get(&format!("/r/{lenient}{path}")).send().await.unwrap();
        expect_error(res, StatusCode::NOT_FOUND).await;
    }
    assert_eq!(
        up.seen().len(),
        1,
        "only the plain path parameter went through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echoed_keys_are_scrubbed_in_every_promised_encoding() {
    let s = server().await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let key = "sk_live&<TOK>+/'9f8e7d6c";
    let escaped = bridge(
        &s,
        &token,
        json!({"url": up.url("/echo-escaped"), "headers": {"Authorization": format!("Bearer {key}")}}),
    )
    .await;
    let res = s.get(&format!("/r/{escaped}")).send().await.unwrap();
    let echoed = body(res).await;
    for field in ["go", "dotnet", "every"] {
        assert_eq!(echoed[field], "[REDACTED]", "{field}: {echoed}");
    }
    assert_eq!(echoed["url"], "https://x.example/?k=[REDACTED]", "{echoed}");
    assert!(
        up.seen()[0].headers["authorization"].ends_with(key),
        "the upstream got the key"
    );

    // A key given as the URL's user name goes upstream as Basic auth; its echo is scrubbed.
    let user = "sk_live_0123456789abcdef";
    let base = up.base.replace("http://", &format!("http://{user}@"));
    let userinfo = bridge(&s, &token, json!({"url": format!("{base}/echo-auth")})).await;
    let res = s.get(&format!("/r/{userinfo}")).send().await.unwrap();
    let text = res.text().await.unwrap();
    let sent = &up.seen()[1].headers["authorization"];
    assert!(sent.starts_with("Basic "), "{sent}");
    assert!(text.starts_with("you sent: Basic [REDACTED]"), "{text}");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(user);
    assert!(!text.contains(&b64[..b64.len() - 1]), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_select_nested_too_deeply_is_a_bad_request() {
    let s = server().await;
    let token = s.signup("ana@example.com").await;
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let created = s
        .create(
            &token,
            json!({"name": "Deep", "access": "private", "data": nested(130)}),
        )
        .await;
    let (uuid, key) = (uuid_of(&created), key_of(&created));
    let read = |select: &'static str| {
        s.get(&format!("/r/{uuid}?select={select}"))
            .header("X-API-Key", &key)
            .send()
    };
    let err = expect_error(read("0").await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(err["message"].as_str().unwrap().contains("nested"), "{err}");
    let ok = read("0.0").await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        ok.text().await.unwrap(),
        format!("{{\"data\":{}}}", nested(128))
    );
    assert_eq!(outcomes(&calls(&s, &token, &uuid).await), ["ok", "denied"]);
}

each_backend! {
async fn other_sites_cannot_post_to_the_secure_page_and_a_new_password_clears_its_lockout() {
    let s = server().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({"name": "Handoff", "access": "private", "data": "sk_live_handoff",
                               "secure_page": {"enabled": true, "password": "first password"}}))
        .await;
    let uuid = uuid_of(&created);
    let url = s.url(&format!("/secure/{uuid}"));
    let form = LoadedForm::load(s.http.get(&url)).await;

    // Another site's page posting wrong passwords through its visitors' browsers: the browser
    // says where the post comes from, and it has neither the cookie nor the form's token.
    let forged = [
        s.http.post(&url).header("Sec-Fetch-Site", "cross-site").form(&[("password", "guess")]),
        s.http.post(&url).header("Origin", "https://evil.example").form(&[("password", "guess")]),
        s.http.post(&url).form(&[("password", "guess"), ("form_token", form.token.as_str())]),
        form.post(&s.http, &url, &[("password", "guess")]).header("Sec-Fetch-Site", "cross-site"),
        form.post(&s.http, &url, &[("password", "guess")]).header("Origin", "null"),
        s.http.post(&url).header("Cookie", &form.cookie).form(&[("password", "guess"), ("form_token", "forged")]),
    ];
    for request in forged {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.text().await.unwrap().contains("another site"));
    }
    for _ in 0..30 {
        let res = s.http.post(&url).header("Sec-Fetch-Site", "cross-site")
            .form(&[("password", "guess")]).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    assert!(
        !outcomes(&calls(&s, &token, &uuid).await).iter().any(|o| *o == "attempt" || *o == "denied"),
        "a refused post counts towards nothing"
    );
    // The page's own form still works (same-origin, as a browser marks it).
    let res = form
        .post(&s.http, &url, &[("password", "first password")])
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Lock the page for everyone (20 failures from five addresses)...
    for i in 0..20 {
        let ip = format!("203.0.113.{}", i / 4);
        let res = form.post(&s.http, &url, &[("password", "wrong guess")])
            .header("X-Forwarded-For", &ip).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = form.post(&s.http, &url, &[("password", "first password")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...then the owner sets a new password: failures before it no longer count.
    let res = s.request(Method::PUT, &format!("/api/v1/records/{uuid}/secure-page"))
        .bearer_auth(&token)
        .json(&json!({"enabled": true, "password": "second password"}))
        .send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = form.post(&s.http, &url, &[("password", "second password")])
        .header("X-Forwarded-For", "203.0.113.0").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("sk_live_handoff"));
    let history = outcomes(&calls(&s, &token, &uuid).await).iter().filter(|o| **o == "denied").count();
    assert_eq!(history, 20, "the audit history stays");
}

async fn a_record_password_must_come_as_json() {
    let s = server().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({"name": "DB", "access": "private", "data": "postgres://x", "password": "open sesame"}))
        .await;
    let uuid = uuid_of(&created);
    // What a page of another site can send without a preflight: refused before it counts.
    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let mut req = s.post(&format!("/r/{uuid}")).body(r#"{"password":"open sesame"}"#);
        if let Some(t) = content_type {
            req = req.header("Content-Type", t);
        }
        expect_error(req.send().await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    // Nor can a batch, which any page may send (its preflight admits every origin).
    let res = s
        .post("/batch")
        .header("Origin", "https://evil.example")
        .json(&json!({"requests": [{"uuid": uuid, "method": "POST", "body": {"password": "guess"}}]}))
        .send()
        .await
        .unwrap();
    let item = &body(res).await["results"][0];
    assert_eq!(item["status"], 400, "{item}");
    assert!(calls(&s, &token, &uuid).await.is_empty());
    let res = s.post(&format!("/r/{uuid}")).json(&json!({"password": "open sesame"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reloading_a_secure_page_is_counted_not_stored_again() {
    let s = server().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Handoff", "access": "private", "data": "v",
                               "secure_page": {"enabled": true, "password": "page password"}}),
        )
        .await;
    let uuid = uuid_of(&created);
    let load = |ip: &'static str| {
        s.get(&format!("/secure/{uuid}"))
            .header("X-Forwarded-For", ip)
            .send()
    };
    for _ in 0..50 {
        assert_eq!(load("198.51.100.1").await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(load("198.51.100.2").await.unwrap().status(), StatusCode::OK);
    // Repeats are written to the first event about once a second: wait for them.
    let mut events = Vec::new();
    for _ in 0..100 {
        events = calls(&s, &token, &uuid).await;
        if events.iter().any(|e| e["detail"]["repeats"] == 49) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(outcomes(&events), ["opened", "opened"], "{events:?}");
    let by_client = |ip: &str| {
        events
            .iter()
            .find(|e| e["client_ip"] == ip)
            .unwrap()
            .clone()
    };
    assert_eq!(by_client("198.51.100.1")["detail"]["repeats"], 49);
    assert!(by_client("198.51.100.2")["detail"].is_null());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    // A database created more open by an earlier version is tightened at start-up.
    std::fs::write(dir.path().join("brine.db"), b"").unwrap();
    std::fs::set_permissions(
        dir.path().join("brine.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let s = TestServer::start_settings(settings_in(dir.path()))
        .await
        .unwrap();
    let token = s.signup("ana@example.com").await;
    s.create(
        &token,
        json!({"name": "x", "access": "private", "data": "y"}),
    )
    .await;
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        checked += 1;
    }
    assert!(checked >= 3, "database, write-ahead log and master key");
    let fresh = server().await;
    let mode = std::fs::metadata(fresh.data_dir.join("brine.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn selects_share_a_bounded_buffer_budget() {
    let s = TestServer::start_with(|c| {
        c.allow_private_upstreams = true;
        c.select_buffer_bytes = 1024 * 1024;
    })
    .await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let held = bridge(&s, &token, json!({"url": up.url("/big?kib=700&hold=1")})).await;
    let other = bridge(&s, &token, json!({"url": up.url("/big?kib=700")})).await;

    // One select reads 700 KiB and waits for the rest of its answer, holding its share; another
    // select then finds too little budget left: 503, not more memory. A select never waits for
    // budget, so until the first has read its part the other may pass, and if both read at the
    // same moment the first may be the one refused: then the scenario starts again.
    let select = |uuid: &str| s.http.get(s.url(&format!("/r/{uuid}?select=%23")));
    let mut outcome = None;
    for _scenario in 0..10 {
        let first = tokio::spawn(select(&held).send());
        let mut refused = None;
        while refused.is_none() && !first.is_finished() {
            let res = select(&other).send().await.unwrap();
            if res.status() == StatusCode::SERVICE_UNAVAILABLE {
                refused = Some(res);
            } else {
                assert_eq!(res.status(), StatusCode::OK);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        match refused {
            Some(refused) => {
                outcome = Some((first, refused));
                break;
            }
            None => {
                let refused_first = first.await.unwrap().unwrap();
                assert_eq!(refused_first.status(), StatusCode::SERVICE_UNAVAILABLE);
            }
        }
    }
    let (first, refused) = outcome.expect("a select over the budget is refused");
    assert_eq!(refused.headers()["retry-after"], "1");
    let err = expect_error(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(err["error"], "Server busy");

    // Abandoned scenarios left answers waiting too: release them all.
    for _ in 0..10 {
        up.release_stream();
    }
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(body(first).await, json!(701));
    let res = s
        .get(&format!("/r/{other}?select=%23"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the budget is given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_uuid_has_one_spelling() {
    let s = server().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Public", "access": "public", "data": "v"}),
        )
        .await;
    let uuid = uuid_of(&created);
    assert_eq!(s.read(&uuid, None).await.status(), StatusCode::OK);
    let simple = uuid.replace('-', "");
    for other in [
        uuid.to_uppercase(),
        format!("{{{uuid}}}"),
        format!("urn:uuid:{uuid}"),
        simple,
    ] {
        expect_error(s.read(&other, None).await, StatusCode::NOT_FOUND).await;
        let res = s
            .get(&format!("/api/v1/records/{other}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::NOT_FOUND).await;
        let res = s
            .post("/batch")
            .json(&json!({"requests": [{"uuid": other}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(body(res).await["results"][0]["status"], 404);
    }
}
