//! Two nodes on one database: whatever one node changes, the other honours on its very next
//! request (revocation is immediate and global: docs/security.md). Each node is a separate server
//! with its own pools, caches and state.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

each_backend! {
async fn a_key_rotated_on_one_node_fails_on_the_other_at_once() {
    let a = TestServer::start().await;
    let b = a.second_node().await;
    let token = a.signup("ana@example.com").await;
    let created = a.create(&token, json!({"name": "K", "access": "private", "data": "v"})).await;
    let uuid = uuid_of(&created);
    let old = key_of(&created);
    assert_eq!(b.read(&uuid, Some(&old)).await.status(), StatusCode::OK);

    let res = a.post(&format!("/api/v1/records/{uuid}/api-key")).bearer_auth(&token).send().await.unwrap();
    let new = body(res).await["api_key"].as_str().unwrap().to_owned();
    assert_eq!(b.read(&uuid, Some(&old)).await.text().await.unwrap(), MISSING_KEY);
    assert_eq!(body(b.read(&uuid, Some(&new)).await).await["data"], "v");
}

async fn a_rotation_on_one_node_is_obeyed_by_another_whose_cache_is_warm() {
    let a = TestServer::start().await;
    let b = a.second_node().await;
    let token = a.signup("ana@example.com").await;
    let created = a.create(&token, json!({"name": "K", "access": "private", "data": "v"})).await;
    let uuid = uuid_of(&created);
    let old = key_of(&created);
    // B reads twice: the second read is served from its memory.
    for _ in 0..2 {
        assert_eq!(b.read(&uuid, Some(&old)).await.status(), StatusCode::OK);
    }
    let hits = b.metric("brine_record_cache_total", "{result=\"hit\"}").await;
    assert!(hits >= 1, "B's copy is in memory");
    let retries = b.metric("brine_stale_retries_total", "").await;

    let res = a.post(&format!("/api/v1/records/{uuid}/api-key")).bearer_auth(&token).send().await.unwrap();
    let new = body(res).await["api_key"].as_str().unwrap().to_owned();
    // B's copy still opens with the old key, but the read's audit event finds the record
    // changed, and B answers from the database instead.
    assert_eq!(b.read(&uuid, Some(&old)).await.text().await.unwrap(), MISSING_KEY);
    assert!(b.metric("brine_stale_retries_total", "").await > retries);
    assert_eq!(body(b.read(&uuid, Some(&new)).await).await["data"], "v");
    let res = b.get(&format!("/api/v1/records/{uuid}/events")).bearer_auth(&token).send().await.unwrap();
    let outcomes: Vec<String> = body(res).await["events"].as_array().unwrap().iter()
        .map(|e| e["outcome"].as_str().unwrap().to_owned()).collect();
    assert_eq!(outcomes, ["ok", "denied", "rotated", "ok", "ok"], "no event for the stale answer");
}

async fn answers_that_store_no_event_follow_another_nodes_change_within_a_second() {
    let a = TestServer::start().await;
    let b = a.second_node().await;
    let token = a.signup("ana@example.com").await;
    let up = crate::upstream::Upstream::start().await;
    let bridge = |methods: &[&str]| json!({"url": up.url("/v1"), "allowed_methods": methods,
                                           "allowed_origins": ["https://app.example.com"]});
    let created = a.create(&token, json!({"name": "API", "type": "bridge", "access": "public",
                                          "bridge": bridge(&["GET"])})).await;
    let bridge_uuid = uuid_of(&created);
    let created = a.create(&token, json!({"name": "S", "access": "private", "data": "v"})).await;
    let page_uuid = uuid_of(&created);
    let unlock = || async {
        let url = b.url(&format!("/secure/{page_uuid}"));
        let form = LoadedForm::load(b.http.get(&url)).await;
        form.post(&b.http, &url, &[("password", "a page password")]).send().await.unwrap().status()
    };
    let preflight = || {
        b.request(Method::OPTIONS, &format!("/r/{bridge_uuid}"))
            .header("Origin", "https://app.example.com")
            .header("Access-Control-Request-Method", "POST")
            .send()
    };
    // B keeps both records in memory: the bridge allows GET only, the credential has no page.
    for _ in 0..2 {
        let res = preflight().await.unwrap();
        assert_eq!(res.headers()["access-control-allow-methods"], "GET");
        assert_eq!(unlock().await, StatusCode::UNAUTHORIZED);
    }

    let res = a.request(Method::PATCH, &format!("/api/v1/records/{bridge_uuid}")).bearer_auth(&token)
        .json(&json!({"bridge": bridge(&["GET", "POST"])})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = a.request(Method::PUT, &format!("/api/v1/records/{page_uuid}/secure-page")).bearer_auth(&token)
        .json(&json!({"enabled": true, "password": "a page password"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Neither answer stores an event that would find B's copies out of date: B trusts a copy
    // for such answers only while it is under a second old.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = preflight().await.unwrap();
    assert_eq!(res.headers()["access-control-allow-methods"], "GET, POST");
    assert_eq!(unlock().await, StatusCode::OK);
}

async fn a_record_deleted_on_one_node_is_gone_on_the_other() {
    let a = TestServer::start().await;
    let b = a.second_node().await;
    let token = a.signup("ana@example.com").await;
    let created = a.create(&token, json!({"name": "D", "access": "public", "data": "v"})).await;
    let uuid = uuid_of(&created);
    assert_eq!(b.read(&uuid, None).await.status(), StatusCode::OK);
    let res = a.request(Method::DELETE, &format!("/api/v1/records/{uuid}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(b.read(&uuid, None).await, StatusCode::NOT_FOUND).await;
}

async fn a_token_logged_out_on_one_node_is_refused_on_the_other() {
    let a = TestServer::start().await;
    let b = a.second_node().await;
    let token = a.signup("ana@example.com").await;
    let res = b.get("/api/v1/records").bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = a.post("/api/v1/auth/logout").bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = b.get("/api/v1/records").bearer_auth(&token).send().await.unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
}

async fn a_password_changed_on_one_node_stops_working_on_the_other() {
    let a = TestServer::start().await;
    let b = a.second_node().await;
    let token = a.signup("ana@example.com").await;
    let created = a
        .create(&token, json!({"name": "P", "access": "private", "data": "v", "password": "first password"}))
        .await;
    let uuid = uuid_of(&created);
    let res = a
        .request(Method::PATCH, &format!("/api/v1/records/{uuid}"))
        .bearer_auth(&token)
        .json(&json!({"password": "second password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let unlock = |pw: &'static str| b.post(&format!("/r/{uuid}")).json(&json!({"password": pw})).send();
    assert_eq!(unlock("first password").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unlock("second password").await.unwrap().status(), StatusCode::OK);
}

async fn a_single_read_spread_over_two_nodes_succeeds_exactly_once() {
    let a = TestServer::start().await;
    let b = a.second_node().await;
    let token = a.signup("ana@example.com").await;
    for round in 0..3 {
        let created = a
            .create(&token, json!({"name": format!("Once {round}"), "access": "private", "data": "once", "max_reads": 1}))
            .await;
        let uuid = uuid_of(&created);
        let key = key_of(&created);
        let statuses = join_all((0..24).map(|i| {
            let node = if i % 2 == 0 { &a } else { &b };
            let req = node.get(&format!("/r/{uuid}")).header("X-API-Key", key.clone());
            async move { req.send().await.unwrap().status() }
        }))
        .await;
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let gone = statuses.iter().filter(|s| **s == StatusCode::NOT_FOUND).count();
        assert_eq!((ok, gone), (1, 23), "{statuses:?}");
    }
}
}
