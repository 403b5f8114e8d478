//! Bridges: `/r/{uuid}` forwards the caller's request to a stored upstream, adding the stored
//! headers server-side, so that a browser can call a third-party API without ever holding its key.

pub mod cache;
pub mod config;
pub mod forward;
pub mod inflight;

use std::sync::atomic::Ordering;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brine_bridge::scrub::Scrubber;
use brine_bridge::select::Selector;
use brine_core::{Access, RecordStatus, read_status};
use brine_store::Record;
use bytes::Bytes;

use self::config::{Bridge, BridgePolicy, BridgeSecrets};
use self::forward::{Answer, Call, HOP_HEADER};
use self::inflight::Holder;
use crate::audit::{Channel, Outcome};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::extract::ClientInfo;
use crate::limits::RecordLimits;
use crate::state::AppState;
use crate::vault;

/// What a caller sent to `/r/{uuid}[/extra]`.
pub struct Incoming {
    pub method: Method,
    pub extra_path: String,
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Bytes,
    /// The audit channel: `bridge`, or `batch` for an item of `POST /batch`.
    pub channel: Channel,
}

pub fn policy_of(record: &Record) -> ApiResult<BridgePolicy> {
    let text = record.policy.as_deref().ok_or_else(|| {
        tracing::error!(record = %record.uuid, "bridge record without a policy");
        ApiError::internal()
    })?;
    serde_json::from_str(text).map_err(|e| {
        tracing::error!(record = %record.uuid, error = %e, "unreadable bridge policy");
        ApiError::internal()
    })
}

/// Decrypts and compiles a bridge with a data key already obtained.
pub fn open(
    record: &Record,
    dek: &brine_crypto::DataKey,
    policy: BridgePolicy,
) -> ApiResult<Bridge> {
    let plain = vault::decrypt(record, dek)?;
    let secrets: BridgeSecrets = serde_json::from_str(&plain).map_err(|_| ApiError::internal())?;
    Bridge::compile(&secrets, policy)
}

/// Fallback URLs a stored bridge has beyond [`config::MAX_FALLBACKS`] (never tried), for its
/// owner's view. Sealed bridges cannot be opened by the server and report none.
pub fn unused_fallbacks(state: &AppState, record: &Record) -> ApiResult<usize> {
    if record.kind != brine_core::RecordKind::Bridge || record.sealed {
        return Ok(0);
    }
    let dek = vault::data_key_from_server(state, record)?;
    let plain = zeroize::Zeroizing::new(vault::decrypt(record, &dek)?);
    let secrets: BridgeSecrets = serde_json::from_str(&plain).map_err(|_| ApiError::internal())?;
    Ok(secrets.unused_fallbacks())
}

fn origin_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "Origin not allowed",
        "Your origin is not authorized to access this endpoint.",
    )
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
    fn new(incoming: &Incoming, origin: Option<&HeaderValue>) -> Self {
        Self {
            method: incoming.method.as_str().to_owned(),
            path: if incoming.extra_path.is_empty() {
                "/".to_owned()
            } else {
                incoming.extra_path.clone()
            },
            origin: origin.and_then(|o| o.to_str().ok()).map(str::to_owned),
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

/// The allowed prefix that `extra` (after `/r/{uuid}`) starts with, at a segment boundary.
/// Dot segments, encoded dots and backslashes are refused outright, and so are `;` path
/// parameters unless the bridge allows them (a dot segment with parameters, `..;`, always); the
/// rendered URL is checked against the prefix again after normalisation (see `forward::call`).
fn allowed_prefix<'p>(policy: &'p BridgePolicy, extra: &str) -> Option<&'p str> {
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

pub async fn handle(
    state: &AppState,
    record: Record,
    incoming: Incoming,
    client: &ClientInfo,
) -> Response {
    let origin = incoming.headers.get(header::ORIGIN).cloned();
    let policy = match policy_of(&record) {
        Ok(policy) => policy,
        Err(e) => return e.into_response(),
    };
    let allowed_origin = match &origin {
        None => None,
        Some(o)
            if policy
                .allowed_origins
                .iter()
                .any(|a| a.as_bytes() == o.as_bytes()) =>
        {
            Some(o.clone())
        }
        Some(_) => {
            // Refused before anything else: the upstream is never called.
            let event = CallDetail::new(&incoming, origin.as_ref()).json();
            if let Err(e) = audit(
                state,
                &record,
                &incoming,
                Outcome::Forbidden,
                client,
                &event,
            )
            .await
            {
                return e.into_response();
            }
            let mut response = origin_not_allowed().into_response();
            cors(&mut response, None);
            return response;
        }
    };
    let mut response =
        match forward(state, record, &policy, &incoming, client, origin.as_ref()).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        };
    cors(&mut response, allowed_origin.as_ref());
    response
}

async fn audit(
    state: &AppState,
    record: &Record,
    incoming: &Incoming,
    outcome: Outcome,
    client: &ClientInfo,
    detail: &str,
) -> ApiResult<i64> {
    crate::audit::record_event_with_detail(
        state,
        record.uuid,
        incoming.channel,
        outcome,
        client,
        Some(detail),
    )
    .await
}

async fn forward(
    state: &AppState,
    record: Record,
    policy: &BridgePolicy,
    incoming: &Incoming,
    client: &ClientInfo,
    origin: Option<&HeaderValue>,
) -> ApiResult<Response> {
    let methods = policy.methods()?;
    // Preflight: answered here from the policy, never forwarded.
    if incoming.method == Method::OPTIONS
        && incoming
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return Ok(preflight(&methods, &incoming.headers));
    }
    let call_detail = CallDetail::new(incoming, origin);
    let refuse = |outcome: Outcome, error: ApiError| {
        let event = call_detail.json();
        let record = &record;
        async move {
            audit(state, record, incoming, outcome, client, &event).await?;
            Err::<Response, ApiError>(error)
        }
    };
    if !methods.contains(&incoming.method) {
        let mut error = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "This bridge does not accept that method.",
        );
        error.allow = Some(
            methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        );
        return refuse(Outcome::Denied, error).await;
    }
    let Some(prefix) = allowed_prefix(policy, &incoming.extra_path) else {
        return refuse(Outcome::Denied, ApiError::route_not_found()).await;
    };
    let now = now_ms();
    if read_status(record.expires_at, record.max_reads, record.reads, now) != RecordStatus::Active {
        return refuse(Outcome::Gone, ApiError::not_found()).await;
    }
    // Limits bind before the key is checked: guessing keys costs budget too.
    let limits = RecordLimits::of(&record);
    let rate = crate::limits::admit_call(state, &record, limits.as_ref(), incoming.channel, client)
        .await?;
    let dek = match record.access {
        Access::OwnerOnly => return refuse(Outcome::Forbidden, ApiError::owner_only()).await,
        Access::Public => vault::data_key_from_server(state, &record)?,
        Access::Private => {
            let key = incoming
                .headers
                .get(crate::routes::public::API_KEY_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim);
            match key.and_then(|k| vault::data_key_from_api_key(&record, k)) {
                Some(dek) => dek,
                None => return refuse(Outcome::Denied, ApiError::api_key_required()).await,
            }
        }
    };
    let query: Vec<(String, String)> = incoming
        .query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let select = match query.iter().find(|(k, _)| k == "select") {
        Some((_, expr)) => {
            Some(Selector::parse(expr).map_err(|e| ApiError::bad_request(format!("select: {e}")))?)
        }
        None => None,
    };
    let compiled = state.bridges.get_or_open(&record, &dek, policy)?;
    let (bridge, scrubber) = (&compiled.bridge, &compiled.scrubber);
    // Parameters are checked before a read is claimed: a call that cannot be made costs none.
    let lookup = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if let Err(e) = bridge.hops[0].render(&lookup) {
        return refuse(Outcome::BadRequest, ApiError::bad_request(e.to_string())).await;
    }
    let declared = |name: &str| policy.params.iter().any(|p| p.name == name);
    let passed_on = query
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !declared(k));
    if let Err(failure) = forward::check_passthrough(passed_on) {
        return refuse(failure.outcome(), failure.into_error()).await;
    }
    let client_cap = client
        .addr
        .map(|ip| (crate::limits::client_network(ip), state.max_upstream_per_ip));
    let ticket = match state
        .inflight
        .enter((record.uuid, policy.max_concurrent), client_cap)
    {
        Ok(ticket) => ticket,
        Err(full) => return refuse(Outcome::RateLimited, busy(full)).await,
    };
    if let Some(exhausted) = crate::limits::take_quota(state, &record, limits.as_ref()).await? {
        return refuse(Outcome::RateLimited, exhausted).await;
    }
    if record.max_reads.is_some() && !state.store.claim_read(record.uuid, now).await? {
        return refuse(Outcome::Gone, ApiError::not_found()).await;
    }
    let event_id = audit(
        state,
        &record,
        incoming,
        Outcome::Attempt,
        client,
        &call_detail.json(),
    )
    .await?;

    let result = forward::call(
        &state.upstream,
        bridge,
        scrubber,
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
    match result {
        Err(failure) => {
            state
                .audit
                .settle(event_id, failure.outcome(), None)
                .await?;
            Err(failure.into_error())
        }
        Ok(answer) => {
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
                ..call_detail
            };
            state
                .audit
                .settle(event_id, Outcome::Ok, Some(done.json()))
                .await?;
            headers.insert(HOP_HEADER, HeaderValue::from(hop));
            if let Some(rate) = &rate {
                crate::limits::write_headers(rate, &mut headers);
            }
            // When the body has been relayed, its size completes the audit event.
            let sent = body.sent.clone();
            let audit = state.audit.clone();
            let body = body.into_body_then(move || {
                drop(ticket);
                done.bytes = Some(sent.load(Ordering::Relaxed));
                audit.settle_later(event_id, Outcome::Ok, done.json());
            });
            let mut response = Response::new(body);
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            Ok(response)
        }
    }
}

/// The answer when a bridge, or the caller's address, has its limit of calls in flight.
fn busy(full: Holder) -> ApiError {
    let mut error = match full {
        Holder::Bridge(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Bridge busy",
            "Too many calls are in flight through this bridge; retry shortly.",
        ),
        Holder::Client(_) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many calls in flight",
            "Your address has too many calls in flight through this server; retry shortly.",
        ),
    };
    error.retry_after = Some(1);
    error.refusal = Some("busy");
    error
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

/// A call from the owner's playground.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TryCall {
    /// Default GET.
    pub method: Option<String>,
    /// A path below the bridge's URL (must be in `allowed_paths`).
    #[serde(default)]
    pub path: String,
    /// Query parameters, as a caller would send them (declared params fill the URL).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// A string is sent as is; anything else as JSON.
    #[schema(value_type = Option<Object>)]
    pub body: Option<serde_json::Value>,
    pub select: Option<String>,
}

/// What the playground shows: the answer a caller would get, and how long it took.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TryResult {
    pub status: u16,
    pub headers: std::collections::BTreeMap<String, String>,
    /// JSON when the answer is JSON, else text.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// 0 when the primary URL answered, 1 for the first fallback, ...
    pub hop: usize,
    pub duration_ms: u64,
}

const TRY_BODY_LIMIT: usize = 1024 * 1024;

/// Runs one call through a bridge for its owner: the same policy, templating, headers, select
/// and scrubbing as a caller gets (no origin or key needed), with the answer buffered.
pub async fn try_call(state: &AppState, record: &Record, call: TryCall) -> ApiResult<TryResult> {
    if record.kind != brine_core::RecordKind::Bridge {
        return Err(ApiError::bad_request("Only bridges can be tried."));
    }
    let policy = policy_of(record)?;
    let methods = policy.methods()?;
    let method = Method::from_bytes(
        call.method
            .as_deref()
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .as_bytes(),
    )
    .map_err(|_| ApiError::bad_request("'method' is not an HTTP method."))?;
    if !methods.contains(&method) {
        return Err(ApiError::bad_request(
            "This bridge does not accept that method.",
        ));
    }
    let prefix = allowed_prefix(&policy, &call.path)
        .filter(|_| call.path.is_empty() || call.path.starts_with('/'))
        .ok_or_else(|| ApiError::bad_request("That path is not in the bridge's allowed_paths."))?
        .to_owned();
    let dek = vault::data_key_from_server(state, record)?;
    let bridge = open(record, &dek, policy)?;
    let scrubber = Scrubber::new(bridge.secrets.iter().map(String::as_str));
    let select = call
        .select
        .as_deref()
        .map(Selector::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("select: {e}")))?;
    let (headers, body) = crate::extract::call_parts(&call.headers, call.body)?;
    let mut query: Vec<(String, String)> = call.params.into_iter().collect();
    if let Some(expr) = call.select {
        query.push(("select".into(), expr));
    }
    let started = std::time::Instant::now();
    let answer = forward::call(
        &state.upstream,
        &bridge,
        &scrubber,
        Call {
            method,
            extra_path: &call.path,
            path_prefix: &prefix,
            query,
            headers: &headers,
            body,
            select: select.as_ref(),
        },
    )
    .await
    .map_err(forward::Failure::into_error)?;
    let is_json = forward::is_json(&answer.headers);
    let bytes = answer
        .body
        .collect(TRY_BODY_LIMIT)
        .await
        .map_err(forward::Failure::into_error)?;
    let body = if is_json || select.is_some() {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        })
    } else {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    };
    Ok(TryResult {
        status: answer.status.as_u16(),
        headers: answer
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
        hop: answer.hop,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}
