//! The secure page, `/secure/{uuid}`: handing a credential to a person.

use futures::future::join_all;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

const PAGE_PASSWORD: &str = "sms-me-this 42";

async fn put_page(s: &TestServer, token: &str, uuid: &str, body: Value) -> Response {
    s.request(Method::PUT, &format!("/api/v1/records/{uuid}/secure-page"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A person opens the link and submits the password.
async fn unlock(s: &TestServer, uuid: &str, password: &str) -> Response {
    let url = s.url(&format!("/secure/{uuid}"));
    let form = LoadedForm::load(s.http.get(&url)).await;
    form.post(&s.http, &url, &[("password", password)])
        .send()
        .await
        .unwrap()
}

/// The same, from a client address (the test server trusts the loopback proxy).
async fn unlock_from(s: &TestServer, uuid: &str, password: &str, ip: &str) -> Response {
    let url = s.url(&format!("/secure/{uuid}"));
    let form = LoadedForm::load(s.http.get(&url).header("X-Forwarded-For", ip)).await;
    form.post(&s.http, &url, &[("password", password)])
        .header("X-Forwarded-For", ip)
        .send()
        .await
        .unwrap()
}

/// A private credential with a secure page; returns the creation answer.
async fn shared(s: &TestServer, token: &str, extra: Value) -> Value {
    let mut spec = json!({
        "name": "Stripe for the contractor",
        "access": "private",
        "data": "sk_live_handoff",
        "secure_page": {"enabled": true, "password": PAGE_PASSWORD},
    });
    for (k, v) in extra.as_object().unwrap() {
        if k == "secure_page" {
            spec["secure_page"]
                .as_object_mut()
                .unwrap()
                .extend(v.as_object().unwrap().clone());
        } else {
            spec[k] = v.clone();
        }
    }
    s.create(token, spec).await
}

fn revealed(html: &str) -> bool {
    html.contains("sk_live_handoff")
}

/// The page without its form token, which differs from one browser to the next.
fn untokened(html: &str) -> String {
    match html.split_once("name=\"form_token\" value=\"") {
        Some((before, after)) => {
            let rest = after.split_once('"').map_or("", |(_, rest)| rest);
            format!("{before}name=\"form_token\" value=\"…\"{rest}")
        }
        None => html.to_owned(),
    }
}

each_backend! {
async fn the_page_is_the_same_for_every_uuid_and_never_reveals_on_get() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = shared(&s, &token, json!({"secure_page": {"max_views": 1}})).await;
    let uuid = uuid_of(&created);
    let page = created["record"]["secure_page"].clone();
    assert_eq!(page["path"], format!("/secure/{uuid}"));
    assert_eq!(page["status"], "active");

    let disabled = s.create(&token, json!({"name": "No page", "access": "private", "data": "x"})).await;
    let mut bodies = Vec::new();
    for id in [uuid.as_str(), &uuid_of(&disabled), "00000000-0000-4000-8000-000000000000", "not-a-uuid"] {
        // Link previews and mail scanners fetch several times: nothing is consumed.
        for _ in 0..3 {
            let res = s.get(&format!("/secure/{id}")).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let h = res.headers();
            assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
            assert_eq!(h["cache-control"], "no-store");
            assert_eq!(h["referrer-policy"], "no-referrer");
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert!(h["x-robots-tag"].to_str().unwrap().contains("noindex"));
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
            assert!(!csp.contains("unsafe-inline"));
            let html = res.text().await.unwrap();
            assert!(!revealed(&html) && html.contains("name=\"password\""));
            bodies.push(untokened(&html));
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "no existence oracle");
    // After all those GETs, the single view is still there.
    let res = unlock(&s, &uuid, PAGE_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(revealed(&res.text().await.unwrap()));
}

async fn wrong_passwords_fail_generically_and_views_are_limited() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = shared(&s, &token, json!({"secure_page": {"max_views": 2}})).await;
    let uuid = uuid_of(&created);

    let wrong = unlock(&s, &uuid, "guess 1234").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_html = wrong.text().await.unwrap();
    assert!(!revealed(&wrong_html));
    let unknown = unlock(&s, "00000000-0000-4000-8000-000000000000", PAGE_PASSWORD).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(untokened(&unknown.text().await.unwrap()), untokened(&wrong_html), "unknown pages fail the same way");
    let url = s.url(&format!("/secure/{uuid}"));
    let form = LoadedForm::load(s.http.get(&url)).await;
    let empty = form.post(&s.http, &url, &[("other", "x")]).send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);

    // The owner's own reveal does not use a view.
    let res = s.get(&format!("/api/v1/records/{uuid}/value")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for _ in 0..2 {
        let res = unlock(&s, &uuid, PAGE_PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = res.text().await.unwrap();
        assert!(revealed(&html) && html.contains("id=\"copy\"") && html.contains("rotate"));
    }
    let res = unlock(&s, &uuid, PAGE_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(!revealed(&res.text().await.unwrap()));
    let res = s.get(&format!("/api/v1/records/{uuid}")).bearer_auth(&token).send().await.unwrap();
    let view = body(res).await;
    assert_eq!(view["secure_page"]["views"], 2);
    assert_eq!(view["secure_page"]["status"], "exhausted");
}

async fn parallel_right_passwords_reveal_exactly_once() {
    let s = TestServer::start_with(|c| c.lockout.per_client = 100).await;
    let token = s.signup("ana@example.com").await;
    let created = shared(&s, &token, json!({"secure_page": {"max_views": 1}})).await;
    let uuid = uuid_of(&created);
    let answers = join_all((0..12).map(|_| async {
        let res = unlock(&s, &uuid, PAGE_PASSWORD).await;
        (res.status(), revealed(&res.text().await.unwrap()))
    }))
    .await;
    let reveals = answers.iter().filter(|(_, shown)| *shown).count();
    assert_eq!(reveals, 1, "{answers:?}");
    assert!(answers.iter().all(|(st, shown)| *shown == (*st == StatusCode::OK)));
}

async fn a_new_password_kills_the_old_one_and_the_key_route_is_independent() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = shared(&s, &token, json!({})).await;
    let uuid = uuid_of(&created);
    let key = key_of(&created);
    assert!(created["warnings"][0].as_str().unwrap().contains("two records"));

    let res = put_page(&s, &token, &uuid, json!({"enabled": true, "password": "a brand new one"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(unlock(&s, &uuid, PAGE_PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unlock(&s, &uuid, "a brand new one").await.status(), StatusCode::OK);
    // The key was untouched.
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);

    // Rotating the key leaves the page alone.
    let res = s.post(&format!("/api/v1/records/{uuid}/api-key")).bearer_auth(&token).send().await.unwrap();
    let new_key = body(res).await["api_key"].as_str().unwrap().to_owned();
    assert_eq!(unlock(&s, &uuid, "a brand new one").await.status(), StatusCode::OK);

    // Turning the key off leaves the page alone too.
    let res = s.request(Method::DELETE, &format!("/api/v1/records/{uuid}/api-key")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.read(&uuid, Some(&new_key)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unlock(&s, &uuid, "a brand new one").await.status(), StatusCode::OK);
    let res = s.request(Method::PATCH, &format!("/api/v1/records/{uuid}")).bearer_auth(&token).json(&json!({"name": "renamed"})).send().await.unwrap();
    let updated = body(res).await;
    assert!(updated.get("api_key").is_none(), "a PATCH does not bring a removed key back");
    assert_eq!(updated["record"]["has_api_key"], false);

    // Disabling the page: every password fails, the form looks as ever; a rotated key works.
    let res = put_page(&s, &token, &uuid, json!({"enabled": false})).await;
    assert_eq!(body(res).await["record"]["secure_page"], Value::Null);
    assert_eq!(unlock(&s, &uuid, "a brand new one").await.status(), StatusCode::UNAUTHORIZED);
    let res = s.post(&format!("/api/v1/records/{uuid}/api-key")).bearer_auth(&token).send().await.unwrap();
    let third = body(res).await["api_key"].as_str().unwrap().to_owned();
    assert_eq!(s.read(&uuid, Some(&third)).await.status(), StatusCode::OK);
}

async fn bad_secure_page_settings_are_refused() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    for spec in [
        json!({"name": "n", "access": "public", "data": "v", "secure_page": {"enabled": true, "password": PAGE_PASSWORD}}),
        json!({"name": "n", "access": "private", "data": "v", "secure_page": {"enabled": true}}),
        json!({"name": "n", "access": "private", "data": "v", "secure_page": {"enabled": true, "password": "short"}}),
        json!({"name": "n", "access": "private", "data": "v", "secure_page": {"enabled": true, "password": PAGE_PASSWORD, "max_views": 0}}),
        json!({"name": "n", "access": "private", "data": "v", "secure_page": {"enabled": true, "password": PAGE_PASSWORD, "expires_at": "2001-01-01T00:00:00Z"}}),
        json!({"name": "n", "access": "public", "data": "v", "api_key": false}),
    ] {
        let res = s.post("/api/v1/records").bearer_auth(&token).json(&spec).send().await.unwrap();
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
    let public = s.create(&token, json!({"name": "p", "access": "public", "data": "v"})).await;
    let res = put_page(&s, &token, &uuid_of(&public), json!({"enabled": true, "password": PAGE_PASSWORD})).await;
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let sealed = s.create(&token, json!({"name": "s", "access": "private", "data": "v", "sealed": true})).await;
    let res = put_page(&s, &token, &uuid_of(&sealed), json!({"enabled": true, "password": PAGE_PASSWORD})).await;
    expect_error(res, StatusCode::CONFLICT).await;
    let other = s.signup("bob@example.com").await;
    let mine = shared(&s, &token, json!({})).await;
    let res = put_page(&s, &other, &uuid_of(&mine), json!({"enabled": false})).await;
    expect_error(res, StatusCode::NOT_FOUND).await;
    assert_eq!(unlock(&s, &uuid_of(&mine), PAGE_PASSWORD).await.status(), StatusCode::OK);
}

async fn a_sealed_record_can_have_a_page_for_a_person_only() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = shared(&s, &token, json!({"sealed": true, "api_key": false})).await;
    let uuid = uuid_of(&created);
    assert!(created.get("api_key").is_none());
    assert!(created.get("warnings").is_none());
    assert_eq!(created["record"]["has_api_key"], false);
    assert!(revealed(&unlock(&s, &uuid, PAGE_PASSWORD).await.text().await.unwrap()));
    // Replacing the value would orphan the page's password: refused until the page is off.
    let res = s.request(Method::PATCH, &format!("/api/v1/records/{uuid}")).bearer_auth(&token).json(&json!({"data": "new"})).send().await.unwrap();
    expect_error(res, StatusCode::CONFLICT).await;
}

async fn the_page_has_its_own_expiry() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    // Room for a slow unlock (Argon2 on a busy machine) before the page expires; then wait
    // until it has.
    let deadline = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
    let soon = deadline.format(&time::format_description::well_known::Rfc3339).unwrap();
    let created = shared(&s, &token, json!({"secure_page": {"expires_at": soon}})).await;
    let uuid = uuid_of(&created);
    assert_eq!(unlock(&s, &uuid, PAGE_PASSWORD).await.status(), StatusCode::OK);
    let left = deadline - time::OffsetDateTime::now_utc() + time::Duration::milliseconds(200);
    tokio::time::sleep(left.try_into().unwrap_or_default()).await;
    assert_eq!(unlock(&s, &uuid, PAGE_PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    // Code keeps reading: the page's expiry is the page's alone.
    assert_eq!(s.read(&uuid, Some(&key_of(&created))).await.status(), StatusCode::OK);
    let res = s.get(&format!("/api/v1/records/{uuid}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(body(res).await["secure_page"]["status"], "expired");
}

async fn opened_attempts_and_reveals_are_distinct_audit_events() {
    let s = TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&shared(&s, &token, json!({})).await);
    let url = s.url(&format!("/secure/{uuid}"));
    let bot = s.http.get(&url).header("User-Agent", "Slackbot-LinkExpanding 1.0").header("X-Forwarded-For", "198.51.100.1");
    bot.send().await.unwrap();
    let person = |req: reqwest::RequestBuilder| req.header("User-Agent", "Firefox").header("X-Forwarded-For", "198.51.100.2");
    let form = LoadedForm::load(person(s.http.get(&url))).await;
    person(form.post(&s.http, &url, &[("password", "nope nope")])).send().await.unwrap();
    person(form.post(&s.http, &url, &[("password", PAGE_PASSWORD)])).send().await.unwrap();
    let res = s.get(&format!("/api/v1/records/{uuid}/events")).bearer_auth(&token).send().await.unwrap();
    let events = body(res).await;
    let seen: Vec<(&str, &str, &str)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["channel"].as_str().unwrap(), e["outcome"].as_str().unwrap(), e["user_agent"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        seen,
        [
            ("secure_page", "revealed", "Firefox"),
            ("secure_page", "denied", "Firefox"),
            ("secure_page", "opened", "Firefox"),
            ("secure_page", "opened", "Slackbot-LinkExpanding 1.0"),
        ]
    );
    assert!(!events.to_string().contains(PAGE_PASSWORD) && !events.to_string().contains("nope nope"));
}

async fn repeated_failures_lock_the_page_per_client_and_per_record() {
    let s = TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&shared(&s, &token, json!({})).await);

    // Per client: five failures, then even the right password is refused for a while.
    for _ in 0..5 {
        let res = unlock_from(&s, &uuid, "wrong guess", "198.51.100.1").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = unlock_from(&s, &uuid, PAGE_PASSWORD, "198.51.100.1").await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = locked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&wait), "{wait}");
    assert!(!revealed(&locked.text().await.unwrap()));
    // Someone else is not locked out by it.
    assert_eq!(unlock_from(&s, &uuid, PAGE_PASSWORD, "198.51.100.2").await.status(), StatusCode::OK);

    // Per record: 20 failures in all, from addresses that each stay under their own limit.
    for i in 0..15 {
        let ip = format!("203.0.113.{}", i / 4);
        assert_eq!(unlock_from(&s, &uuid, "wrong guess", &ip).await.status(), StatusCode::UNAUTHORIZED);
    }
    let res = unlock_from(&s, &uuid, PAGE_PASSWORD, "192.0.2.77").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
}

async fn record_passwords_are_locked_out_too() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(&token, json!({"name": "P", "access": "private", "data": "v", "password": "record password"}))
        .await;
    let path = format!("/r/{}", uuid_of(&created));
    for _ in 0..5 {
        let res = s.post(&path).json(&json!({"password": "wrong password"})).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = s.post(&path).json(&json!({"password": "record password"})).send().await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    expect_error(res, StatusCode::TOO_MANY_REQUESTS).await;
    // The X-API-Key is not affected by the password lockout.
    assert_eq!(s.read(&uuid_of(&created), Some(&key_of(&created))).await.status(), StatusCode::OK);
}

async fn leaving_private_access_retires_the_page() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = uuid_of(&shared(&s, &token, json!({})).await);
    let res = s
        .request(Method::PATCH, &format!("/api/v1/records/{uuid}"))
        .bearer_auth(&token)
        .json(&json!({"access": "owner_only"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["record"]["secure_page"], Value::Null);
    assert_eq!(unlock(&s, &uuid, PAGE_PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
}

async fn a_sealed_page_is_re_keyed_with_the_records_key() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = shared(&s, &token, json!({"sealed": true})).await;
    let uuid = uuid_of(&created);
    let key = key_of(&created);
    // Without the key the server cannot wrap the sealed data key; with a wrong one, neither.
    let new_page = json!({"enabled": true, "password": "another page pw"});
    expect_error(put_page(&s, &token, &uuid, new_page.clone()).await, StatusCode::CONFLICT).await;
    let res = s
        .request(Method::PUT, &format!("/api/v1/records/{uuid}/secure-page"))
        .bearer_auth(&token)
        .header("X-API-Key", "brk_wrong")
        .json(&new_page)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;
    let res = s
        .request(Method::PUT, &format!("/api/v1/records/{uuid}/secure-page"))
        .bearer_auth(&token)
        .header("X-API-Key", &key)
        .json(&new_page)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(revealed(&unlock(&s, &uuid, "another page pw").await.text().await.unwrap()));
    assert_eq!(unlock(&s, &uuid, PAGE_PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
}

async fn odd_key_requests_are_refused() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let public = s.create(&token, json!({"name": "p", "access": "public", "data": "v"})).await;
    let res = s
        .request(Method::DELETE, &format!("/api/v1/records/{}/api-key", uuid_of(&public)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT).await;
    let private = s.create(&token, json!({"name": "k", "access": "private", "data": "v"})).await;
    let res = s
        .post(&format!("/api/v1/records/{}/api-key", uuid_of(&private)))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let res = s
        .post("/api/v1/records")
        .bearer_auth(&token)
        .json(&json!({"name": "lost", "access": "private", "data": "v", "sealed": true, "api_key": false}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
}
}
