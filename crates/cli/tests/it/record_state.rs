//! Records disabled and enabled by their owner, when each was last used, and bridge changes as
//! JSON merge patches.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::upstream::Upstream;

/// A status and a body with the secure page's form token blanked (it differs on every load).
async fn answer(res: Response) -> (StatusCode, String) {
    let status = res.status();
    let text = res.text().await.unwrap();
    let text = match text.split_once("name=\"form_token\" value=\"") {
        Some((head, rest)) => {
            let tail = rest.split_once('"').map_or("", |(_, tail)| tail);
            format!("{head}name=\"form_token\" value=\"…\"{tail}")
        }
        None => text,
    };
    (status, text)
}

async fn set_enabled(s: &TestServer, token: &str, uuid: &str, enabled: bool) -> Response {
    let verb = if enabled { "enable" } else { "disable" };
    s.post(&format!("/api/v1/records/{uuid}/{verb}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn outcomes(s: &TestServer, token: &str, uuid: &str) -> Vec<(String, String)> {
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
        .map(|e| {
            (
                e["channel"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every public way to `uuid`, each answered in full: reads with the key and with a password,
/// a bridge call and its preflight, a path below it, batch items, the secure page and its unlock.
async fn every_answer(s: &TestServer, uuid: &str, key: &str) -> Vec<(StatusCode, String)> {
    let mut all = Vec::new();
    all.push(answer(s.read(uuid, Some(key)).await).await);
    all.push(answer(s.read(uuid, None).await).await);
    all.push(
        answer(
            s.post(&format!("/r/{uuid}"))
                .json(&json!({"password": "a record password"}))
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    all.push(
        answer(
            s.post(&format!("/r/{uuid}"))
                .header("Origin", "https://app.example.com")
                .header("X-API-Key", key)
                .json(&json!({"q": 1}))
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    all.push(
        answer(
            s.request(Method::OPTIONS, &format!("/r/{uuid}"))
                .header("Origin", "https://app.example.com")
                .header("Access-Control-Request-Method", "POST")
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    all.push(
        answer(
            s.get(&format!("/r/{uuid}/below"))
                .header("X-API-Key", key)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    all.push(
        answer(
            s.post("/batch")
                .json(&json!({"requests": [{"uuid": uuid, "headers": {"X-API-Key": key}}]}))
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    let link = s.url(&format!("/secure/{uuid}"));
    all.push(answer(s.get(&format!("/secure/{uuid}")).send().await.unwrap()).await);
    let form = LoadedForm::load(s.get(&format!("/secure/{uuid}"))).await;
    let http = reqwest::Client::new();
    all.push(
        answer(
            form.post(&http, &link, &[("password", "a page password")])
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    // A batch names each item's uuid in its result: that much differs, as it should.
    all.into_iter()
        .map(|(status, text)| (status, text.replace(uuid, "{uuid}")))
        .collect()
}

each_backend! {
async fn a_disabled_record_answers_like_an_unknown_uuid_and_comes_back_when_enabled() {
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let credential = s.create(&token, json!({"name": "K", "access": "private", "data": "sk_disabled_canary",
        "password": "a record password",
        "secure_page": {"enabled": true, "password": "a page password", "label": "For Bo"}})).await;
    let bridge = s.create(&token, json!({"name": "B", "type": "bridge", "access": "private", "bridge": {
        "url": up.url("/v1"), "headers": {"Authorization": "Bearer stored"},
        "allowed_methods": ["GET", "POST"], "allowed_origins": ["https://app.example.com"]}})).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    for created in [&credential, &bridge] {
        let (uuid, key) = (uuid_of(created), key_of(created));
        assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);
        let res = set_enabled(&s, &token, &uuid, false).await;
        assert_eq!(res.status(), StatusCode::OK);
        let view = body(res).await;
        assert_eq!(view["status"], "disabled");
        assert_eq!(view["uuid"], uuid.as_str());

        // Every answer is the one a uuid that does not exist gets (the same key is sent to both).
        let disabled = every_answer(&s, &uuid, &key).await;
        let absent = every_answer(&s, &unknown, &key).await;
        assert_eq!(disabled, absent, "a disabled record is no existence oracle");
        assert!(!disabled.iter().any(|(_, b)| b.contains("sk_disabled_canary") || b.contains("For Bo")));

        // The owner still sees it, and its value.
        let res = s.get(&format!("/api/v1/records/{uuid}")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(body(res).await["status"], "disabled");
        let res = s.get("/api/v1/records").bearer_auth(&token).send().await.unwrap();
        assert!(body(res).await["records"].as_array().unwrap().iter().any(|r| r["uuid"] == uuid.as_str() && r["status"] == "disabled"));
        let res = s.get(&format!("/api/v1/records/{uuid}/value")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);

        let res = set_enabled(&s, &token, &uuid, true).await;
        assert_eq!(body(res).await["status"], "active");
        assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);
        let events = outcomes(&s, &token, &uuid).await;
        assert!(events.contains(&("owner".into(), "disabled".into())), "{events:?}");
        assert!(events.contains(&("owner".into(), "enabled".into())), "{events:?}");
    }
    // Everything works again as before: the key, the password and the secure page.
    assert_eq!(body(s.read(&uuid_of(&credential), Some(&key_of(&credential))).await).await["data"], "sk_disabled_canary");
    let res = s.post(&format!("/r/{}", uuid_of(&credential))).json(&json!({"password": "a record password"})).send().await.unwrap();
    assert_eq!(body(res).await["data"], "sk_disabled_canary");
    let link = s.url(&format!("/secure/{}", uuid_of(&credential)));
    let form = LoadedForm::load(s.get(&format!("/secure/{}", uuid_of(&credential)))).await;
    let page = form.post(&reqwest::Client::new(), &link, &[("password", "a page password")]).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("sk_disabled_canary"));
    let res = s.get(&format!("/r/{}", uuid_of(&bridge))).header("X-API-Key", key_of(&bridge)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn another_account_cannot_disable_or_enable_a_record() {
    let s = TestServer::start().await;
    let ana = s.signup("ana@example.com").await;
    let bo = s.signup("bo@example.com").await;
    let created = s.create(&ana, json!({"name": "K", "access": "public", "data": "v"})).await;
    let uuid = uuid_of(&created);
    for enabled in [false, true] {
        let err = expect_error(set_enabled(&s, &bo, &uuid, enabled).await, StatusCode::NOT_FOUND).await;
        let unknown = uuid::Uuid::new_v4();
        let absent = expect_error(set_enabled(&s, &bo, &unknown.to_string(), enabled).await, StatusCode::NOT_FOUND).await;
        assert_eq!(err, absent);
    }
    expect_error(s.post(&format!("/api/v1/records/{uuid}/disable")).send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    assert_eq!(body(s.read(&uuid, None).await).await["data"], "v");
    let events = outcomes(&s, &ana, &uuid).await;
    assert!(!events.iter().any(|(c, _)| c == "owner"), "{events:?}");
}

async fn a_disable_on_one_node_is_obeyed_by_another_whose_cache_is_warm() {
    let a = TestServer::start().await;
    let b = a.second_node().await;
    let token = a.signup("ana@example.com").await;
    let created = a.create(&token, json!({"name": "K", "access": "private", "data": "v"})).await;
    let (uuid, key) = (uuid_of(&created), key_of(&created));
    let unknown = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        assert_eq!(b.read(&uuid, Some(&key)).await.status(), StatusCode::OK);
    }
    assert!(b.metric("brine_record_cache_total", "{result=\"hit\"}").await >= 1, "B's copy is in memory");

    assert_eq!(set_enabled(&a, &token, &uuid, false).await.status(), StatusCode::OK);
    let absent = answer(b.read(&unknown, Some(&key)).await).await;
    assert_eq!(answer(b.read(&uuid, Some(&key)).await).await, absent);
    assert_eq!(answer(b.read(&uuid, Some(&key)).await).await, absent);

    // B now holds the disabled copy; enabling on A is obeyed by B's next read too.
    assert_eq!(set_enabled(&a, &token, &uuid, true).await.status(), StatusCode::OK);
    assert_eq!(body(b.read(&uuid, Some(&key)).await).await["data"], "v");
}

async fn last_used_is_the_latest_successful_access() {
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let read = s.create(&token, json!({"name": "R", "access": "private", "data": "v"})).await;
    let refused = s.create(&token, json!({"name": "F", "access": "private", "data": "v"})).await;
    let page = s.create(&token, json!({"name": "P", "access": "private", "api_key": false, "data": "v",
        "secure_page": {"enabled": true, "password": "a page password"}})).await;
    let bridge = s.create(&token, json!({"name": "B", "type": "bridge", "access": "public",
        "bridge": {"url": up.url("/v1")}})).await;
    let last_used = |list: &Value, uuid: &str| -> Value {
        list["records"].as_array().unwrap().iter().find(|r| r["uuid"] == uuid).unwrap()["last_used_at"].clone()
    };
    let list = |s: &TestServer| {
        let req = s.get("/api/v1/records").bearer_auth(&token);
        async move { body(req.send().await.unwrap()).await }
    };
    let before = list(&s).await;
    for created in [&read, &refused, &page, &bridge] {
        assert_eq!(last_used(&before, &uuid_of(created)), Value::Null);
    }

    assert_eq!(s.read(&uuid_of(&read), Some(&key_of(&read))).await.status(), StatusCode::OK);
    assert_eq!(s.read(&uuid_of(&refused), Some("not-the-key")).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.get(&format!("/r/{}", uuid_of(&bridge))).send().await.unwrap().status(), StatusCode::OK);
    let link = s.url(&format!("/secure/{}", uuid_of(&page)));
    let form = LoadedForm::load(s.get(&format!("/secure/{}", uuid_of(&page)))).await;
    assert_eq!(form.post(&reqwest::Client::new(), &link, &[("password", "a page password")]).send().await.unwrap().status(), StatusCode::OK);
    // The owner's own reveal is no use.
    let res = s.get(&format!("/api/v1/records/{}/value", uuid_of(&refused))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let after = list(&s).await;
    let created_at = time::OffsetDateTime::parse(read["record"]["created_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
    for created in [&read, &page, &bridge] {
        let at = last_used(&after, &uuid_of(created));
        let at = time::OffsetDateTime::parse(at.as_str().expect("last_used_at set"), &time::format_description::well_known::Rfc3339).unwrap();
        assert!(at >= created_at.replace_nanosecond(0).unwrap());
        let res = s.get(&format!("/api/v1/records/{}", uuid_of(created))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(body(res).await["last_used_at"], last_used(&after, &uuid_of(created)));
    }
    assert_eq!(last_used(&after, &uuid_of(&refused)), Value::Null, "failures and the owner's reveal do not count");
}

async fn a_bridge_patch_merges_into_the_stored_bridge() {
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s.create(&token, json!({"name": "B", "type": "bridge", "access": "public", "bridge": {
        "url": up.url("/v1"), "headers": {"Authorization": "Bearer sk_stored_canary", "X-Old": "old"},
        "allowed_methods": ["GET"], "allowed_origins": ["https://app.example.com"],
        "timeout_ms": 7000, "allowed_paths": ["/items"]}})).await;
    let uuid = uuid_of(&created);
    let patch = |change: Value| {
        s.request(Method::PATCH, &format!("/api/v1/records/{uuid}")).bearer_auth(&token).json(&change).send()
    };
    let value = || async {
        body(s.get(&format!("/api/v1/records/{uuid}/value")).bearer_auth(&token).send().await.unwrap()).await
    };

    // One field changes; the URL, headers and the rest of the policy stay.
    let res = patch(json!({"bridge": {"allowed_methods": ["GET", "POST"]}})).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(!text.contains("sk_stored_canary"), "stored header values are never returned");
    let view: Value = serde_json::from_str(&text).unwrap();
    let mut expected = created["record"]["bridge"].clone();
    expected["allowed_methods"] = json!(["GET", "POST"]);
    assert_eq!(view["record"]["bridge"], expected);
    let res = s.post(&format!("/r/{uuid}/items")).json(&json!({"n": 1})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen = up.seen().pop().unwrap();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/v1/items"));
    assert_eq!(seen.headers["authorization"], "Bearer sk_stored_canary");
    assert_eq!(seen.headers["x-old"], "old");

    // A header named with null is removed (whatever the case of its name); another is added.
    let res = patch(json!({"bridge": {"headers": {"x-old": null, "X-New": "new"}}})).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(s.get(&format!("/r/{uuid}/items")).send().await.unwrap().status(), StatusCode::OK);
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.headers["authorization"], "Bearer sk_stored_canary");
    assert_eq!(seen.headers["x-new"], "new");
    assert!(!seen.headers.contains_key("x-old"));
    assert_eq!(value().await["data"]["headers"], json!({"Authorization": "Bearer sk_stored_canary", "X-New": "new"}));

    // Bad patches: the envelope, and nothing changed.
    let before = (value().await, body(s.get(&format!("/api/v1/records/{uuid}")).bearer_auth(&token).send().await.unwrap()).await);
    for bad in [
        json!({"bridge": "https://example.com"}),
        json!({"bridge": ["GET"]}),
        json!({"bridge": {"url": "ftp://example.com/x"}}),
        json!({"bridge": {"url": "not a url"}}),
        json!({"bridge": {"url": null}}),
        json!({"bridge": {"headers": {"X-Bad": 5}}}),
        json!({"bridge": {"headers": {"Bad Name": "sk_patch_canary"}}}),
        json!({"bridge": {"fallback_urls": ["https://a.example", "https://b.example", "https://c.example", "https://d.example"]}}),
        json!({"bridge": {"timeout_ms": "soon"}}),
        json!({"bridge": {"no_such_field": 1}}),
    ] {
        let err = expect_error(patch(bad.clone()).await.unwrap(), StatusCode::BAD_REQUEST).await;
        assert!(!err.to_string().contains("canary"), "{bad}: {err}");
    }
    let after = (value().await, body(s.get(&format!("/api/v1/records/{uuid}")).bearer_auth(&token).send().await.unwrap()).await);
    assert_eq!(before, after);

    // A credential takes no bridge patch.
    let credential = uuid_of(&s.create(&token, json!({"name": "K", "access": "public", "data": "v"})).await);
    let res = s.request(Method::PATCH, &format!("/api/v1/records/{credential}")).bearer_auth(&token)
        .json(&json!({"bridge": {"url": up.url("/v1")}})).send().await.unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
}
}
