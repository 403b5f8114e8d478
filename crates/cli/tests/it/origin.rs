//! From where (issue 15): what is stored about a client in each privacy mode (address, user
//! agent), that the lockout keeps working on the stored form, and the country from a GeoIP
//! database (the fixture made by scripts/make-geoip-fixture.py).

use std::path::PathBuf;

use brine_server::{AddressForm, UserAgentForm};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, \
    like Gecko) Chrome/131.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip-test.mmdb")
}

async fn get_json(s: &TestServer, token: &str, path: &str) -> Value {
    let res = s.get(path).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    body(res).await
}

async fn events(s: &TestServer, token: &str, uuid: &str) -> Vec<Value> {
    let path = format!("/api/v1/records/{uuid}/events");
    get_json(s, token, &path).await["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// An account whose sign-up came from a browser, and a record read by a browser and by curl.
async fn traffic(s: &TestServer) -> (String, String, String) {
    let res = s
        .post("/api/v1/auth/signup")
        .header("User-Agent", FIREFOX)
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = body(res).await["token"].as_str().unwrap().to_owned();
    let created = s
        .create(
            &token,
            json!({"name": "Where", "access": "private", "data": "v"}),
        )
        .await;
    let (uuid, key) = (uuid_of(&created), key_of(&created));
    for ua in [CHROME, "curl/8.5.0"] {
        let res = s
            .get(&format!("/r/{uuid}"))
            .header("X-API-Key", &key)
            .header("User-Agent", ua)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    (token, uuid, key)
}

/// Every text the database holds, whichever the engine: the SQLite files' bytes, or a dump of
/// the PostgreSQL database.
async fn database_text(s: TestServer) -> String {
    let url = s.database_url();
    let data_dir = s.data_dir.clone();
    let leftovers = s.stop().await;
    let text = if url.starts_with("postgres") {
        let dump = std::process::Command::new("pg_dump")
            .args(["--data-only", &url])
            .output()
            .unwrap();
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        String::from_utf8_lossy(&dump.stdout).into_owned()
    } else {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(&data_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains("brine.db") {
                bytes.extend(std::fs::read(path).unwrap());
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    };
    drop(leftovers);
    text
}

each_backend! {
async fn masked_addresses_and_reduced_user_agents_are_all_that_is_kept() {
    let s = TestServer::start_with(|c| {
        c.keep_client_address = AddressForm::Masked;
        c.keep_user_agent = UserAgentForm::Reduced;
    })
    .await;
    let (token, uuid, _) = traffic(&s).await;

    let events = events(&s, &token, &uuid).await;
    let reads: Vec<_> = events.iter().filter(|e| e["channel"] == "read").collect();
    assert_eq!(reads.len(), 2, "{events:?}");
    let stored = reads[0]["client_ip"].as_str().unwrap();
    assert!(stored.starts_with("127.0.0.0/24 #") && stored.len() == 22, "{stored}");
    // The same client is recognisable from one event to the next.
    assert!(events.iter().all(|e| e["client_ip"] == stored), "{events:?}");
    let agents: Vec<_> = reads.iter().map(|e| e["user_agent"].as_str().unwrap()).collect();
    assert_eq!(agents, ["curl 8", "Chrome 131 on Windows"]);

    // Sessions and account events keep the same forms.
    let sessions = get_json(&s, &token, "/api/v1/account/sessions").await;
    let session = &sessions["sessions"][0];
    assert_eq!(session["client_ip"], stored);
    assert_eq!(session["user_agent"], "Firefox 133 on Linux");
    let account = get_json(&s, &token, "/api/v1/account/events").await;
    assert!(!account["events"].as_array().unwrap().is_empty());
    for event in account["events"].as_array().unwrap() {
        assert_eq!(event["client_ip"], stored, "{event}");
    }

    // Nothing in the database holds the address or the browser's own string.
    let text = database_text(s).await;
    assert!(text.contains("127.0.0.0/24 #"), "the events are in what was scanned");
    assert!(!text.contains("127.0.0.1"), "a full address is stored");
    assert!(!text.contains("Chrome/131") && !text.contains("Gecko/"), "a full user agent is stored");
}

async fn hashed_addresses_and_no_user_agents() {
    let s = TestServer::start_with(|c| {
        c.keep_client_address = AddressForm::Hashed;
        c.keep_user_agent = UserAgentForm::None;
    })
    .await;
    let (token, uuid, _) = traffic(&s).await;
    let events = events(&s, &token, &uuid).await;
    let stored = events[0]["client_ip"].as_str().unwrap();
    assert!(stored.starts_with('#') && stored.len() == 13, "{stored}");
    assert!(events.iter().all(|e| e["client_ip"] == stored && e["user_agent"].is_null()), "{events:?}");
    let sessions = get_json(&s, &token, "/api/v1/account/sessions").await;
    assert!(sessions["sessions"][0]["user_agent"].is_null());
    let text = database_text(s).await;
    assert!(!text.contains("127.0.0.") && !text.contains("Firefox"));
}

async fn the_lockout_still_locks_a_repeat_offender_when_addresses_are_masked() {
    let s = TestServer::start_with(|c| {
        c.keep_client_address = AddressForm::Masked;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({"name": "P", "access": "private", "data": "v", "password": "record password"}))
        .await;
    let path = format!("/r/{}", uuid_of(&created));
    // Two clients in one /24: stored as the same network, told apart by their hashes.
    let unlock = async |from: &str, password: &str| {
        s.post(&path)
            .header("X-Forwarded-For", from)
            .json(&json!({"password": password}))
            .send()
            .await
            .unwrap()
            .status()
    };
    for _ in 0..5 {
        assert_eq!(unlock("198.51.100.7", "wrong password").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(unlock("198.51.100.7", "record password").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(unlock("198.51.100.8", "record password").await, StatusCode::OK);

    let events = events(&s, &token, &uuid_of(&created)).await;
    let offender: Vec<_> = events
        .iter()
        .filter(|e| e["channel"] == "password")
        .map(|e| e["client_ip"].as_str().unwrap())
        .collect();
    assert_eq!(offender.len(), 7, "{events:?}");
    assert!(offender.iter().all(|ip| ip.starts_with("198.51.100.0/24 #")), "{offender:?}");
    // The newest is the other client's: another hash.
    assert_ne!(offender[0], offender[1]);
    assert!(offender[1..].iter().all(|ip| *ip == offender[1]));
    assert!(!database_text(s).await.contains("198.51.100.7"));
}

async fn a_geoip_database_gives_the_country_and_city() {
    let s = TestServer::start_with(|c| {
        c.keep_client_address = AddressForm::Masked;
        c.geoip_db = Some(fixture());
    })
    .await;
    let (token, uuid, key) = traffic(&s).await;
    let first = events(&s, &token, &uuid).await;
    assert!(first.len() >= 2, "{first:?}");
    for event in &first {
        // Looked up on the whole address, stored beside its masked form.
        assert_eq!(event["country"], "NZ", "{event}");
        assert_eq!(event["city"], "Wellington", "{event}");
        assert!(event["client_ip"].as_str().unwrap().starts_with("127.0.0.0/24 #"));
    }

    // The account's log shows them too, and can be narrowed to one (masked) client.
    let log = get_json(&s, &token, "/api/v1/logs/events?channel=read").await;
    let reads = log["events"].as_array().unwrap();
    assert_eq!(reads.len(), 2, "{log}");
    assert!(reads.iter().all(|e| e["country"] == "NZ" && e["city"] == "Wellington"), "{log}");
    let stored: String = url::form_urlencoded::byte_serialize(
        reads[0]["client_ip"].as_str().unwrap().as_bytes(),
    )
    .collect();
    let mine = get_json(&s, &token, &format!("/api/v1/logs/events?channel=read&client_ip={stored}")).await;
    assert_eq!(mine["events"].as_array().unwrap().len(), 2, "{mine}");
    let other = get_json(&s, &token, "/api/v1/logs/events?client_ip=127.0.0.1").await;
    assert!(other["events"].as_array().unwrap().is_empty(), "{other}");

    // Without a database, no place: nothing else changes.
    let s = TestServer::restart_with(s.stop().await, |c| c.geoip_db = None).await;
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);
    let events = events(&s, &token, &uuid).await;
    let newest = &events[0];
    assert_eq!((newest["channel"].as_str(), newest["outcome"].as_str()), (Some("read"), Some("ok")));
    assert!(newest.get("country").is_none_or(Value::is_null), "{newest}");
    assert!(newest.get("city").is_none_or(Value::is_null), "{newest}");
}
}

#[tokio::test]
async fn an_unreadable_geoip_database_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for path in [
        dir.path().join("missing.mmdb"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
    ] {
        let mut settings = settings_in(dir.path());
        settings.geoip_db = Some(path);
        let refused = TestServer::start_settings(settings).await.err().unwrap();
        assert!(format!("{refused:#}").contains("geoip_db"), "{refused:#}");
    }
    // The fixture itself is accepted.
    let mut settings = settings_in(dir.path());
    settings.geoip_db = Some(fixture());
    assert!(TestServer::start_settings(settings).await.is_ok());
}
