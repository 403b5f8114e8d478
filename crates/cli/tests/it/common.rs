//! The test harness: a real brine server on 127.0.0.1:0 with a fresh data directory and a fresh
//! database, spoken to over HTTP. Tests written inside `each_backend!` run once on SQLite and
//! once on PostgreSQL (when `BRINE_TEST_POSTGRES_URL` names a server).

use std::future::Future;
use std::path::{Path, PathBuf};

use brine_server::{Server, Settings};
pub use brine_store::Backend;
use brine_store::testing::{PostgresForTests, TempDatabase, postgres_for_tests};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

tokio::task_local! {
    static BACKEND: Backend;
}

/// Runs a test with servers on `backend`; a PostgreSQL test is skipped when no server is named
/// (and fails when CI requires one).
pub async fn on_backend(backend: Backend, test: impl Future<Output = ()>) {
    if backend == Backend::Postgres
        && let PostgresForTests::Skipped = postgres_for_tests().unwrap()
    {
        eprintln!("skipped: set BRINE_TEST_POSTGRES_URL to run this test on PostgreSQL");
        return;
    }
    BACKEND.scope(backend, test).await;
}

/// Declares tests that run on every backend: `each_backend! { async fn name() { ... } }`
/// becomes `name::sqlite` and `name::postgres`.
macro_rules! each_backend {
    ($(async fn $name:ident() $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run() $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::common::on_backend($crate::common::Backend::Sqlite, run()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                $crate::common::on_backend($crate::common::Backend::Postgres, run()).await
            }
        }
    )*};
}

/// What a stopped server leaves behind, to start it again on the same data.
pub struct Leftovers {
    data_dir: PathBuf,
    _tmp: Option<TempDir>,
    database: Option<TempDatabase>,
}

pub struct TestServer {
    pub base: String,
    /// Where the server's metrics are served.
    pub metrics: Option<String>,
    pub http: Client,
    pub data_dir: PathBuf,
    /// Runs this node's handoff end task on demand.
    pub handoffs: brine_server::HandoffEnder,
    database_url: Option<String>,
    _tmp: Option<TempDir>,
    database: Option<TempDatabase>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

pub fn settings_in(dir: &Path) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: dir.to_path_buf(),
        // Addresses and user agents as sent, as most tests check them (origin.rs tests the rest).
        keep_client_address: brine_server::AddressForm::Full,
        keep_user_agent: brine_server::UserAgentForm::Full,
        ..Settings::default()
    }
}

impl TestServer {
    /// A server on a fresh, empty data directory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let tmp = TempDir::new().unwrap();
        let database = match BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite) {
            Backend::Sqlite => None,
            Backend::Postgres => match postgres_for_tests().unwrap() {
                PostgresForTests::Available(admin) => {
                    Some(TempDatabase::create(&admin).await.unwrap())
                }
                PostgresForTests::Skipped => unreachable!("on_backend skips PostgreSQL tests"),
            },
        };
        let mut settings = settings_in(tmp.path());
        settings.database_url = database.as_ref().map(|db| db.url.clone());
        adjust(&mut settings);
        let mut server = Self::start_settings(settings).await.unwrap();
        server._tmp = Some(tmp);
        server.database = database;
        server
    }

    /// Starts a server again on what a stopped one left.
    pub async fn restart(leftovers: Leftovers) -> Self {
        Self::restart_with(leftovers, |_| {}).await
    }

    /// Starts a server again on what a stopped one left, with some settings changed.
    pub async fn restart_with(leftovers: Leftovers, adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = settings_in(&leftovers.data_dir);
        settings.database_url = leftovers.database.as_ref().map(|db| db.url.clone());
        adjust(&mut settings);
        let mut server = Self::start_settings(settings).await.unwrap();
        server._tmp = leftovers._tmp;
        server.database = leftovers.database;
        server
    }

    /// Another node on the same database and master key, with its own state (pools, caches):
    /// what a second `brine serve` behind the same load balancer would be.
    pub async fn second_node(&self) -> Self {
        let mut settings = settings_in(&self.data_dir);
        settings.database_url = self.database_url.clone();
        Self::start_settings(settings).await.unwrap()
    }

    /// A server with exactly these settings; fails as start-up fails.
    pub async fn start_settings(settings: Settings) -> Result<Self, brine_server::StartupError> {
        crate::canary::capture_logs();
        let data_dir = settings.data_dir.clone();
        let database_url = settings.database_url.clone();
        let server = Server::bind(settings).await?;
        let addr = server.local_addr().unwrap();
        let metrics = server.metrics_addr().map(|a| format!("http://{a}/metrics"));
        let handoffs = server.handoff_ender();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Ok(Self {
            base: format!("http://{addr}"),
            metrics,
            http: Client::builder().no_proxy().build().unwrap(),
            data_dir,
            handoffs,
            database_url,
            _tmp: None,
            database: None,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Stops the server and hands back its data, for a restart on the same data.
    pub async fn stop(mut self) -> Leftovers {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        crate::canary::scan_data_dir(&self.data_dir);
        if let Some(database) = &self.database {
            crate::canary::scan_postgres(&database.url);
        }
        crate::canary::assert_clean();
        Leftovers {
            data_dir: self.data_dir.clone(),
            _tmp: self._tmp.take(),
            database: self.database.take(),
        }
    }

    /// One counter from the server's metrics (its value for `labels`, such as
    /// `{result="hit"}`, or the unlabelled one).
    pub async fn metric(&self, name: &str, labels: &str) -> u64 {
        let url = self.metrics.as_ref().expect("the server serves metrics");
        let text = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = format!("{name}{labels} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {name}{labels} in:\n{text}"))
            .parse()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// The database this server runs on, as `brine --database-url` takes it.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("brine.db").display()))
    }

    /// Signs up a new account and returns its token.
    pub async fn signup(&self, email: &str) -> String {
        crate::canary::register(PASSWORD);
        let res = self
            .post("/api/v1/auth/signup")
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        body(res).await["token"].as_str().unwrap().to_owned()
    }

    /// Creates a record and returns the whole 201 body (`record` and maybe `api_key`).
    pub async fn create(&self, token: &str, spec: Value) -> Value {
        crate::canary::register_json(&spec);
        let res = self
            .post("/api/v1/records")
            .bearer_auth(token)
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "creating {spec}");
        body(res).await
    }

    /// `GET /r/{uuid}` with an optional X-API-Key.
    pub async fn read(&self, uuid: &str, key: Option<&str>) -> Response {
        let mut req = self.get(&format!("/r/{uuid}"));
        if let Some(key) = key {
            req = req.header("X-API-Key", key);
        }
        req.send().await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
            crate::canary::scan_data_dir(&self.data_dir);
            if let Some(database) = &self.database {
                crate::canary::scan_postgres(&database.url);
            }
            crate::canary::assert_clean();
        }
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// What a browser holds after loading a page with a form: the form cookie the page set and the
/// token in the form's hidden field.
#[derive(Debug, Clone)]
pub struct LoadedForm {
    pub cookie: String,
    pub token: String,
}

impl LoadedForm {
    /// Loads the page that `get` fetches, as a browser would.
    pub async fn load(get: RequestBuilder) -> Self {
        let res = get.send().await.unwrap();
        let cookie = res
            .headers()
            .get("set-cookie")
            .expect("the page sets its form cookie")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = res.text().await.unwrap();
        let token = html
            .split("name=\"form_token\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the form carries its token")
            .to_owned();
        Self { cookie, token }
    }

    /// The form's POST with `fields`, from the browser that loaded it.
    pub fn post(&self, http: &Client, url: &str, fields: &[(&str, &str)]) -> RequestBuilder {
        let mut all = fields.to_vec();
        all.push(("form_token", &self.token));
        http.post(url).header("Cookie", &self.cookie).form(&all)
    }
}

/// The JSON body of an answer; the secrets in it (keys, tokens, values) become canaries.
pub async fn body(res: Response) -> Value {
    let text = res.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    crate::canary::register_json(&value);
    value
}

/// Asserts the error envelope: exactly `error` and `message`, both non-empty strings.
pub async fn expect_error(res: Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status);
    let text = res.text().await.unwrap();
    crate::canary::scan("an error body", text.as_bytes());
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    let object = value.as_object().expect("error body is an object");
    assert_eq!(
        object.len(),
        2,
        "envelope has exactly error and message: {value}"
    );
    assert!(!value["error"].as_str().unwrap().is_empty());
    assert!(!value["message"].as_str().unwrap().is_empty());
    value
}

pub fn uuid_of(created: &Value) -> String {
    created["record"]["uuid"].as_str().unwrap().to_owned()
}

pub fn key_of(created: &Value) -> String {
    created["api_key"].as_str().unwrap().to_owned()
}

pub const MISSING_KEY: &str = r#"{"error":"Authentication required","message":"Please provide your token in the X-API-Key header to decrypt the content."}"#;

/// The real `brine serve` binary, started in its own process with JSON logs on stderr.
pub struct BrineProcess {
    pub child: std::process::Child,
    pub base: String,
    log: Option<std::thread::JoinHandle<String>>,
}

impl BrineProcess {
    /// Starts `brine serve ARGS` with `envs`, and waits until it listens.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut command = Command::new(env!("CARGO_BIN_EXE_brine"));
        command
            .arg("serve")
            .args(args)
            .env("BRINE_LOG_FORMAT", "json")
            .env("BRINE_LOG", crate::canary::LOG_FILTER)
            .env_remove("BRINE_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let log = std::thread::spawn(move || {
            let mut log = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                crate::canary::scan("a brine serve log", line.as_bytes());
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && let Some(addr) = v["fields"]["addr"].as_str()
                {
                    let _ = addr_tx.send(addr.to_owned());
                }
                log.push_str(&line);
                log.push('\n');
            }
            log
        });
        match addr_rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(addr) => Self {
                child,
                base: format!("http://{addr}"),
                log: Some(log),
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("brine did not start:\n{}", log.join().unwrap());
            }
        }
    }

    /// Stops the server with SIGTERM (a graceful shutdown) and returns everything it logged.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(
            self.child.wait().unwrap().success(),
            "clean exit on SIGTERM"
        );
        let log = self.log.take().unwrap().join().unwrap();
        crate::canary::assert_clean();
        log
    }
}

impl Drop for BrineProcess {
    fn drop(&mut self) {
        if self.log.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `brine serve ARGS` expecting it to fail at start-up; returns its stderr.
pub fn failed_start(args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_brine"));
    command
        .arg("serve")
        .args(args)
        .env_remove("BRINE_MASTER_KEY");
    for (k, v) in envs {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    assert!(!out.status.success(), "start-up should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether this test may mount volumes (it runs as root). Otherwise it is skipped with a printed
/// reason, unless `BRINE_TEST_REQUIRE_ROOT=1` (as CI sets), which turns the skip into a failure.
pub fn root_or_skip(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false);
    if !root {
        assert!(
            std::env::var("BRINE_TEST_REQUIRE_ROOT").as_deref() != Ok("1"),
            "BRINE_TEST_REQUIRE_ROOT=1 but {test} does not run as root"
        );
        eprintln!("skipped {test}: it needs root (BRINE_TEST_REQUIRE_ROOT=1 makes this fail)");
    }
    root
}
