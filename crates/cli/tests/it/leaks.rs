//! Leak canaries (issue 18, a start): one recognisable secret of every kind goes through the
//! channels that use it; afterwards no byte of any of them is in the database files. Values,
//! passwords, keys, tokens and links are stored only sealed, wrapped or as digests.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::*;

const VALUE: &str = "canary-value-7f3a9e";
const RECORD_PASSWORD: &str = "canary-recpw-91bd44";
const PAGE_PASSWORD: &str = "canary-pagepw-22c1aa";
const BRIDGE_HEADER: &str = "Bearer canary-bridge-5e0f7b";
const HOOK_URL: &str = "http://127.0.0.1:9/canary-hook-path-c0ffee";
const INTAKE_VALUE: &str = "canary-intake-value-3c9e12";
const HANDOFF_VALUE: &str = "canary-handoff-4d2a88";

fn in_days(days: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&Rfc3339)
        .unwrap()
}

async fn ok(res: reqwest::Response, status: StatusCode) -> Value {
    let got = res.status();
    let answer = body(res).await;
    assert_eq!(got, status, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_of_any_kind_reaches_the_database_files() {
    // The webhook's address is on this machine, which only private upstreams may be.
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let owner = s.signup("ana@example.com").await;
    let mut canaries: Vec<String> = [
        VALUE,
        RECORD_PASSWORD,
        PAGE_PASSWORD,
        BRIDGE_HEADER,
        HOOK_URL,
        INTAKE_VALUE,
        HANDOFF_VALUE,
        PASSWORD,
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();

    // A private credential with a key, a record password and a secure page; read every way.
    let made = s
        .create(
            &owner,
            json!({"name": "c", "access": "private", "data": VALUE, "password": RECORD_PASSWORD,
                   "secure_page": {"enabled": true, "password": PAGE_PASSWORD}}),
        )
        .await;
    let (uuid, key) = (uuid_of(&made), key_of(&made));
    canaries.push(key.clone());
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);
    let res = s
        .post(&format!("/r/{uuid}"))
        .json(&json!({"password": RECORD_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(res, StatusCode::OK).await["data"], VALUE);
    let res = s
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/records/{uuid}/webhook"),
        )
        .bearer_auth(&owner)
        .json(&json!({"url": HOOK_URL, "events": ["secure_page.first_reveal"]}))
        .send()
        .await
        .unwrap();
    let hook = ok(res, StatusCode::CREATED).await;
    if let Some(secret) = hook["secret"].as_str() {
        canaries.push(secret.to_owned());
    }

    // A bridge with a stored header.
    s.create(
        &owner,
        json!({"name": "b", "type": "bridge", "access": "public",
               "bridge": {"url": "http://127.0.0.1:9/v1", "headers": {"Authorization": BRIDGE_HEADER}}}),
    )
    .await;

    // A service token, used once.
    let res = s
        .post("/api/v1/tokens")
        .bearer_auth(&owner)
        .json(&json!({"name": "ci", "records": [uuid], "expires_at": in_days(30)}))
        .send()
        .await
        .unwrap();
    let token = ok(res, StatusCode::CREATED).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.read(&uuid, Some(&token)).await.status(), StatusCode::OK);
    canaries.push(token);

    // A renewable session, renewed once: both refresh tokens and the bearer tokens.
    let res = s
        .post("/api/v1/auth/login")
        .json(&json!({"email": "ana@example.com", "password": PASSWORD, "refresh": true}))
        .send()
        .await
        .unwrap();
    let login = ok(res, StatusCode::OK).await;
    let first = login["refresh_token"].as_str().unwrap().to_owned();
    let res = s
        .post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": first}))
        .send()
        .await
        .unwrap();
    let renewed = ok(res, StatusCode::OK).await;
    canaries.push(first);
    canaries.push(renewed["refresh_token"].as_str().unwrap().to_owned());
    canaries.push(renewed["token"].as_str().unwrap().to_owned());
    canaries.push(owner.clone());

    // An intake link, used: its token and the value sent through it.
    let res = s
        .post("/api/v1/intake")
        .bearer_auth(&owner)
        .json(&json!({"asked_for": "a key", "into": {"type": "credential", "name": "i"}}))
        .send()
        .await
        .unwrap();
    let link = ok(res, StatusCode::CREATED).await;
    let url = link["url"].as_str().unwrap().to_owned();
    canaries.push(url.rsplit('/').next().unwrap().to_owned());
    canaries.push(link["api_key"].as_str().unwrap().to_owned());
    let form = LoadedForm::load(s.http.get(&url)).await;
    let res = form
        .post(&s.http, &url, &[("value", INTAKE_VALUE)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // A handoff: its value, its page password and its key.
    let res = s
        .post("/api/v1/handoffs")
        .bearer_auth(&owner)
        .json(&json!({"name": "Rui", "data": HANDOFF_VALUE, "ends_at": in_days(14)}))
        .send()
        .await
        .unwrap();
    let handoff = ok(res, StatusCode::CREATED).await;
    canaries.push(handoff["page_password"].as_str().unwrap().to_owned());
    canaries.push(handoff["api_key"].as_str().unwrap().to_owned());

    // Stopped cleanly, the database is whole in its files: none holds any canary.
    let dir = s.data_dir.clone();
    let _left = s.stop().await;
    let mut scanned = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("brine.db") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        scanned += bytes.len();
        for canary in &canaries {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{name} holds a secret ({} bytes long, starting {:?})",
                canary.len(),
                &canary[..6]
            );
        }
    }
    assert!(scanned > 0, "the database files were read");
}
