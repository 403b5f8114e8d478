//! `/r/{uuid}`: where code reads a credential, and where bridges are called.

use axum::extract::{FromRequest, Path, Request, State};
use axum::response::{IntoResponse, Response};
use brine_proto::{DataBody, UnlockBody};

use crate::access::Gate;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ClientInfo, RawBody, RecordId, canonical_uuid};
use crate::open::open;
use crate::proxy::{Incoming, Proxy};

/// Read a credential.
///
/// Public records answer anyone; private records need their X-API-Key. Expired, exhausted and
/// unknown records all answer the same 404.
#[utoipa::path(get, path = "/r/{uuid}", tag = "read",
    params(("uuid" = uuid::Uuid, Path, description = "The record's uuid")),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The value; for a bridge, the upstream's answer as it is", body = DataBody),
        (status = 401, description = "Missing or wrong X-API-Key", body = ErrorBody),
        (status = 403, description = "The record is owner-only", body = ErrorBody),
        (status = 404, description = "Unknown, expired or used up", body = ErrorBody),
        (status = 429, description = "Over the record's rate limit or quota (see Retry-After and RateLimit-*)", body = ErrorBody),
        (status = 503, description = "The shared rate limits are unavailable and the record fails closed", body = ErrorBody),
        (status = 508, description = "The request came back from this server itself (a bridge that calls itself)", body = ErrorBody),
    ))]
pub async fn read(
    State(gate): State<Gate>,
    State(proxy): State<Proxy>,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    request: Forwardable,
) -> Response {
    open(&gate, &proxy, uuid, request.0, &client).await
}

/// Read a credential with its record password (or an X-API-Key header).
#[utoipa::path(post, path = "/r/{uuid}", tag = "read",
    params(("uuid" = uuid::Uuid, Path, description = "The record's uuid")),
    request_body(content = Option<UnlockBody>, description = "The record password (none when an X-API-Key header is sent)"),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The value; for a bridge, the upstream's answer as it is", body = DataBody),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or wrong password or key", body = ErrorBody),
        (status = 403, description = "The record is owner-only", body = ErrorBody),
        (status = 404, description = "Unknown, expired or used up", body = ErrorBody),
        (status = 415, description = "A password body that is not sent as application/json", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords (locked for a while), or over the record's rate limit or quota", body = ErrorBody),
        (status = 503, description = "The shared rate limits are unavailable and the record fails closed", body = ErrorBody),
        (status = 508, description = "The request came back from this server itself (a bridge that calls itself)", body = ErrorBody),
    ))]
pub async fn unlock(
    State(gate): State<Gate>,
    State(proxy): State<Proxy>,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    request: Forwardable,
) -> Response {
    open(&gate, &proxy, uuid, request.0, &client).await
}

/// `/r/{uuid}/{*path}`: a path under a bridge's URL, when the bridge allows it.
pub async fn with_path(
    State(gate): State<Gate>,
    State(proxy): State<Proxy>,
    Path((raw, rest)): Path<(String, String)>,
    client: ClientInfo,
    request: Forwardable,
) -> Response {
    let Some(uuid) = canonical_uuid(&raw) else {
        return ApiError::not_found().into_response();
    };
    let mut incoming = request.0;
    incoming.extra_path = format!("/{rest}");
    open(&gate, &proxy, uuid, incoming, &client).await
}

/// Everything of a request that a bridge may forward.
pub struct Forwardable(Incoming);

impl<S: Send + Sync> FromRequest<S> for Forwardable {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The headers move out rather than being copied; reading the body does not need them.
        let (mut parts, body) = req.into_parts();
        let headers = std::mem::take(&mut parts.headers);
        let method = parts.method.clone();
        let query = parts.uri.query().map(str::to_owned);
        let RawBody(body) = RawBody::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Self(Incoming {
            method,
            extra_path: String::new(),
            headers,
            query,
            body,
            batch: false,
        }))
    }
}
