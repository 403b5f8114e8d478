//! Leak canaries for the whole suite. Every secret that passes through the harness — record
//! values and passwords, bridge URLs and headers, X-API-Keys, account passwords, bearer, refresh
//! and service tokens — is registered here. Every log line of every server (in-process ones
//! through a process-wide tracing subscriber at debug level, `brine serve` processes through
//! their stderr), every error body a test checks, every SQLite file a test server leaves and
//! every row of the PostgreSQL database a test server ran on is scanned for all of them; a hit fails the suite at the next server shutdown, naming the secret
//! and where it was seen.

use std::io::Write;
use std::sync::{Mutex, MutexGuard, Once};

use aho_corasick::AhoCorasick;
use serde_json::Value;

/// Shorter strings are too likely to appear by chance (a word or two of a message).
const MIN_LEN: usize = 12;

/// JSON fields that carry a secret wherever they appear, in a request or an answer.
const SECRET_FIELDS: &[&str] = &[
    "api_key",
    "password",
    "new_password",
    "token",
    "refresh_token",
    "service_token",
    "secret",
    "data",
    "value",
];

/// Header names whose values are credentials (a bridge also stores plain ones, such as
/// `Content-Type: application/json`, which are not secrets).
const SECRET_HEADER_WORDS: &[&str] = &["auth", "key", "token", "secret", "cookie"];

/// The log filter the suite's servers run with: everything brine says at debug, and what its
/// HTTP layer says about requests — as much as an operator could turn on with `BRINE_LOG`.
pub const LOG_FILTER: &str = "info,brine=debug,brine_server=debug,brine_store=debug,\
                              brine_bridge=debug,brine_limits=debug,brine_crypto=debug,\
                              brine_core=debug,brine_proto=debug,tower_http=debug";

#[derive(Default)]
struct Registry {
    canaries: Vec<String>,
    matcher: Option<AhoCorasick>,
    hits: Vec<String>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    canaries: Vec::new(),
    matcher: None,
    hits: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    // A test that panicked while holding the lock leaves the data intact.
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Remembers `secret` as a canary that must never be logged, stored in clear or sent back in an
/// error.
pub fn register(secret: &str) {
    // A few plain words ("a record password") may well be part of a message; a uuid in a
    // secret's place is a record's address (a handoff's link, say), not a secret.
    let plain_words = secret.chars().all(|c| c.is_ascii_lowercase() || c == ' ');
    if secret.len() < MIN_LEN
        || (plain_words && secret.len() < 20)
        || uuid::Uuid::parse_str(secret).is_ok()
    {
        return;
    }
    let mut registry = registry();
    if !registry.canaries.iter().any(|c| c == secret) {
        registry.canaries.push(secret.to_owned());
        registry.matcher = None;
    }
}

/// Registers the secrets in `value`, a request or answer body: every string under a
/// secret-carrying field, and a bridge's upstream addresses and credential headers.
pub fn register_json(value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match key.as_str() {
                    key if SECRET_FIELDS.contains(&key) => register_secret(inner),
                    "bridge" => register_secret(inner),
                    _ => register_json(inner),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(register_json),
        _ => {}
    }
}

/// A secret field's content: a string, or a bridge (whose policy — origins, methods, paths —
/// is not secret; its URLs and credential headers are).
fn register_secret(value: &Value) {
    match value {
        Value::String(s) => register(s),
        Value::Array(items) => items.iter().for_each(register_secret),
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "url" || key.contains("fallback") {
                    register_secret(inner);
                } else if key == "headers"
                    && let Value::Object(headers) = inner
                {
                    for (name, header) in headers {
                        let name = name.to_ascii_lowercase();
                        if SECRET_HEADER_WORDS.iter().any(|w| name.contains(w)) {
                            register_secret(header);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Scans `text`, seen at `place`, for every canary; remembers a hit for [`assert_clean`].
pub fn scan(place: &str, text: &[u8]) {
    if let Some((canary, excerpt)) = first_hit(text) {
        registry()
            .hits
            .push(format!("{canary:?} in {place}: ...{excerpt}..."));
    }
}

/// The first canary in `text`, with the text around it.
fn first_hit(text: &[u8]) -> Option<(String, String)> {
    let mut registry = registry();
    if registry.canaries.is_empty() {
        return None;
    }
    if registry.matcher.is_none() {
        registry.matcher = AhoCorasick::new(&registry.canaries).ok();
    }
    let found = registry.matcher.as_ref()?.find(text)?;
    let around = &text[found.start().saturating_sub(120)..(found.end() + 120).min(text.len())];
    Some((
        registry.canaries[found.pattern().as_usize()].clone(),
        String::from_utf8_lossy(around).into_owned(),
    ))
}

/// Scans the SQLite files of a data directory (the database, its write-ahead log).
pub fn scan_data_dir(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".db")
            && let Ok(bytes) = std::fs::read(&path)
        {
            scan(&format!("database file {name}"), &bytes);
        }
    }
}

/// Scans a PostgreSQL test database: every row of every table, as PostgreSQL writes a row out
/// as text, with `bytea` in the escape format so that printable bytes show as they are (a
/// secret written unencrypted into a binary column is found). A database that cannot be read
/// counts as a hit: an unscanned database must not pass for a clean one.
pub fn scan_postgres(url: &str) {
    let url = url.to_owned();
    // Called from Drop too, maybe inside a runtime: the work runs on a thread with its own.
    let dumped = std::thread::spawn(move || -> Result<Vec<(String, String)>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime
            .block_on(dump_postgres(&url))
            .map_err(|e| e.to_string())
    })
    .join();
    match dumped {
        Ok(Ok(tables)) => {
            for (table, rows) in tables {
                scan(&format!("PostgreSQL table {table}"), rows.as_bytes());
            }
        }
        Ok(Err(e)) => registry()
            .hits
            .push(format!("the PostgreSQL database could not be scanned: {e}")),
        Err(_) => registry()
            .hits
            .push("scanning the PostgreSQL database panicked".to_owned()),
    }
}

/// Every table of the `public` schema, with its rows as text, one per line.
async fn dump_postgres(url: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql("SET bytea_output = 'escape'")
        .execute(&mut conn)
        .await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut dump = Vec::with_capacity(tables.len());
    for table in tables {
        // The name comes from the catalogue, quoted as an identifier; the alias names the
        // whole row (a short one could be a column's name).
        let select = format!(
            "SELECT canary_scan_row::text FROM \"{}\" canary_scan_row",
            table.replace('"', "\"\"")
        );
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(select))
            .fetch_all(&mut conn)
            .await?;
        dump.push((table, rows.join("\n")));
    }
    conn.close().await?;
    Ok(dump)
}

/// Fails (once per hit) if any canary was seen anywhere so far.
pub fn assert_clean() {
    if std::thread::panicking() {
        return;
    }
    let hits = std::mem::take(&mut registry().hits);
    assert!(hits.is_empty(), "secrets leaked:\n{}", hits.join("\n"));
}

/// Routes the in-process servers' logs (the whole test binary's) through the scanner, once.
pub fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(LOG_FILTER))
            .with_writer(|| ScanningWriter)
            .try_init();
    });
}

/// Each formatted event arrives in one write; it is scanned and dropped.
struct ScanningWriter;

impl Write for ScanningWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        scan("the log", line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The scanner itself: a registered secret is found wherever it sits, in a log line or in JSON
/// an answer carried; short strings and uuids are never canaries.
#[test]
fn registered_secrets_are_found_and_nothing_else() {
    let secret = format!("canary-self-test-{}", uuid::Uuid::new_v4().simple());
    assert!(
        first_hit(format!("a line with {secret} in it").as_bytes())
            .is_none_or(|(c, _)| c != secret)
    );
    register_json(&serde_json::json!({"record": {"name": "n"}, "api_key": secret}));
    let (canary, excerpt) = first_hit(format!("a line with {secret} in it").as_bytes()).unwrap();
    assert_eq!(canary, secret);
    assert!(excerpt.contains("a line with"));

    let uuid = uuid::Uuid::new_v4().to_string();
    register("short");
    register(&uuid);
    let text = format!("short {uuid}");
    assert!(first_hit(text.as_bytes()).is_none());
}

/// The PostgreSQL scan reads text and binary columns alike.
#[tokio::test]
async fn postgres_rows_are_scanned_with_their_bytes() {
    use brine_store::testing::{PostgresForTests, TempDatabase, postgres_for_tests};
    let PostgresForTests::Available(admin) = postgres_for_tests().unwrap() else {
        eprintln!("skipped: no BRINE_TEST_POSTGRES_URL");
        return;
    };
    let database = TempDatabase::create(&admin).await.unwrap();
    let in_text = format!("canary-pg-text-{}", uuid::Uuid::new_v4().simple());
    let in_bytes = format!("canary-pg-bytes-{}", uuid::Uuid::new_v4().simple());
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&database.url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE leak (t text, b bytea)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO leak VALUES ($1, $2)")
            .bind(&in_text)
            .bind(in_bytes.as_bytes())
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let dump = dump_postgres(&database.url).await.unwrap();
    let (table, rows) = dump.iter().find(|(t, _)| t == "leak").unwrap();
    assert_eq!(table, "leak");
    register(&in_text);
    register(&in_bytes);
    assert_eq!(first_hit(rows.as_bytes()).unwrap().0, in_text);
    let after_text = rows.replace(&in_text, "");
    assert_eq!(first_hit(after_text.as_bytes()).unwrap().0, in_bytes);
}
