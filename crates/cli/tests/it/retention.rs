//! Audit retention: events older than `audit_retention_days` are deleted by the server.

use brine_store::NewAuditEvent;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::common::*;

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

each_backend! {
async fn events_past_their_retention_are_deleted() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({"name": "Kept a while", "access": "private", "data": "v"}))
        .await;
    let (uuid, key) = (uuid_of(&created), key_of(&created));
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);

    // An event from 40 days ago, as a server running then would have written it.
    let store = brine_store::connect(&s.database_url()).await.unwrap();
    let old = OffsetDateTime::now_utc() - Duration::days(40);
    store
        .append_event(&NewAuditEvent {
            record: uuid.parse().unwrap(),
            at: old,
            channel: "read",
            outcome: "ok",
            client_ip: Some("192.0.2.40"),
            user_agent: None,
            detail: None,
            country: None,
            city: None,
            expect_version: None,
        })
        .await
        .unwrap();
    store.close().await;
    assert_eq!(events(&s, &token, &uuid).await.len(), 2);

    // With 30 days of retention, the sweep at start deletes it and keeps the recent one.
    let s = TestServer::restart_with(s.stop().await, |c| c.audit_retention_days = Some(30)).await;
    let mut left = Vec::new();
    for _ in 0..200 {
        left = events(&s, &token, &uuid).await;
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0]["client_ip"], "192.0.2.40");
}
}

#[tokio::test]
async fn a_retention_of_zero_days_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_in(dir.path());
    settings.audit_retention_days = Some(0);
    let refused = TestServer::start_settings(settings).await.err().unwrap();
    assert!(
        refused.to_string().contains("audit_retention_days"),
        "{refused}"
    );
}
