//! Start-up, restarts, the master key, and secrets that must never leave the vault.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(unix)]
#[tokio::test]
async fn generated_master_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let s = TestServer::start().await;
    let meta = std::fs::metadata(s.data_dir.join("master.key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let key = std::fs::read_to_string(s.data_dir.join("master.key")).unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .unwrap();
    assert_eq!(raw.len(), 32);
}

#[tokio::test]
async fn master_key_problems_stop_the_server_with_a_clear_message() {
    // Wrong size.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_in(dir.path());
    settings.master_key = Some(b64(&[7u8; 16]).into());
    let err = TestServer::start_settings(settings)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("32 bytes") && err.contains("16 bytes"),
        "{err}"
    );

    // Not base64.
    let mut settings = settings_in(dir.path());
    settings.master_key = Some("this is not base64!".to_owned().into());
    let err = TestServer::start_settings(settings)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("base64"), "{err}");

    // A key given in the environment: no key file is written.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_in(dir.path());
    settings.master_key = Some(b64(&[1u8; 32]).into());
    let s = TestServer::start_settings(settings).await.unwrap();
    s.stop().await;
    assert!(!dir.path().join("master.key").exists());

    // Another key for the same database.
    let mut settings = settings_in(dir.path());
    settings.master_key = Some(b64(&[2u8; 32]).into());
    let err = TestServer::start_settings(settings)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("does not match"), "{err}");

    // No key at all for a database that has one: never silently generate a new one.
    let err = TestServer::start_settings(settings_in(dir.path()))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("none was given"), "{err}");
    assert!(!dir.path().join("master.key").exists());

    // The right key still works.
    let mut settings = settings_in(dir.path());
    settings.master_key = Some(b64(&[1u8; 32]).into());
    TestServer::start_settings(settings).await.unwrap();
}

#[tokio::test]
async fn sealed_records_cannot_be_opened_with_the_master_key_alone() {
    use brine_crypto::{Binding, MasterKey};
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({"name": "S", "access": "private", "data": "v", "sealed": true, "password": "sealed pass"}))
        .await;
    let uuid: uuid::Uuid = uuid_of(&created).parse().unwrap();
    let master =
        MasterKey::from_base64(&std::fs::read_to_string(s.data_dir.join("master.key")).unwrap())
            .unwrap();
    let url = format!("sqlite://{}", s.data_dir.join("brine.db").display());
    let store = brine_store::connect(&url).await.unwrap();
    let record = store.record(uuid).await.unwrap().unwrap();
    assert!(record.slot(brine_store::SlotKind::Server).is_none());
    assert_eq!(record.slots.len(), 2);
    // The master key opens none of the slots that are there, under any field name.
    for slot in &record.slots {
        for field in ["slot:server", "slot:api_key", "slot:password"] {
            let binding = Binding::new(uuid, field, slot.version as u32);
            assert!(master.kek().unwrap(binding, &slot.wrapped).is_err());
        }
    }
}

#[tokio::test]
async fn routing_errors_use_the_envelope() {
    let s = TestServer::start().await;
    let res = s.get("/healthz").send().await.unwrap();
    assert_eq!(body(res).await, json!({"status": "ok"}));
    expect_error(s.get("/nope").send().await.unwrap(), StatusCode::NOT_FOUND).await;
    let res = s
        .request(reqwest::Method::DELETE, "/healthz")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED).await;
    let token = s.signup("ana@example.com").await;
    let huge = "x".repeat(300 * 1024);
    let res = s
        .post("/api/v1/records")
        .bearer_auth(&token)
        .json(&json!({"name": "n", "access": "private", "data": huge}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    // Endpoints that read a raw body answer the same way.
    let uuid = "00000000-0000-4000-8000-000000000000";
    for path in [
        format!("/r/{uuid}"),
        format!("/api/v1/records/{uuid}/api-key"),
    ] {
        let res = s
            .post(&path)
            .bearer_auth(&token)
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_cache_larger_than_memory_is_refused_at_start_up() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut settings = settings_in(dir.path());
    settings.record_cache_mib = 1 << 40;
    let err = TestServer::start_settings(settings)
        .await
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(
        message.contains("record_cache_mib") && message.contains("does not fit"),
        "{message}"
    );
    let stderr = failed_start(
        &[
            "--data-dir",
            &dir.path().display().to_string(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("BRINE_RECORD_CACHE_MIB", "100000000000")],
    );
    assert!(
        stderr.contains("record_cache_mib = 100000000000 does not fit"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_racing_with_different_master_keys_cannot_both_start() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let start = |byte: u8| {
            let mut settings = settings_in(dir.path());
            settings.master_key = Some(b64(&[byte; 32]).into());
            TestServer::start_settings(settings)
        };
        let (a, b) = tokio::join!(start(1), start(2));
        assert!(a.is_ok() != b.is_ok(), "exactly one key wins");
    }
}

/// Runs the real binary, logging at debug level, through a session that handles canary
/// secrets every way it can; then searches its log output and every file it wrote.
#[tokio::test(flavor = "multi_thread")]
async fn canary_secrets_never_reach_logs_disk_or_error_bodies() {
    const CANARY: &str = "sk_live_CANARY_7f3a9c";
    const PASSWORD_CANARY: &str = "pw_CANARY_d41c";
    // A Redis password, with nothing listening there: every limit check fails and is logged.
    const REDIS_CANARY: &str = "redis_CANARY_0b5e";
    let redis_url = format!("redis://:{REDIS_CANARY}@127.0.0.1:9/0");
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let server = BrineProcess::start(
        &["--listen", "127.0.0.1:0", "--data-dir", data_dir],
        &[("BRINE_LOG", "debug"), ("BRINE_REDIS_URL", &redis_url)],
    );
    let base = server.base.clone();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let res = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": "ana@example.com", "password": PASSWORD_CANARY}))
        .send()
        .await
        .unwrap();
    let token = body(res).await["token"].as_str().unwrap().to_owned();
    let mut error_bodies = String::new();
    let mut keys = Vec::new();
    for (access, extra) in [
        ("private", json!({"password": PASSWORD_CANARY})),
        ("private", json!({"sealed": true})),
        ("public", json!({})),
        ("owner_only", json!({})),
    ] {
        let mut spec =
            json!({"name": format!("canary {access}"), "access": access, "data": CANARY});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let res = http
            .post(format!("{base}/api/v1/records"))
            .bearer_auth(&token)
            .json(&spec)
            .send()
            .await
            .unwrap();
        let created = body(res).await;
        let uuid = uuid_of(&created);
        let key = created["api_key"].as_str().map(str::to_owned);
        // Reads that work, reads that fail, and reveal.
        let mut req = http.get(format!("{base}/r/{uuid}?token={CANARY}"));
        if let Some(key) = &key {
            req = req.header("X-API-Key", key);
            keys.push(key.clone());
        }
        req.send().await.unwrap();
        // Public records answer anyone (with the value); everything else is an error body.
        for res in [
            http.get(format!("{base}/r/{uuid}"))
                .header("X-API-Key", CANARY)
                .send()
                .await
                .unwrap(),
            http.post(format!("{base}/r/{uuid}"))
                .json(&json!({"password": CANARY}))
                .send()
                .await
                .unwrap(),
        ] {
            if !res.status().is_success() {
                error_bodies.push_str(&res.text().await.unwrap());
            }
        }
        http.get(format!("{base}/api/v1/records/{uuid}/value"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }
    // A bridge whose URL and headers hold the canary: called (refused, as its upstream is
    // internal), revealed by its owner, and tried in the playground.
    let res = http
        .post(format!("{base}/api/v1/records"))
        .bearer_auth(&token)
        .json(
            &json!({"name": "canary bridge", "type": "bridge", "access": "public", "bridge": {
                "url": format!("http://127.0.0.1:9/v1?key={CANARY}"),
                "headers": {"Authorization": format!("Bearer {CANARY}")},
            }}),
        )
        .send()
        .await
        .unwrap();
    let bridge = uuid_of(&body(res).await);
    for res in [
        http.get(format!("{base}/r/{bridge}?q={CANARY}"))
            .send()
            .await
            .unwrap(),
        http.post(format!("{base}/api/v1/records/{bridge}/try"))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    ] {
        assert!(!res.status().is_success());
        error_bodies.push_str(&res.text().await.unwrap());
    }
    let res = http
        .get(format!("{base}/api/v1/records/{bridge}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    error_bodies.push_str(&res.text().await.unwrap());
    // Secrets sent where they do not belong come back as errors that do not repeat them.
    for bad in [
        json!({"name": "n", "access": CANARY, "data": CANARY}),
        json!({"name": "n", "access": "private", "data": CANARY, "max_reads": CANARY}),
        json!({"name": "n", "access": "private", "data": CANARY, CANARY: 1}),
        json!({"name": "n", "access": "public", "data": CANARY, "password": CANARY}),
    ] {
        let res = http
            .post(format!("{base}/api/v1/records"))
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        error_bodies.push_str(&res.text().await.unwrap());
    }
    let res = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": CANARY, "password": CANARY}))
        .send()
        .await
        .unwrap();
    error_bodies.push_str(&res.text().await.unwrap());

    let log = server.stop();
    assert!(log.contains("brine is listening"), "the log was captured");
    assert!(log.contains("/r/"), "requests were logged (by path)");

    assert!(
        log.contains("SHARED RATE LIMITS UNAVAILABLE"),
        "Redis was tried"
    );
    let mut needles = vec![
        CANARY.to_owned(),
        PASSWORD_CANARY.to_owned(),
        REDIS_CANARY.to_owned(),
        token.clone(),
    ];
    needles.extend(keys);
    for needle in &needles {
        assert!(!log.contains(needle.as_str()), "a secret reached the log");
        assert!(
            !error_bodies.contains(needle.as_str()),
            "a secret reached an error body: {error_bodies}"
        );
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(
                !found,
                "a secret is stored in plaintext in {}",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_come_from_file_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("brine.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\ntoken_ttl_secs = 60\n",
            data_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let signup = |base: String, email: &'static str| {
        http.post(format!("{base}/api/v1/auth/signup"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
    };

    // The environment overrides the file.
    let server = BrineProcess::start(&["--config", config], &[("BRINE_TOKEN_TTL_SECS", "120")]);
    let res = signup(server.base.clone(), "ana@example.com")
        .await
        .unwrap();
    assert_eq!(body(res).await["expires_in"], 120);
    server.stop();
    assert!(
        data_dir.join("brine.db").exists(),
        "data_dir came from the file"
    );

    // Flags override the environment.
    let server = BrineProcess::start(
        &["--config", config, "--token-ttl-secs", "30", "--no-signup"],
        &[("BRINE_TOKEN_TTL_SECS", "120")],
    );
    let res = signup(server.base.clone(), "bob@example.com")
        .await
        .unwrap();
    expect_error(res, StatusCode::FORBIDDEN).await;
    let res = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["expires_in"], 30);
    server.stop();

    // Sections come from the file: sign-in limits here.
    let limited = dir.path().join("limited.toml");
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(
        &limited,
        format!("{text}[rate_limits]\nlogin_per_ip = \"2/hour\"\n"),
    )
    .unwrap();
    let server = BrineProcess::start(&["--config", limited.to_str().unwrap()], &[]);
    let res = signup(server.base.clone(), "carol@example.com")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let login = || {
        http.post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
            .send()
    };
    assert_eq!(login().await.unwrap().status(), StatusCode::OK);
    expect_error(login().await.unwrap(), StatusCode::TOO_MANY_REQUESTS).await;
    server.stop();

    // Bad configuration stops start-up with a message that names the problem.
    std::fs::write(
        &limited,
        format!("{text}[rate_limits]\nlogin_per_ip = \"2/fortnight\"\n"),
    )
    .unwrap();
    let err = failed_start(&["--config", limited.to_str().unwrap()], &[]);
    assert!(err.contains("'2/fortnight' is not a rate"), "{err}");
    let err = failed_start(&["--config", config], &[("BRINE_MAX_HEADER_BYTES", "100")]);
    assert!(
        err.contains("max_header_bytes must be at least 8192"),
        "{err}"
    );
    let err = failed_start(&["--config", "/nonexistent/brine.toml"], &[]);
    assert!(err.contains("/nonexistent/brine.toml"), "{err}");
    let err = failed_start(&["--config", config], &[("BRINE_TOKEN_TTL_SECS", "soon")]);
    assert!(err.to_lowercase().contains("token_ttl_secs"), "{err}");
    let err = failed_start(
        &["--config", config],
        &[("BRINE_TOKEN_TTL_SECS", "9223372036854775807")],
    );
    assert!(
        err.contains("token_ttl_secs must be between 1 and"),
        "{err}"
    );
    let err = failed_start(&["--config", config], &[("BRINE_MASTER_KEY", "c2hvcnQ=")]);
    assert!(err.contains("32 bytes"), "{err}");
}

each_backend! {
async fn restart_keeps_every_record_readable() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let private = s
        .create(
            &token,
            json!({"name": "A", "access": "private", "data": "private-v"}),
        )
        .await;
    let public = s
        .create(
            &token,
            json!({"name": "B", "access": "public", "data": "public-v"}),
        )
        .await;
    let sealed = s
        .create(&token, json!({"name": "C", "access": "private", "data": "sealed-v", "sealed": true, "password": "sealed pass"}))
        .await;
    let s = TestServer::restart(s.stop().await).await;
    assert_eq!(
        body(s.read(&uuid_of(&private), Some(&key_of(&private))).await).await["data"],
        "private-v"
    );
    assert_eq!(
        body(s.read(&uuid_of(&public), None).await).await["data"],
        "public-v"
    );
    assert_eq!(
        body(s.read(&uuid_of(&sealed), Some(&key_of(&sealed))).await).await["data"],
        "sealed-v"
    );
    let res = s
        .post(&format!("/r/{}", uuid_of(&sealed)))
        .json(&json!({"password": "sealed pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["data"], "sealed-v");
    // The dashboard token survives a restart too (sessions are stored, the signing key derived).
    let res = s
        .get("/api/v1/records")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["records"].as_array().unwrap().len(), 3);
}
}
