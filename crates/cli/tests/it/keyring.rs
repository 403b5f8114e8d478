//! Online master-key rotation (issue 17): a keyring of versions, a rotation stopped halfway and
//! run again, nodes with old and new keyrings, sign-in tokens that outlive the switch.

use std::process::{Command, Output};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::accounts::{app_code, enable_two_factor};
use crate::common::*;
use crate::upstream::Upstream;

const STORED_KEY: &str = "sk-upstream-ROTATED-77";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn old_ring() -> String {
    format!("1:{}", b64(&[11; 32]))
}

fn both_rings(current: u32) -> String {
    format!(
        "current:{current}, 1:{}, 2:{}",
        b64(&[11; 32]),
        b64(&[22; 32])
    )
}

fn new_ring() -> String {
    format!("2:{}", b64(&[22; 32]))
}

/// Runs `brine ARGS` on the server's database with `BRINE_MASTER_KEYS=keys`.
fn brine(s: &TestServer, keys: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brine"))
        .args(args)
        .args(["--database-url", &s.database_url()])
        .arg("--data-dir")
        .arg(&s.data_dir)
        .env_remove("BRINE_DATABASE_URL")
        .env_remove("BRINE_DATA_DIR")
        .env_remove("BRINE_MASTER_KEY")
        .env("BRINE_MASTER_KEYS", keys)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts `rotate-master-key` one value per batch and kills it (SIGKILL) once it has begun.
fn kill_a_rotation(s: &TestServer, keys: &str) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_brine"))
        .args(["admin", "rotate-master-key", "--batch", "1"])
        .args(["--database-url", &s.database_url()])
        .arg("--data-dir")
        .arg(&s.data_dir)
        .env_remove("BRINE_DATABASE_URL")
        .env_remove("BRINE_DATA_DIR")
        .env_remove("BRINE_MASTER_KEY")
        .env("BRINE_MASTER_KEYS", keys)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("re-wrapping"), "{first}");
    // It may have finished already; killing it then changes nothing.
    let _ = child.kill();
    let _ = child.wait();
}

/// Another node on the server's database with this keyring: started, or why not.
async fn node(s: &TestServer, keys: &str) -> Result<TestServer, String> {
    let mut settings = settings_in(&s.data_dir);
    settings.database_url = Some(s.database_url());
    settings.master_keys = Some(keys.to_owned().into());
    settings.allow_private_upstreams = true;
    TestServer::start_settings(settings)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// Everything sealed or wrapped under the master key, one of each kind.
struct Fixture {
    token: String,
    public: (String, &'static str),
    private: (String, String, &'static str),
    owner_only: (String, &'static str),
    bridge: String,
    hooked: (String, String),
    /// Accounts with two-factor sign-in, each signing in once (a code works once).
    two_factor: Vec<(String, String)>,
    /// An open intake link for a new credential: its address, the record's uuid and key.
    intake: (String, String, String),
}

async fn fill(s: &TestServer, up: &Upstream) -> Fixture {
    let token = s.signup("ana@example.com").await;
    let public = s
        .create(
            &token,
            json!({"name": "P", "access": "public", "data": "public-v"}),
        )
        .await;
    let private = s
        .create(
            &token,
            json!({"name": "K", "access": "private", "data": "private-v"}),
        )
        .await;
    let owner_only = s
        .create(
            &token,
            json!({"name": "O", "access": "owner_only", "data": "owner-v"}),
        )
        .await;
    let bridge = s
        .create(
            &token,
            json!({"name": "B", "type": "bridge", "access": "public", "bridge": {
                "url": up.url("/echo"),
                "headers": {"Authorization": format!("Bearer {STORED_KEY}")},
            }}),
        )
        .await;
    let hook_url = "http://127.0.0.1:9/hook/canary-path".to_owned();
    let res = s
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/records/{}/webhook", uuid_of(&private)),
        )
        .bearer_auth(&token)
        .json(&json!({"url": hook_url, "events": ["secure_page.first_reveal"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = s
        .post("/api/v1/intake")
        .bearer_auth(&token)
        .json(&json!({"asked_for": "a key", "into": {"type": "credential", "name": "I"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let made = body(res).await;
    let intake = (
        made["url"].as_str().unwrap().to_owned(),
        made["record"].as_str().unwrap().to_owned(),
        made["api_key"].as_str().unwrap().to_owned(),
    );
    let mut two_factor = Vec::new();
    for i in 0..5 {
        let email = format!("totp{i}@example.com");
        let t = s.signup(&email).await;
        let (uri, _) = enable_two_factor(s, &t).await;
        two_factor.push((email, uri));
    }
    Fixture {
        token,
        public: (uuid_of(&public), "public-v"),
        private: (uuid_of(&private), key_of(&private), "private-v"),
        owner_only: (uuid_of(&owner_only), "owner-v"),
        bridge: uuid_of(&bridge),
        hooked: (uuid_of(&private), hook_url),
        two_factor,
        intake,
    }
}

/// Reads everything back through `s`, signed in with `token`; signs in one two-factor account.
async fn check_all(s: &TestServer, f: &mut Fixture, up: &Upstream, token: &str) {
    let data = |v: Value| v["data"].as_str().unwrap().to_owned();
    let res = s.read(&f.public.0, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(data(body(res).await), f.public.1);
    let res = s.read(&f.private.0, Some(&f.private.1)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(data(body(res).await), f.private.2);
    let res = s
        .get(&format!("/api/v1/records/{}/value", f.owner_only.0))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(data(body(res).await), f.owner_only.1);
    let calls = up.seen().len();
    let res = s.get(&format!("/r/{}", f.bridge)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen = up.seen();
    assert_eq!(seen.len(), calls + 1);
    assert_eq!(
        seen.last().unwrap().headers["authorization"],
        format!("Bearer {STORED_KEY}")
    );
    let res = s
        .get(&format!("/api/v1/records/{}/webhook", f.hooked.0))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await["url"], f.hooked.1.as_str());
    let (email, uri) = f.two_factor.pop().expect("a two-factor account left");
    let res = s
        .post("/api/v1/auth/login")
        .json(&json!({"email": email, "password": PASSWORD, "code": app_code(&uri)}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "two-factor sign-in as {email}"
    );
}

async fn signed_in(s: &TestServer, token: &str) -> StatusCode {
    s.get("/api/v1/records")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

each_backend! {
async fn a_rotation_stopped_halfway_and_run_again_completes_and_every_record_reads_back() {
    let up = Upstream::start().await;
    // Version 1 alone, given as a keyring.
    let s = TestServer::start_with(|c| {
        c.master_keys = Some(old_ring().into());
        c.allow_private_upstreams = true;
    })
    .await;
    let mut f = fill(&s, &up).await;
    let old_token = f.token.clone();

    // Every node gets version 2, current; version 1 still reads. Tokens signed under version
    // 1 still verify.
    let s = TestServer::restart_with(s.stop().await, |c| {
        c.master_keys = Some(both_rings(2).into());
        c.allow_private_upstreams = true;
    })
    .await;
    check_all(&s, &mut f, &up, &old_token).await;
    let fresh = s
        .create(&old_token, json!({"name": "N", "access": "private", "data": "new-v"}))
        .await;
    let res = s
        .post("/api/v1/auth/login")
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let new_token = body(res).await["token"].as_str().unwrap().to_owned();

    // Something is under version 2 now: a node holding only version 1 refuses to start.
    let err = node(&s, &old_ring()).await.err().unwrap();
    assert!(err.contains("needs master key version 2"), "{err}");

    // Stopped after 3 values (as a kill would stop it): some are under each version.
    let out = brine(&s, &both_rings(2), &["admin", "rotate-master-key", "--batch", "2", "--limit", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("re-wrapped 3 values under version 2"), "{}", text(&out));
    let out = brine(&s, &both_rings(2), &["admin", "retire-master-key", "1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("still under master key version 1"), "{}", text(&out));
    // Halfway, a node with both versions serves everything; one with either alone refuses.
    check_all(&s, &mut f, &up, &old_token).await;
    let err = node(&s, &new_ring()).await.err().unwrap();
    assert!(err.contains("needs master key version 1,"), "{err}");

    // Killed outright somewhere in its run (wherever it got to): nothing is lost.
    kill_a_rotation(&s, &both_rings(2));
    check_all(&s, &mut f, &up, &old_token).await;

    // Run again: it goes on and finishes.
    let out = brine(&s, &both_rings(2), &["admin", "rotate-master-key", "--batch", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("0 still under older versions"), "{}", text(&out));
    check_all(&s, &mut f, &up, &old_token).await;
    let out = brine(&s, &both_rings(2), &["admin", "master-key-status"]);
    assert!(text(&out).contains("version 1: registered; nothing under it"), "{}", text(&out));

    // Retired: no node may make version 1 current again, nor start with it alone.
    let out = brine(&s, &both_rings(2), &["admin", "retire-master-key", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let err = node(&s, &both_rings(1)).await.err().unwrap();
    assert!(err.contains("version 1 was retired"), "{err}");
    let err = node(&s, &old_ring()).await.err().unwrap();
    assert!(err.contains("version 1 was retired"), "{err}");

    // A node with version 2 alone reads every record; tokens signed under version 2 verify,
    // those signed under the version it no longer holds do not.
    let s = TestServer::restart_with(s.stop().await, |c| {
        c.master_keys = Some(new_ring().into());
        c.allow_private_upstreams = true;
    })
    .await;
    check_all(&s, &mut f, &up, &new_token).await;
    let res = s.read(&uuid_of(&fresh), Some(&key_of(&fresh))).await;
    assert_eq!(body(res).await["data"], "new-v");
    // The intake link made under version 1 still makes its record: its data key was re-wrapped.
    let (made_at, record, key) = &f.intake;
    // The link's address on this server (a restarted server listens on another port).
    let url = &s.url(&made_at[made_at.find("/intake/").unwrap()..]);
    let form = LoadedForm::load(s.http.get(url)).await;
    let res = form.post(&s.http, url, &[("value", "intake-v")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = s.read(record, Some(key)).await;
    assert_eq!(body(res).await["data"], "intake-v");
    assert_eq!(signed_in(&s, &new_token).await, StatusCode::OK);
    assert_eq!(signed_in(&s, &old_token).await, StatusCode::UNAUTHORIZED);
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyrings_that_cannot_work_stop_the_server_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let start = |keys: &str| {
        let mut settings = settings_in(dir.path());
        settings.master_keys = Some(keys.to_owned().into());
        TestServer::start_settings(settings)
    };
    let err = start("1:abc").await.err().unwrap().to_string();
    assert!(
        err.contains("BRINE_MASTER_KEYS") && err.contains("version 1"),
        "{err}"
    );
    let err = start(&format!("current:3, {}", old_ring()))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("version 3"), "{err}");
    let mut both = settings_in(dir.path());
    both.master_keys = Some(old_ring().into());
    both.master_key = Some(b64(&[11; 32]).into());
    let err = TestServer::start_settings(both)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("set only master_keys"), "{err}");

    // Version 1 registered; a different key claiming to be version 1 is refused.
    start(&old_ring()).await.unwrap().stop().await;
    let err = start(&format!("1:{}, 2:{}", b64(&[99; 32]), b64(&[22; 32])))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("version 1 does not match"), "{err}");
    // The single-key form is version 1 of the same database.
    let mut single = settings_in(dir.path());
    single.master_key = Some(b64(&[11; 32]).into());
    TestServer::start_settings(single).await.unwrap();
}

/// `brine admin add-master-key` turns `master.key` into a keyring file with a new version, and
/// servers then read that file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_master_key_writes_a_keyring_the_server_reads() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "K", "access": "private", "data": "kept"}),
        )
        .await;
    let out = Command::new(env!("CARGO_BIN_EXE_brine"))
        .args(["admin", "add-master-key", "--make-current", "--data-dir"])
        .arg(&s.data_dir)
        .env_remove("BRINE_DATABASE_URL")
        .env_remove("BRINE_MASTER_KEY")
        .env_remove("BRINE_MASTER_KEYS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("added master key version 2"),
        "{}",
        text(&out)
    );
    let ring_file = s.data_dir.join("master.keyring");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ring_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let ring = std::fs::read_to_string(&ring_file).unwrap();
    let old = std::fs::read_to_string(s.data_dir.join("master.key")).unwrap();
    assert!(
        ring.contains("current: 2") && ring.contains(old.trim()),
        "{ring}"
    );

    let s = TestServer::restart(s.stop().await).await;
    let res = s.read(&uuid_of(&created), Some(&key_of(&created))).await;
    assert_eq!(body(res).await["data"], "kept");
    assert_eq!(signed_in(&s, &token).await, StatusCode::OK);
}
