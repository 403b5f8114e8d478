//! Sign-up, login, logout and token handling.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

each_backend! {
async fn signup_login_logout_round_trip() {
    let s = TestServer::start().await;
    let token = s.signup("Ana@Example.com").await;

    // Emails are case-insensitive; a second sign-up with the same address conflicts.
    let res = s
        .post("/api/v1/auth/signup")
        .json(&json!({"email": "ana@example.COM", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT).await;

    let res = s
        .post("/api/v1/auth/login")
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let login = body(res).await;
    let second = login["token"].as_str().unwrap();
    assert_eq!(login["expires_in"], 3600);

    // Both sessions work; logging out one revokes that token only, at once.
    for t in [&token, second] {
        let res = s
            .get("/api/v1/records")
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = s
        .post("/api/v1/auth/logout")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = s
        .get("/api/v1/records")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
    let res = s
        .get("/api/v1/records")
        .bearer_auth(second)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn login_failures_look_the_same_for_known_and_unknown_emails() {
    let s = TestServer::start().await;
    s.signup("ana@example.com").await;
    let mut answers = Vec::new();
    for email in ["ana@example.com", "nobody@example.com", "not an email"] {
        let res = s
            .post("/api/v1/auth/login")
            .json(&json!({"email": email, "password": "wrong password!"}))
            .send()
            .await
            .unwrap();
        answers.push(expect_error(res, StatusCode::UNAUTHORIZED).await);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1], answers[2]);
}

async fn signup_validates_input() {
    let s = TestServer::start().await;
    for (payload, status) in [
        (
            json!({"email": "ana@example.com", "password": "short"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"email": "ana@example.com"}), StatusCode::BAD_REQUEST),
        (
            json!({"email": "ana@example.com", "password": PASSWORD, "admin": true}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let res = s
            .post("/api/v1/auth/signup")
            .json(&payload)
            .send()
            .await
            .unwrap();
        expect_error(res, status).await;
    }
    // Not JSON at all.
    let res = s
        .post("/api/v1/auth/signup")
        .body("email=a")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let res = s
        .post("/api/v1/auth/signup")
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
    // Nothing was created by any of it.
    let res = s
        .post("/api/v1/auth/login")
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
}

async fn signup_can_be_closed() {
    let s = TestServer::start_with(|c| c.signup = false).await;
    let res = s
        .post("/api/v1/auth/signup")
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::FORBIDDEN).await;
}

async fn bad_tokens_are_refused_with_the_envelope() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    for auth in [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer not.a.jwt".to_owned()),
        Some(format!("Bearer {tampered}")),
        Some(format!("Basic {token}")),
    ] {
        let mut req = s.get("/api/v1/records");
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        expect_error(req.send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    }
}

async fn tokens_expire() {
    let s = TestServer::start_with(|c| c.token_ttl_secs = 1).await;
    let token = s.signup("ana@example.com").await;
    let res = s
        .get("/api/v1/records")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Past the expiry (whole seconds in the JWT), the token is refused.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = s
        .get("/api/v1/records")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
}
}

/// The current code of an authenticator app set up from `otpauth_uri`.
pub fn app_code(otpauth_uri: &str) -> String {
    totp_rs::Totp::from_url(otpauth_uri)
        .unwrap()
        .generate_current()
        .to_string()
}

async fn login(s: &TestServer, email: &str, password: &str, code: Option<&str>) -> Response {
    let mut creds = json!({"email": email, "password": password});
    if let Some(code) = code {
        creds["code"] = json!(code);
    }
    s.post("/api/v1/auth/login")
        .json(&creds)
        .send()
        .await
        .unwrap()
}

async fn get_json(s: &TestServer, token: &str, path: &str) -> Value {
    let res = s.get(path).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    body(res).await
}

/// Turns on two-factor sign-in through the API; returns the otpauth URI and the recovery codes.
pub async fn enable_two_factor(s: &TestServer, token: &str) -> (String, Vec<String>) {
    let res = s
        .post("/api/v1/account/two-factor/setup")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let uri = body(res).await["otpauth_uri"].as_str().unwrap().to_owned();
    // A wrong code turns nothing on.
    let res = s
        .post("/api/v1/account/two-factor/enable")
        .bearer_auth(token)
        .json(&json!({"code": "000000"}))
        .send()
        .await
        .unwrap();
    if res.status() != StatusCode::OK {
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
    let res = s
        .post("/api/v1/account/two-factor/enable")
        .bearer_auth(token)
        .json(&json!({"code": app_code(&uri)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let codes: Vec<String> = body(res).await["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (uri, codes)
}

each_backend! {
async fn two_factor_sign_in_is_asked_on_every_way_in() {
    // More attempts than the default per-email limit allows (codes count like passwords).
    let s = TestServer::start_with(|c| {
        c.rate_limits.login_per_email = brine_limits::Rate::parse("30/15min").unwrap();
    })
    .await;
    let token = s.signup("ana@example.com").await;
    let (uri, recovery) = enable_two_factor(&s, &token).await;
    assert_eq!(recovery.len(), 10);
    let account = get_json(&s, &token, "/api/v1/account").await;
    assert_eq!(account["two_factor"], true);
    assert_eq!(account["recovery_codes_left"], 10);

    // The password alone no longer signs in; a wrong password still looks like one.
    let refused = expect_error(
        login(&s, "ana@example.com", PASSWORD, None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(refused["error"], "Code required");
    let wrong_password = expect_error(
        login(&s, "ana@example.com", "not the password", Some(&app_code(&uri))).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong_password["error"], "Invalid credentials");
    let wrong_code = expect_error(
        login(&s, "ana@example.com", PASSWORD, Some("123456")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong_code, wrong_password);

    // A code signs in once; the same code again does not.
    let code = app_code(&uri);
    let res = login(&s, "ana@example.com", PASSWORD, Some(&code)).await;
    assert_eq!(res.status(), StatusCode::OK);
    expect_error(
        login(&s, "ana@example.com", PASSWORD, Some(&code)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // A recovery code signs in once, whatever its case and dashes.
    let spelled = recovery[0].to_uppercase().replace('-', " ");
    let res = login(&s, "ana@example.com", PASSWORD, Some(&spelled)).await;
    assert_eq!(res.status(), StatusCode::OK);
    expect_error(
        login(&s, "ana@example.com", PASSWORD, Some(&recovery[0])).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let account = get_json(&s, &token, "/api/v1/account").await;
    assert_eq!(account["recovery_codes_left"], 9);

    // The CLI asks for the code (here on the second line of stdin) and signs in with it.
    let home = tempfile::tempdir().unwrap();
    let mut cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_brine"))
        .args(["login", "--email", "ana@example.com", "--password-stdin"])
        .env("BRINE_SERVER", &s.base)
        .env("BRINE_CONFIG_DIR", home.path())
        .env("HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = cli.stdin.take().unwrap();
    stdin
        .write_all(format!("{PASSWORD}\n{}\n", recovery[1]).as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = cli.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Each step is in the account's history.
    let events = get_json(&s, &token, "/api/v1/account/events").await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "signed_up",
        "two_factor_enabled",
        "sign_in_failed",
        "code_failed",
        "signed_in",
        "recovery_code_used",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }

    // Turning it off needs the password.
    let res = s
        .post("/api/v1/account/two-factor/disable")
        .bearer_auth(&token)
        .json(&json!({"password": "not the password"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
    let res = s
        .post("/api/v1/account/two-factor/disable")
        .bearer_auth(&token)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = login(&s, "ana@example.com", PASSWORD, None).await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn sessions_are_listed_and_each_can_be_ended() {
    let s = TestServer::start().await;
    let first = s.signup("ana@example.com").await;
    let res = login(&s, "ana@example.com", PASSWORD, None).await;
    let second = body(res).await["token"].as_str().unwrap().to_owned();
    let list = get_json(&s, &first, "/api/v1/account/sessions").await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        sessions.iter().filter(|s| s["current"] == true).count(),
        1
    );
    assert!(sessions.iter().all(|s| s["kind"] == "api" && s["client_ip"] == "127.0.0.1"));
    let other = sessions
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another account cannot end it, nor learn that it exists.
    let bob = s.signup("bob@example.com").await;
    let res = s
        .request(Method::DELETE, &format!("/api/v1/account/sessions/{other}"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;

    let res = s
        .request(Method::DELETE, &format!("/api/v1/account/sessions/{other}"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = s.get("/api/v1/records").bearer_auth(&second).send().await.unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
    let res = s.get("/api/v1/records").bearer_auth(&first).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn a_password_change_ends_every_session() {
    let s = TestServer::start().await;
    let first = s.signup("ana@example.com").await;
    let second = body(login(&s, "ana@example.com", PASSWORD, None).await).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let change = |token: String, current: &'static str| {
        s.post("/api/v1/account/password")
            .bearer_auth(token)
            .json(&json!({"current_password": current, "new_password": "a brand new passphrase"}))
            .send()
    };
    expect_error(
        change(first.clone(), "not the password").await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let res = change(first.clone(), PASSWORD).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let fresh = body(res).await["token"].as_str().unwrap().to_owned();
    for old in [&first, &second] {
        let res = s.get("/api/v1/records").bearer_auth(old).send().await.unwrap();
        expect_error(res, StatusCode::UNAUTHORIZED).await;
    }
    let res = s.get("/api/v1/records").bearer_auth(&fresh).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    expect_error(
        login(&s, "ana@example.com", PASSWORD, None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let res = login(&s, "ana@example.com", "a brand new passphrase", None).await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn deleting_an_account_deletes_its_records() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({"name": "Stripe", "access": "private", "data": "sk_test_gone"}))
        .await;
    let (uuid, key) = (uuid_of(&created), key_of(&created));
    let bob = s.signup("bob@example.com").await;
    let kept = s
        .create(&bob, json!({"name": "Bob's", "access": "private", "data": "sk_test_kept"}))
        .await;

    let res = s
        .request(Method::DELETE, "/api/v1/account")
        .bearer_auth(&token)
        .json(&json!({"password": "not the password"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);

    let res = s
        .request(Method::DELETE, "/api/v1/account")
        .bearer_auth(&token)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The record answers like one that never existed; the token and the login are gone.
    let gone = expect_error(s.read(&uuid, Some(&key)).await, StatusCode::NOT_FOUND).await;
    let never = expect_error(
        s.read(&uuid::Uuid::new_v4().to_string(), Some(&key)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(gone, never);
    let res = s.get("/api/v1/records").bearer_auth(&token).send().await.unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
    expect_error(
        login(&s, "ana@example.com", PASSWORD, None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let res = s.read(&uuid_of(&kept), Some(&key_of(&kept))).await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn an_operator_resets_a_locked_out_owners_password() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    enable_two_factor(&s, &token).await;
    let mut reset = tokio::process::Command::new(env!("CARGO_BIN_EXE_brine"))
        .args([
            "admin",
            "reset-password",
            "Ana@example.com",
            "--reset-two-factor",
            "--password-stdin",
            "--database-url",
            &s.database_url(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = reset.stdin.take().unwrap();
    stdin.write_all(b"an operator's new password\n").await.unwrap();
    drop(stdin);
    let out = reset.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("operator's new password"));

    let res = s.get("/api/v1/records").bearer_auth(&token).send().await.unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
    let res = login(&s, "ana@example.com", "an operator's new password", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let fresh = body(res).await["token"].as_str().unwrap().to_owned();
    let events = get_json(&s, &fresh, "/api/v1/account/events").await;
    assert!(events["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "password_reset"));
}
}
