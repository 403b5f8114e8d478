//! The usage logs (`/api/v1/logs/*`): after real calls of every kind, each view's numbers match
//! the calls made; the export round-trips in both formats; a deleted record's history stays.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;
use crate::upstream::Upstream;

async fn get(s: &TestServer, token: &str, path: &str) -> Value {
    let res = s.get(path).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    body(res).await
}

/// The summary's row for a record.
fn row<'a>(summary: &'a Value, uuid: &str) -> &'a Value {
    summary["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uuid"] == uuid)
        .unwrap_or_else(|| panic!("{uuid} in {summary}"))
}

fn counts(row: &Value) -> (i64, i64) {
    (
        row["requests"].as_i64().unwrap(),
        row["errors_total"].as_i64().unwrap(),
    )
}

each_backend! {
async fn every_view_counts_the_calls_that_were_made() {
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let http = reqwest::Client::new();

    // A private credential: three reads with its key, two with a wrong one.
    let credential = s.create(&token, json!({"name": "Stripe", "access": "private", "data": "sk_logs_canary"})).await;
    let cred = uuid_of(&credential);
    for _ in 0..3 {
        assert_eq!(s.read(&cred, Some(&key_of(&credential))).await.status(), StatusCode::OK);
    }
    for _ in 0..2 {
        assert_eq!(s.read(&cred, Some("wrong")).await.status(), StatusCode::UNAUTHORIZED);
    }
    // A public credential limited to 2 reads a minute, read 3 times.
    let limited = uuid_of(&s.create(&token, json!({"name": "Limited", "access": "public", "data": "v",
        "rate_limit": {"per_ip": "2/min"}})).await);
    for expected in [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        assert_eq!(s.read(&limited, None).await.status(), expected);
    }
    // Bridges: two good calls, one upstream 500, one upstream that is too slow.
    let bridge = |name: &str, url: String, extra: Value| {
        let mut spec = json!({"name": name, "type": "bridge", "access": "public", "bridge": {"url": url}});
        spec["bridge"].as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (s, token) = (&s, &token);
        async move { uuid_of(&s.create(token, spec).await) }
    };
    let good = bridge("Weather", up.url("/v1"), json!({})).await;
    let failing = bridge("Failing", up.url("/fail"), json!({})).await;
    let slow = bridge("Slow", up.url("/slow?ms=3000"), json!({"timeout_ms": 200})).await;
    for _ in 0..2 {
        let res = s.get(&format!("/r/{good}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.bytes().await.unwrap();
    }
    assert_eq!(s.get(&format!("/r/{failing}")).send().await.unwrap().status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(s.get(&format!("/r/{slow}")).send().await.unwrap().status(), StatusCode::GATEWAY_TIMEOUT);
    // A secure page: opened once, one wrong password, one reveal.
    let page = uuid_of(&s.create(&token, json!({"name": "For Bo", "access": "private", "api_key": false,
        "data": "v", "secure_page": {"enabled": true, "password": "a page password"}})).await);
    let link = s.url(&format!("/secure/{page}"));
    let form = LoadedForm::load(s.get(&format!("/secure/{page}"))).await;
    let wrong = form.post(&http, &link, &[("password", "not it")]).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let shown = form.post(&http, &link, &[("password", "a page password")]).send().await.unwrap();
    assert_eq!(shown.status(), StatusCode::OK);

    // The summary: every request, each error in its class. A bridge call's size is recorded
    // when its body has been relayed, just after the caller has it.
    let mut summary = Value::Null;
    for _ in 0..200 {
        summary = get(&s, &token, "/api/v1/logs/summary").await;
        if row(&summary, &good)["bytes"].as_i64().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(counts(row(&summary, &cred)), (5, 2));
    assert_eq!(row(&summary, &cred)["errors"]["denied"], 2);
    assert_eq!(row(&summary, &cred)["name"], "Stripe");
    assert_eq!(counts(row(&summary, &limited)), (3, 1));
    assert_eq!(row(&summary, &limited)["errors"]["limited"], 1);
    let good_row = row(&summary, &good);
    assert_eq!(counts(good_row), (2, 0));
    assert!(good_row["bytes"].as_i64().unwrap() > 0, "{good_row}");
    assert!(good_row["p50_ms"].as_u64().is_some() && good_row["p95_ms"].as_u64().is_some(), "{good_row}");
    assert_eq!(counts(row(&summary, &failing)), (1, 1));
    assert_eq!(row(&summary, &failing)["errors"]["upstream_5xx"], 1);
    assert_eq!(counts(row(&summary, &slow)), (1, 1));
    assert_eq!(row(&summary, &slow)["errors"]["upstream_5xx"], 1);
    assert_eq!(counts(row(&summary, &page)), (3, 1));
    assert_eq!(summary["requests"], 15);
    assert_eq!(summary["errors_total"], 6);
    assert_eq!(summary["resolution"], "minute");
    // Sorted by requests, most first, unless asked otherwise.
    let names: Vec<_> = summary["records"].as_array().unwrap().iter().map(|r| r["requests"].as_i64().unwrap()).collect();
    assert!(names.windows(2).all(|w| w[0] >= w[1]), "{names:?}");
    let by_name = get(&s, &token, "/api/v1/logs/summary?sort=name").await;
    assert_eq!(by_name["records"][0]["name"], "Failing");

    // The series: the same requests, in total and per record.
    let series = get(&s, &token, "/api/v1/logs/series").await;
    assert_eq!(series["bucket"], "hour");
    let sum = |points: &Value, field: &str| points.as_array().unwrap().iter().map(|p| p[field].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum(&series["total"], "requests"), 15);
    assert_eq!(sum(&series["total"], "errors"), 6);
    let one = series["records"].as_array().unwrap().iter().find(|r| r["uuid"] == cred.as_str()).unwrap();
    assert_eq!((sum(&one["points"], "requests"), sum(&one["points"], "errors")), (5, 2));
    let minutes = get(&s, &token, &format!("/api/v1/logs/series?bucket=minute&record={cred}")).await;
    let points = minutes["total"].as_array().unwrap().len();
    assert!((24 * 60..=24 * 60 + 1).contains(&points), "{points}");
    assert_eq!(sum(&minutes["total"], "requests"), 5);

    // The event log: across records, filtered, paged, with what each caller received.
    let log = get(&s, &token, "/api/v1/logs/events?limit=500").await;
    let events = log["events"].as_array().unwrap();
    let access: Vec<_> = events.iter().filter(|e| e["channel"] != "owner").collect();
    assert!(access.len() >= 12, "{log}");
    assert!(log.get("next_before").is_none());
    let denied = get(&s, &token, &format!("/api/v1/logs/events?record={cred}&outcome=denied")).await;
    let denied = denied["events"].as_array().unwrap();
    assert_eq!(denied.len(), 2);
    assert_eq!((denied[0]["status"].clone(), denied[0]["error"].clone()), (json!(401), json!("Authentication required")));
    assert_eq!(denied[0]["record_name"], "Stripe");
    let failed = get(&s, &token, &format!("/api/v1/logs/events?record={failing}&channel=bridge")).await;
    assert_eq!(failed["events"][0]["status"], 500);
    let timed_out = get(&s, &token, &format!("/api/v1/logs/events?record={slow}&channel=bridge")).await;
    assert_eq!((timed_out["events"][0]["outcome"].clone(), timed_out["events"][0]["status"].clone()), (json!("timeout"), json!(504)));
    let mut seen = Vec::new();
    let mut next = String::new();
    loop {
        let page = get(&s, &token, &format!("/api/v1/logs/events?limit=4{next}")).await;
        seen.extend(page["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()));
        match page["next_before"].as_i64() {
            Some(before) => next = format!("&before={before}"),
            None => break,
        }
    }
    let all: Vec<_> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, all, "pages cover the log once, newest first");

    // The export: every event, in both formats, with the same content as the log.
    let res = s.get("/api/v1/logs/export?format=jsonl").bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = res.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(&lines, events);
    let res = s.get("/api/v1/logs/export?format=csv").bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let text = res.text().await.unwrap();
    let mut csv = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<HashMap<String, String>> = csv.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), events.len());
    for (row, event) in rows.iter().zip(events) {
        assert_eq!(row["id"], event["id"].to_string());
        assert_eq!(row["outcome"], event["outcome"].as_str().unwrap());
        assert_eq!(row["record"], event["record"].as_str().unwrap());
        let detail = event.get("detail").filter(|d| !d.is_null()).map(Value::to_string).unwrap_or_default();
        assert_eq!(row["detail"], detail);
    }
    assert!(!text.contains("sk_logs_canary"));

    // Another account sees none of it.
    let bob = s.signup("bob@example.com").await;
    let theirs = get(&s, &bob, "/api/v1/logs/summary").await;
    assert_eq!(theirs["records"], json!([]));
    let res = s.get(&format!("/api/v1/logs/events?record={cred}")).bearer_auth(&bob).send().await.unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;

    // Deleting a record keeps its history, shown as deleted.
    let res = s.request(reqwest::Method::DELETE, &format!("/api/v1/records/{cred}")).bearer_auth(&token).send().await.unwrap();
    assert!(res.status().is_success());
    let kept = get(&s, &token, &format!("/api/v1/records/{cred}/events")).await;
    assert_eq!(kept["events"].as_array().unwrap().len(), 5);
    let summary = get(&s, &token, "/api/v1/logs/summary").await;
    assert_eq!(row(&summary, &cred)["deleted"], true);
    assert_eq!(row(&summary, &cred)["name"], "Stripe");
    let log = get(&s, &token, &format!("/api/v1/logs/events?record={cred}")).await;
    assert_eq!(log["events"][0]["record_deleted"], true);
}
}

#[tokio::test]
async fn bad_log_queries_get_the_error_envelope() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    for path in [
        "/api/v1/logs/summary?from=2026-11-30T10:00:00Z&to=2026-11-30T09:00:00Z",
        "/api/v1/logs/summary?from=yesterday",
        "/api/v1/logs/summary?sort=colour",
        "/api/v1/logs/summary?order=sideways",
        "/api/v1/logs/series?bucket=week",
        "/api/v1/logs/series?bucket=minute&from=2025-01-01T00:00:00Z&to=2025-01-05T00:00:00Z",
        "/api/v1/logs/series?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "/api/v1/logs/events?limit=ten",
        "/api/v1/logs/export?format=xml",
        // A misspelt filter is refused, not ignored (it would widen the answer).
        "/api/v1/logs/events?outcom=denied",
        "/api/v1/logs/summary?sort=name&extra=1",
        "/api/v1/logs/series?bukket=hour",
        "/api/v1/logs/export?format=csv&recrd=x",
    ] {
        let res = s.get(path).bearer_auth(&token).send().await.unwrap();
        expect_error(res, StatusCode::BAD_REQUEST).await;
    }
    let res = s
        .get(&format!(
            "/api/v1/logs/series?record={}",
            uuid::Uuid::new_v4()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND).await;
    for path in ["/api/v1/logs/summary", "/api/v1/logs/export"] {
        expect_error(s.get(path).send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn audit_log_file_gets_every_event_as_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let target = file.to_str().unwrap().to_owned();
    let s = TestServer::start_with(|c| c.audit_log_file = Some(target)).await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "Shipped", "access": "private", "data": "sk_shipped_canary"}),
        )
        .await;
    let uuid = uuid_of(&created);
    assert_eq!(
        s.read(&uuid, Some(&key_of(&created))).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        s.read(&uuid, Some("wrong")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The file is written by a thread of its own, just after the events are stored.
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..200 {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.iter().filter(|l| l["channel"] == "read").count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let reads: Vec<_> = lines.iter().filter(|l| l["channel"] == "read").collect();
    assert_eq!(reads.len(), 2, "{lines:?}");
    assert_eq!(
        (reads[0]["outcome"].clone(), reads[1]["outcome"].clone()),
        (json!("ok"), json!("denied"))
    );
    assert_eq!(reads[0]["record"], uuid.as_str());
    // The same ids as the API's.
    let listed = body(
        s.get(&format!("/api/v1/records/{uuid}/events"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ids: Vec<_> = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert!(ids.contains(&reads[0]["id"]) && ids.contains(&reads[1]["id"]));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !std::fs::read_to_string(&file)
            .unwrap()
            .contains("sk_shipped_canary")
    );
}
