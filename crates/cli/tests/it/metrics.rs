//! The metrics listener, scraped over HTTP after real calls: reads, wrong keys, a lockout, a rate
//! limit, sign-in limits, bridge calls to a local upstream, a batch. The page is read with a
//! strict parser of Prometheus's text format (written here: the crates at hand skip lines they
//! cannot read, or are LGPL), then its counts are compared with the calls made, and its text is
//! searched for uuids, addresses and secret values.

use std::collections::BTreeMap;

use reqwest::{Response, StatusCode};
use serde_json::json;

use crate::common::*;
use crate::upstream::Upstream;

type Labels = BTreeMap<String, String>;

#[derive(Debug)]
struct Family {
    kind: String,
    samples: Vec<(String, Labels, f64)>,
}

/// Parses Prometheus text exposition (format 0.0.4) strictly: every line must be a `# HELP`, a
/// `# TYPE` or a sample of a family already typed; families are not interleaved; no sample is
/// repeated; counters are whole and not negative; histograms are well formed.
fn parse(text: &str) -> BTreeMap<String, Family> {
    assert!(text.ends_with('\n'), "the page ends with a newline");
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut helped: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut seen: std::collections::HashSet<(String, Labels)> = Default::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad HELP: {line}"));
            assert!(valid_name(name), "bad metric name in {line}");
            assert!(!help.trim().is_empty(), "empty help: {line}");
            assert!(!helped.contains(&name.to_owned()), "HELP twice for {name}");
            assert!(!families.contains_key(name), "HELP after TYPE for {name}");
            helped.push(name.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad TYPE: {line}"));
            assert!(valid_name(name), "bad metric name in {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type in {line}"
            );
            assert!(!families.contains_key(name), "TYPE twice for {name}");
            assert_eq!(
                helped.last().map(String::as_str),
                Some(name),
                "every family has its HELP first"
            );
            families.insert(
                name.to_owned(),
                Family {
                    kind: kind.to_owned(),
                    samples: Vec::new(),
                },
            );
            current = Some(name.to_owned());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "unexpected line: {line:?}"
        );
        let (name, labels, value) = sample(line);
        let family = current
            .clone()
            .unwrap_or_else(|| panic!("a sample before any TYPE: {line}"));
        let kind = families[&family].kind.clone();
        let belongs = name == family
            || (kind == "histogram"
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(family.as_str())));
        assert!(
            belongs,
            "{name} is not part of the family {family} being written"
        );
        assert!(
            seen.insert((name.clone(), labels.clone())),
            "repeated sample: {line}"
        );
        if kind == "counter" {
            assert!(name.ends_with("_total"), "counter {name} ends in _total");
        }
        if kind == "counter" || name.ends_with("_bucket") || name.ends_with("_count") {
            assert!(
                value >= 0.0 && value.fract() == 0.0,
                "a count is whole and not negative: {line}"
            );
        }
        families
            .get_mut(&family)
            .unwrap()
            .samples
            .push((name, labels, value));
    }
    for (name, family) in &families {
        if family.kind == "histogram" {
            check_histogram(name, family);
        }
    }
    families
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `name{label="value",...} value`, with label values unescaped; no timestamp.
fn sample(line: &str) -> (String, Labels, f64) {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(valid_name(name), "bad metric name in {line}");
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            let start = chars
                .peek()
                .map(|(i, _)| *i)
                .unwrap_or_else(|| panic!("open labels: {line}"));
            let eq = inner[start..]
                .find('=')
                .unwrap_or_else(|| panic!("label without '=': {line}"))
                + start;
            let label = &inner[start..eq];
            let mut l = label.chars();
            assert!(
                l.next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && l.all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad label name {label:?} in {line}"
            );
            while chars.next_if(|(i, _)| *i <= eq).is_some() {}
            assert_eq!(
                chars.next().map(|(_, c)| c),
                Some('"'),
                "label value not quoted: {line}"
            );
            let mut value = String::new();
            loop {
                match chars
                    .next()
                    .unwrap_or_else(|| panic!("unterminated label value: {line}"))
                    .1
                {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape {other:?} in {line}"),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            assert!(
                labels.insert(label.to_owned(), value).is_none(),
                "repeated label in {line}"
            );
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    rest = &inner[i + 1..];
                    break;
                }
                other => panic!("expected ',' or '}}', found {other:?} in {line}"),
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value: {line}"));
    assert!(!value.contains(' '), "a timestamp or trailing text: {line}");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value {v:?} in {line}")),
    };
    (name.to_owned(), labels, value)
}

/// Per label set: buckets in increasing `le`, counts not decreasing, `+Inf` last and equal to
/// `_count`, and a `_sum`.
fn check_histogram(name: &str, family: &Family) {
    let mut sets: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for (sample, labels, value) in &family.samples {
        if sample.ends_with("_bucket") {
            let mut rest = labels.clone();
            let le = rest
                .remove("le")
                .unwrap_or_else(|| panic!("{name} bucket without le"));
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            sets.entry(rest).or_default().push((le, *value));
        }
    }
    for (labels, buckets) in &sets {
        assert!(
            buckets.windows(2).all(|w| w[0].0 < w[1].0),
            "{name}{labels:?}: le increasing"
        );
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{name}{labels:?}: cumulative"
        );
        let (last_le, total) = *buckets.last().unwrap();
        assert_eq!(last_le, f64::INFINITY, "{name}{labels:?} ends with +Inf");
        let find = |suffix: &str| {
            family
                .samples
                .iter()
                .find(|(n, l, _)| n == &format!("{name}{suffix}") && l == labels)
                .map(|(_, _, v)| *v)
                .unwrap_or_else(|| panic!("{name}{suffix}{labels:?} missing"))
        };
        assert_eq!(
            find("_count"),
            total,
            "{name}{labels:?}: _count is the +Inf bucket"
        );
        assert!(find("_sum") >= 0.0);
    }
    let parts = family
        .samples
        .iter()
        .filter(|(n, _, _)| !n.ends_with("_bucket"));
    for (n, labels, _) in parts {
        assert!(sets.contains_key(labels), "{n}{labels:?} without buckets");
    }
}

struct Scrape {
    text: String,
    families: BTreeMap<String, Family>,
}

impl Scrape {
    async fn of(s: &TestServer) -> Self {
        let url = s.metrics.as_ref().expect("the test server serves metrics");
        let res = s.http.get(url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = res.text().await.unwrap();
        let families = parse(&text);
        Self { text, families }
    }

    /// The value of the sample `name` with exactly `labels` (0 when absent).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.families
            .values()
            .flat_map(|f| &f.samples)
            .find(|(n, l, _)| n == name && *l == want)
            .map_or(0.0, |(_, _, v)| *v)
    }

    fn kind(&self, family: &str) -> &str {
        &self
            .families
            .get(family)
            .unwrap_or_else(|| panic!("no {family} in:\n{}", self.text))
            .kind
    }

    /// `brine_http_requests_total` as `(route, record_type, status) -> count`.
    fn requests(&self) -> BTreeMap<(String, String, String), u64> {
        self.families["brine_http_requests_total"]
            .samples
            .iter()
            .map(|(_, l, v)| {
                assert_eq!(l.len(), 3, "route, record_type and status only: {l:?}");
                (
                    (
                        l["route"].clone(),
                        l["record_type"].clone(),
                        l["status"].clone(),
                    ),
                    *v as u64,
                )
            })
            .collect()
    }
}

/// What the calls made should have added up to, by route template, record type and status class.
#[derive(Default)]
struct Tally(BTreeMap<(String, String, String), u64>);

impl Tally {
    fn add(&mut self, route: &str, record: &str, status: StatusCode) {
        let class = format!("{}xx", status.as_u16() / 100);
        *self
            .0
            .entry((route.to_owned(), record.to_owned(), class))
            .or_default() += 1;
    }

    async fn expect(
        &mut self,
        res: Response,
        status: StatusCode,
        route: &str,
        record: &str,
    ) -> Response {
        assert_eq!(res.status(), status, "{route} ({record})");
        self.add(route, record, status);
        res
    }
}

fn looks_like_uuid(word: &str) -> bool {
    let parts: Vec<&str> = word.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

const CLIENT: &str = "198.51.100.77";

each_backend! {
async fn the_metrics_page_counts_the_calls_made_and_names_no_record_client_or_value() {
    let s = TestServer::start_with(|c| {
        c.allow_private_upstreams = true;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.rate_limits.login_per_email = brine_limits::Rate::parse("1/hour").unwrap();
    })
    .await;
    let up = Upstream::start().await;
    let mut tally = Tally::default();
    let before = Scrape::of(&s).await;
    assert_eq!(before.kind("brine_http_requests_total"), "counter");
    assert!(before.requests().is_empty(), "no request yet:\n{}", before.text);

    let signup = s.post("/api/v1/auth/signup").header("X-Forwarded-For", CLIENT)
        .json(&json!({"email": "ana@example.com", "password": PASSWORD})).send().await.unwrap();
    let token = body(tally.expect(signup, StatusCode::CREATED, "/api/v1/auth/signup", "none").await).await["token"]
        .as_str().unwrap().to_owned();
    let create = |spec: serde_json::Value| {
        let req = s.post("/api/v1/records").bearer_auth(&token).json(&spec);
        async move { req.send().await.unwrap() }
    };
    let mut created = Vec::new();
    for spec in [
        json!({"name": "Stripe", "access": "private", "data": "canary-private-value"}),
        json!({"name": "Public", "access": "public", "data": "canary-public-value", "rate_limit": {"per_ip": "1/min"}}),
        json!({"name": "Pw", "access": "private", "data": "canary-password-value", "password": "canary record password"}),
        json!({"name": "Weather", "type": "bridge", "access": "public",
               "bridge": {"url": up.url("/weather"), "headers": {"Authorization": "Bearer canary-bridge-key"}}}),
        json!({"name": "Broken", "type": "bridge", "access": "public", "bridge": {"url": up.url("/fail")}}),
    ] {
        created.push(body(tally.expect(create(spec).await, StatusCode::CREATED, "/api/v1/records", "none").await).await);
    }
    let [private, public, password, weather, broken] = [0, 1, 2, 3, 4].map(|i| uuid_of(&created[i]));
    let key = key_of(&created[0]);
    let read = |uuid: &str, key: Option<&str>| {
        let mut req = s.get(&format!("/r/{uuid}")).header("X-Forwarded-For", CLIENT);
        if let Some(key) = key {
            req = req.header("X-API-Key", key);
        }
        async move { req.send().await.unwrap() }
    };
    const R: &str = "/r/{uuid}";

    // Reads, wrong keys, a record that is not there.
    for _ in 0..3 {
        tally.expect(read(&private, Some(&key)).await, StatusCode::OK, R, "credential").await;
    }
    for _ in 0..2 {
        tally.expect(read(&private, Some("brk_wrong")).await, StatusCode::UNAUTHORIZED, R, "credential").await;
    }
    let nobody = "0190f1c3-0000-7000-8000-000000000000";
    tally.expect(read(nobody, None).await, StatusCode::NOT_FOUND, R, "none").await;

    // A rate limit: one read a minute from a client.
    tally.expect(read(&public, None).await, StatusCode::OK, R, "credential").await;
    tally.expect(read(&public, None).await, StatusCode::TOO_MANY_REQUESTS, R, "credential").await;

    // A lockout: five wrong record passwords, then even the right one waits.
    let unlock = |pw: &'static str| {
        let req = s.post(&format!("/r/{password}")).header("X-Forwarded-For", CLIENT).json(&json!({"password": pw}));
        async move { req.send().await.unwrap() }
    };
    for _ in 0..5 {
        tally.expect(unlock("canary wrong password").await, StatusCode::UNAUTHORIZED, R, "credential").await;
    }
    tally.expect(unlock("canary record password").await, StatusCode::TOO_MANY_REQUESTS, R, "credential").await;

    // Sign-in limits: one attempt an hour for this email.
    for status in [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS] {
        let res = s.post("/api/v1/auth/login").header("X-Forwarded-For", CLIENT)
            .json(&json!({"email": "ana@example.com", "password": "canary wrong sign-in"})).send().await.unwrap();
        tally.expect(res, status, "/api/v1/auth/login", "none").await;
    }

    // Bridges: an upstream that answers, one that fails (relayed as it is).
    let res = tally.expect(read(&weather, None).await, StatusCode::OK, R, "bridge").await;
    assert_eq!(body(res).await["location"]["name"], "Paris");
    tally.expect(read(&broken, None).await, StatusCode::INTERNAL_SERVER_ERROR, R, "bridge").await;

    // A batch of a credential and a bridge: one request, of both types.
    let batch = s.post("/batch").header("X-Forwarded-For", CLIENT).json(&json!({"requests": [
        {"uuid": private, "headers": {"X-API-Key": key}},
        {"uuid": weather},
    ]})).send().await.unwrap();
    let batch = body(tally.expect(batch, StatusCode::OK, "/batch", "mixed").await).await;
    assert_eq!(batch["results"][0]["status"], 200);
    assert_eq!(batch["results"][1]["status"], 200);

    // The owner's API and a page, a path no route takes, a method a route does not take.
    let res = s.get(&format!("/api/v1/records/{private}")).bearer_auth(&token).send().await.unwrap();
    tally.expect(res, StatusCode::OK, "/api/v1/records/{uuid}", "credential").await;
    tally.expect(s.get("/signin").send().await.unwrap(), StatusCode::OK, "/signin", "none").await;
    tally.expect(s.get(&format!("/nothing/here/{private}")).send().await.unwrap(), StatusCode::NOT_FOUND, "unmatched", "none").await;
    let res = s.request(reqwest::Method::PUT, "/api/v1/auth/signup").send().await.unwrap();
    tally.expect(res, StatusCode::METHOD_NOT_ALLOWED, "/api/v1/auth/signup", "none").await;

    // Audit groups are written after their events are counted: wait until the writer is idle.
    let mut page = Scrape::of(&s).await;
    for _ in 0..200 {
        if page.value("brine_audit_write_group_size_sum", &[]) == page.value("brine_audit_events_total", &[]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        page = Scrape::of(&s).await;
    }
    let text = &page.text;

    // Requests: exactly the calls made, and nothing else.
    assert_eq!(page.requests(), tally.0, "in:\n{text}");

    // Refusals by kind.
    assert_eq!(page.kind("brine_rate_limit_refusals_total"), "counter");
    assert_eq!(page.value("brine_rate_limit_refusals_total", &[("limit", "rate")]), 1.0);
    assert_eq!(page.value("brine_rate_limit_refusals_total", &[("limit", "sign_in")]), 1.0);
    assert_eq!(page.value("brine_rate_limit_refusals_total", &[("limit", "quota")]), 0.0);
    assert_eq!(page.value("brine_lockout_refusals_total", &[("password", "password")]), 1.0);
    assert_eq!(page.value("brine_lockout_refusals_total", &[("password", "secure_page")]), 0.0);

    // Upstream latency: the weather answered twice (alone and in the batch), the broken one once.
    assert_eq!(page.kind("brine_upstream_latency_seconds"), "histogram");
    let upstream = |result: &str| page.value("brine_upstream_latency_seconds_count", &[("result", result)]);
    assert_eq!((upstream("2xx"), upstream("5xx"), upstream("timeout"), upstream("error")), (2.0, 1.0, 0.0, 0.0));
    assert_eq!(page.value("brine_upstream_calls_total", &[]), 3.0);

    // Audit writes: every event and settle in some group, each group timed.
    assert_eq!(page.kind("brine_audit_write_group_size"), "histogram");
    let groups = page.value("brine_audit_write_group_size_count", &[]);
    assert!(groups >= 1.0, "{text}");
    assert_eq!(page.value("brine_audit_write_seconds_count", &[]), groups);
    assert_eq!(page.value("brine_audit_write_group_size_sum", &[]), page.value("brine_audit_events_total", &[]));
    // At least one event per read, refusal, attempt and call above (settles come on top).
    assert!(page.value("brine_audit_events_total", &[]) >= 20.0, "{text}");

    // Key derivation: the five wrong passwords and the sign-in were checked; nothing is queued now.
    assert_eq!(page.kind("brine_kdf_queue_depth"), "gauge");
    assert!(page.value("brine_kdf_runs_total", &[]) >= 6.0);
    assert_eq!(page.value("brine_kdf_queue_depth", &[("state", "waiting")]), 0.0);
    assert_eq!(page.value("brine_kdf_queue_depth", &[("state", "running")]), 0.0);

    // No uuid, no address, no value, key or password anywhere on the page.
    for word in text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')) {
        assert!(!looks_like_uuid(word), "a uuid on the metrics page: {word}");
    }
    let secrets = ["canary", &key, &token, PASSWORD, CLIENT, "127.0.0.1", "198.51.100", &up.base];
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} on the metrics page:\n{text}");
    }
    let label_values: Vec<&String> = page.families.values().flat_map(|f| &f.samples).flat_map(|(_, l, _)| l.values()).collect();
    for value in label_values {
        assert!(value.parse::<std::net::IpAddr>().is_err(), "an address as a label: {value}");
    }
}
}

#[test]
fn the_parser_refuses_what_prometheus_would() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\"} 1\n";
    assert_eq!(parse(ok)["a_total"].samples[0].1["x"], "q\"");
    for bad in [
        "a_total 1\n",                                                       // no TYPE
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1",              // no final newline
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=q} 1\n",       // unquoted
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1 123\n",        // timestamp
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n", // repeated
        "# HELP a_total A.\n# TYPE a_total counter\nb_total 1\n",            // another family
        "# HELP h A.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h A.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h A.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n",
    ] {
        let parsed = std::panic::catch_unwind(|| parse(bad));
        assert!(parsed.is_err(), "accepted:\n{bad}");
    }
}
