//! Handoffs (issue 17): one value, two records — a secure page for the person and a private
//! record with its own X-API-Key for their code — ended together at the end date or at once,
//! leaving the owner a to-do until they tick it.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::common::*;

const VALUE: &str = "sk_live_handoff_canary_7Qz";

fn in_(d: Duration) -> String {
    (OffsetDateTime::now_utc() + d).format(&Rfc3339).unwrap()
}

async fn start(s: &TestServer, token: &str, name: &str, ends_at: &str) -> Value {
    let res = s
        .post("/api/v1/handoffs")
        .bearer_auth(token)
        .json(&json!({"name": name, "data": VALUE, "ends_at": ends_at}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    body(res).await
}

async fn call(s: &TestServer, token: &str, method: reqwest::Method, path: &str) -> Response {
    s.request(method, path)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn show(s: &TestServer, token: &str, id: &str) -> Value {
    let res = call(
        s,
        token,
        reqwest::Method::GET,
        &format!("/api/v1/handoffs/{id}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    body(res).await
}

/// A person opens the secure page and submits the password, as a browser would.
async fn unlock(s: &TestServer, uuid: &str, password: &str) -> Response {
    let url = s.url(&format!("/secure/{uuid}"));
    let form = LoadedForm::load(s.http.get(&url)).await;
    form.post(&s.http, &url, &[("password", password)])
        .send()
        .await
        .unwrap()
}

/// The owner's events of a record with this outcome.
async fn owner_events(s: &TestServer, token: &str, uuid: &str, outcome: &str) -> Vec<Value> {
    let res = call(
        s,
        token,
        reqwest::Method::GET,
        &format!("/api/v1/records/{uuid}/events"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    body(res).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["channel"] == "owner" && e["outcome"] == outcome)
        .cloned()
        .collect()
}

fn uuids(h: &Value) -> (String, String) {
    (
        h["page_record"]["uuid"].as_str().unwrap().to_owned(),
        h["code_record"]["uuid"].as_str().unwrap().to_owned(),
    )
}

each_backend! {
async fn a_handoff_makes_a_page_for_the_person_and_a_key_for_their_code() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = start(&s, &token, "Ana (contractor)", &in_(Duration::days(14))).await;
    let h = &created["handoff"];
    let (page, code) = uuids(h);
    assert_ne!(page, code);
    assert_eq!(h["state"], "active");
    assert!(h["todo"].is_null());
    assert_eq!(h["page_record"]["path"], format!("/secure/{page}"));
    assert_eq!(h["code_record"]["path"], format!("/r/{code}"));
    assert_eq!(h["page_record"]["name"], "Ana (contractor) · secure page");
    assert_eq!(h["code_record"]["name"], "Ana (contractor) · code");
    let password = created["page_password"].as_str().unwrap();
    let key = created["api_key"].as_str().unwrap();
    assert!(password.len() >= 20, "a generated password: {password}");

    // The person's page opens with the generated password; the code reads with its key.
    let res = unlock(&s, &page, password).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains(VALUE));
    let res = s.read(&code, Some(key)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await["data"], VALUE);
    // Each opens only its own way: the page's record has no key, the code's no page.
    assert_eq!(s.read(&page, Some(key)).await.status(), StatusCode::UNAUTHORIZED);
    assert_ne!(unlock(&s, &code, password).await.status(), StatusCode::OK);

    // Both are ordinary private records that expire at the end date.
    for uuid in [&page, &code] {
        let res = call(&s, &token, reqwest::Method::GET, &format!("/api/v1/records/{uuid}")).await;
        let record = body(res).await;
        assert_eq!(record["access"], "private");
        assert_eq!(record["expires_at"], h["ends_at"]);
    }
    let page_record = body(call(&s, &token, reqwest::Method::GET, &format!("/api/v1/records/{page}")).await).await;
    assert_eq!(page_record["has_api_key"], false);
    assert!(page_record["secure_page"].is_object());

    // Listed, with the last use of each.
    let res = call(&s, &token, reqwest::Method::GET, "/api/v1/handoffs").await;
    let list = body(res).await;
    assert_eq!(list["handoffs"].as_array().unwrap().len(), 1);
    let listed = &list["handoffs"][0];
    assert!(listed["page_record"]["last_used_at"].is_string(), "{listed}");
    assert!(listed["code_record"]["last_used_at"].is_string(), "{listed}");
    // Neither the password nor the key is ever shown again, nor the value.
    let text = listed.to_string();
    assert!(!text.contains(password) && !text.contains(key) && !text.contains(VALUE));
}

async fn its_end_date_stops_both_records_and_raises_the_to_do_once_across_nodes() {
    let s = TestServer::start().await;
    let other = s.second_node().await;
    let token = s.signup("ana@example.com").await;
    let ends = OffsetDateTime::now_utc() + Duration::seconds(2);
    let created = start(&s, &token, "Ana (contractor)", &ends.format(&Rfc3339).unwrap()).await;
    let id = created["handoff"]["id"].as_str().unwrap().to_owned();
    let (page, code) = uuids(&created["handoff"]);
    let key = created["api_key"].as_str().unwrap();
    let password = created["page_password"].as_str().unwrap();

    // Wait for the end date to pass (no timing is asserted, only what follows it).
    while OffsetDateTime::now_utc() <= ends + Duration::milliseconds(50) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The gate refuses both at once, before any end task has run (the end is their expiry).
    let unknown = uuid::Uuid::new_v4().to_string();
    let refused = s.read(&code, Some(key)).await;
    assert_eq!(refused.status(), s.read(&unknown, Some(key)).await.status());
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_ne!(unlock(&s, &page, password).await.status(), StatusCode::OK);

    // Both nodes run their end task at once: one wins, each record is disabled once.
    let (a, b) = tokio::join!(s.handoffs.end_due(), other.handoffs.end_due());
    assert!(a.unwrap() + b.unwrap() <= 1, "ended at most once");
    // (Each node's periodic task may have won already; either way it is ended now.)
    let h = show(&s, &token, &id).await;
    assert_eq!(h["state"], "ended", "{h}");
    assert_eq!(h["ended_by"], "schedule");
    assert_eq!(h["page_record"]["status"], "disabled");
    assert_eq!(h["code_record"]["status"], "disabled");
    assert_eq!(h["todo"]["task"], "Rotate the upstream key at the provider");
    assert!(h["todo"]["done_at"].is_null());
    for uuid in [&page, &code] {
        let disabled = owner_events(&s, &token, uuid, "disabled").await;
        assert_eq!(disabled.len(), 1, "{disabled:?}");
        assert_eq!(disabled[0]["detail"]["ended_by"], "schedule");
        assert_eq!(disabled[0]["detail"]["handoff"], id.as_str());
    }
    // Running it again changes nothing.
    assert_eq!(s.handoffs.end_due().await.unwrap(), 0);
    assert_eq!(owner_events(&s, &token, &code, "disabled").await.len(), 1);

    // Ticking the to-do.
    let res = call(&s, &token, reqwest::Method::POST, &format!("/api/v1/handoffs/{id}/done")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let done = body(res).await;
    assert!(done["todo"]["done_at"].is_string(), "{done}");
    let again = body(call(&s, &token, reqwest::Method::POST, &format!("/api/v1/handoffs/{id}/done")).await).await;
    assert_eq!(again["todo"]["done_at"], done["todo"]["done_at"]);
}

async fn end_now_stops_both_at_once_and_the_to_do_shows_their_last_use() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = start(&s, &token, "Studio Pixel", &in_(Duration::days(30))).await;
    let id = created["handoff"]["id"].as_str().unwrap().to_owned();
    let (page, code) = uuids(&created["handoff"]);
    let key = created["api_key"].as_str().unwrap();
    let password = created["page_password"].as_str().unwrap();
    assert_eq!(s.read(&code, Some(key)).await.status(), StatusCode::OK);
    assert_eq!(unlock(&s, &page, password).await.status(), StatusCode::OK);

    // No to-do to tick while it runs.
    let res = call(&s, &token, reqwest::Method::POST, &format!("/api/v1/handoffs/{id}/done")).await;
    expect_error(res, StatusCode::CONFLICT).await;

    let res = call(&s, &token, reqwest::Method::POST, &format!("/api/v1/handoffs/{id}/end")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = body(res).await;
    assert_eq!(h["state"], "ended");
    assert_eq!(h["ended_by"], "owner");
    assert!(h["todo"]["done_at"].is_null());
    assert!(h["page_record"]["last_used_at"].is_string(), "{h}");
    assert!(h["code_record"]["last_used_at"].is_string(), "{h}");
    // From the moment it returns, both answer as if they never existed.
    let unknown = uuid::Uuid::new_v4().to_string();
    let refused = s.read(&code, Some(key)).await;
    let never = s.read(&unknown, Some(key)).await;
    assert_eq!(refused.status(), never.status());
    assert_eq!(refused.text().await.unwrap(), never.text().await.unwrap());
    assert_eq!(
        unlock(&s, &page, password).await.status(),
        unlock(&s, &unknown, password).await.status()
    );
    let disabled = owner_events(&s, &token, &page, "disabled").await;
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0]["detail"]["ended_by"], "owner");

    // Ending it again, or the end task, changes nothing.
    let again = call(&s, &token, reqwest::Method::POST, &format!("/api/v1/handoffs/{id}/end")).await;
    assert_eq!(body(again).await["ended_at"], h["ended_at"]);
    assert_eq!(s.handoffs.end_due().await.unwrap(), 0);
    assert_eq!(owner_events(&s, &token, &code, "disabled").await.len(), 1);

    let res = call(&s, &token, reqwest::Method::POST, &format!("/api/v1/handoffs/{id}/done")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let list = body(call(&s, &token, reqwest::Method::GET, "/api/v1/handoffs").await).await;
    assert!(list["handoffs"][0]["todo"]["done_at"].is_string());
}

async fn other_accounts_cannot_see_or_end_a_handoff_and_bad_input_changes_nothing() {
    let s = TestServer::start().await;
    let ana = s.signup("ana@example.com").await;
    let bob = s.signup("bob@example.com").await;
    let created = start(&s, &ana, "Ana (contractor)", &in_(Duration::days(7))).await;
    let id = created["handoff"]["id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap();
    let (_, code) = uuids(&created["handoff"]);

    let list = body(call(&s, &bob, reqwest::Method::GET, "/api/v1/handoffs").await).await;
    assert_eq!(list["handoffs"], json!([]));
    let missing = uuid::Uuid::new_v4();
    for path in [
        format!("/api/v1/handoffs/{id}"),
        format!("/api/v1/handoffs/{missing}"),
        "/api/v1/handoffs/not-a-uuid".to_owned(),
    ] {
        let res = call(&s, &bob, reqwest::Method::GET, &path).await;
        let e = expect_error(res, StatusCode::NOT_FOUND).await;
        assert_eq!(e["message"], "No handoff of yours has this id.");
    }
    for action in ["end", "done"] {
        let res = call(&s, &bob, reqwest::Method::POST, &format!("/api/v1/handoffs/{id}/{action}")).await;
        expect_error(res, StatusCode::NOT_FOUND).await;
    }
    // Bob's attempts changed nothing.
    assert_eq!(show(&s, &ana, &id).await["state"], "active");
    assert_eq!(s.read(&code, Some(key)).await.status(), StatusCode::OK);
    let res = s.get("/api/v1/handoffs").send().await.unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED).await;

    // Bad input: the envelope, and no record made.
    let before = body(call(&s, &bob, reqwest::Method::GET, "/api/v1/records").await).await;
    for bad in [
        json!({"name": "Ana", "data": VALUE, "ends_at": in_(-Duration::hours(1))}),
        json!({"name": "Ana", "data": VALUE, "ends_at": in_(Duration::days(500))}),
        json!({"name": "  ", "data": VALUE, "ends_at": in_(Duration::days(1))}),
        json!({"name": "Ana", "data": "", "ends_at": in_(Duration::days(1))}),
        json!({"name": "Ana", "data": VALUE}),
        json!({"name": "Ana", "data": VALUE, "ends_at": in_(Duration::days(1)), "extra": 1}),
    ] {
        let res = s.post("/api/v1/handoffs").bearer_auth(&bob).json(&bad).send().await.unwrap();
        let e = expect_error(res, StatusCode::BAD_REQUEST).await;
        assert!(!e.to_string().contains(VALUE), "{e}");
    }
    let after = body(call(&s, &bob, reqwest::Method::GET, "/api/v1/records").await).await;
    assert_eq!(before, after);
    let list = body(call(&s, &bob, reqwest::Method::GET, "/api/v1/handoffs").await).await;
    assert_eq!(list["handoffs"], json!([]));
}
}

/// The wizard in a real Chromium, as an owner uses it: by labels and button names.
mod wizard {
    use super::*;
    use crate::dashboard::check_page;
    use crate::web::{Driver, Web, chromedriver_path};

    async fn text_of(web: &Web, id: &str) -> String {
        web.client
            .find(fantoccini::Locator::Id(id))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    each_backend! {
    async fn a_handoff_is_started_in_the_wizard_ended_and_its_to_do_ticked() {
        let Some(chromedriver) = chromedriver_path() else { return };
        let s = TestServer::start().await;
        let driver = Driver::start(&chromedriver);
        let web = driver.browser(&s.base).await;
        web.goto("/signup").await;
        web.fill("Email", "ana@example.com").await;
        web.fill("Password", PASSWORD).await;
        web.press("Create account").await;

        web.follow("Handoffs").await;
        assert!(web.main_text().await.contains("No handoffs yet"));
        check_page(&web, "handoffs-empty").await;
        web.follow("New handoff").await;
        check_page(&web, "handoff-new").await;
        // A value forgotten: the form says so beside it, and nothing is made.
        web.fill("For whom", "Ana (contractor)").await;
        web.press("Start handoff").await;
        assert!(web.main_text().await.contains("Enter the value to hand over."));
        web.fill("Value to hand over", VALUE).await;
        web.choose("Ends in", "14 days").await;
        web.press("Start handoff").await;

        // The code's key, in the key window: copied and downloaded.
        let text = web.wait_for_text("only time it is shown").await;
        assert!(!text.contains(VALUE));
        let key = text_of(&web, "new-key").await;
        assert!(key.starts_with("brk_"), "{key}");
        check_page(&web, "handoff-key-modal").await;
        web.click("Copy").await;
        assert_eq!(web.clipboard().await, key);
        web.click("Download .txt").await;
        let (file, content) = web.downloaded().await;
        assert_eq!(file, "ana-contractor-code-api-key.txt");
        assert!(content.contains(&key) && content.contains("/r/"), "{content}");
        web.click("Done").await;

        // The link and the password, in separate boxes, with the advice to send them apart.
        let page = web.main_text().await;
        assert!(page.contains("Send the link and the password over different channels"), "{page}");
        let link = text_of(&web, "page-link").await;
        let password = text_of(&web, "page-password").await;
        assert!(link.starts_with(&format!("{}/secure/", s.base)), "{link}");
        assert!(!password.is_empty() && !link.contains(&password));
        web.click("Copy the password").await;
        assert_eq!(web.clipboard().await, password);
        web.click("Copy the link").await;
        assert_eq!(web.clipboard().await, link);
        check_page(&web, "handoff-created").await;
        let path = web.path().await;
        assert!(path.starts_with("/handoffs/"), "the address bar shows the handoff: {path}");

        // They work: the person's page with the password, the code with its key.
        let page_uuid = link.rsplit('/').next().unwrap().to_owned();
        assert_eq!(unlock(&s, &page_uuid, &password).await.status(), StatusCode::OK);
        let code_uuid = content
            .lines()
            .find_map(|l| l.strip_prefix("Record uuid: "))
            .unwrap()
            .to_owned();
        assert_eq!(s.read(&code_uuid, Some(&key)).await.status(), StatusCode::OK);

        // End now, after a question.
        web.goto(&path).await;
        web.click("End now").await; // asks first, in a dialog
        web.click("End now").await; // the dialog's button
        let ended = web.wait_for_text("To do: rotate the upstream key at the provider").await;
        assert!(ended.contains("Ended early, by you"), "{ended}");
        assert_eq!(s.read(&code_uuid, Some(&key)).await.status(), StatusCode::NOT_FOUND);
        check_page(&web, "handoff-ended").await;
        // Each record's timeline says why it was disabled.
        web.goto(&format!("/records/{code_uuid}")).await;
        let timeline = web.main_text().await;
        assert!(timeline.contains("You ended its handoff: disabled"), "{timeline}");

        // The Secrets page shows the to-do with both secrets' last use, until it is ticked.
        web.goto("/").await;
        let home = web.main_text().await;
        assert!(home.contains("Rotate the upstream key at the provider"), "{home}");
        assert!(home.contains("Last used: secure page"), "{home}");
        assert!(!home.contains("secure page never") && !home.contains("code never"), "{home}");
        check_page(&web, "secrets-with-to-do").await;
        web.press("Done: rotated the key handed to Ana (contractor)").await;
        assert_eq!(web.path().await, "/");
        assert!(!web.main_text().await.contains("Rotate the upstream key"));
        web.follow("Handoffs").await;
        let list = web.main_text().await;
        assert!(list.contains("Ana (contractor)") && list.contains("Ended"), "{list}");
        web.close().await;
    }
    }
}
