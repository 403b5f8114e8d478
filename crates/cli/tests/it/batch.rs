//! `POST /batch`: several records in one request.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::upstream::Upstream;

each_backend! {
async fn a_mixed_batch_answers_every_item_in_order() {
    let s = TestServer::start_with(|c| {
        c.allow_private_upstreams = true;
        c.batch.deadline_ms = 2500;
    })
    .await;
    let up = Upstream::start().await;
    let blocked_up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let public = uuid_of(&s.create(&token, json!({"name": "p", "access": "public", "data": "public-v"})).await);
    let private = s.create(&token, json!({"name": "k", "access": "private", "data": "private-v"})).await;
    let weather = uuid_of(&s.create(&token, json!({"name": "w", "type": "bridge", "access": "public", "bridge": {
        "url": format!("{}/weather/{{{{city}}}}", up.base), "params": ["city"],
        "allowed_origins": ["https://app.example.com"],
    }})).await);
    let blocked = uuid_of(&s.create(&token, json!({"name": "b", "type": "bridge", "access": "public", "bridge": {
        "url": blocked_up.url("/weather"), "allowed_origins": ["https://other.example.com"],
    }})).await);
    let slow = uuid_of(&s.create(&token, json!({"name": "s", "type": "bridge", "access": "public", "bridge": {
        "url": up.url("/slow?ms=10000"), "timeout_ms": 60000,
        "allowed_origins": ["https://app.example.com"],
    }})).await);
    let gate = uuid_of(&s.create(&token, json!({"name": "g", "type": "bridge", "access": "public", "bridge": {
        "url": up.url("/gate?n=2"), "allowed_origins": ["https://app.example.com"],
    }})).await);
    let unknown = "00000000-0000-4000-8000-000000000000";

    let res = s
        .post("/batch")
        .header("Origin", "https://app.example.com")
        .json(&json!({"requests": [
            {"uuid": public},
            {"uuid": uuid_of(&private), "headers": {"X-API-Key": key_of(&private)}},
            {"uuid": uuid_of(&private)},
            {"uuid": weather, "params": {"city": "Paris"}, "select": "current.temp_c"},
            {"uuid": unknown},
            {"uuid": blocked},
            {"uuid": slow},
            {"uuid": gate},
            {"uuid": gate},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://app.example.com");
    let batch = body(res).await;
    let results = batch["results"].as_array().unwrap();
    let summary: Vec<(u64, &Value)> = results.iter().map(|r| (r["status"].as_u64().unwrap(), &r["body"])).collect();
    assert_eq!(summary[0], (200, &json!({"data": "public-v"})));
    assert_eq!(summary[1], (200, &json!({"data": "private-v"})));
    assert_eq!(summary[2].0, 401);
    assert_eq!(summary[2].1.to_string(), MISSING_KEY);
    assert_eq!(summary[3], (200, &json!(21.5)));
    assert_eq!(summary[4].0, 404);
    assert_eq!(summary[5], (403, &json!({"error": "Origin not allowed", "message": "Your origin is not authorized to access this endpoint."})));
    assert_eq!(summary[6].0, 504);
    assert_eq!(summary[7].0, 200);
    assert_eq!(summary[8].0, 200);
    let uuids: Vec<&str> = results.iter().map(|r| r["uuid"].as_str().unwrap()).collect();
    assert_eq!(uuids[0], public);
    assert_eq!(uuids[4], unknown);
    assert_eq!(batch["completed"], false);

    assert!(blocked_up.seen().is_empty(), "the origin-blocked upstream was never called");
    assert_eq!(up.most_at_once(), 2, "items ran at the same time");
    assert_eq!(up.seen().iter().find(|s| s.path.starts_with("/weather")).unwrap().path, "/weather/Paris");

    // One audit event per item, on channel `batch`.
    for (uuid, outcome) in [(public.as_str(), "ok"), (weather.as_str(), "ok"), (blocked.as_str(), "forbidden")] {
        let res = s.get(&format!("/api/v1/records/{uuid}/events")).bearer_auth(&token).send().await.unwrap();
        let events = body(res).await;
        let list = events["events"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{uuid}: {events}");
        assert_eq!((list[0]["channel"].as_str(), list[0]["outcome"].as_str()), (Some("batch"), Some(outcome)));
    }
    let res = s.get(&format!("/api/v1/records/{}/events", uuid_of(&private))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(body(res).await["events"].as_array().unwrap().len(), 2);
}

async fn batch_limits_refuse_the_whole_batch() {
    let s = TestServer::start_with(|c| c.batch.max_items = 3).await;
    let token = s.signup("ana@example.com").await;
    let public = uuid_of(&s.create(&token, json!({"name": "p", "access": "public", "data": "v"})).await);
    let item = json!({"uuid": public});
    for requests in [json!([]), json!([item, item, item, item])] {
        let res = s.post("/batch").json(&json!({"requests": requests})).send().await.unwrap();
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
    let res = s.post("/batch").json(&json!({"requests": [{"uuid": public, "colour": 1}]})).send().await.unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let res = s.post("/batch").json(&json!({"requests": [item, item, item]})).send().await.unwrap();
    let batch = body(res).await;
    assert_eq!(batch["completed"], true);
    assert_eq!(batch["results"].as_array().unwrap().len(), 3);
    // Nothing was read by the refused batches.
    let res = s.get(&format!("/api/v1/records/{public}/events")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(body(res).await["events"].as_array().unwrap().len(), 3);
}
}

#[tokio::test]
async fn batches_can_be_preflighted_from_any_origin() {
    let s = TestServer::start().await;
    let res = s
        .request(Method::OPTIONS, "/batch")
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(res.headers()["access-control-allow-methods"], "POST");
}
