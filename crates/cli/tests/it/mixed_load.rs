//! Mixed load for fault tests: clients that create records, rotate their keys, read them and
//! call a bridge while something breaks, and a ledger of what the server acknowledged, checked
//! afterwards against what the server holds.
//!
//! Each worker owns the records it created, so the order of its rotations is known: after an
//! acknowledged rotation only the new key may open the record. A request that got no answer, or
//! a 503, may or may not have taken effect ("in doubt"); the checks allow both outcomes there
//! and nothing else.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The test client's own bound for one answer: far above any acquire or statement timeout in
/// brine, so reaching it means a hang.
pub const NO_HANG: Duration = Duration::from_secs(40);

pub fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(NO_HANG)
        .build()
        .unwrap()
}

/// Where the load goes: a server, an account on it, and a public bridge of that account.
#[derive(Clone)]
pub struct Target {
    pub base: String,
    pub token: String,
    pub bridge: String,
}

/// A record as the ledger knows it.
#[derive(Debug, Clone)]
pub struct Record {
    pub uuid: String,
    pub value: String,
    /// The last key the server acknowledged.
    pub key: String,
    /// Keys replaced by an acknowledged rotation: none may open the record again.
    pub retired: Vec<String>,
    /// A rotation after `key` was acknowledged got no clear answer: it may have happened.
    pub in_doubt: bool,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub records: Vec<Record>,
    /// (record, user agent) of every read that was answered (200 or 401).
    pub reads: Vec<(String, String)>,
    /// User agents of bridge calls answered 200.
    pub bridge_calls: Vec<String>,
    /// Answers that were a success.
    pub acknowledged: usize,
    /// 503 envelopes.
    pub unavailable: usize,
    /// Requests that got no answer (the server was killed).
    pub unanswered: usize,
}

impl Ledger {
    fn merge(&mut self, other: Ledger) {
        self.records.extend(other.records);
        self.reads.extend(other.reads);
        self.bridge_calls.extend(other.bridge_calls);
        self.acknowledged += other.acknowledged;
        self.unavailable += other.unavailable;
        self.unanswered += other.unanswered;
    }
}

/// Running workers.
pub struct Load {
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<Ledger>>,
}

impl Load {
    /// Starts `workers` clients on `target`. With `server_may_die`, a request that gets no
    /// answer ends its worker (the server was killed); otherwise it fails the test.
    pub fn start(target: &Target, workers: usize, server_may_die: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let workers = (0..workers)
            .map(|n| {
                let worker = Worker {
                    n,
                    target: target.clone(),
                    http: client(),
                    server_may_die,
                    stop: stop.clone(),
                    acks: acks.clone(),
                    ledger: Ledger::default(),
                };
                tokio::spawn(worker.run())
            })
            .collect();
        Self {
            stop,
            acks,
            workers,
        }
    }

    /// Acknowledged answers so far.
    pub fn acks(&self) -> usize {
        self.acks.load(Ordering::SeqCst)
    }

    /// Waits until `more` further answers are acknowledged: the server works (again).
    pub async fn wait_for_acks(&self, more: usize) {
        let want = self.acks() + more;
        // A bound against a test that never ends, not a timing check.
        for _ in 0..1200 {
            if self.acks() >= want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no progress: {} of {want} answers acknowledged",
            self.acks()
        );
    }

    /// Stops the workers and returns what they were told.
    pub async fn finish(self) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        let mut ledger = Ledger::default();
        for worker in self.workers {
            ledger.merge(worker.await.unwrap());
        }
        ledger
    }
}

struct Worker {
    n: usize,
    target: Target,
    http: Client,
    server_may_die: bool,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
    ledger: Ledger,
}

/// What came back for one request.
enum Answer {
    /// An expected status, with its JSON body.
    Expected(StatusCode, Value),
    /// A 503 envelope.
    Unavailable,
    /// No answer: the server is gone.
    Nothing,
}

impl Worker {
    async fn run(mut self) -> Ledger {
        let mut i = 0usize;
        while !self.stop.load(Ordering::SeqCst) {
            let alive = match i % 5 {
                _ if self.ledger.records.is_empty() => self.create(i).await,
                0 => self.create(i).await,
                1 | 3 => self.read(i).await,
                2 => self.rotate(i).await,
                _ => self.bridge(i).await,
            };
            if !alive {
                break;
            }
            i += 1;
        }
        self.ledger
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.target.base)
    }

    /// Sorts one answer out; fails the test on a hang, a malformed body or a status outside
    /// `expected` and 503.
    async fn answer(
        &mut self,
        what: &str,
        res: reqwest::Result<Response>,
        expected: &[StatusCode],
    ) -> Answer {
        let res = match res {
            Ok(res) => res,
            Err(e) => return self.no_answer(what, &e),
        };
        let status = res.status();
        let text = match res.text().await {
            Ok(text) => text,
            Err(e) => return self.no_answer(what, &e),
        };
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{what}: {status} with a body that is not JSON: {text}"));
        if expected.contains(&status) {
            if status.is_success() {
                self.ledger.acknowledged += 1;
                self.acks.fetch_add(1, Ordering::SeqCst);
            }
            return Answer::Expected(status, value);
        }
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: unexpected answer {text}"
        );
        assert_envelope(&value);
        self.ledger.unavailable += 1;
        Answer::Unavailable
    }

    fn no_answer(&mut self, what: &str, e: &reqwest::Error) -> Answer {
        assert!(
            !e.is_timeout(),
            "{what}: no answer within {NO_HANG:?} (a hang)"
        );
        assert!(self.server_may_die, "{what}: the connection failed: {e}");
        self.ledger.unanswered += 1;
        Answer::Nothing
    }

    /// Which of this worker's records the `i`th operation works on.
    fn pick(&self, i: usize) -> usize {
        (i / 5) % self.ledger.records.len()
    }

    async fn create(&mut self, i: usize) -> bool {
        let value = format!("sk_pgfaults_{}_{i}", self.n);
        let res = self
            .http
            .post(self.url("/api/v1/records"))
            .bearer_auth(&self.target.token)
            .json(&json!({"name": format!("w{} #{i}", self.n), "access": "private", "data": value}))
            .send()
            .await;
        match self.answer("create", res, &[StatusCode::CREATED]).await {
            Answer::Expected(_, created) => {
                self.ledger.records.push(Record {
                    uuid: created["record"]["uuid"].as_str().unwrap().to_owned(),
                    value,
                    key: created["api_key"].as_str().unwrap().to_owned(),
                    retired: Vec::new(),
                    in_doubt: false,
                });
                true
            }
            Answer::Unavailable => true,
            Answer::Nothing => false,
        }
    }

    async fn rotate(&mut self, i: usize) -> bool {
        let at = self.pick(i);
        let uuid = self.ledger.records[at].uuid.clone();
        let res = self
            .http
            .post(self.url(&format!("/api/v1/records/{uuid}/api-key")))
            .bearer_auth(&self.target.token)
            .send()
            .await;
        let answer = self.answer("rotate", res, &[StatusCode::OK]).await;
        let record = &mut self.ledger.records[at];
        match answer {
            Answer::Expected(_, rotated) => {
                let new = rotated["api_key"].as_str().unwrap().to_owned();
                record.retired.push(std::mem::replace(&mut record.key, new));
                record.in_doubt = false;
                true
            }
            Answer::Unavailable => {
                record.in_doubt = true;
                true
            }
            Answer::Nothing => {
                record.in_doubt = true;
                false
            }
        }
    }

    async fn read(&mut self, i: usize) -> bool {
        let record = self.ledger.records[self.pick(i)].clone();
        let agent = format!("pgfaults-read-{}-{i}", self.n);
        let res = self
            .http
            .get(self.url(&format!("/r/{}", record.uuid)))
            .header("X-API-Key", &record.key)
            .header("User-Agent", &agent)
            .send()
            .await;
        // A rotation in doubt may have replaced the key.
        let expected: &[StatusCode] = if record.in_doubt {
            &[StatusCode::OK, StatusCode::UNAUTHORIZED]
        } else {
            &[StatusCode::OK]
        };
        match self.answer("read", res, expected).await {
            Answer::Expected(status, value) => {
                if status == StatusCode::OK {
                    assert_eq!(value["data"], record.value.as_str());
                } else {
                    assert_envelope(&value);
                }
                self.ledger.reads.push((record.uuid, agent));
                true
            }
            Answer::Unavailable => true,
            Answer::Nothing => false,
        }
    }

    async fn bridge(&mut self, i: usize) -> bool {
        let agent = format!("pgfaults-bridge-{}-{i}", self.n);
        let res = self
            .http
            .get(self.url(&format!("/r/{}", self.target.bridge)))
            .header("User-Agent", &agent)
            .send()
            .await;
        match self.answer("bridge", res, &[StatusCode::OK]).await {
            Answer::Expected(_, value) => {
                assert_eq!(value["location"]["name"], "Paris", "{value}");
                self.ledger.bridge_calls.push(agent);
                true
            }
            Answer::Unavailable => true,
            Answer::Nothing => false,
        }
    }
}

/// Exactly `error` and `message`, both non-empty strings.
pub fn assert_envelope(value: &Value) {
    let object = value.as_object().expect("error body is an object");
    assert_eq!(object.len(), 2, "envelope has error and message: {value}");
    assert!(!value["error"].as_str().unwrap().is_empty(), "{value}");
    assert!(!value["message"].as_str().unwrap().is_empty(), "{value}");
}

/// Checks a server (back up, on the same data) against the ledger: every acknowledged record
/// opens with its acknowledged key and value and with no retired key; every answered read and
/// bridge call has its audit event; every record listed reveals its value.
pub async fn verify(target: &Target, ledger: &Ledger) {
    let http = client();
    let get = |path: String| {
        http.get(format!("{}{path}", target.base))
            .bearer_auth(&target.token)
    };

    // No half-written record: every record the owner has opens with the server slot.
    let res = get("/api/v1/records".to_owned()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    let listed: HashSet<String> = list["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uuid"].as_str().unwrap().to_owned())
        .collect();
    for uuid in &listed {
        let res = get(format!("/api/v1/records/{uuid}/value"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "record {uuid} does not reveal"
        );
    }

    for record in &ledger.records {
        let uuid = &record.uuid;
        assert!(
            listed.contains(uuid),
            "acknowledged record {uuid} is missing"
        );
        let read = |key: &str| {
            http.get(format!("{}/r/{uuid}", target.base))
                .header("X-API-Key", key)
                .send()
        };
        let res = read(&record.key).await.unwrap();
        let status = res.status();
        let value: Value = res.json().await.unwrap();
        match status {
            StatusCode::OK => assert_eq!(value["data"], record.value.as_str()),
            StatusCode::UNAUTHORIZED if record.in_doubt => assert_envelope(&value),
            _ => panic!("{uuid} with its acknowledged key: {status} {value}"),
        }
        for old in &record.retired {
            let res = read(old).await.unwrap();
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{uuid} opens with a key replaced by an acknowledged rotation"
            );
        }
    }

    // Every answered read and bridge call has its event (stored before the answer left).
    let mut wanted: HashMap<&str, Vec<&str>> = HashMap::new();
    for (uuid, agent) in &ledger.reads {
        wanted.entry(uuid).or_default().push(agent);
    }
    if !ledger.bridge_calls.is_empty() {
        wanted.insert(
            &target.bridge,
            ledger.bridge_calls.iter().map(String::as_str).collect(),
        );
    }
    for (uuid, agents) in wanted {
        let stored = user_agents(target, &http, uuid).await;
        for agent in agents {
            assert!(
                stored.contains(agent),
                "answered request {agent} on {uuid} has no audit event"
            );
        }
    }
}

/// The user agents of every event of a record, page by page.
async fn user_agents(target: &Target, http: &Client, uuid: &str) -> HashSet<String> {
    let mut agents = HashSet::new();
    let mut before: Option<i64> = None;
    loop {
        let mut url = format!("{}/api/v1/records/{uuid}/events?limit=500", target.base);
        if let Some(id) = before {
            url.push_str(&format!("&before={id}"));
        }
        let res = http
            .get(url)
            .bearer_auth(&target.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        let events = page["events"].as_array().unwrap();
        for e in events {
            if let Some(agent) = e["user_agent"].as_str() {
                agents.insert(agent.to_owned());
            }
        }
        match events.last() {
            Some(last) if events.len() == 500 => before = last["id"].as_i64(),
            _ => return agents,
        }
    }
}
