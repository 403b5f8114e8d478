//! Rate limits, quotas and the other abuse bounds, over HTTP: bursts, client addresses behind
//! trusted and untrusted proxies, budgets shared through Redis by two real `brine serve`
//! processes, Redis going down, concurrent quota takers, sign-in limits, slow clients.

use std::time::Duration;

use brine_limits::testing::{RedisForTests, redis_for_tests};
use futures::StreamExt;
use futures::future::join_all;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::upstream::Upstream;

fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn events(s: &TestServer, token: &str, uuid: &str) -> Vec<Value> {
    let res = s
        .get(&format!("/api/v1/records/{uuid}/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    body(res).await["events"].as_array().unwrap().clone()
}

/// Waits until the audit log holds an event with `outcome` (the writer commits in groups).
async fn audited(s: &TestServer, token: &str, uuid: &str, outcome: &str) -> Value {
    for _ in 0..100 {
        if let Some(e) = events(s, token, uuid)
            .await
            .into_iter()
            .find(|e| e["outcome"] == outcome)
        {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {outcome} event for {uuid}");
}

async fn status_counts(responses: Vec<Response>) -> (usize, usize, Vec<Response>) {
    let mut ok = 0;
    let mut limited = Vec::new();
    for res in responses {
        match res.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => limited.push(res),
            other => panic!("unexpected {other}: {}", res.text().await.unwrap()),
        }
    }
    (ok, limited.len(), limited)
}

each_backend! {
async fn a_burst_over_per_ip_gets_exactly_the_limit_then_429_with_retry_after() {
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let credential = uuid_of(&s.create(&token, json!({
        "name": "K", "access": "public", "data": "v",
        "rate_limit": {"per_ip": "3/min"},
    })).await);
    for left in ["2", "1", "0"] {
        let res = s.read(&credential, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "ratelimit-limit"), "3");
        assert_eq!(header(&res, "ratelimit-remaining"), left);
        assert_eq!(header(&res, "ratelimit-policy"), "3;w=60");
    }
    for _ in 0..2 {
        let res = s.read(&credential, None).await;
        // One request per 20 s refills a 3/min budget: that, less the time the calls took.
        let retry: u64 = header(&res, "retry-after").parse().unwrap();
        assert!((18..=20).contains(&retry), "Retry-After {retry}");
        assert_eq!(header(&res, "ratelimit-remaining"), "0");
        let err = expect_error(res, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(err["error"], "Rate limited");
    }
    let event = audited(&s, &token, &credential, "rate_limited").await;
    assert_eq!(event["channel"], "read");
    // A batch item spends the same budget as the same call to /r.
    let res = s
        .post("/batch")
        .json(&json!({"requests": [{"uuid": credential}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["results"][0]["status"], 429);

    // A bridge: the refused calls never reach the upstream.
    let bridge = uuid_of(&s.create(&token, json!({
        "name": "B", "type": "bridge", "access": "public",
        "bridge": {"url": up.url("/weather")},
        "rate_limit": {"per_ip": "2/hour"},
    })).await);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(s.get(&format!("/r/{bridge}")).send().await.unwrap().status());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 2, "{statuses:?}");
    assert_eq!(up.seen().len(), 2);
    let res = s.get(&format!("/r/{bridge}")).send().await.unwrap();
    let retry: u64 = header(&res, "retry-after").parse().unwrap();
    assert!((1790..=1800).contains(&retry), "Retry-After {retry}");
    audited(&s, &token, &bridge, "rate_limited").await;

    // The owner sees the limits and may lift them; the change applies at once.
    let res = s.get(&format!("/api/v1/records/{credential}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(body(res).await["rate_limit"], json!({"per_ip": "3/min"}));
    let res = s
        .request(reqwest::Method::PATCH, &format!("/api/v1/records/{credential}"))
        .bearer_auth(&token)
        .json(&json!({"rate_limit": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(body(res).await["record"].get("rate_limit").is_none());
    let res = s.read(&credential, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("ratelimit-limit").is_none());
}

async fn a_quota_holds_exactly_under_50_concurrent_requests() {
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let bridge = uuid_of(&s.create(&token, json!({
        "name": "Q", "type": "bridge", "access": "public",
        "bridge": {"url": up.url("/weather")},
        "quota": {"requests": 20, "per": "month"},
    })).await);
    let responses = join_all((0..50).map(|_| s.get(&format!("/r/{bridge}")).send())).await;
    let (ok, limited, refused) =
        status_counts(responses.into_iter().map(Result::unwrap).collect()).await;
    assert_eq!((ok, limited), (20, 30));
    assert_eq!(up.seen().len(), 20, "refused calls never reach the upstream");
    let retry: u64 = header(&refused[0], "retry-after").parse().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let (year, month) = match now.month() {
        time::Month::December => (now.year() + 1, time::Month::January),
        month => (now.year(), month.next()),
    };
    let next_month = time::Date::from_calendar_date(year, month, 1).unwrap().midnight().assume_utc();
    let until = (next_month - now).whole_seconds() as u64;
    assert!(retry.abs_diff(until) <= 2, "until the next month ({until} s): {retry}");
    for res in refused {
        let err = expect_error(res, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(err["error"], "Quota exhausted");
    }
    let res = s.get(&format!("/api/v1/records/{bridge}")).bearer_auth(&token).send().await.unwrap();
    let view = body(res).await;
    assert_eq!(view["quota"], json!({"requests": 20, "per": "month"}));
    assert_eq!(view["quota_used"], 20);

    // Raising the quota gives room at once; usage so far is kept.
    let res = s
        .request(reqwest::Method::PATCH, &format!("/api/v1/records/{bridge}"))
        .bearer_auth(&token)
        .json(&json!({"quota": {"requests": 21, "per": "month"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(s.get(&format!("/r/{bridge}")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        s.get(&format!("/r/{bridge}")).send().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn sign_in_is_limited_per_email_and_per_address_alike_for_unknown_emails() {
    let s = TestServer::start_with(|c| {
        c.rate_limits.login_per_email = "3/hour".parse_rate();
        c.rate_limits.login_per_ip = "9/hour".parse_rate();
    })
    .await;
    s.signup("ana@example.com").await; // 1 from this address
    let login = |email: &'static str| {
        s.post("/api/v1/auth/login")
            .json(&json!({"email": email, "password": "wrong password!"}))
            .send()
    };
    let mut answers = Vec::new();
    for email in ["ana@example.com", "nobody@example.com"] {
        for _ in 0..3 {
            assert_eq!(login(email).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        }
        let res = login(email).await.unwrap();
        assert!(res.headers().contains_key("retry-after"));
        answers.push(expect_error(res, StatusCode::TOO_MANY_REQUESTS).await);
    }
    assert_eq!(answers[0], answers[1], "known and unknown emails answer alike");
    assert_eq!(answers[0]["error"], "Too many attempts");
    // 7 attempts from this address so far: two more, then the address is out of budget even
    // for an email with budget left (and even with the right password).
    for _ in 0..2 {
        assert_eq!(login("eve@example.com").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let res = s
        .post("/api/v1/auth/login")
        .json(&json!({"email": "bob@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::TOO_MANY_REQUESTS).await;
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_defaults_apply_to_records_without_their_own_and_the_account_cap_to_all() {
    let s = TestServer::start_with(|c| {
        c.rate_limits.per_ip = Some("2/hour".parse_rate());
        c.rate_limits.account = Some("3/hour".parse_rate());
    })
    .await;
    let token = s.signup("ana@example.com").await;
    let plain = uuid_of(
        &s.create(
            &token,
            json!({"name": "A", "access": "public", "data": "a"}),
        )
        .await,
    );
    let own = uuid_of(
        &s.create(
            &token,
            json!({
                "name": "B", "access": "public", "data": "b", "rate_limit": {"per_ip": "10/hour"},
            }),
        )
        .await,
    );
    for _ in 0..2 {
        assert_eq!(s.read(&plain, None).await.status(), StatusCode::OK);
    }
    let res = s.read(&plain, None).await;
    assert_eq!(
        header(&res, "ratelimit-limit"),
        "2",
        "the server's per_ip default"
    );
    expect_error(res, StatusCode::TOO_MANY_REQUESTS).await;
    // Its own per_ip replaces the default, but the account has one request left in all.
    assert_eq!(s.read(&own, None).await.status(), StatusCode::OK);
    let res = s.read(&own, None).await;
    assert_eq!(header(&res, "ratelimit-limit"), "3", "the account cap");
    expect_error(res, StatusCode::TOO_MANY_REQUESTS).await;
    // Another account has its own cap.
    let bob = s.signup("bob@example.com").await;
    let bobs = uuid_of(
        &s.create(&bob, json!({"name": "C", "access": "public", "data": "c"}))
            .await,
    );
    assert_eq!(s.read(&bobs, None).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_limits_are_refused_with_a_message_that_says_why_and_change_nothing() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    for (limits, says) in [
        (
            json!({"rate_limit": {"per_ip": "60/fortnight"}}),
            "is not a rate",
        ),
        (
            json!({"rate_limit": {"per_ip": "0/min"}}),
            "1 to 1000000 requests",
        ),
        (json!({"rate_limit": {"burst": 5}}), "unknown field `burst`"),
        (
            json!({"rate_limit": {"fail": "maybe"}}),
            "unknown variant `maybe`",
        ),
        (
            json!({"quota": {"requests": 0, "per": "day"}}),
            "at least 1",
        ),
        (
            json!({"quota": {"requests": 5, "per": "year"}}),
            "unknown variant `year`",
        ),
    ] {
        let mut spec = json!({"name": "K", "access": "public", "data": "v"});
        spec.as_object_mut()
            .unwrap()
            .extend(limits.as_object().unwrap().clone());
        let res = s
            .post("/api/v1/records")
            .bearer_auth(&token)
            .json(&spec)
            .send()
            .await
            .unwrap();
        let err = expect_error(res, StatusCode::BAD_REQUEST).await;
        assert!(
            err["message"].as_str().unwrap().contains(says),
            "{limits}: {err}"
        );
    }
    let res = s
        .get("/api/v1/records")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["records"], json!([]), "nothing was created");

    let uuid = two_per_hour_per_address(&s, &token).await;
    let res = s
        .request(reqwest::Method::PATCH, &format!("/api/v1/records/{uuid}"))
        .bearer_auth(&token)
        .json(&json!({"name": "renamed", "quota": {"requests": 5, "per": "week"}}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST).await;
    let res = s
        .get(&format!("/api/v1/records/{uuid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let view = body(res).await;
    assert_eq!(
        (view["name"].as_str(), view.get("quota")),
        (Some("K"), None)
    );
    assert_eq!(view["rate_limit"], json!({"per_ip": "2/hour"}));
}

/// Parses rates in test settings.
trait ParseRate {
    fn parse_rate(self) -> brine_limits::Rate;
}

impl ParseRate for &str {
    fn parse_rate(self) -> brine_limits::Rate {
        brine_limits::Rate::parse(self).unwrap()
    }
}

/// A public credential that each client address may read twice an hour.
async fn two_per_hour_per_address(s: &TestServer, token: &str) -> String {
    let spec = json!({
        "name": "K", "access": "public", "data": "v", "rate_limit": {"per_ip": "2/hour"},
    });
    uuid_of(&s.create(token, spec).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trusted_proxies_give_each_forwarded_client_its_own_budget() {
    let s = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let token = s.signup("ana@example.com").await;
    let uuid = two_per_hour_per_address(&s, &token).await;
    let read_as = |via: (&'static str, &'static str)| {
        s.get(&format!("/r/{uuid}")).header(via.0, via.1).send()
    };
    for client in [
        ("X-Forwarded-For", "198.51.100.1"),
        ("X-Forwarded-For", "198.51.100.2"),
        ("Forwarded", "for=\"[2001:db8::9]:4711\""),
    ] {
        for _ in 0..2 {
            assert_eq!(
                read_as(client).await.unwrap().status(),
                StatusCode::OK,
                "{client:?}"
            );
        }
        let res = read_as(client).await.unwrap();
        expect_error(res, StatusCode::TOO_MANY_REQUESTS).await;
    }
    let events = events(&s, &token, &uuid).await;
    let ips: std::collections::BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["client_ip"].as_str())
        .collect();
    assert!(
        ips.contains("198.51.100.1") && ips.contains("2001:db8::9"),
        "{ips:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_untrusted_client_cannot_pick_its_address_with_a_header() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let uuid = two_per_hour_per_address(&s, &token).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let res = s
            .get(&format!("/r/{uuid}"))
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .header("Forwarded", format!("for=192.0.2.{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(res.status());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 2, "one budget for the one real address: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_in_flight_from_one_address_are_bounded_across_bridges() {
    let s = TestServer::start_with(|c| {
        c.allow_private_upstreams = true;
        c.max_upstream_per_ip = 2;
    })
    .await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let mut bridges = Vec::new();
    for name in ["A", "B"] {
        bridges.push(uuid_of(&s.create(&token, json!({
            "name": name, "type": "bridge", "access": "public", "bridge": {"url": up.url("/sse")},
        })).await));
    }
    // Two streams held open, through two different bridges.
    let mut streams = Vec::new();
    for uuid in &bridges {
        let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let mut stream = res.bytes_stream();
        stream.next().await.unwrap().unwrap();
        streams.push(stream);
    }
    let res = s.get(&format!("/r/{}", bridges[0])).send().await.unwrap();
    assert_eq!(header(&res, "retry-after"), "1");
    let err = expect_error(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(err["error"], "Too many calls in flight");
    up.release_stream();
    up.release_stream();
    for mut stream in streams {
        while let Some(chunk) = stream.next().await {
            chunk.unwrap();
        }
    }
}

/// A raw HTTP/1.1 exchange, for what clients like reqwest will not send: what came back, and
/// whether the server closed the connection.
async fn raw(s: &TestServer, request: &[u8], then_wait: bool) -> (String, bool) {
    let addr = s.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    if !then_wait {
        socket.shutdown().await.unwrap();
    }
    let mut answer = Vec::new();
    // Bounded so that a failure shows up as a failed assertion, not a hung test.
    let closed = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer))
        .await
        .is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_and_oversized_requests_are_cut_off() {
    let s = TestServer::start_with(|c| {
        c.header_read_timeout_ms = 300;
        c.body_read_timeout_ms = 300;
        c.max_headers = 20;
    })
    .await;
    // A head that never ends: the connection is closed without an answer to any request.
    let (answer, closed) = raw(&s, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1", true).await;
    assert!(closed && answer.is_empty(), "{answer}");
    // An idle keep-alive connection is closed too, after its answer.
    let (answer, closed) = raw(&s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", true).await;
    assert!(closed && answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A body that never arrives: 408 with the envelope.
    let (answer, _) = raw(
        &s,
        b"POST /r/6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978 HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"pass",
        true,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"Request timeout""#), "{answer}");
    // Too many header fields: refused before any handler runs.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..40 {
        many.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    let (answer, _) = raw(&s, many.as_bytes(), false).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // The server is unharmed.
    let res = s.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// The Redis URL for these tests, or `None` to skip (CI requires one).
fn redis_url() -> Option<String> {
    match redis_for_tests().unwrap() {
        RedisForTests::Available(url) => Some(url),
        RedisForTests::Skipped => {
            eprintln!("skipped: set BRINE_TEST_REDIS_URL to run the shared rate-limit tests");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_sharing_one_redis_enforce_one_budget() {
    let Some(redis) = redis_url() else { return };
    let data = tempfile::TempDir::new().unwrap();
    let dir = data.path().to_str().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir,
        "--redis-url",
        redis.as_str(),
    ];
    let a = BrineProcess::start(&args, &[]);
    let b = BrineProcess::start(&args, &[]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = http
        .post(format!("{}/api/v1/auth/signup", a.base))
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = body(res).await["token"].as_str().unwrap().to_owned();
    let res = http
        .post(format!("{}/api/v1/records", b.base))
        .bearer_auth(&token)
        .json(&json!({"name": "K", "access": "public", "data": "v", "rate_limit": {"total": "10/hour"}}))
        .send()
        .await
        .unwrap();
    let uuid = uuid_of(&body(res).await);
    let calls = (0..40).map(|i| {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        http.get(format!("{base}/r/{uuid}")).send()
    });
    let responses = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let (ok, limited, _) = status_counts(responses).await;
    assert_eq!((ok, limited), (10, 30), "one budget across both nodes");
    let (log_a, log_b) = (a.stop(), b.stop());
    assert!(!format!("{log_a}{log_b}").contains("UNAVAILABLE"));
}

/// A private `redis-server` on a free loopback port, which a test may stop and start again.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// `None` when `redis-server` is not installed (allowed only outside CI).
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        if !redis.up() {
            assert!(
                std::env::var("BRINE_TEST_REQUIRE_REDIS").is_err(),
                "redis-server is needed for this test"
            );
            eprintln!("skipped: redis-server is not installed");
            return None;
        }
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) -> bool {
        let port = self.port.to_string();
        let Ok(child) = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
        else {
            return false;
        };
        self.child = Some(child);
        // Ready once it accepts connections.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start");
    }

    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.down();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_closes_bridges_and_leaves_credentials_on_local_limits() {
    let Some(mut redis) = OwnRedis::start() else {
        return;
    };
    let url = redis.url();
    let s = TestServer::start_with(|c| {
        c.allow_private_upstreams = true;
        c.redis_url = Some(url.into());
    })
    .await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let bridge = uuid_of(
        &s.create(
            &token,
            json!({
                "name": "B", "type": "bridge", "access": "public",
                "bridge": {"url": up.url("/weather")}, "rate_limit": {"total": "100/min"},
            }),
        )
        .await,
    );
    let credential = uuid_of(
        &s.create(
            &token,
            json!({
                "name": "K", "access": "public", "data": "v", "rate_limit": {"per_ip": "3/hour"},
            }),
        )
        .await,
    );
    let open_bridge = uuid_of(&s.create(&token, json!({
        "name": "O", "type": "bridge", "access": "public",
        "bridge": {"url": up.url("/weather")}, "rate_limit": {"total": "100/min", "fail": "open"},
    })).await);
    let call = |uuid: &str| s.get(&format!("/r/{uuid}")).send();
    assert_eq!(call(&bridge).await.unwrap().status(), StatusCode::OK);
    assert_eq!(call(&credential).await.unwrap().status(), StatusCode::OK);

    redis.down();
    let res = call(&bridge).await.unwrap();
    assert_eq!(header(&res, "retry-after"), "1");
    let err = expect_error(res, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(err["error"], "Rate limits unavailable");
    assert_eq!(up.seen().len(), 1, "a fail-closed bridge calls no upstream");
    assert_eq!(call(&open_bridge).await.unwrap().status(), StatusCode::OK);
    // A fail-open credential keeps serving, within this node's own count of its limit.
    let statuses: Vec<StatusCode> = join_all((0..4).map(|_| call(&credential)))
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 3, "{statuses:?}");
    audited(&s, &token, &bridge, "rate_limited").await;

    // Back again: the bridge serves once Redis answers.
    assert!(redis.up());
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        status = call(&bridge).await.unwrap().status();
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, StatusCode::OK);
}
