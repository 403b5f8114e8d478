//! Sign-up, login, logout and token handling.

use reqwest::StatusCode;
use serde_json::json;

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
