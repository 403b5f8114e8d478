//! `POST /batch`: several reads or bridge calls in one request, each behaving exactly as the same
//! call to `/r/{uuid}` would — same access checks, origin allowlists, methods, templating, select,
//! audit (on channel `batch`) — run concurrently, each answered on its own.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::to_bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use brine_proto::{BatchItem, BatchRequest, BatchResponse, BatchResult};

use crate::access::Gate;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientInfo};
use crate::open::open;
use crate::proxy::{Incoming, Proxy};

/// Batch limits: how many items, how many at once, how long in all, how large an item's answer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchSettings {
    pub max_items: usize,
    pub concurrency: usize,
    pub deadline_ms: u64,
    pub max_item_bytes: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_items: 20,
            concurrency: 8,
            deadline_ms: 15_000,
            max_item_bytes: 1024 * 1024,
        }
    }
}

/// Several calls in one request.
///
/// Each item is answered as `/r/{uuid}` would answer it; one item failing never fails the batch.
/// Items run concurrently; an item still running at the batch deadline reports 504.
#[utoipa::path(post, path = "/batch", tag = "read",
    request_body = BatchRequest,
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "Every item's answer, in order", body = BatchResponse),
        (status = 400, description = "Too many items, or a malformed batch", body = ErrorBody),
        (status = 413, description = "The batch body is too large", body = ErrorBody),
    ))]
pub async fn batch(
    State(gate): State<Gate>,
    State(proxy): State<Proxy>,
    State(limits): State<BatchSettings>,
    client: ClientInfo,
    headers: HeaderMap,
    ApiJson(request): ApiJson<BatchRequest>,
) -> ApiResult<Response> {
    if request.requests.is_empty() || request.requests.len() > limits.max_items {
        return Err(ApiError::bad_request(format!(
            "A batch holds 1 to {} requests.",
            limits.max_items
        )));
    }
    let origin = headers.get(header::ORIGIN).cloned();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(limits.deadline_ms);
    let (gate, proxy, client) = (&gate, &proxy, &client);
    let results: Vec<BatchResult> = futures_util::stream::iter(request.requests)
        .map(|item| {
            let origin = origin.clone();
            async move {
                let uuid = item.uuid.clone();
                let item = run(gate, proxy, client, item, origin, limits);
                match tokio::time::timeout_at(deadline, item).await {
                    Ok(result) => result,
                    Err(_) => failed(
                        uuid,
                        StatusCode::GATEWAY_TIMEOUT,
                        "Timeout",
                        "The batch deadline passed before this item finished.",
                    ),
                }
            }
        })
        .buffered(limits.concurrency.max(1))
        .collect()
        .await;
    let completed = results.iter().all(|r| r.status < 400);
    let mut response = Json(BatchResponse { results, completed }).into_response();
    // Any page may send a batch: each item enforces its own bridge's origin list, and what a
    // private item returns still needs its key.
    if let Some(origin) = origin {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(response)
}

/// The batch preflight: any origin may send one.
pub async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = headers.get(header::ORIGIN) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

fn failed(uuid: String, status: StatusCode, error: &str, message: &str) -> BatchResult {
    BatchResult {
        uuid,
        status: status.as_u16(),
        headers: BTreeMap::new(),
        body: serde_json::json!({"error": error, "message": message}),
    }
}

/// One item: built into the request `/r/{uuid}` would have received, answered by the same code.
async fn run(
    gate: &Gate,
    proxy: &Proxy,
    client: &ClientInfo,
    item: BatchItem,
    origin: Option<HeaderValue>,
    limits: BatchSettings,
) -> BatchResult {
    let name = item.uuid.clone();
    match prepare(item, origin) {
        Err(e) => failed(name, e.status, &e.body.error, &e.body.message),
        Ok((uuid, incoming)) => {
            let response = open(gate, proxy, uuid, incoming, client).await;
            collect(name, response, limits.max_item_bytes).await
        }
    }
}

fn prepare(item: BatchItem, origin: Option<HeaderValue>) -> ApiResult<(Uuid, Incoming)> {
    let uuid = crate::extract::canonical_uuid(&item.uuid).ok_or_else(ApiError::not_found)?;
    let method = Method::from_bytes(
        item.method
            .as_deref()
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .as_bytes(),
    )
    .map_err(|_| ApiError::bad_request("'method' is not an HTTP method."))?;
    // The batch's Origin is every item's origin: an item cannot claim another.
    let mut item_headers = item.headers;
    item_headers.retain(|name, _| !name.eq_ignore_ascii_case("origin"));
    let (mut headers, body) =
        crate::extract::call_parts(&item_headers, item.body).map_err(ApiError::bad_request)?;
    if let Some(origin) = origin {
        headers.insert(header::ORIGIN, origin);
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(&item.params);
    if let Some(select) = &item.select {
        query.append_pair("select", select);
    }
    let query = Some(query.finish()).filter(|q| !q.is_empty());
    Ok((
        uuid,
        Incoming {
            method,
            extra_path: String::new(),
            headers,
            query,
            body,
            batch: true,
        },
    ))
}

/// Buffers an item's answer (a stream included) up to the per-item cap.
async fn collect(uuid: String, response: Response, cap: usize) -> BatchResult {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, cap).await else {
        return failed(
            uuid,
            StatusCode::BAD_GATEWAY,
            "Answer too large",
            "This item's answer is larger than a batch item may be; call it on its own.",
        );
    };
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
    let body = if is_json {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        })
    } else {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    };
    BatchResult {
        uuid,
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
    }
}
