//! The `brine` client commands, run as the real binary against a real in-process server.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::common::*;

/// A user's machine: a fresh home and config directory, pointed at one server.
struct Cli {
    home: TempDir,
    server: String,
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn success(&self) -> bool {
        self.code == Some(0)
    }

    #[track_caller]
    fn assert_ok(&self) -> &Self {
        assert!(
            self.success(),
            "exit {:?}\nstdout: {}\nstderr: {}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn assert_failed(&self) -> &Self {
        assert!(
            !self.success(),
            "expected a failure\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The text after `label` on the line that has it, e.g. `X-API-Key:`.
    #[track_caller]
    fn field(&self, label: &str) -> String {
        self.stdout
            .lines()
            .find_map(|line| {
                line.split_once(label)
                    .map(|(_, rest)| rest.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {label} in {}", self.stdout))
    }
}

impl Cli {
    fn new(server: &TestServer) -> Self {
        Self {
            home: TempDir::new().unwrap(),
            server: server.base.clone(),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.home.path().join("config")
    }

    fn session_file(&self) -> PathBuf {
        self.config_dir().join("session.json")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    fn session(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.session_file()).unwrap()).unwrap()
    }

    fn token(&self) -> String {
        self.session()["token"].as_str().unwrap().to_owned()
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_brine"));
        command
            .args(args)
            .env("BRINE_CONFIG_DIR", self.config_dir())
            .env("HOME", self.home.path())
            .env("BRINE_SERVER", &self.server)
            // A home of its own, also as the working directory (where `run` finds brine.toml).
            .current_dir(self.home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("BRINE_API_KEY")
            .env_remove("BRINE_SERVICE_TOKEN")
            .env_remove("BRINE_EMAIL")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `brine ARGS` with `stdin` piped in and `env` added.
    async fn run_with(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let mut child = self.command(args, env).spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        // The command may exit without reading stdin; a broken pipe then is fine.
        let _ = pipe.write_all(stdin.as_bytes()).await;
        drop(pipe);
        let output = child.wait_with_output().await.unwrap();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    async fn run(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(args, stdin, &[]).await
    }

    /// A new account, signed up through the CLI.
    async fn signed_up(server: &TestServer, email: &str) -> Self {
        let cli = Self::new(server);
        cli.run(
            &["signup", "--email", email, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        )
        .await
        .assert_ok();
        cli
    }

    /// Creates a record with `value` on stdin; returns (uuid, X-API-Key if private).
    async fn create(&self, name: &str, access: &str, value: &str) -> (String, Option<String>) {
        let run = self
            .run(
                &[
                    "records", "create", "--name", name, "--access", access, "--json",
                ],
                value,
            )
            .await;
        run.assert_ok();
        let created: Value = serde_json::from_str(&run.stdout).unwrap();
        (
            uuid_of(&created),
            created["api_key"].as_str().map(str::to_owned),
        )
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn records_status(server: &TestServer, token: &str) -> StatusCode {
    server
        .get("/api/v1/records")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn signup_and_login_write_a_private_session_file() {
    let server = TestServer::start().await;
    let cli = Cli::signed_up(&server, "ana@example.com").await;

    assert_eq!(mode(&cli.session_file()), 0o600);
    assert_eq!(mode(&cli.config_dir()), 0o700);
    let session = cli.session();
    assert_eq!(session["server"], json!(server.base));
    let first = cli.token();
    assert_eq!(records_status(&server, &first).await, StatusCode::OK);
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(cli.config_dir()).unwrap().count(), 1);

    // A wrong password: a clear error, and the existing session is untouched.
    let wrong = cli
        .run(
            &["login", "--email", "ana@example.com", "--password-stdin"],
            "not the password\n",
        )
        .await;
    wrong.assert_failed();
    assert!(
        wrong.stderr.contains("brine: Invalid credentials: "),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("not the password"));
    assert_eq!(cli.token(), first);

    std::fs::remove_file(cli.session_file()).unwrap();
    let login = cli
        .run_with(
            &["login", "--password-stdin"],
            &format!("{PASSWORD}\nignored second line\n"),
            &[("BRINE_EMAIL", "ana@example.com")],
        )
        .await;
    login.assert_ok();
    assert!(
        !login.stdout.contains(&cli.token()),
        "the token is never printed"
    );
    assert_eq!(mode(&cli.session_file()), 0o600);
    assert_ne!(cli.token(), first);
    assert_eq!(records_status(&server, &cli.token()).await, StatusCode::OK);

    // Without a terminal and without --password-stdin there is no way to ask: say so.
    let no_tty = cli.run(&["login", "--email", "ana@example.com"], "").await;
    no_tty.assert_failed();
    assert!(
        no_tty.stderr.contains("--password-stdin"),
        "{}",
        no_tty.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_list_get_and_wrong_key() {
    let server = TestServer::start().await;
    let cli = Cli::signed_up(&server, "ana@example.com").await;
    let value = "sk_live_canary_51H\nsecond line\n";

    // Human output: uuid, read URL and the key once, with a warning to store it.
    let created = cli
        .run(
            &[
                "records",
                "create",
                "--name",
                "Stripe live",
                "--access",
                "private",
                "--per-ip",
                "60/min",
                "--quota",
                "1000/month",
            ],
            &format!("{value}\n"),
        )
        .await;
    created.assert_ok();
    assert_eq!(created.field("rate limit:"), "per_ip 60/min");
    assert_eq!(created.field("quota:"), "1000 per month");
    let uuid = created.field("uuid:");
    let key = created.field("X-API-Key:");
    assert_eq!(
        created.field("read URL:"),
        format!("{}/r/{uuid}", server.base)
    );
    assert!(
        created.stdout.contains("shown once — store it now"),
        "{}",
        created.stdout
    );
    assert!(
        !created.stdout.contains("sk_live_canary"),
        "the value is never echoed"
    );

    let list = cli.run(&["records", "list"], "").await;
    list.assert_ok();
    let row = list.stdout.lines().find(|l| l.contains(&uuid)).unwrap();
    assert!(row.contains("Stripe live") && row.contains("private") && row.contains("active"));
    let listed: Value =
        serde_json::from_str(&cli.run(&["records", "list", "--json"], "").await.stdout).unwrap();
    assert_eq!(listed["records"][0]["uuid"], json!(uuid));

    let show = cli.run(&["records", "show", &uuid], "").await;
    show.assert_ok();
    assert!(show.stdout.contains("Stripe live"));
    assert_eq!(show.field("rate limit:"), "per_ip 60/min");
    assert_eq!(show.field("quota:"), "0 of 1000 this month");
    let bad = cli
        .run(
            &["records", "create", "--name", "x", "--quota", "5/year"],
            "v",
        )
        .await;
    bad.assert_failed();
    assert!(bad.stderr.contains("hour, day or month"), "{}", bad.stderr);
    assert!(!show.stdout.contains("sk_live_canary") && !show.stdout.contains(&key));

    // Exactly the stored bytes (one trailing newline was trimmed at create), with no newline
    // added because stdout is a pipe.
    let by_env = cli
        .run_with(&["get", &uuid], "", &[("BRINE_API_KEY", &key)])
        .await;
    by_env.assert_ok();
    assert_eq!(by_env.stdout, value);
    let key_file = cli.write("stripe.key", &format!("{key}\n"));
    let by_file = cli
        .run(
            &["get", &uuid, "--api-key-file", key_file.to_str().unwrap()],
            "",
        )
        .await;
    by_file.assert_ok();
    assert_eq!(by_file.stdout, value);

    let wrong = cli
        .run_with(&["get", &uuid], "", &[("BRINE_API_KEY", "brk_wrong")])
        .await;
    wrong.assert_failed();
    assert_eq!(wrong.code, Some(1));
    assert_eq!(wrong.stdout, "");
    assert!(
        wrong.stderr.contains(
            "brine: Authentication required: Please provide your token in the X-API-Key header"
        ),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("sk_live_canary") && !wrong.stderr.contains("brk_wrong"));

    // No key, signed in: the owner's session reveals it (an owner reveal in the log); by name
    // too. Signed out: the same refusal as a wrong key, and a hint on how to give one.
    let revealed = cli.run(&["get", &uuid], "").await;
    revealed.assert_ok();
    assert_eq!(revealed.stdout, value);
    let by_name = cli.run(&["get", "Stripe live"], "").await;
    by_name.assert_ok();
    assert_eq!(by_name.stdout, value);
    let stranger = Cli::new(&server);
    let keyless = stranger.run(&["get", &uuid], "").await;
    keyless.assert_failed();
    assert!(
        keyless.stderr.contains("--api-key-file"),
        "{}",
        keyless.stderr
    );

    // The reads are in the audit log, without values or keys.
    let events = cli.run(&["records", "events", &uuid], "").await;
    events.assert_ok();
    assert!(events.stdout.contains("ok") && events.stdout.contains("denied"));
    assert!(events.stdout.contains("brine-cli/"), "{}", events.stdout);
    assert!(!events.stdout.contains("sk_live_canary") && !events.stdout.contains(&key));
}

#[tokio::test(flavor = "multi_thread")]
async fn public_records_need_no_key_or_session() {
    let server = TestServer::start().await;
    let token = server.signup("ana@example.com").await;
    let created = server
        .create(
            &token,
            json!({"name": "Docs", "access": "public", "data": "pk_public_value"}),
        )
        .await;
    let uuid = uuid_of(&created);

    let stranger = Cli::new(&server);
    let run = stranger.run(&["get", &uuid], "").await;
    run.assert_ok();
    assert_eq!(run.stdout, "pk_public_value");
    assert!(!stranger.session_file().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_replaces_the_key() {
    let server = TestServer::start().await;
    let cli = Cli::signed_up(&server, "ana@example.com").await;
    let (uuid, old) = cli.create("OpenAI", "private", "sk-canary-rotate").await;
    let old = old.unwrap();

    let rotated = cli.run(&["records", "rotate", &uuid], "").await;
    rotated.assert_ok();
    let new = rotated.field(&format!("New X-API-Key for {uuid}:"));
    assert_ne!(new, old);

    let with_old = cli
        .run_with(&["get", &uuid], "", &[("BRINE_API_KEY", &old)])
        .await;
    with_old.assert_failed();
    assert!(with_old.stderr.contains("Authentication required"));
    let with_new = cli
        .run_with(&["get", &uuid], "", &[("BRINE_API_KEY", &new)])
        .await;
    with_new.assert_ok();
    assert_eq!(with_new.stdout, "sk-canary-rotate");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_a_sealed_record_with_its_current_key() {
    let server = TestServer::start().await;
    let cli = Cli::signed_up(&server, "ana@example.com").await;
    let run = cli
        .run(
            &[
                "records", "create", "--name", "Sealed", "--sealed", "--json",
            ],
            "sealed-canary",
        )
        .await;
    run.assert_ok();
    let created: Value = serde_json::from_str(&run.stdout).unwrap();
    let (uuid, old) = (uuid_of(&created), key_of(&created));

    let without_key = cli.run(&["records", "rotate", &uuid], "").await;
    without_key.assert_failed();
    assert!(
        without_key.stderr.contains("sealed"),
        "{}",
        without_key.stderr
    );

    let wrong = cli
        .run_with(
            &["records", "rotate", &uuid],
            "",
            &[("BRINE_API_KEY", "brk_nope")],
        )
        .await;
    wrong.assert_failed();
    assert!(
        wrong.stderr.contains("Authentication required"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("brine login"), "{}", wrong.stderr);

    let key_file = cli.write("sealed.key", &old);
    let rotated = cli
        .run(
            &[
                "records",
                "rotate",
                &uuid,
                "--api-key-file",
                key_file.to_str().unwrap(),
                "--json",
            ],
            "",
        )
        .await;
    rotated.assert_ok();
    let new = key_of(&serde_json::from_str(&rotated.stdout).unwrap());
    let read = cli
        .run_with(&["get", &uuid], "", &[("BRINE_API_KEY", &new)])
        .await;
    read.assert_ok();
    assert_eq!(read.stdout, "sealed-canary");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_makes_get_404() {
    let server = TestServer::start().await;
    let cli = Cli::signed_up(&server, "ana@example.com").await;
    let (uuid, key) = cli.create("Temp", "private", "delete-me-canary").await;
    let key = key.unwrap();

    cli.run(&["records", "delete", &uuid], "").await.assert_ok();
    let get = cli
        .run_with(&["get", &uuid], "", &[("BRINE_API_KEY", &key)])
        .await;
    get.assert_failed();
    assert!(get.stderr.contains("brine: Not found: "), "{}", get.stderr);
    assert!(!get.stderr.contains("delete-me-canary"));

    let again = cli.run(&["records", "delete", &uuid], "").await;
    again.assert_failed();
    assert!(again.stderr.contains("Not found"));
}

#[tokio::test(flavor = "multi_thread")]
async fn run_puts_values_in_the_command_environment() {
    let server = TestServer::start().await;
    let cli = Cli::signed_up(&server, "ana@example.com").await;
    let (first, first_key) = cli.create("One", "private", "value one").await;
    let (second, second_key) = cli.create("Two", "private", "value-two").await;
    let (public, _) = cli.create("Three", "public", "value3").await;
    let key_file = cli.write("two.key", &second_key.unwrap());

    let script = r#"printf "%s|%s|%s|%s" "$A" "$B" "$C" "${BRINE_API_KEY-unset}""#;
    let run = cli
        .run_with(
            &[
                "run",
                "--env",
                &format!("A={first}"),
                "--env",
                &format!("B={second}@{}", key_file.display()),
                "--env",
                &format!("C={public}"),
                "--",
                "sh",
                "-c",
                script,
            ],
            "",
            &[("BRINE_API_KEY", &first_key.unwrap())],
        )
        .await;
    run.assert_ok();
    // The key that fetched the values is not passed on to the command.
    assert_eq!(run.stdout, "value one|value-two|value3|unset");

    // The command's exit code is brine's.
    let exit = cli
        .run(
            &[
                "run",
                "--env",
                &format!("C={public}"),
                "--",
                "sh",
                "-c",
                "exit 7",
            ],
            "",
        )
        .await;
    assert_eq!(exit.code, Some(7));
}

#[tokio::test(flavor = "multi_thread")]
async fn run_does_not_start_the_command_when_a_fetch_fails() {
    let server = TestServer::start().await;
    let cli = Cli::signed_up(&server, "ana@example.com").await;
    let (good, key) = cli.create("Good", "private", "good-canary").await;
    let key = key.unwrap();
    let missing = uuid::Uuid::new_v4().to_string();
    let marker = cli.path("ran");
    let marker_arg = marker.to_str().unwrap();

    let run = cli
        .run_with(
            &[
                "run",
                "--env",
                &format!("GOOD={good}"),
                "--env",
                &format!("MISSING={missing}"),
                "--",
                "sh",
                "-c",
                r#"touch "$0""#,
                marker_arg,
            ],
            "",
            &[("BRINE_API_KEY", &key)],
        )
        .await;
    run.assert_failed();
    assert!(!marker.exists(), "the command must not run");
    assert!(
        run.stderr.contains("MISSING") && run.stderr.contains(&missing),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Not found"), "{}", run.stderr);
    assert!(!run.stderr.contains("good-canary") && !run.stderr.contains(&key));
    assert_eq!(run.stdout, "");

    // A wrong key in a key file: refused the same way.
    let bad_key = cli.write("bad.key", "brk_wrong\n");
    let run = cli
        .run(
            &[
                "run",
                "--env",
                &format!("GOOD={good}@{}", bad_key.display()),
                "--",
                "sh",
                "-c",
                r#"touch "$0""#,
                marker_arg,
            ],
            "",
        )
        .await;
    run.assert_failed();
    assert!(!marker.exists());
    assert!(run.stderr.contains("GOOD") && run.stderr.contains("Authentication required"));

    // Malformed specs are refused before any request.
    for spec in ["1BAD=x", "not-a-spec", "A=not-a-uuid"] {
        let run = cli
            .run(
                &[
                    "run",
                    "--env",
                    spec,
                    "--",
                    "sh",
                    "-c",
                    r#"touch "$0""#,
                    marker_arg,
                ],
                "",
            )
            .await;
        run.assert_failed();
        assert!(!marker.exists());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_removes_the_session_and_revokes_the_token() {
    let server = TestServer::start().await;
    let cli = Cli::signed_up(&server, "ana@example.com").await;
    let token = cli.token();

    cli.run(&["logout"], "").await.assert_ok();
    assert!(!cli.session_file().exists());
    assert_eq!(
        records_status(&server, &token).await,
        StatusCode::UNAUTHORIZED
    );

    let list = cli.run(&["records", "list"], "").await;
    list.assert_failed();
    assert!(list.stderr.contains("brine login"), "{}", list.stderr);

    // Logging out again is harmless.
    cli.run(&["logout"], "").await.assert_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_suggests_logging_in() {
    let server = TestServer::start().await;
    let cli = Cli::new(&server);
    std::fs::create_dir_all(cli.config_dir()).unwrap();
    std::fs::write(
        cli.session_file(),
        json!({"server": server.base, "token": "not-a-token"}).to_string(),
    )
    .unwrap();

    let list = cli.run(&["records", "list"], "").await;
    list.assert_failed();
    assert!(
        list.stderr.starts_with("brine: Unauthorized: "),
        "{}",
        list.stderr
    );
    assert!(list.stderr.contains("brine login"), "{}", list.stderr);
    assert!(!list.stderr.contains("not-a-token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_is_named() {
    let server = TestServer::start().await;
    let cli = Cli::new(&server);
    // Nothing listens on port 1.
    let dead = "http://127.0.0.1:1";
    let uuid = uuid::Uuid::new_v4().to_string();
    let run = cli
        .run_with(
            &["get", &uuid, "--server", dead],
            "",
            &[("BRINE_API_KEY", "brk_canary")],
        )
        .await;
    run.assert_failed();
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
    assert!(run.stderr.contains(dead), "{}", run.stderr);
    assert!(!run.stderr.contains("brk_canary"));
}

#[tokio::test(flavor = "multi_thread")]
async fn share_prints_a_link_and_a_password_that_open_the_page() {
    let server = TestServer::start().await;
    let cli = Cli::signed_up(&server, "ana@example.com").await;
    let run = cli
        .run(
            &[
                "share",
                "--name",
                "For the contractor",
                "--expires-in",
                "14d",
                "--max-views",
                "1",
            ],
            "sk_live_shared\n",
        )
        .await;
    run.assert_ok();
    let link = run.field("Link:");
    let password = run.field("Password:");
    assert!(
        link.starts_with(&format!("{}/secure/", server.base)),
        "{link}"
    );
    assert_eq!(password.len(), 24, "a generated passphrase: {password}");
    assert!(run.stdout.contains("different channels"));
    assert!(!run.stdout.contains("sk_live_shared") && !run.stderr.contains("sk_live_shared"));

    let form = LoadedForm::load(server.http.get(&link)).await;
    let res = form
        .post(&server.http, &link, &[("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("sk_live_shared"));
    // One view only, and no X-API-Key exists for this record.
    let res = form
        .post(&server.http, &link, &[("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let uuid = link.rsplit('/').next().unwrap();
    let res = server
        .get(&format!("/api/v1/records/{uuid}"))
        .bearer_auth(cli.token())
        .send()
        .await
        .unwrap();
    let record = body(res).await;
    assert_eq!(record["has_api_key"], false);
    assert!(record["secure_page"]["expires_at"].is_string());

    // A password of one's own.
    let file = cli.write("page-password", "my own page password\n");
    let run = cli
        .run(
            &["share", "--password-file", file.to_str().unwrap()],
            "second value",
        )
        .await;
    run.assert_ok();
    assert_eq!(run.field("Password:"), "my own page password");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_export_writes_every_event_to_a_private_file() {
    let server = TestServer::start().await;
    let cli = Cli::signed_up(&server, "ana@example.com").await;
    let (uuid, key) = cli.create("Exported", "private", "export-canary").await;
    let key = key.unwrap();
    for _ in 0..3 {
        cli.run_with(&["get", &uuid], "", &[("BRINE_API_KEY", &key)])
            .await
            .assert_ok();
    }
    cli.run_with(&["get", &uuid], "", &[("BRINE_API_KEY", "wrong")])
        .await
        .assert_failed();

    let file = cli.path("events.csv");
    let out = file.to_str().unwrap();
    let run = cli
        .run(&["logs", "export", "--format", "csv", "-o", out], "")
        .await;
    run.assert_ok();
    assert_eq!(mode(&file), 0o600);
    let csv = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        csv.lines().filter(|l| l.contains(",read,ok,")).count(),
        3,
        "{csv}"
    );
    assert_eq!(
        csv.lines().filter(|l| l.contains(",read,denied,")).count(),
        1
    );
    assert!(run.stderr.contains("events written to"), "{}", run.stderr);
    assert!(!csv.contains("export-canary"));
    // An existing file is kept unless --force.
    let again = cli.run(&["logs", "export", "-o", out], "").await;
    again.assert_failed();
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    // JSON lines to stdout, narrowed to refusals.
    let denied = cli
        .run(&["logs", "export", "--outcome", "denied"], "")
        .await;
    denied.assert_ok();
    let lines: Vec<Value> = denied
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["record"], uuid.as_str());
    assert_eq!(lines[0]["status"], 401);
}

each_backend! {
    async fn show_list_and_events_say_what_a_record_is_and_how_it_was_used() {
        let server = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
        let up = crate::upstream::Upstream::start().await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        let token = cli.token();
        let bridge = server
            .create(
                &token,
                json!({"name": "Weather", "type": "bridge", "access": "public",
                "bridge": {"url": up.url("/v1")}}),
            )
            .await;
        let bridge = uuid_of(&bridge);
        let page = server
            .create(
                &token,
                json!({"name": "For Bo", "access": "private", "api_key": false, "data": "v",
                "secure_page": {"enabled": true, "password": "a page password", "max_views": 3}}),
            )
            .await;
        let page = uuid_of(&page);
        let res = server.get(&format!("/r/{bridge}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.bytes().await.unwrap();

        let list = cli.run(&["records", "list"], "").await;
        list.assert_ok();
        assert!(
            list.stdout.starts_with("UUID") && list.stdout.contains("TYPE"),
            "{}",
            list.stdout
        );
        let row = list.stdout.lines().find(|l| l.contains(&bridge)).unwrap();
        assert!(row.contains("bridge") && !row.contains("never"), "{row}");
        let row = list.stdout.lines().find(|l| l.contains(&page)).unwrap();
        assert!(row.contains("credential") && row.contains("never"), "{row}");

        let show = cli.run(&["records", "show", &page], "").await;
        show.assert_ok();
        assert_eq!(show.field("type:"), "credential");
        assert!(
            show.field("read URL:").starts_with("none: no X-API-Key"),
            "{}",
            show.stdout
        );
        let page_line = show.field("secure page:");
        assert!(
            page_line.contains(&format!("/secure/{page}")) && page_line.contains("0 of 3 views"),
            "{page_line}"
        );
        assert!(show.field("reads:").contains("read limit"));
        let show = cli.run(&["records", "show", &bridge], "").await;
        assert_eq!(show.field("type:"), "bridge");
        assert!(show.field("read URL:").ends_with(&format!("/r/{bridge}")));
        assert_eq!(show.field("secure page:"), "off");

        let events = cli.run(&["records", "events", &bridge], "").await;
        events.assert_ok();
        assert!(events.stdout.contains("DETAIL"), "{}", events.stdout);
        assert!(
            events.stdout.contains("GET / → 200 in "),
            "{}",
            events.stdout
        );

        let who = cli.run(&["whoami"], "").await;
        who.assert_ok();
        assert!(
            who.stdout
                .starts_with("ana@example.com on http://127.0.0.1:"),
            "{}",
            who.stdout
        );
        assert!(who.stdout.contains("two-factor sign-in: off"));

        // Without a terminal there is nobody to ask: scripts delete as before (and --yes is there).
        cli.run(&["records", "delete", &page], "").await.assert_ok();
        let deleted = cli.run(&["records", "delete", "--yes", &bridge], "").await;
        deleted.assert_ok();
        assert!(
            deleted.stdout.contains("history stays"),
            "{}",
            deleted.stdout
        );
    }
}

each_backend! {
    async fn keys_go_to_private_files_that_are_never_overwritten() {
        let server = TestServer::start().await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        let file = cli.path("stripe.key");
        let path = file.to_str().unwrap();
        let created = cli
            .run(
                &["records", "create", "--name", "Stripe", "--key-file", path],
                "sk_keyfile_canary",
            )
            .await;
        created.assert_ok();
        assert!(created.stdout.contains("written to"), "{}", created.stdout);
        assert_eq!(mode(&file), 0o600);
        let key = std::fs::read_to_string(&file).unwrap();
        assert!(key.starts_with("brk_") && !created.stdout.contains(key.trim()));
        let uuid = created.field("uuid:");
        let got = cli.run(&["get", &uuid, "--api-key-file", path], "").await;
        got.assert_ok();
        assert_eq!(got.stdout, "sk_keyfile_canary");

        // An existing file is refused before anything is created.
        let again = cli
            .run(
                &["records", "create", "--name", "Second", "--key-file", path],
                "v",
            )
            .await;
        again.assert_failed();
        assert!(
            again.stderr.contains("never overwrites"),
            "{}",
            again.stderr
        );
        let list = cli.run(&["records", "list"], "").await;
        assert!(!list.stdout.contains("Second"));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), key);

        // A rotation writes the new key to a new file; the old key stops.
        let rotated_file = cli.path("stripe-2.key");
        let rotated = cli
            .run(
                &[
                    "records",
                    "rotate",
                    &uuid,
                    "--key-file",
                    rotated_file.to_str().unwrap(),
                ],
                "",
            )
            .await;
        rotated.assert_ok();
        assert_eq!(mode(&rotated_file), 0o600);
        cli.run(&["get", &uuid, "--api-key-file", path], "")
            .await
            .assert_failed();
        let got = cli
            .run(
                &[
                    "get",
                    &uuid,
                    "--api-key-file",
                    rotated_file.to_str().unwrap(),
                ],
                "",
            )
            .await;
        assert_eq!(got.stdout, "sk_keyfile_canary");
        let refused = cli
            .run(&["records", "rotate", &uuid, "--key-file", path], "")
            .await;
        refused.assert_failed();
        // The refused rotation changed nothing: the second key still reads.
        let got = cli
            .run(
                &[
                    "get",
                    &uuid,
                    "--api-key-file",
                    rotated_file.to_str().unwrap(),
                ],
                "",
            )
            .await;
        got.assert_ok();
    }
}

each_backend! {
    async fn get_finds_a_record_by_name_within_the_account_only() {
        let server = TestServer::start().await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        let (first, _) = cli.create("dup", "private", "one").await;
        let (second, _) = cli.create("dup", "private", "two").await;
        cli.create("single", "owner_only", "only-mine").await;
        let got = cli.run(&["get", "single"], "").await;
        got.assert_ok();
        assert_eq!(got.stdout, "only-mine");

        let ambiguous = cli.run(&["get", "dup"], "").await;
        ambiguous.assert_failed();
        assert!(
            ambiguous.stderr.contains("2 records are named \"dup\"")
                && ambiguous.stderr.contains(&first)
                && ambiguous.stderr.contains(&second),
            "{}",
            ambiguous.stderr
        );
        assert!(!ambiguous.stdout.contains("one") && !ambiguous.stdout.contains("two"));
        let unknown = cli.run(&["get", "nothing"], "").await;
        unknown.assert_failed();
        assert!(
            unknown.stderr.contains("no record named"),
            "{}",
            unknown.stderr
        );

        // Another account's names are not searched.
        let bob = Cli::signed_up(&server, "bob@example.com").await;
        let theirs = bob.run(&["get", "single"], "").await;
        theirs.assert_failed();
        assert!(
            theirs.stderr.contains("no record named"),
            "{}",
            theirs.stderr
        );
        // Signed out, a name cannot be resolved.
        let stranger = Cli::new(&server);
        let out = stranger.run(&["get", "single"], "").await;
        out.assert_failed();
        assert!(out.stderr.contains("brine login"), "{}", out.stderr);
    }
}

each_backend! {
    async fn a_record_is_revealed_replaced_disabled_and_given_a_page_from_the_terminal() {
        let server = TestServer::start().await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        let (uuid, key) = cli.create("Stripe", "private", "sk_first").await;
        let key = key.unwrap();
        let read = || async { server.read(&uuid, Some(&key)).await };

        let shown = cli.run(&["records", "reveal", &uuid], "").await;
        shown.assert_ok();
        assert_eq!(shown.stdout, "sk_first");
        cli.run(&["records", "set-value", &uuid], "sk_second")
            .await
            .assert_ok();
        assert_eq!(body(read().await).await["data"], "sk_second");

        cli.run(&["records", "disable", &uuid], "")
            .await
            .assert_ok();
        assert_eq!(read().await.status(), StatusCode::NOT_FOUND);
        cli.run(&["records", "enable", &uuid], "").await.assert_ok();
        assert_eq!(read().await.status(), StatusCode::OK);

        // A page with a generated password; a new password ends the old one; off closes it.
        let on = cli
            .run(
                &["records", "page", "enable", &uuid, "--max-views", "2"],
                "",
            )
            .await;
        on.assert_ok();
        let link = on.field("Link:");
        let password = on.field("Password:");
        assert_eq!(link, server.url(&format!("/secure/{uuid}")));
        let unlock = |password: String| {
            let (server, uuid) = (&server, &uuid);
            async move {
                let form = LoadedForm::load(server.get(&format!("/secure/{uuid}"))).await;
                let link = server.url(&format!("/secure/{uuid}"));
                form.post(&reqwest::Client::new(), &link, &[("password", &password)])
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(unlock(password.clone()).await, StatusCode::OK);
        let new = cli.run(&["records", "page", "password", &uuid], "").await;
        new.assert_ok();
        let new_password = new.field("Password:");
        assert_ne!(new_password, password);
        assert_eq!(unlock(password).await, StatusCode::UNAUTHORIZED);
        assert_eq!(unlock(new_password.clone()).await, StatusCode::OK);
        // Off, the page looks like any unknown page and no password opens it.
        cli.run(&["records", "page", "disable", &uuid], "")
            .await
            .assert_ok();
        assert_ne!(unlock(new_password).await, StatusCode::OK);
    }
}

each_backend! {
    async fn run_takes_an_env_file_of_names_and_uuids() {
        let server = TestServer::start().await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        cli.create("Stripe live", "owner_only", "sk_env_file").await;
        let (keyed, key) = cli.create("Keyed", "private", "keyed value").await;
        let key_file = cli.write("keyed.key", &key.unwrap());
        let env_file = cli.write(
            "deploy.env",
            &format!(
                "# secrets for deploy.sh\n\nexport STRIPE_KEY=\"Stripe live\"  \nKEYED={keyed}@{} # by key\n",
                key_file.display()
            ),
        );
        let script = r#"printf "%s|%s|%s" "$STRIPE_KEY" "$KEYED" "${BRINE_API_KEY-unset}""#;
        // The owner-only record through the session, the other with its own key file.
        let run = cli
            .run(
                &[
                    "run",
                    "--env-file",
                    env_file.to_str().unwrap(),
                    "--",
                    "sh",
                    "-c",
                    script,
                ],
                "",
            )
            .await;
        run.assert_ok();
        assert_eq!(run.stdout, "sk_env_file|keyed value|unset");
        let session = std::fs::read_to_string(cli.session_file()).unwrap();
        let env = cli
            .run(
                &["run", "--env-file", env_file.to_str().unwrap(), "--", "env"],
                "",
            )
            .await;
        let token: Value = serde_json::from_str(&session).unwrap();
        assert!(!env.stdout.contains(token["token"].as_str().unwrap()));

        // One record that cannot be read: the command never starts.
        let marker = cli.path("started");
        let broken = cli.write(
            "broken.env",
            "STRIPE_KEY=Stripe live\nMISSING=No such record\n",
        );
        let touch = format!("touch {}", marker.display());
        let run = cli
            .run(
                &[
                    "run",
                    "--env-file",
                    broken.to_str().unwrap(),
                    "--",
                    "sh",
                    "-c",
                    &touch,
                ],
                "",
            )
            .await;
        run.assert_failed();
        assert!(
            run.stderr.contains("cannot fetch MISSING"),
            "{}",
            run.stderr
        );
        assert!(!marker.exists());
        let bad = cli.write("bad.env", "GOOD=x\nthis is not a line\n");
        let run = cli
            .run(
                &["run", "--env-file", bad.to_str().unwrap(), "--", "true"],
                "",
            )
            .await;
        run.assert_failed();
        assert!(run.stderr.contains("line 2"), "{}", run.stderr);
    }
}

each_backend! {
    async fn env_prints_values_as_dotenv_or_json() {
        let server = TestServer::start().await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        cli.create("Quoted", "owner_only", "say \"hi\" $HOME\nnext")
            .await;
        cli.create("Plain", "owner_only", "plain").await;
        let env_file = cli.write("app.env", "A=Quoted\nB=Plain\n");
        let dotenv = cli
            .run(&["env", "--env-file", env_file.to_str().unwrap()], "")
            .await;
        dotenv.assert_ok();
        assert_eq!(
            dotenv.stdout,
            "A=\"say \\\"hi\\\" \\$HOME\\nnext\"\nB=\"plain\"\n"
        );
        let json = cli
            .run(
                &[
                    "env",
                    "--env-file",
                    env_file.to_str().unwrap(),
                    "--format",
                    "json",
                ],
                "",
            )
            .await;
        json.assert_ok();
        let values: Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(values, json!({"A": "say \"hi\" $HOME\nnext", "B": "plain"}));
        let missing = cli.run(&["env", "--env", "C=No such"], "").await;
        missing.assert_failed();
        assert_eq!(missing.stdout, "");
    }
}

each_backend! {
    async fn run_and_env_read_the_project_file_in_the_working_directory() {
        let server = TestServer::start().await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        cli.create("Stripe live", "owner_only", "sk_project").await;
        // Nothing to read yet: the error says what would do.
        let none = cli.run(&["env"], "").await;
        none.assert_failed();
        assert!(none.stderr.contains("brine.toml"), "{}", none.stderr);
        cli.write("brine.toml", "[env]\nSTRIPE_KEY = \"Stripe live\"\n");
        let run = cli
            .run(&["run", "--", "sh", "-c", "printf %s \"$STRIPE_KEY\""], "")
            .await;
        run.assert_ok();
        assert_eq!(run.stdout, "sk_project");
        let env = cli.run(&["env"], "").await;
        assert_eq!(env.stdout, "STRIPE_KEY=\"sk_project\"\n");
        // --env and --env-file replace the project file.
        let given = cli.run(&["env", "--env", "OTHER=Stripe live"], "").await;
        assert_eq!(given.stdout, "OTHER=\"sk_project\"\n");
    }
}

each_backend! {
    async fn a_bridge_is_made_from_a_file_changed_one_setting_at_a_time_and_tried() {
        let server = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
        let up = crate::upstream::Upstream::start().await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        let spec = cli.write(
            "weather.toml",
            &format!(
                "name = \"Weather\"\n[bridge]\nurl = \"{}\"\nallowed_origins = [\"https://app.example.com\"]\n\n[bridge.headers]\nAuthorization = \"Bearer sk_bridge_file_canary\"\n",
                up.url("/v1")
            ),
        );
        let created = cli
            .run(&["bridges", "create", "--file", spec.to_str().unwrap()], "")
            .await;
        created.assert_ok();
        let uuid = created.field("uuid:");
        assert!(!created.stdout.contains("sk_bridge_file_canary"));

        // One setting changed, the rest kept.
        cli.run(
            &[
                "bridges",
                "set",
                &uuid,
                "allowed_methods",
                r#"["GET","POST"]"#,
            ],
            "",
        )
        .await
        .assert_ok();
        let shown = cli.run(&["bridges", "show", &uuid], "").await;
        shown.assert_ok();
        assert!(
            shown.stdout.contains("\"POST\"") && shown.stdout.contains("https://app.example.com"),
            "{}",
            shown.stdout
        );
        assert!(!shown.stdout.contains("sk_bridge_file_canary"));
        // A header's new value comes from stdin, never from the command line.
        cli.run(
            &["bridges", "set", &uuid, "header", "Authorization"],
            "Bearer sk_rotated_canary",
        )
        .await
        .assert_ok();

        let tried = cli
            .run(
                &[
                    "bridges",
                    "try",
                    &uuid,
                    "-X",
                    "POST",
                    "--body",
                    r#"{"q":1}"#,
                ],
                "",
            )
            .await;
        tried.assert_ok();
        assert!(tried.stderr.starts_with("200 in "), "{}", tried.stderr);
        let seen = up.seen();
        let last = seen.last().unwrap();
        assert_eq!(last.method, "POST");
        assert_eq!(last.headers["authorization"], "Bearer sk_rotated_canary");
        assert!(!tried.stdout.contains("sk_rotated_canary"));
    }
}

/// `brine ARGS` under a pseudo-terminal (util-linux `script`), as a person at a terminal runs it,
/// with `typed` as what they type.
async fn at_a_terminal(cli: &Cli, args: &str, typed: &str) -> Run {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_brine"));
    let mut child = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("BRINE_CONFIG_DIR", cli.config_dir())
        .env("HOME", cli.home.path())
        .env("BRINE_SERVER", &cli.server)
        .current_dir(cli.home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let _ = pipe.write_all(typed.as_bytes()).await;
    drop(pipe);
    let output = child.wait_with_output().await.unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

each_backend! {
    async fn delete_asks_at_a_terminal_and_only_yes_deletes() {
        let server = TestServer::start().await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        let (uuid, key) = cli.create("Keep me", "private", "v").await;
        let key = key.unwrap();

        let declined = at_a_terminal(&cli, &format!("records delete {uuid}"), "no\n").await;
        // The terminal shows the question; the answer was not yes.
        assert!(
            declined.stdout.contains("Delete \"Keep me\""),
            "{}",
            declined.stdout
        );
        assert!(
            declined.stdout.contains("nothing deleted"),
            "{}",
            declined.stdout
        );
        assert_ne!(declined.code, Some(0));
        assert_eq!(
            server.read(&uuid, Some(&key)).await.status(),
            StatusCode::OK
        );

        let confirmed = at_a_terminal(&cli, &format!("records delete {uuid}"), "yes\n").await;
        assert_eq!(confirmed.code, Some(0), "{}", confirmed.stdout);
        assert_eq!(
            server.read(&uuid, Some(&key)).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}

each_backend! {
    async fn a_bridge_is_made_from_flags_with_header_values_from_stdin() {
        let server = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
        let up = crate::upstream::Upstream::start().await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        let url = up.url("/v1/{{city}}");
        let created = cli
            .run(
                &[
                    "bridges",
                    "create",
                    "--name",
                    "Flags",
                    "--url",
                    &url,
                    "--param",
                    "city",
                    "--origin",
                    "https://app.example.com",
                    "--header",
                    "Authorization",
                    "--header",
                    "X-Team",
                ],
                "Bearer sk_flags_canary\nteam-7\n",
            )
            .await;
        created.assert_ok();
        assert!(!created.stdout.contains("sk_flags_canary"));
        let uuid = created.field("uuid:");
        let res = server
            .get(&format!("/r/{uuid}?city=lisbon"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let seen = up.seen();
        let last = seen.last().unwrap();
        assert_eq!(last.path, "/v1/lisbon");
        assert_eq!(last.headers["authorization"], "Bearer sk_flags_canary");
        assert_eq!(last.headers["x-team"], "team-7");
        // A missing value is refused before anything is made.
        let short = cli
            .run(
                &[
                    "bridges", "create", "--name", "Short", "--url", &url, "--header", "A", "--header",
                    "B",
                ],
                "only-one\n",
            )
            .await;
        short.assert_failed();
        assert!(
            short.stderr.contains("no value on stdin for header B"),
            "{}",
            short.stderr
        );
        let list = cli.run(&["records", "list"], "").await;
        assert!(!list.stdout.contains("Short"));
    }
}

each_backend! {
    async fn ci_reads_with_a_service_token_and_never_hands_it_on() {
        let server = TestServer::start().await;
        let owner = Cli::signed_up(&server, "ana@example.com").await;
        owner.create("stripe-test", "private", "sk_test_ci").await;
        owner.create("db-url", "owner_only", "postgres://ci").await;
        let (other, _) = owner.create("other", "owner_only", "not for ci").await;
        let token_file = owner.path("ci.token");
        let create = [
            "tokens", "create", "deploy", "--records", "stripe-test,db-url", "--expires", "90d",
            "--token-file", token_file.to_str().unwrap(),
        ];
        let made = owner.run(&create, "").await;
        made.assert_ok();
        assert!(made.stdout.contains("stripe-test") && made.stdout.contains("db-url"));
        assert_eq!(mode(&token_file), 0o600);
        let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
        assert!(token.starts_with("brst_") && !made.stdout.contains(&token));
        let again = owner.run(&create, "").await;
        again.assert_failed();
        assert!(again.stderr.contains("exists"), "{}", again.stderr);
        assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);

        // A CI machine: no session, only the token.
        let ci = Cli::new(&server);
        let env = [("BRINE_SERVICE_TOKEN", token.as_str())];
        let got = ci.run_with(&["get", "stripe-test"], "", &env).await;
        got.assert_ok();
        assert_eq!(got.stdout, "sk_test_ci");
        let by_file = ci
            .run(&["get", "db-url", "--token-file", token_file.to_str().unwrap()], "")
            .await;
        by_file.assert_ok();
        assert_eq!(by_file.stdout, "postgres://ci");
        let outside = ci.run_with(&["get", "other"], "", &env).await;
        outside.assert_failed();
        assert!(outside.stderr.contains("reads no record named"), "{}", outside.stderr);
        let by_uuid = ci.run_with(&["get", &other], "", &env).await;
        by_uuid.assert_failed();
        assert!(by_uuid.stderr.contains("does not cover"), "{}", by_uuid.stderr);

        let script = r#"printf "%s|%s|%s" "$STRIPE" "$DB" "${BRINE_SERVICE_TOKEN-unset}""#;
        let run = ci
            .run_with(
                &["run", "--env", "STRIPE=stripe-test", "--env", "DB=db-url", "--", "sh", "-c", script],
                "",
                &env,
            )
            .await;
        run.assert_ok();
        assert_eq!(run.stdout, "sk_test_ci|postgres://ci|unset");
        let whole = ci
            .run_with(&["run", "--env", "S=stripe-test", "--", "env"], "", &env)
            .await;
        whole.assert_ok();
        assert!(!whole.stdout.contains(&token), "the command never sees the token");
        // A missing record stops the command before it starts.
        let marker = ci.path("started");
        let touch = format!("touch {}", marker.display());
        let failed = ci
            .run_with(
                &["run", "--env", "S=stripe-test", "--env", "O=other", "--", "sh", "-c", &touch],
                "",
                &env,
            )
            .await;
        failed.assert_failed();
        assert!(!marker.exists());

        // The owner names records by name too, and sees the token's reads.
        let events = owner.run(&["records", "events", "stripe-test"], "").await;
        events.assert_ok();
        assert!(events.stdout.contains("service token \"deploy\""), "{}", events.stdout);
        owner.run(&["records", "show", "db-url"], "").await.assert_ok();
        let list = owner.run(&["tokens", "list"], "").await;
        list.assert_ok();
        assert!(list.stdout.contains("LAST USED") && list.stdout.contains("deploy"));
        assert!(!list.stdout.contains(&token));
        owner.run(&["tokens", "revoke", "deploy"], "").await.assert_ok();
        let revoked = ci.run_with(&["get", "stripe-test"], "", &env).await;
        revoked.assert_failed();
        assert!(revoked.stderr.contains("service token"), "{}", revoked.stderr);
        owner.run(&["tokens", "revoke", "deploy"], "").await.assert_failed();
    }

    async fn the_cli_session_renews_itself_and_a_copied_refresh_token_ends_it() {
        // Tokens that live a minute: the CLI renews two minutes ahead, so before every command.
        let server = TestServer::start_with(|s| s.token_ttl_secs = 60).await;
        let cli = Cli::signed_up(&server, "ana@example.com").await;
        let first = cli.session();
        let copied = first["refresh_token"].as_str().unwrap().to_owned();
        assert!(copied.starts_with("brrt_"));
        cli.run(&["whoami"], "").await.assert_ok();
        let second = cli.session();
        assert_ne!(second["refresh_token"], first["refresh_token"]);
        cli.run(&["records", "list"], "").await.assert_ok();
        assert_eq!(mode(&cli.session_file()), 0o600);

        // Someone replays the refresh token they copied: the session ends for both.
        let replayed = server
            .post("/api/v1/auth/refresh")
            .json(&json!({"refresh_token": copied}))
            .send()
            .await
            .unwrap();
        assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
        let after = cli.run(&["records", "list"], "").await;
        after.assert_failed();
        assert!(after.stderr.contains("session has ended"), "{}", after.stderr);
        assert!(!cli.session_file().exists());
    }
}
