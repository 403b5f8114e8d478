//! Request extractors that turn every kind of bad input into the error envelope.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use std::sync::Arc;

use axum::extract::FromRef;

use crate::client_ip::TrustedProxies;
use crate::client_origin::{ClientTag, Origin, Origins};
use crate::error::ApiError;

/// A JSON request body. Unlike `axum::Json`, its errors use the envelope, and they never echo
/// the submitted values (which may be secrets), only field names and positions.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::not_json());
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(describe_json_error(&e)))
    }
}

/// Whether a request declares a JSON body. Browsers cannot send that type to another site without
/// a CORS preflight, which is what keeps other sites' pages from posting to brine's JSON routes.
pub fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

/// The raw request body, with the error envelope for bodies too large, too slow or unreadable.
pub struct RawBody(pub Bytes);

/// How long a client has to send a whole request body (the router sets it on every request), so
/// that a slow sender cannot hold a worker and a connection indefinitely.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub std::time::Duration);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let deadline = req.extensions().get::<BodyReadTimeout>().map(|t| t.0);
        let read = Bytes::from_request(req, state);
        let read = match deadline {
            Some(deadline) => tokio::time::timeout(deadline, read).await.map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "Request timeout",
                    "The request body did not arrive in time.",
                )
            })?,
            None => read.await,
        };
        read.map(RawBody).map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Payload too large",
                    "The request body is larger than this server accepts.",
                )
            } else {
                ApiError::bad_request("The request body could not be read.")
            }
        })
    }
}

/// A safe description of a JSON error: which field or where, never the offending value.
fn describe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let detail = text.split(" at line ").next().unwrap_or_default();
    let position = format!("line {}, column {}", e.line(), e.column());
    if detail.starts_with("missing field") {
        // A missing field's name comes from our own schema, so it is safe to repeat.
        let field = detail.split('`').nth(1).unwrap_or("?");
        return format!("Missing field '{field}' in the JSON body.");
    }
    if detail.starts_with("unknown field") {
        return format!("Unknown field in the JSON body ({position}).");
    }
    match e.classify() {
        serde_json::error::Category::Data => {
            format!("A field in the JSON body has the wrong type or value ({position}).")
        }
        serde_json::error::Category::Eof => "The JSON body is incomplete.".to_owned(),
        _ => format!("The request body is not valid JSON ({position})."),
    }
}

/// The `{uuid}` of a record path. Anything that is not a uuid gets the same 404 as an unknown
/// record, so malformed and missing ids are indistinguishable.
pub struct RecordId(pub Uuid);

/// A uuid in its one accepted spelling: lower-case, hyphenated (`6f1c2a8e-0b7d-...`). Other
/// spellings of the same uuid (upper case, braces, `urn:uuid:`, no hyphens) are treated as
/// unknown ids, so that limits, caches and logs keyed by the text cannot be split.
pub fn canonical_uuid(text: &str) -> Option<Uuid> {
    let uuid = Uuid::try_parse(text).ok()?;
    let mut buffer = Uuid::encode_buffer();
    (uuid.hyphenated().encode_lower(&mut buffer) == text).then_some(uuid)
}

impl<S: Send + Sync> FromRequestParts<S> for RecordId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        canonical_uuid(&raw)
            .map(RecordId)
            .ok_or_else(ApiError::not_found)
    }
}

/// Query parameters, with the error envelope on bad input.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|_| ApiError::bad_request("The query parameters are not valid."))
    }
}

/// Who is calling: the client address (see `client_ip`), for the limits in memory, and what is
/// stored about the client in the chosen forms (see `client_origin`), for the audit log, the
/// lockout, account events and sessions.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub addr: Option<std::net::IpAddr>,
    pub origin: Origin,
    /// The client for the rate limits: a keyed hash, never the address.
    pub tag: Option<ClientTag>,
}

const MAX_USER_AGENT: usize = 256;

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo
where
    Arc<TrustedProxies>: FromRef<S>,
    Arc<Origins>: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let proxies = Arc::<TrustedProxies>::from_ref(state);
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| proxies.client_ip(addr.ip(), &parts.headers));
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| truncate(ua, MAX_USER_AGENT));
        let (origin, tag) = Arc::<Origins>::from_ref(state).describe(addr, user_agent);
        Ok(Self { addr, origin, tag })
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Headers and body of a call described in JSON (playground, batch items): header names and
/// values are checked; a string body is sent as is, anything else as JSON.
pub fn call_parts(
    headers: &std::collections::BTreeMap<String, String>,
    body: Option<serde_json::Value>,
) -> Result<(axum::http::HeaderMap, Bytes), String> {
    use axum::http::{HeaderMap, HeaderName, HeaderValue};
    let mut map = HeaderMap::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("'{name}' is not a header name."))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| "A header value is not valid.".to_owned())?;
        map.append(name, value);
    }
    let body = match body {
        None => Bytes::new(),
        Some(serde_json::Value::String(text)) => Bytes::from(text),
        Some(json) => {
            if !map.contains_key(header::CONTENT_TYPE) {
                map.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            Bytes::from(json.to_string())
        }
    };
    Ok((map, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_never_echo_values() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            access: Option<brine_core::Access>,
            n: Option<u32>,
        }
        for body in [
            r#"{"access":"sk_live_canary"}"#,
            r#"{"n":"sk_live_canary"}"#,
            r#"{"sk_live_canary":1}"#,
            r#"{"n": 1, "#,
            r#"sk_live_canary"#,
        ] {
            let err = serde_json::from_str::<T>(body).err();
            let msg = err.map(|e| describe_json_error(&e)).unwrap_or_default();
            assert!(!msg.is_empty(), "{body} should fail");
            assert!(!msg.contains("sk_live_canary"), "{msg}");
        }
    }

    #[test]
    fn only_the_canonical_uuid_spelling_is_accepted() {
        let canonical = "6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978";
        assert!(canonical_uuid(canonical).is_some());
        for other in [
            "6F1C2A8E-0B7D-4F0E-9A51-2D3C4B5A6978",
            "{6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978}",
            "urn:uuid:6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978",
            "6f1c2a8e0b7d4f0e9a512d3c4b5a6978",
            "6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a697",
            "",
        ] {
            assert!(canonical_uuid(other).is_none(), "{other}");
        }
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
