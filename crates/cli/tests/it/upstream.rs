//! A real third-party API stand-in for bridge tests: a small HTTP server on 127.0.0.1:0 that
//! records what it receives and can answer slowly, stream, fail or redirect.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// What the upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// `/sse` sends its first event, then waits for a permit before sending the rest.
    release: Arc<Semaphore>,
    /// `/gate?n=N` answers once N calls are inside at the same time (or gives up after 2 s).
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    inside: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    opened: tokio::sync::Notify,
}

pub struct Upstream {
    pub base: String,
    shared: Shared,
}

impl Upstream {
    pub async fn start() -> Self {
        let shared = Shared {
            seen: Arc::default(),
            release: Arc::new(Semaphore::new(0)),
            gate: Arc::default(),
        };
        let app = Router::new()
            .fallback(any(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The most calls that were inside `/gate` at once.
    pub fn most_at_once(&self) -> usize {
        self.shared
            .gate
            .most
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Lets a waiting `/sse` answer finish.
    pub fn release_stream(&self) {
        self.shared.release.add_permits(1);
    }
}

/// A loopback port where nothing listens.
pub async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    shared.seen.lock().unwrap().push(seen.clone());
    let path = uri.path();
    if path.starts_with("/weather") {
        return axum::Json(json!({
            "location": {"name": "Paris", "country": "FR"},
            "current": {"temp_c": 21.5, "condition": "sunny"},
            "items": [1, 2, 3],
        }))
        .into_response();
    }
    match path {
        "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "upstream broke").into_response(),
        "/gate" => {
            use std::sync::atomic::Ordering::SeqCst;
            let want: usize = query.get("n").and_then(|n| n.parse().ok()).unwrap_or(2);
            let gate = &shared.gate;
            let opened = gate.opened.notified();
            let now = gate.inside.fetch_add(1, SeqCst) + 1;
            gate.most.fetch_max(now, SeqCst);
            if now >= want {
                gate.opened.notify_waiters();
            } else {
                let _ = tokio::time::timeout(Duration::from_secs(2), opened).await;
            }
            gate.inside.fetch_sub(1, SeqCst);
            axum::Json(json!({"together": now})).into_response()
        }
        "/slow" => {
            let ms = query.get("ms").and_then(|m| m.parse().ok()).unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            axum::Json(json!({"slow": true})).into_response()
        }
        "/cookie" => (
            [
                (header::SET_COOKIE, "session=upstream"),
                (header::HeaderName::from_static("x-upstream"), "yes"),
            ],
            "with a cookie",
        )
            .into_response(),
        "/redirect" => {
            let target = query.get("to").cloned().unwrap_or_default();
            (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
        }
        "/echo-key" => {
            // A careless API that repeats the credential it was given, in three encodings.
            let auth = seen
                .headers
                .get("authorization")
                .cloned()
                .unwrap_or_default();
            let key = auth
                .split_once(' ')
                .map_or(auth.as_str(), |(_, k)| k)
                .to_owned();
            let b64 = base64::engine::general_purpose::STANDARD.encode(&key);
            let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
            (
                StatusCode::UNAUTHORIZED,
                [(header::HeaderName::from_static("x-echo"), auth.clone())],
                format!("invalid key {key} (base64 {b64}, url {encoded}); header was {auth}"),
            )
                .into_response()
        }
        "/echo-escaped" => {
            // The credential repeated the way other encoders write it: Go's encoding/json (which
            // escapes & < >), .NET's System.Text.Json (upper-case hex), every character escaped,
            // and percent-encoding with hex digits in mixed case.
            let auth = seen
                .headers
                .get("authorization")
                .cloned()
                .unwrap_or_default();
            let key = auth
                .split_once(' ')
                .map_or(auth.as_str(), |(_, k)| k)
                .to_owned();
            let go: String = key
                .chars()
                .map(|c| match c {
                    '<' | '>' | '&' => format!("\\u{:04x}", c as u32),
                    c => c.to_string(),
                })
                .collect();
            let dotnet: String = key
                .chars()
                .map(|c| match c {
                    '<' | '>' | '&' | '+' | '\'' | '"' => format!("\\u{:04X}", c as u32),
                    c => c.to_string(),
                })
                .collect();
            let every: String = key
                .chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect();
            let mixed: String = key
                .bytes()
                .enumerate()
                .map(|(i, b)| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ if i % 2 == 0 => format!("%{b:02x}"),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            let body = format!(
                r#"{{"go":"{go}","dotnet":"{dotnet}","every":"{every}","url":"https://x.example/?k={mixed}"}}"#
            );
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        "/echo-auth" => (
            StatusCode::UNAUTHORIZED,
            format!(
                "you sent: {}",
                seen.headers
                    .get("authorization")
                    .cloned()
                    .unwrap_or_default()
            ),
        )
            .into_response(),
        "/big" => {
            // A JSON array of about `kib` KiB; with `hold`, the closing bracket waits until the
            // test releases the stream, so the answer stays unfinished (and buffered) until then.
            let kib: usize = query.get("kib").and_then(|k| k.parse().ok()).unwrap_or(100);
            let hold = query.contains_key("hold");
            let release = shared.release.clone();
            let item = format!("\"{}\",", "x".repeat(1022));
            let head = Bytes::from(format!("[{}\"end\"", item.repeat(kib)));
            let stream = futures::stream::unfold(0u8, move |step| {
                let (release, head) = (release.clone(), head.clone());
                async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(head), 1)),
                        1 => {
                            if hold {
                                let _permit = release.acquire().await.ok()?;
                            }
                            Some((Ok(Bytes::from_static(b"]")), 2))
                        }
                        _ => None,
                    }
                }
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        "/sse" => {
            let release = shared.release.clone();
            let stream = async_stream(release);
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        _ => axum::Json(json!({
            "method": seen.method,
            "path": seen.path,
            "query": seen.query,
            "headers": seen.headers,
            "body": seen.body,
        }))
        .into_response(),
    }
}

/// One event now, the rest only once the test releases the stream.
fn async_stream(
    release: Arc<Semaphore>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(0u8, move |step| {
        let release = release.clone();
        async move {
            match step {
                0 => Some((Ok(Bytes::from_static(b"data: {\"n\":1}\n\n")), 1)),
                1 => {
                    let _permit = release.acquire().await.ok()?;
                    Some((
                        Ok(Bytes::from_static(b"data: {\"n\":2}\n\ndata: [DONE]\n\n")),
                        2,
                    ))
                }
                _ => None,
            }
        }
    })
}

pub fn as_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}
