//! Service tokens (read-only, scoped to named records, with an expiry) and renewable sessions
//! (refresh tokens rotated on use; an old one presented again ends the session).

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::*;

fn in_days(days: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&Rfc3339)
        .unwrap()
}

async fn make_token(s: &TestServer, owner: &str, spec: Value) -> reqwest::Response {
    s.post("/api/v1/tokens")
        .bearer_auth(owner)
        .json(&spec)
        .send()
        .await
        .unwrap()
}

/// A token over `records`, for 90 days; its secret.
async fn token_for(s: &TestServer, owner: &str, name: &str, records: &[&str]) -> String {
    let res = make_token(
        s,
        owner,
        json!({"name": name, "records": records, "expires_at": in_days(90)}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    body(res).await["token"].as_str().unwrap().to_owned()
}

async fn details(s: &TestServer, owner: &str, uuid: &str) -> Vec<(String, Value)> {
    let res = s
        .get(&format!("/api/v1/records/{uuid}/events"))
        .bearer_auth(owner)
        .send()
        .await
        .unwrap();
    body(res).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["outcome"].as_str().unwrap().to_owned(),
                e["detail"].clone(),
            )
        })
        .collect()
}

each_backend! {
    async fn a_service_token_reads_the_records_it_names_and_no_other() {
        let s = TestServer::start().await;
        let ana = s.signup("ana@example.com").await;
        let stripe = s
            .create(&ana, json!({"name": "stripe-test", "access": "private", "data": "sk_test_tok"}))
            .await;
        let stripe_key = key_of(&stripe);
        let stripe = uuid_of(&stripe);
        let db = uuid_of(
            &s.create(&ana, json!({"name": "db-url", "access": "owner_only", "data": "postgres://db"}))
                .await,
        );
        let other = uuid_of(
            &s.create(&ana, json!({"name": "other", "access": "private", "data": "not for ci"}))
                .await,
        );
        let res = make_token(
            &s,
            &ana,
            json!({"name": "ci deploy", "records": [stripe, db], "expires_at": in_days(90)}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let made = body(res).await;
        let token = made["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("brst_"));
        assert_eq!(made["service_token"]["name"], "ci deploy");
        let names: Vec<&str> = made["service_token"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"stripe-test") && names.contains(&"db-url"));

        // In scope: a private record without its key, and an owner-only one.
        let read = s.read(&stripe, Some(&token)).await;
        assert_eq!(read.status(), StatusCode::OK);
        assert_eq!(body(read).await["data"], "sk_test_tok");
        let read = s.read(&db, Some(&token)).await;
        assert_eq!(body(read).await["data"], "postgres://db");
        // The record's own key still works, and the event of the token's read names it.
        assert_eq!(s.read(&stripe, Some(&stripe_key)).await.status(), StatusCode::OK);
        let events = details(&s, &ana, &stripe).await;
        assert!(events.contains(&("ok".to_owned(), json!({"service_token": "ci deploy"}))), "{events:?}");

        // Out of scope: refused, and the owner sees which token tried.
        let refused = expect_error(s.read(&other, Some(&token)).await, StatusCode::FORBIDDEN).await;
        assert!(refused["message"].as_str().unwrap().contains("does not cover"));
        let events = details(&s, &ana, &other).await;
        assert_eq!(events[0], ("forbidden".to_owned(), json!({"service_token": "ci deploy"})));

        // Another account's record, a made-up token, a token-shaped guess: one answer.
        let ben = s.signup("ben@example.com").await;
        let bens = uuid_of(
            &s.create(&ben, json!({"name": "ben's", "access": "private", "data": "ben secret"}))
                .await,
        );
        expect_error(s.read(&bens, Some(&token)).await, StatusCode::UNAUTHORIZED).await;
        let forged = format!("{}{}", &token[..token.len() - 4], "AAAA");
        expect_error(s.read(&stripe, Some(&forged)).await, StatusCode::UNAUTHORIZED).await;
        expect_error(s.read(&stripe, Some("brst_nonsense")).await, StatusCode::UNAUTHORIZED).await;
        let events = details(&s, &ana, &stripe).await;
        assert_eq!(events[0], ("denied".to_owned(), json!({"refused_by": "service token"})));
        let events = details(&s, &ben, &bens).await;
        assert!(
            events.iter().all(|(_, detail)| !detail.to_string().contains("ci deploy")),
            "another account never sees the token's name: {events:?}"
        );

        // The token tells what it reads; without one, nothing.
        let res = s
            .get("/api/v1/service-token")
            .header("X-API-Key", &token)
            .send()
            .await
            .unwrap();
        let described = body(res).await;
        assert_eq!(described["name"], "ci deploy");
        assert_eq!(described["records"].as_array().unwrap().len(), 2);
        assert!(described["last_used_at"].is_string());
        expect_error(s.get("/api/v1/service-token").send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
        let res = s
            .get("/api/v1/service-token")
            .header("X-API-Key", &forged)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::UNAUTHORIZED).await;

        // Listed for its owner only; revoked at once; revoked once.
        let list = body(s.get("/api/v1/tokens").bearer_auth(&ana).send().await.unwrap()).await;
        let id = list["tokens"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(list["tokens"][0]["expired"], false);
        assert!(!list.to_string().contains(&token[40..]), "the list never holds the secret");
        let bens_list = body(s.get("/api/v1/tokens").bearer_auth(&ben).send().await.unwrap()).await;
        assert_eq!(bens_list["tokens"], json!([]));
        let revoke = |who: String| {
            s.request(reqwest::Method::DELETE, &format!("/api/v1/tokens/{id}"))
                .bearer_auth(who)
                .send()
        };
        expect_error(revoke(ben.clone()).await.unwrap(), StatusCode::NOT_FOUND).await;
        assert_eq!(s.read(&stripe, Some(&token)).await.status(), StatusCode::OK);
        assert_eq!(revoke(ana.clone()).await.unwrap().status(), StatusCode::NO_CONTENT);
        expect_error(s.read(&stripe, Some(&token)).await, StatusCode::UNAUTHORIZED).await;
        expect_error(revoke(ana.clone()).await.unwrap(), StatusCode::NOT_FOUND).await;

        // Deleting a record takes it out of every token's scope.
        let token = token_for(&s, &ana, "second", &[&stripe, &db]).await;
        let res = s
            .request(reqwest::Method::DELETE, &format!("/api/v1/records/{db}"))
            .bearer_auth(&ana)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let list = body(s.get("/api/v1/tokens").bearer_auth(&ana).send().await.unwrap()).await;
        assert_eq!(list["tokens"][0]["records"].as_array().unwrap().len(), 1);
        assert_eq!(s.read(&stripe, Some(&token)).await.status(), StatusCode::OK);
    }

    async fn service_tokens_are_checked_when_made() {
        let s = TestServer::start().await;
        let ana = s.signup("ana@example.com").await;
        let ben = s.signup("ben@example.com").await;
        let mine = uuid_of(&s.create(&ana, json!({"name": "mine", "access": "private", "data": "v"})).await);
        let sealed = uuid_of(
            &s.create(&ana, json!({"name": "sealed", "access": "private", "sealed": true, "data": "v"}))
                .await,
        );
        let bridge = uuid_of(
            &s.create(
                &ana,
                json!({"name": "api", "type": "bridge", "access": "public",
                       "bridge": {"url": "http://127.0.0.1:9/v1"}}),
            )
            .await,
        );
        let bens = uuid_of(&s.create(&ben, json!({"name": "b", "access": "private", "data": "v"})).await);
        let past = (OffsetDateTime::now_utc() - time::Duration::minutes(1)).format(&Rfc3339).unwrap();
        for (spec, word) in [
            (json!({"name": "t", "records": [], "expires_at": in_days(9)}), "records"),
            (json!({"name": "", "records": [mine], "expires_at": in_days(9)}), "name"),
            (json!({"name": "t", "records": [bens], "expires_at": in_days(9)}), "not one of your"),
            (json!({"name": "t", "records": [sealed], "expires_at": in_days(9)}), "sealed"),
            (json!({"name": "t", "records": [bridge], "expires_at": in_days(9)}), "bridge"),
            (json!({"name": "t", "records": [mine], "expires_at": past}), "future"),
            (json!({"name": "t", "records": [mine], "expires_at": in_days(400)}), "366"),
            (json!({"name": "t", "records": [mine]}), "expires_at"),
        ] {
            let error = expect_error(make_token(&s, &ana, spec.clone()).await, StatusCode::BAD_REQUEST).await;
            assert!(error["message"].as_str().unwrap().contains(word), "{spec}: {error}");
        }
        token_for(&s, &ana, "t", &[&mine]).await;
        let taken = make_token(&s, &ana, json!({"name": "t", "records": [mine], "expires_at": in_days(9)})).await;
        expect_error(taken, StatusCode::CONFLICT).await;
        let res = s.post("/api/v1/tokens").json(&json!({})).send().await.unwrap();
        expect_error(res, StatusCode::UNAUTHORIZED).await;
        let list = body(s.get("/api/v1/tokens").bearer_auth(&ana).send().await.unwrap()).await;
        assert_eq!(list["tokens"].as_array().unwrap().len(), 1, "nothing refused was kept");
    }

    async fn a_service_token_is_bound_by_the_records_limits_and_its_own_expiry() {
        let s = TestServer::start().await;
        let ana = s.signup("ana@example.com").await;
        let twice = uuid_of(
            &s.create(&ana, json!({"name": "twice", "access": "private", "data": "v", "max_reads": 2}))
                .await,
        );
        let slow = uuid_of(
            &s.create(
                &ana,
                json!({"name": "slow", "access": "private", "data": "v", "rate_limit": {"per_ip": "1/min"}}),
            )
            .await,
        );
        let token = token_for(&s, &ana, "ci", &[&twice, &slow]).await;
        assert_eq!(s.read(&twice, Some(&token)).await.status(), StatusCode::OK);
        assert_eq!(s.read(&twice, Some(&token)).await.status(), StatusCode::OK);
        expect_error(s.read(&twice, Some(&token)).await, StatusCode::NOT_FOUND).await;
        assert_eq!(s.read(&slow, Some(&token)).await.status(), StatusCode::OK);
        expect_error(s.read(&slow, Some(&token)).await, StatusCode::TOO_MANY_REQUESTS).await;

        // A token that expires in a moment: it works, then it does not.
        let soon = OffsetDateTime::now_utc() + time::Duration::milliseconds(1500);
        let res = make_token(
            &s,
            &ana,
            json!({"name": "brief", "records": [twice, slow], "expires_at": soon.format(&Rfc3339).unwrap()}),
        )
        .await;
        let brief = body(res).await["token"].as_str().unwrap().to_owned();
        let other = uuid_of(&s.create(&ana, json!({"name": "o", "access": "public", "data": "p"})).await);
        let _ = other;
        let described = s.get("/api/v1/service-token").header("X-API-Key", &brief).send().await.unwrap();
        assert_eq!(described.status(), StatusCode::OK);
        let wait = soon - OffsetDateTime::now_utc() + time::Duration::milliseconds(100);
        if wait.is_positive() {
            tokio::time::sleep(wait.unsigned_abs()).await;
        }
        let described = s.get("/api/v1/service-token").header("X-API-Key", &brief).send().await.unwrap();
        expect_error(described, StatusCode::UNAUTHORIZED).await;
        let list = body(s.get("/api/v1/tokens").bearer_auth(&ana).send().await.unwrap()).await;
        let brief_row = list["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "brief").unwrap().clone();
        assert_eq!(brief_row["expired"], true);
    }

    async fn refresh_tokens_rotate_and_a_reused_one_ends_the_session() {
        let s = TestServer::start().await;
        s.signup("ana@example.com").await;
        let login = |refresh: bool| {
            s.post("/api/v1/auth/login")
                .json(&json!({"email": "ana@example.com", "password": PASSWORD, "refresh": refresh}))
                .send()
        };
        let plain = body(login(false).await.unwrap()).await;
        assert!(plain.get("refresh_token").is_none());
        let first = body(login(true).await.unwrap()).await;
        let r1 = first["refresh_token"].as_str().unwrap().to_owned();
        assert!(r1.starts_with("brrt_"));
        let t1 = first["token"].as_str().unwrap().to_owned();
        let sessions = body(s.get("/api/v1/account/sessions").bearer_auth(&t1).send().await.unwrap()).await;
        let mine = sessions["sessions"].as_array().unwrap().iter().find(|x| x["current"] == true).unwrap().clone();
        assert_eq!(mine["refreshable"], true);
        let refresh = |token: String| {
            s.post("/api/v1/auth/refresh").json(&json!({"refresh_token": token})).send()
        };
        let account = |token: String| s.get("/api/v1/account").bearer_auth(token).send();

        // Each use gives a new pair; the session is the same one.
        let second = body(refresh(r1.clone()).await.unwrap()).await;
        let (t2, r2) = (
            second["token"].as_str().unwrap().to_owned(),
            second["refresh_token"].as_str().unwrap().to_owned(),
        );
        assert_ne!(r1, r2);
        assert_eq!(account(t2.clone()).await.unwrap().status(), StatusCode::OK);
        let third = body(refresh(r2.clone()).await.unwrap()).await;
        let r3 = third["refresh_token"].as_str().unwrap().to_owned();

        // An old one again: the whole session ends, whoever holds the newest.
        let reused = expect_error(refresh(r1.clone()).await.unwrap(), StatusCode::UNAUTHORIZED).await;
        assert!(reused["message"].as_str().unwrap().contains("already used"));
        expect_error(refresh(r3).await.unwrap(), StatusCode::UNAUTHORIZED).await;
        expect_error(account(t2).await.unwrap(), StatusCode::UNAUTHORIZED).await;
        let t_plain = plain["token"].as_str().unwrap().to_owned();
        let events = body(s.get("/api/v1/account/events").bearer_auth(&t_plain).send().await.unwrap()).await;
        assert!(events.to_string().contains("refresh_token_reused"));

        // Ended by its owner from another session, and by a password change.
        let fourth = body(login(true).await.unwrap()).await;
        let r4 = fourth["refresh_token"].as_str().unwrap().to_owned();
        let sessions = body(s.get("/api/v1/account/sessions").bearer_auth(fourth["token"].as_str().unwrap()).send().await.unwrap()).await;
        let id = sessions["sessions"].as_array().unwrap().iter().find(|x| x["current"] == true).unwrap()["id"].as_str().unwrap().to_owned();
        let ended = s
            .request(reqwest::Method::DELETE, &format!("/api/v1/account/sessions/{id}"))
            .bearer_auth(&t_plain)
            .send()
            .await
            .unwrap();
        assert_eq!(ended.status(), StatusCode::NO_CONTENT);
        expect_error(refresh(r4).await.unwrap(), StatusCode::UNAUTHORIZED).await;
        let fifth = body(login(true).await.unwrap()).await;
        let r5 = fifth["refresh_token"].as_str().unwrap().to_owned();
        let changed = s
            .post("/api/v1/account/password")
            .bearer_auth(&t_plain)
            .json(&json!({"current_password": PASSWORD, "new_password": "a new long password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
        expect_error(refresh(r5).await.unwrap(), StatusCode::UNAUTHORIZED).await;

        // Nonsense is refused with the envelope.
        expect_error(refresh("brrt_nonsense".into()).await.unwrap(), StatusCode::UNAUTHORIZED).await;
        let res = s.post("/api/v1/auth/refresh").json(&json!({})).send().await.unwrap();
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
}
