//! Bridges: `/r/{uuid}` forwards the caller's request to a stored upstream, adding the stored
//! headers server-side, so that a browser can call a third-party API without ever holding its
//! key. The gate decides whether the call may be made; this module makes it: checks the
//! bridge's own rules (origin, method, path, parameters), renders the upstream URL, forwards,
//! streams the answer back with stored secrets scrubbed, and records how the call ended.

pub mod cache;
pub mod compiled;
pub mod inflight;
pub mod playground;
pub mod probe;
pub mod upstream;

use std::sync::atomic::Ordering;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brine_bridge::select::Selector;
use brine_core::BridgePolicy;
use brine_crypto::DataKey;
use brine_limits::Decision;
use brine_store::Record;
use bytes::Bytes;

use self::cache::{BridgeCache, Compiled};
use self::inflight::{InFlight, Ticket};
use self::upstream::{Answer, Call, HOP_HEADER, UpstreamClient};
use crate::access::{Credential, Found, GateError, Refusal};
use crate::audit::{AuditLog, Outcome};
use crate::error::ApiError;
use crate::fault::Fault;
use crate::throttle::{client_network, write_headers};
use crate::vault::Vault;

/// What a caller sent to `/r/{uuid}[/extra]`.
pub struct Incoming {
    pub method: Method,
    /// The path after `/r/{uuid}`, or empty.
    pub extra_path: String,
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Bytes,
    /// Made as an item of `POST /batch` (audited on channel `batch`).
    pub batch: bool,
}

/// Everything bridges use besides the gate.
/// Cheap to clone: one reference count (requests clone handles as they extract them).
#[derive(Clone)]
pub struct Proxy(std::sync::Arc<ProxyParts>);

impl std::ops::Deref for Proxy {
    type Target = ProxyParts;

    fn deref(&self) -> &ProxyParts {
        &self.0
    }
}

pub struct ProxyParts {
    pub upstream: UpstreamClient,
    compiled: BridgeCache,
    inflight: InFlight,
    vault: Vault,
    audit: AuditLog,
    /// Upstream calls one client address may have in flight on this node.
    max_upstream_per_ip: u32,
}

/// A call's details for the audit log: never a query string or a header value.
#[derive(Clone, serde::Serialize)]
struct CallDetail {
    method: String,
    path: String,
    origin: Option<String>,
    status: Option<u16>,
    hop: Option<usize>,
    latency_ms: Option<u64>,
    bytes: Option<u64>,
}

impl CallDetail {
    fn new(incoming: &Incoming) -> Self {
        Self {
            method: incoming.method.as_str().to_owned(),
            path: if incoming.extra_path.is_empty() {
                "/".to_owned()
            } else {
                incoming.extra_path.clone()
            },
            origin: incoming
                .headers
                .get(header::ORIGIN)
                .and_then(|o| o.to_str().ok())
                .map(str::to_owned),
            status: None,
            hop: None,
            latency_ms: None,
            bytes: None,
        }
    }

    fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Proxy {
    pub fn new(
        upstream: UpstreamClient,
        vault: Vault,
        audit: AuditLog,
        max_upstream_per_ip: u32,
    ) -> Self {
        Self(std::sync::Arc::new(ProxyParts {
            upstream,
            compiled: BridgeCache::default(),
            inflight: InFlight::default(),
            vault,
            audit,
            max_upstream_per_ip,
        }))
    }

    /// A call through the bridge that `found` holds, answered as the caller will see it (CORS
    /// included, refusals too). A copy from memory that turns out to be out of date is the one
    /// error returned, for the gate to start again.
    pub async fn call(&self, found: Found, incoming: &Incoming) -> Result<Response, Fault> {
        // A preflight stores no event, so no version check would catch an out-of-date policy.
        if is_preflight(incoming) && !found.trusted_alone() {
            return Err(Fault::Stale);
        }
        let origin = incoming.headers.get(header::ORIGIN);
        let allowed_origin = found
            .record()
            .policy
            .bridge()
            .zip(origin)
            .filter(|(policy, origin)| {
                policy
                    .allowed_origins
                    .iter()
                    .any(|a| a.as_bytes() == origin.as_bytes())
            })
            .map(|(_, origin)| origin.clone());
        let mut response = match self.relay(found, incoming, allowed_origin.is_some()).await {
            Ok(response) => response,
            Err(GateError::Fault(Fault::Stale)) => return Err(Fault::Stale),
            Err(e) => ApiError::from(e).into_response(),
        };
        cors(&mut response, allowed_origin.as_ref());
        Ok(response)
    }

    async fn relay(
        &self,
        found: Found,
        incoming: &Incoming,
        origin_allowed: bool,
    ) -> Result<Response, GateError> {
        let detail = CallDetail::new(incoming);
        let Some(policy) = found.record().policy.bridge() else {
            return Err(Refusal::NotFound.into());
        };
        let policy = policy.clone();
        let prefix = match screen(&policy, incoming, origin_allowed) {
            Screened::Call { prefix } => prefix,
            Screened::Preflight(response) => return Ok(response),
            Screened::Refused(outcome, refusal) => {
                return Err(found.refuse(outcome, refusal, Some(detail.json())).await);
            }
        };
        let credential = match api_key(&incoming.headers) {
            Some(key) => Credential::ApiKey(key.to_owned()),
            None => Credential::Nothing,
        };
        let unlocked = found.admit().await?.unlock(credential).await?;
        let query = query_pairs(incoming.query.as_deref());
        // A malformed expression is refused like a malformed request: no event, nothing spent.
        let select = match query.iter().find(|(k, _)| k == "select") {
            Some((_, expr)) => Some(
                Selector::parse(expr).map_err(|e| Refusal::BadRequest(format!("select: {e}")))?,
            ),
            None => None,
        };
        let compiled = self.compiled(unlocked.record(), unlocked.dek())?;
        // The caller's parameters are checked before anything is spent: a call that cannot be
        // made costs no read and no quota.
        if let Err(e) = check_parameters(&compiled, &policy, &query) {
            return Err(unlocked.refuse(Outcome::BadRequest, e).await);
        }
        let client_cap = unlocked
            .client()
            .addr
            .map(|ip| (client_network(ip), self.max_upstream_per_ip));
        let uuid = unlocked.record().uuid;
        let ticket = match self
            .inflight
            .enter((uuid, policy.max_concurrent), client_cap)
        {
            Ok(ticket) => ticket,
            Err(full) => {
                return Err(unlocked
                    .refuse(Outcome::RateLimited, Refusal::Busy(full))
                    .await);
            }
        };
        let charged = unlocked.charge().await?;
        let rate = charged.rate().cloned();
        let event = charged.start_call(detail.json()).await?;

        let result = upstream::call(
            &self.upstream,
            &compiled.bridge,
            &compiled.scrubber,
            Call {
                method: incoming.method.clone(),
                extra_path: &incoming.extra_path,
                path_prefix: prefix,
                query,
                headers: &incoming.headers,
                body: incoming.body.clone(),
                select: select.as_ref(),
            },
        )
        .await;
        Ok(self.respond(result, event, detail, rate, ticket).await)
    }

    /// The upstream's answer (or the failure to get one) as the caller sees it. The call's event
    /// gets its outcome now, and its size when the body has been relayed.
    async fn respond(
        &self,
        result: Result<Answer, upstream::Failure>,
        event: i64,
        detail: CallDetail,
        rate: Option<Decision>,
        ticket: Ticket,
    ) -> Response {
        let answer = match result {
            Err(failure) => {
                self.audit.settle(event, failure.outcome(), None).await;
                return ApiError::from(failure).into_response();
            }
            Ok(answer) => answer,
        };
        let Answer {
            status,
            mut headers,
            body,
            hop,
            latency,
        } = answer;
        let mut done = CallDetail {
            status: Some(status.as_u16()),
            hop: Some(hop),
            latency_ms: Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
            ..detail
        };
        self.audit
            .settle(event, Outcome::Ok, Some(done.json()))
            .await;
        headers.insert(HOP_HEADER, HeaderValue::from(hop));
        if let Some(rate) = &rate {
            write_headers(rate, &mut headers);
        }
        let sent = body.sent.clone();
        let audit = self.audit.clone();
        let body = body.into_body_then(move |broken| {
            drop(ticket);
            done.bytes = Some(sent.load(Ordering::Relaxed));
            // The head went out as `ok`; a body the upstream broke off is not a success.
            audit.settle_now(event, broken.unwrap_or(Outcome::Ok), done.json());
        });
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }

    fn compiled(&self, record: &Record, dek: &DataKey) -> Result<std::sync::Arc<Compiled>, Fault> {
        self.compiled.get_or_compile(record, &self.vault, dek)
    }
}

/// The X-API-Key header, trimmed.
pub fn api_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Query parameters as the caller sent them, decoded as an HTML form would.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// The caller's parameters: every placeholder filled (the first hop renders), and no method
/// override passed on.
fn check_parameters(
    compiled: &Compiled,
    policy: &BridgePolicy,
    query: &[(String, String)],
) -> Result<(), Refusal> {
    let lookup = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if let Some(first) = compiled.bridge.hops.first()
        && let Err(e) = first.render(&lookup)
    {
        return Err(Refusal::BadRequest(e.to_string()));
    }
    let declared = |name: &str| policy.params.iter().any(|p| p.name == name);
    let passed_on = query
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !declared(k));
    upstream::check_passthrough(passed_on).map_err(|f| match f {
        upstream::Failure::BadInput(message) => Refusal::BadRequest(message),
        _ => Refusal::BadRequest("The query cannot be passed on.".into()),
    })
}

/// CORS headers for an allowed origin; `Vary: Origin` always, since answers differ by origin.
fn cors(response: &mut Response, origin: Option<&HeaderValue>) {
    let headers = response.headers_mut();
    // Relayed answers are served from brine's origin: whatever the upstream sent, they must
    // never run as a page here.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "x-brine-hop, retry-after, ratelimit-limit, ratelimit-remaining, \
                 ratelimit-reset, ratelimit-policy",
            ),
        );
    }
}

/// The allowed prefix that `extra` (after `/r/{uuid}`) starts with, at a segment boundary.
/// Dot segments, encoded dots and backslashes are refused outright, and so are `;` path
/// parameters unless the bridge allows them (a dot segment with parameters, `..;`, always); the
/// rendered URL is checked against the prefix again after normalisation (see `upstream::call`).
pub fn allowed_prefix<'p>(policy: &'p BridgePolicy, extra: &str) -> Option<&'p str> {
    if extra.is_empty() {
        return Some("");
    }
    let lower = extra.to_ascii_lowercase();
    if lower.contains("%2e") || lower.contains('\\') || lower.contains("%5c") {
        return None;
    }
    if !policy.allow_path_params && (extra.contains(';') || lower.contains("%3b")) {
        return None;
    }
    let dot_segment = |segment: &str| matches!(segment.split(';').next(), Some("." | ".."));
    if extra.split('/').any(dot_segment) {
        return None;
    }
    policy
        .allowed_paths
        .iter()
        .map(|p| p.trim_end_matches('/'))
        .find(|prefix| extra == *prefix || extra.starts_with(&format!("{prefix}/")))
}

/// What the bridge's policy says of a call before anything is looked up or spent.
enum Screened<'p> {
    /// Under the allowed path prefix.
    Call {
        prefix: &'p str,
    },
    /// A CORS preflight, answered from the policy and never forwarded.
    Preflight(Response),
    Refused(Outcome, Refusal),
}

/// The policy's checks that need no key and cost nothing: the origin (refused before anything
/// else, so the upstream is never called), the preflight, the method and the path.
fn screen<'p>(policy: &'p BridgePolicy, incoming: &Incoming, origin_allowed: bool) -> Screened<'p> {
    if incoming.headers.contains_key(header::ORIGIN) && !origin_allowed {
        return Screened::Refused(Outcome::Forbidden, Refusal::OriginNotAllowed);
    }
    if is_preflight(incoming) {
        return Screened::Preflight(preflight(policy.methods(), &incoming.headers));
    }
    if !policy.methods().contains(&incoming.method) {
        let refusal = Refusal::MethodNotAllowed {
            allowed: policy.methods().to_vec(),
            message: "This bridge does not accept that method.",
        };
        return Screened::Refused(Outcome::Denied, refusal);
    }
    match allowed_prefix(policy, &incoming.extra_path) {
        Some(prefix) => Screened::Call { prefix },
        None => Screened::Refused(Outcome::Denied, Refusal::PathNotAllowed),
    }
}

fn is_preflight(incoming: &Incoming) -> bool {
    incoming.method == Method::OPTIONS
        && incoming
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn preflight(methods: &[Method], request: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    let allow = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&allow) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
    }
    // The origin is allowed, so the headers its page wants to send are too (the stored ones
    // replace any of the same name anyway).
    if let Some(requested) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}
