//! The one HTTP client every command uses: JSON in and out, the server's error envelope turned
//! into a readable error, connection problems explained in terms of the server URL.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use super::input::Secret;
use super::table::clean;

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(60);
/// The longest an export may stream for.
const STREAM_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

const NO_KEY_HINT: &str =
    "this record is private: give its X-API-Key with --api-key-file FILE or BRINE_API_KEY";

/// What a request carries to prove who is asking.
#[derive(Default, Clone, Copy)]
pub struct Auth<'a> {
    /// The session token, for the management API.
    pub bearer: Option<&'a str>,
    /// An X-API-Key.
    pub api_key: Option<&'a Secret>,
    /// Reading a record at `/r/{uuid}`, where a 401 means a missing or wrong key.
    pub reading: bool,
}

impl<'a> Auth<'a> {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn bearer(token: &'a str) -> Self {
        Self {
            bearer: Some(token),
            ..Self::default()
        }
    }

    /// For reading a record: its X-API-Key, if there is one.
    pub fn read(key: Option<&'a Secret>) -> Self {
        Self {
            api_key: key,
            reading: true,
            ..Self::default()
        }
    }
}

/// The server refused, with its `{"error", "message"}` envelope.
#[derive(Debug)]
pub struct ServerError {
    pub status: StatusCode,
    pub error: String,
    pub message: String,
    pub hint: Option<&'static str>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hostile server could send terminal escape sequences; show control characters as `?`.
        write!(f, "{}: {}", clean(&self.error), clean(&self.message))?;
        if let Some(hint) = self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

#[derive(Deserialize)]
struct Envelope {
    error: String,
    message: String,
}

pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(server: &str) -> anyhow::Result<Self> {
        let base = normalize_server(server)?;
        let client = reqwest::Client::builder()
            .no_proxy()
            // A redirect would carry the X-API-Key (a custom header) to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TIMEOUT)
            .user_agent(concat!("brine-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self { client, base })
    }

    /// The server URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request and returns the JSON answer (`Value::Null` for an empty one).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = auth.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(key) = auth.api_key {
            request = request.header("X-API-Key", key.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|_| {
                anyhow!(
                    "the server at {} answered with something that is not JSON; is it a brine server?",
                    self.base
                )
            });
        }
        Err(self.refusal(status, &bytes, auth))
    }

    /// Sends a GET whose answer may be long (an export): the body is left to the caller to
    /// stream, with no overall deadline (the connection's own timeouts still apply).
    pub async fn stream(&self, path: &str, auth: Auth<'_>) -> anyhow::Result<reqwest::Response> {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base))
            .timeout(STREAM_TIMEOUT);
        if let Some(token) = auth.bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        Err(self.refusal(status, &bytes, auth))
    }

    /// The error for a refusal: the server's envelope, with a hint when there is one.
    fn refusal(&self, status: StatusCode, bytes: &[u8], auth: Auth<'_>) -> anyhow::Error {
        match serde_json::from_slice::<Envelope>(bytes) {
            Ok(envelope) => ServerError {
                status,
                hint: hint(status, &envelope.error, auth),
                error: envelope.error,
                message: envelope.message,
            }
            .into(),
            Err(_) => anyhow!(
                "the server at {} answered {status} without an explanation; is it a brine server?",
                self.base
            ),
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> anyhow::Error {
        let cause = root_cause(e);
        if e.is_connect() {
            anyhow!(
                "cannot connect to the brine server at {} ({cause}); is it running there? (the \
                 address comes from `brine login --server URL` for your session, and from \
                 --server or BRINE_SERVER for `signup`, `login`, `get` and `run`)",
                self.base
            )
        } else if e.is_timeout() {
            anyhow!(
                "the brine server at {} did not answer within {} seconds",
                self.base,
                TIMEOUT.as_secs()
            )
        } else {
            anyhow!("the request to {} failed: {cause}", self.base)
        }
    }
}

/// What to do about a refusal, when we can tell.
fn hint(status: StatusCode, error: &str, auth: Auth<'_>) -> Option<&'static str> {
    // A bridge's new key that its probe could not test (the upstream is down, say).
    if error == "Key not tested" && status != StatusCode::BAD_REQUEST {
        return Some("`brine bridges set ... --no-verify` saves it without testing");
    }
    if status != StatusCode::UNAUTHORIZED {
        return None;
    }
    match (auth.bearer, auth.api_key) {
        // Without a key, only the session token can have been refused.
        (Some(_), None) => Some("your session has ended; run `brine login` to sign in again"),
        (Some(_), Some(_)) if error == "Unauthorized" => {
            Some("your session has ended; run `brine login` to sign in again")
        }
        (Some(_), Some(_)) => Some("the current X-API-Key is not right for this record"),
        (None, None) if auth.reading => Some(NO_KEY_HINT),
        (None, _) => None,
    }
}

/// The innermost error, e.g. "Connection refused (os error 111)", without the URL reqwest adds.
fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// Checks the server URL and drops a trailing slash. Plain http to a remote host is allowed
/// (a private network may be fine) but warned about: tokens, keys and values would travel in
/// clear text.
pub fn normalize_server(server: &str) -> anyhow::Result<String> {
    let server = server.trim();
    // `127.0.0.1:8080` or `vault.example.com` mean what they say: plain http on this machine,
    // https elsewhere.
    let full;
    let server = if server.contains("://") {
        server
    } else {
        let host = server.split(['/', ':']).next().unwrap_or_default();
        let scheme = if host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
            || server.starts_with("[::1]")
        {
            "http"
        } else {
            "https"
        };
        full = format!("{scheme}://{server}");
        &full
    };
    let url = Url::parse(server)
        .map_err(|e| anyhow!("the server URL {server:?} is not valid ({e}); write it as http://127.0.0.1:8080 or https://vault.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("the server URL must start with http:// or https://, not {server:?}");
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("the server URL must not contain a user name or password");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("the server URL must not have a query (?...) or fragment (#...)");
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        eprintln!(
            "brine: warning: {} uses plain http; secrets sent to it are not encrypted in transit",
            url.as_str().trim_end_matches('/')
        );
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked_and_normalized() {
        assert_eq!(
            normalize_server("http://127.0.0.1:8080/").ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            normalize_server("https://vault.example.com/brine/")
                .ok()
                .as_deref(),
            Some("https://vault.example.com/brine")
        );
        assert!(normalize_server("ftp://x").is_err());
        // Without a scheme: http on this machine, https elsewhere.
        assert_eq!(
            normalize_server("127.0.0.1:8080").ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            normalize_server("localhost:8092").ok().as_deref(),
            Some("http://localhost:8092")
        );
        assert_eq!(
            normalize_server("vault.example.com").ok().as_deref(),
            Some("https://vault.example.com")
        );
        assert!(normalize_server("https://u:p@x").is_err());
    }
}
