//! `/r/{uuid}`: how code reads a credential.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::*;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

each_backend! {
async fn public_credential_reads_without_a_key() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Weather", "access": "public", "data": "wx_123"}),
        )
        .await;
    assert!(
        created.get("api_key").is_none(),
        "public records have no key"
    );
    let res = s.read(&uuid_of(&created), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(body(res).await, json!({"data": "wx_123"}));
}

async fn private_credential_needs_its_own_key() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Stripe", "access": "private", "data": "sk_live_1"}),
        )
        .await;
    let other = s
        .create(
            &token,
            json!({"name": "Other", "access": "private", "data": "sk_live_2"}),
        )
        .await;
    let uuid = uuid_of(&created);

    let res = s.read(&uuid, Some(&key_of(&created))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, json!({"data": "sk_live_1"}));

    // No key, a wrong key, another record's key, or a dashboard token: the same exact 401.
    let bearer = s
        .get(&format!("/r/{uuid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    for res in [
        s.read(&uuid, None).await,
        s.read(&uuid, Some("brk_wrong")).await,
        s.read(&uuid, Some(&key_of(&other))).await,
        s.read(&uuid, Some("")).await,
        bearer,
    ] {
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(res.text().await.unwrap(), MISSING_KEY);
    }
}

async fn owner_only_unknown_and_malformed() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Root", "access": "owner_only", "data": "root_pw"}),
        )
        .await;
    let forbidden = expect_error(
        s.read(&uuid_of(&created), None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(!forbidden.to_string().contains("root_pw"));

    let unknown = expect_error(
        s.read("00000000-0000-4000-8000-000000000000", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let malformed = expect_error(s.read("not-a-uuid", None).await, StatusCode::NOT_FOUND).await;
    assert_eq!(unknown, malformed);
}

async fn rotation_stops_the_old_key_at_once() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Stripe", "access": "private", "data": "sk_live_1"}),
        )
        .await;
    let uuid = uuid_of(&created);
    let old = key_of(&created);
    let res = s
        .post(&format!("/api/v1/records/{uuid}/api-key"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let new = body(res).await["api_key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(
        s.read(&uuid, Some(&old)).await.text().await.unwrap(),
        MISSING_KEY
    );
    let res = s.read(&uuid, Some(&new)).await;
    assert_eq!(body(res).await, json!({"data": "sk_live_1"}));
}

async fn record_password_opens_with_post() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "DB", "access": "private", "data": "postgres://u:p@db/x", "password": "open sesame"}),
        )
        .await;
    assert_eq!(created["record"]["has_password"], true);
    let uuid = uuid_of(&created);
    let path = format!("/r/{uuid}");

    let res = s
        .post(&path)
        .json(&json!({"password": "open sesame"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await["data"], "postgres://u:p@db/x");

    let wrong = s
        .post(&path)
        .json(&json!({"password": "open sesame!"}))
        .send()
        .await
        .unwrap();
    expect_error(wrong, StatusCode::UNAUTHORIZED).await;
    let empty = s.post(&path).send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(empty.text().await.unwrap(), MISSING_KEY);
    let garbage = s
        .post(&path)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    expect_error(garbage, StatusCode::BAD_REQUEST).await;
    // The key still works, by GET or POST.
    let res = s
        .post(&path)
        .header("X-API-Key", key_of(&created))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn sealed_record_opens_only_with_key_or_password() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Sealed", "access": "private", "data": "sealed-value", "sealed": true, "password": "sealed password"}),
        )
        .await;
    let uuid = uuid_of(&created);
    assert_eq!(created["record"]["sealed"], true);
    let res = s.read(&uuid, Some(&key_of(&created))).await;
    assert_eq!(body(res).await["data"], "sealed-value");
    let res = s
        .post(&format!("/r/{uuid}"))
        .json(&json!({"password": "sealed password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["data"], "sealed-value");

    // The owner cannot view it.
    let res = s
        .get(&format!("/api/v1/records/{uuid}/value"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let err = expect_error(res, StatusCode::CONFLICT).await;
    assert!(!err.to_string().contains("sealed-value"));
}

async fn expired_records_answer_like_unknown_ones() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let expires = OffsetDateTime::now_utc() + time::Duration::milliseconds(1500);
    let created = s
        .create(
            &token,
            json!({"name": "Temp", "access": "public", "data": "v", "expires_at": rfc3339(expires)}),
        )
        .await;
    let uuid = uuid_of(&created);
    assert_eq!(s.read(&uuid, None).await.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let gone = expect_error(s.read(&uuid, None).await, StatusCode::NOT_FOUND).await;
    let unknown = expect_error(
        s.read("00000000-0000-4000-8000-000000000000", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(gone, unknown);
    // The owner's API says why.
    let res = s
        .get(&format!("/api/v1/records/{uuid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["status"], "expired");
}

async fn max_reads_is_exact_and_wrong_keys_do_not_consume_reads() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Twice", "access": "private", "data": "v", "max_reads": 2}),
        )
        .await;
    let uuid = uuid_of(&created);
    let key = key_of(&created);
    for _ in 0..3 {
        assert_eq!(
            s.read(&uuid, Some("brk_wrong")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);
    expect_error(s.read(&uuid, Some(&key)).await, StatusCode::NOT_FOUND).await;
    let res = s
        .get(&format!("/api/v1/records/{uuid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let view = body(res).await;
    assert_eq!(view["status"], "exhausted");
    assert_eq!(view["reads"], 2);
}

async fn parallel_reads_of_a_single_read_record_succeed_exactly_once() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    for round in 0..3 {
        let created = s
            .create(&token, json!({"name": format!("Once {round}"), "access": "private", "data": "once", "max_reads": 1}))
            .await;
        let uuid = uuid_of(&created);
        let key = key_of(&created);
        let statuses = join_all((0..24).map(|_| {
            let req = s
                .get(&format!("/r/{uuid}"))
                .header("X-API-Key", key.clone());
            async move { req.send().await.unwrap().status() }
        }))
        .await;
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let gone = statuses
            .iter()
            .filter(|s| **s == StatusCode::NOT_FOUND)
            .count();
        assert_eq!((ok, gone), (1, 23), "{statuses:?}");
    }
}

async fn every_attempt_is_audited_without_secrets() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({"name": "Audited", "access": "private", "data": "sk_audit_canary", "password": "pw for audit"}))
        .await;
    let uuid = uuid_of(&created);
    let key = key_of(&created);
    let path = format!("/r/{uuid}");
    s.get(&path)
        .header("X-API-Key", &key)
        .header("User-Agent", "deploy-bot/1.0")
        .send()
        .await
        .unwrap();
    s.get(&path)
        .header("X-API-Key", "brk_nope")
        .send()
        .await
        .unwrap();
    s.post(&path)
        .json(&json!({"password": "wrong pw here"}))
        .send()
        .await
        .unwrap();
    s.get(&format!("/api/v1/records/{uuid}/value"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    let res = s
        .get(&format!("/api/v1/records/{uuid}/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let events = body(res).await;
    let text = events.to_string();
    for secret in [
        "sk_audit_canary",
        "pw for audit",
        "wrong pw here",
        key.as_str(),
        "brk_nope",
    ] {
        assert!(!text.contains(secret), "an event holds a secret: {text}");
    }
    let list = events["events"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = list
        .iter()
        .map(|e| {
            (
                e["channel"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    // Newest first.
    assert_eq!(
        summary,
        [
            ("owner", "ok"),
            ("password", "denied"),
            ("read", "denied"),
            ("read", "ok")
        ]
    );
    let oldest = &list[3];
    assert_eq!(oldest["client_ip"], "127.0.0.1");
    assert_eq!(oldest["user_agent"], "deploy-bot/1.0");
    assert!(oldest["at"].as_str().unwrap().ends_with('Z'));

    // Paging.
    let res = s
        .get(&format!("/api/v1/records/{uuid}/events?limit=2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let page = body(res).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let before = page["events"][1]["id"].as_i64().unwrap();
    let res = s
        .get(&format!("/api/v1/records/{uuid}/events?before={before}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["events"].as_array().unwrap().len(), 2);
    // Not a number; an unknown (misspelt) filter, refused rather than ignored.
    for query in ["limit=abc", "chanel=read"] {
        let res = s
            .get(&format!("/api/v1/records/{uuid}/events?{query}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }

    // Filters, alone and together, and with paging.
    let filtered = |query: String| {
        let req = s
            .get(&format!("/api/v1/records/{uuid}/events?{query}"))
            .bearer_auth(&token);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{query}");
            body(res)
                .await["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| format!("{}/{}", e["channel"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(filtered("channel=read".into()).await, ["read/denied", "read/ok"]);
    assert_eq!(filtered("outcome=denied".into()).await, ["password/denied", "read/denied"]);
    assert_eq!(filtered("channel=read&outcome=ok&q=DEPLOY-BOT".into()).await, ["read/ok"]);
    assert_eq!(filtered("client_ip=127.0.0.1&channel=owner".into()).await, ["owner/ok"]);
    assert!(filtered("q=nothing-like-this".into()).await.is_empty());
    assert_eq!(filtered("channel=read&limit=1".into()).await, ["read/denied"]);
    let newest_read = {
        let res = s
            .get(&format!("/api/v1/records/{uuid}/events?channel=read&limit=1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        body(res).await["events"][0]["id"].as_i64().unwrap()
    };
    assert_eq!(filtered(format!("channel=read&before={newest_read}")).await, ["read/ok"]);
    let res = s
        .get(&format!("/api/v1/records/{uuid}/events?q={}", "x".repeat(201)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
}
}

#[tokio::test]
async fn audit_believes_forwarded_addresses_only_from_trusted_proxies() {
    async fn logged_ip(s: &TestServer) -> String {
        let token = s.signup("ana@example.com").await;
        let created = s
            .create(
                &token,
                json!({"name": "W", "access": "public", "data": "v"}),
            )
            .await;
        let uuid = uuid_of(&created);
        s.get(&format!("/r/{uuid}"))
            .header("X-Forwarded-For", "6.6.6.6, 198.51.100.7")
            .send()
            .await
            .unwrap();
        let res = s
            .get(&format!("/api/v1/records/{uuid}/events"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        body(res).await["events"][0]["client_ip"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    let untrusting = TestServer::start().await;
    assert_eq!(logged_ip(&untrusting).await, "127.0.0.1");
    let behind_proxy =
        TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    assert_eq!(logged_ip(&behind_proxy).await, "198.51.100.7");
}

#[tokio::test]
async fn credentials_fill_declared_params_and_select_from_json() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "DB", "access": "public", "params": ["db"],
                   "data": "postgres://app:pw@db.internal/{{db}}?tag={{undeclared}}"}),
        )
        .await;
    assert_eq!(created["record"]["params"], json!(["db"]));
    let uuid = uuid_of(&created);
    let res = s.get(&format!("/r/{uuid}?db=orders")).send().await.unwrap();
    assert_eq!(
        body(res).await["data"],
        "postgres://app:pw@db.internal/orders?tag={{undeclared}}"
    );
    let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    let err = expect_error(res, StatusCode::BAD_REQUEST).await;
    assert!(err["message"].as_str().unwrap().contains("db"));

    let json_value = s
        .create(
            &token,
            json!({"name": "Cfg", "access": "public", "data": r#"{"key":"k-1","region":{"name":"eu-west"}}"#}),
        )
        .await;
    let uuid = uuid_of(&json_value);
    let res = s
        .get(&format!("/r/{uuid}?select=region.name"))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await, json!({"data": "eu-west"}));
    let res = s
        .get(&format!("/r/{uuid}?select=%7Bk:key%7D"))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await, json!({"data": {"k": "k-1"}}));
    let res = s
        .get(&format!("/r/{uuid}?select=%7B"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;

    for bad in [json!(["a b"]), json!(["select"])] {
        let res = s
            .post("/api/v1/records")
            .bearer_auth(&token)
            .json(&json!({"name": "x", "access": "public", "data": "v", "params": bad}))
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
}
