//! The owner's management API.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

async fn list(s: &TestServer, token: &str) -> Vec<Value> {
    let res = s
        .get("/api/v1/records")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    body(res).await["records"].as_array().unwrap().clone()
}

async fn patch(s: &TestServer, token: &str, uuid: &str, change: Value) -> reqwest::Response {
    s.request(Method::PATCH, &format!("/api/v1/records/{uuid}"))
        .bearer_auth(token)
        .json(&change)
        .send()
        .await
        .unwrap()
}

each_backend! {
async fn invalid_records_are_refused_and_nothing_is_stored() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let past = "2000-01-01T00:00:00Z";
    for spec in [
        json!({"access": "private", "data": "v"}),
        json!({"name": "", "access": "private", "data": "v"}),
        json!({"name": "n", "access": "secret", "data": "v"}),
        json!({"name": "n", "access": "private", "data": ""}),
        json!({"name": "n", "access": "private", "data": "x".repeat(65 * 1024)}),
        json!({"name": "n", "access": "public", "data": "v", "sealed": true}),
        json!({"name": "n", "access": "public", "data": "v", "password": "long enough"}),
        json!({"name": "n", "access": "private", "data": "v", "password": "short"}),
        json!({"name": "n", "access": "private", "data": "v", "expires_at": past}),
        json!({"name": "n", "access": "private", "data": "v", "expires_at": "tomorrow"}),
        json!({"name": "n", "access": "private", "data": "v", "max_reads": 0}),
        json!({"name": "n", "type": "bridge", "access": "private", "data": "v"}),
        json!({"name": "n", "access": "private", "data": "v", "colour": "blue"}),
        json!(["not", "an", "object"]),
    ] {
        let res = s
            .post("/api/v1/records")
            .bearer_auth(&token)
            .json(&spec)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
    let res = s
        .post("/api/v1/records")
        .json(&json!({"name": "n", "access": "private", "data": "v"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
    assert!(list(&s, &token).await.is_empty());
}

async fn metadata_never_contains_the_value_and_the_key_is_shown_once() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Stripe", "access": "private", "data": "sk_live_meta"}),
        )
        .await;
    let key = key_of(&created);
    assert!(key.starts_with("brk_"));
    let uuid = uuid_of(&created);
    let record = &created["record"];
    assert_eq!(record["type"], "credential");
    assert_eq!(record["access"], "private");
    assert_eq!(record["status"], "active");
    assert_eq!(record["path"], format!("/r/{uuid}"));

    let listed = list(&s, &token).await;
    assert_eq!(listed.len(), 1);
    let res = s
        .get(&format!("/api/v1/records/{uuid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let shown = body(res).await;
    for text in [Value::Array(listed).to_string(), shown.to_string()] {
        assert!(!text.contains("sk_live_meta"));
        assert!(!text.contains(&key), "the key appears only at creation");
    }

    let res = s
        .get(&format!("/api/v1/records/{uuid}/value"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await, json!({"data": "sk_live_meta"}));
}

async fn other_accounts_get_404_for_everything() {
    let s = TestServer::start().await;
    let ana = s.signup("ana@example.com").await;
    let bob = s.signup("bob@example.com").await;
    let created = s
        .create(
            &ana,
            json!({"name": "Ana's", "access": "private", "data": "ana-secret"}),
        )
        .await;
    let uuid = uuid_of(&created);
    let unknown = "00000000-0000-4000-8000-000000000000";
    for id in [uuid.as_str(), unknown] {
        for (method, path) in [
            (Method::GET, format!("/api/v1/records/{id}")),
            (Method::GET, format!("/api/v1/records/{id}/value")),
            (Method::GET, format!("/api/v1/records/{id}/events")),
            (Method::DELETE, format!("/api/v1/records/{id}")),
            (Method::POST, format!("/api/v1/records/{id}/api-key")),
        ] {
            let res = s
                .request(method, &path)
                .bearer_auth(&bob)
                .send()
                .await
                .unwrap();
            let err = expect_error(res, StatusCode::NOT_FOUND).await;
            assert!(!err.to_string().contains("ana-secret"));
        }
        let res = patch(&s, &bob, id, json!({"name": "mine now"})).await;
        expect_error(res, StatusCode::NOT_FOUND).await;
    }
    assert!(list(&s, &bob).await.is_empty());
    // Ana's record is untouched.
    let res = s.read(&uuid, Some(&key_of(&created))).await;
    assert_eq!(body(res).await["data"], "ana-secret");
    assert_eq!(list(&s, &ana).await[0]["name"], "Ana's");
}

async fn patch_changes_name_value_and_limits() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Old", "access": "private", "data": "v1", "max_reads": 5}),
        )
        .await;
    let uuid = uuid_of(&created);
    let key = key_of(&created);
    let res = patch(
        &s,
        &token,
        &uuid,
        json!({"name": "New", "data": "v2", "max_reads": null}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let updated = body(res).await;
    assert!(updated.get("api_key").is_none(), "the key does not change");
    assert_eq!(updated["record"]["name"], "New");
    assert_eq!(updated["record"]["max_reads"], Value::Null);
    let res = s.read(&uuid, Some(&key)).await;
    assert_eq!(body(res).await["data"], "v2");

    for bad in [
        json!({"name": ""}),
        json!({"data": ""}),
        json!({"max_reads": 0}),
        json!({"expires_at": "2000-01-01T00:00:00Z"}),
        json!({"access": "everyone"}),
        json!({"owner": "bob"}),
    ] {
        expect_error(patch(&s, &token, &uuid, bad).await, StatusCode::BAD_REQUEST).await;
    }
    // Nothing of those changed anything.
    let res = s.read(&uuid, Some(&key)).await;
    assert_eq!(body(res).await["data"], "v2");
    assert_eq!(list(&s, &token).await[0]["name"], "New");
}

async fn leaving_private_retires_the_key_and_returning_issues_a_new_one() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "K", "access": "private", "data": "v", "password": "a password"}),
        )
        .await;
    let uuid = uuid_of(&created);
    let old_key = key_of(&created);

    let res = patch(&s, &token, &uuid, json!({"access": "public"})).await;
    let updated = body(res).await;
    assert_eq!(updated["record"]["has_api_key"], false);
    assert_eq!(updated["record"]["has_password"], false);
    assert_eq!(body(s.read(&uuid, None).await).await["data"], "v");

    let res = patch(&s, &token, &uuid, json!({"access": "private"})).await;
    let updated = body(res).await;
    let new_key = updated["api_key"].as_str().unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(
        s.read(&uuid, Some(&old_key)).await.text().await.unwrap(),
        MISSING_KEY
    );
    assert_eq!(body(s.read(&uuid, Some(new_key)).await).await["data"], "v");
    // The old password did not come back either.
    let res = s
        .post(&format!("/r/{uuid}"))
        .json(&json!({"password": "a password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn record_password_can_be_set_changed_and_removed() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "P", "access": "private", "data": "v"}),
        )
        .await;
    let uuid = uuid_of(&created);
    let path = format!("/r/{uuid}");
    let unlock = |pw: &'static str| s.post(&path).json(&json!({"password": pw})).send();

    assert_eq!(
        unlock("first password").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    patch(&s, &token, &uuid, json!({"password": "first password"})).await;
    assert_eq!(
        unlock("first password").await.unwrap().status(),
        StatusCode::OK
    );
    patch(&s, &token, &uuid, json!({"password": "second password"})).await;
    assert_eq!(
        unlock("first password").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        unlock("second password").await.unwrap().status(),
        StatusCode::OK
    );
    let res = patch(&s, &token, &uuid, json!({"password": null})).await;
    assert_eq!(body(res).await["record"]["has_password"], false);
    assert_eq!(
        unlock("second password").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // The key was never affected.
    assert_eq!(
        s.read(&uuid, Some(&key_of(&created))).await.status(),
        StatusCode::OK
    );
}

async fn sealed_records_can_be_replaced_and_rotated_but_not_viewed() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "S", "access": "private", "data": "v1", "sealed": true}),
        )
        .await;
    let uuid = uuid_of(&created);
    let key1 = key_of(&created);
    let rotate = format!("/api/v1/records/{uuid}/api-key");

    // Without the current key or a new value, the server has nothing to wrap.
    let res = s.post(&rotate).bearer_auth(&token).send().await.unwrap();
    expect_error(res, StatusCode::CONFLICT).await;
    let res = s
        .post(&rotate)
        .bearer_auth(&token)
        .header("X-API-Key", "brk_wrong")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;

    // Rotating with the current key keeps the value.
    let res = s
        .post(&rotate)
        .bearer_auth(&token)
        .header("X-API-Key", &key1)
        .send()
        .await
        .unwrap();
    let key2 = body(res).await["api_key"].as_str().unwrap().to_owned();
    assert_eq!(
        s.read(&uuid, Some(&key1)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(body(s.read(&uuid, Some(&key2)).await).await["data"], "v1");

    // Replacing the value issues a new key.
    let res = patch(&s, &token, &uuid, json!({"data": "v2"})).await;
    let key3 = body(res).await["api_key"].as_str().unwrap().to_owned();
    assert_eq!(
        s.read(&uuid, Some(&key2)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(body(s.read(&uuid, Some(&key3)).await).await["data"], "v2");

    // Rotating with a new value.
    let res = s
        .post(&rotate)
        .bearer_auth(&token)
        .json(&json!({"data": "v3"}))
        .send()
        .await
        .unwrap();
    let key4 = body(res).await["api_key"].as_str().unwrap().to_owned();
    assert_eq!(body(s.read(&uuid, Some(&key4)).await).await["data"], "v3");

    // A sealed record stays private, and cannot take a password without its value.
    expect_error(
        patch(&s, &token, &uuid, json!({"access": "public"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        patch(&s, &token, &uuid, json!({"password": "new password"})).await,
        StatusCode::CONFLICT,
    )
    .await;
    let res = s
        .get(&format!("/api/v1/records/{uuid}/value"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT).await;
}

async fn sealed_record_with_password_needs_it_again_when_replaced() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({"name": "S", "access": "private", "data": "v1", "sealed": true, "password": "sealed pass 1"}))
        .await;
    let uuid = uuid_of(&created);
    expect_error(
        patch(&s, &token, &uuid, json!({"data": "v2"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let res = patch(
        &s,
        &token,
        &uuid,
        json!({"data": "v2", "password": "sealed pass 2"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let path = format!("/r/{uuid}");
    let res = s
        .post(&path)
        .json(&json!({"password": "sealed pass 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["data"], "v2");
    let res = s
        .post(&path)
        .json(&json!({"password": "sealed pass 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn rotation_is_only_for_private_records() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Pub", "access": "public", "data": "v"}),
        )
        .await;
    let res = s
        .post(&format!("/api/v1/records/{}/api-key", uuid_of(&created)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT).await;
}

async fn delete_stops_reads_at_once() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "D", "access": "private", "data": "v"}),
        )
        .await;
    let uuid = uuid_of(&created);
    let res = s
        .request(Method::DELETE, &format!("/api/v1/records/{uuid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(
        s.read(&uuid, Some(&key_of(&created))).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let res = s
        .request(Method::DELETE, &format!("/api/v1/records/{uuid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;
    assert!(list(&s, &token).await.is_empty());
}
}
