//! `/r/{uuid}`: where code reads a credential.

use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use brine_core::RecordKind;
use bytes::Bytes;

use crate::bridge::{self, Incoming};
use crate::credential::{self, CredentialPolicy};
use axum::http::{HeaderMap, StatusCode};
use brine_core::{Access, RecordStatus, read_status};
use brine_store::SlotKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::audit::{Channel, Outcome, record_event};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ClientInfo, RawBody, RecordId};
use crate::limits::RecordLimits;
use crate::lockout::{self, Admission, Attempt};
use crate::state::AppState;
use crate::vault;

pub const API_KEY_HEADER: &str = "x-api-key";

/// A credential's value.
#[derive(Serialize, ToSchema)]
pub struct DataBody {
    /// The value (a string), or the part of a JSON value that `select` picked.
    #[schema(value_type = Object, example = "sk_live_51H...")]
    pub data: Box<serde_json::value::RawValue>,
}

/// Opens a private record with its password instead of an X-API-Key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockBody {
    pub password: String,
}

/// What a caller presented to open a record.
enum Presented {
    Nothing,
    ApiKey(String),
    Password(Zeroizing<String>),
}

fn api_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// Read a credential.
///
/// Public records answer anyone; private records need their X-API-Key. Expired, exhausted and
/// unknown records all answer the same 404.
#[utoipa::path(get, path = "/r/{uuid}", tag = "read",
    params(("uuid" = uuid::Uuid, Path, description = "The record's uuid")),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The value", body = DataBody),
        (status = 401, description = "Missing or wrong X-API-Key", body = ErrorBody),
        (status = 403, description = "The record is owner-only", body = ErrorBody),
        (status = 404, description = "Unknown, expired or used up", body = ErrorBody),
        (status = 429, description = "Over the record's rate limit or quota (see Retry-After and RateLimit-*)", body = ErrorBody),
        (status = 503, description = "The shared rate limits are unavailable and the record fails closed", body = ErrorBody),
    ))]
pub async fn read(
    State(state): State<AppState>,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    request: Forwardable,
) -> Response {
    respond(&state, uuid, String::new(), &client, request).await
}

/// Read a credential with its record password (or an X-API-Key header).
#[utoipa::path(post, path = "/r/{uuid}", tag = "read",
    params(("uuid" = uuid::Uuid, Path, description = "The record's uuid")),
    request_body(content = Option<UnlockBody>, description = "The record password (none when an X-API-Key header is sent)"),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The value", body = DataBody),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or wrong password or key", body = ErrorBody),
        (status = 403, description = "The record is owner-only", body = ErrorBody),
        (status = 404, description = "Unknown, expired or used up", body = ErrorBody),
        (status = 415, description = "A password body that is not sent as application/json", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords (locked for a while), or over the record's rate limit or quota", body = ErrorBody),
        (status = 503, description = "The shared rate limits are unavailable and the record fails closed", body = ErrorBody),
    ))]
pub async fn unlock(
    State(state): State<AppState>,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    request: Forwardable,
) -> Response {
    respond(&state, uuid, String::new(), &client, request).await
}

/// `/r/{uuid}/{*path}`: a path under a bridge's URL, when the bridge allows it.
pub async fn with_path(
    State(state): State<AppState>,
    Path((raw, rest)): Path<(String, String)>,
    client: ClientInfo,
    request: Forwardable,
) -> Response {
    let Some(uuid) = crate::extract::canonical_uuid(&raw) else {
        return ApiError::not_found().into_response();
    };
    respond(&state, uuid, format!("/{rest}"), &client, request).await
}

/// Everything of a request that a bridge may forward.
pub struct Forwardable {
    method: Method,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
    /// Made as an item of `POST /batch` (audited on channel `batch`).
    batch: bool,
}

impl Forwardable {
    /// One item of a batch, built from its parts.
    pub fn batch_item(
        method: Method,
        headers: HeaderMap,
        query: Option<String>,
        body: Bytes,
    ) -> Self {
        Self {
            method,
            headers,
            query,
            body,
            batch: true,
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Forwardable {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The headers move out rather than being copied; reading the body does not need them.
        let (mut parts, body) = req.into_parts();
        let headers = std::mem::take(&mut parts.headers);
        let method = parts.method.clone();
        let query = parts.uri.query().map(str::to_owned);
        let RawBody(body) = RawBody::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Self {
            method,
            headers,
            query,
            body,
            batch: false,
        })
    }
}

/// Credentials answer GET and POST; bridges forward whatever their policy allows.
pub async fn respond(
    state: &AppState,
    uuid: uuid::Uuid,
    extra_path: String,
    client: &ClientInfo,
    request: Forwardable,
) -> Response {
    let record = match state.store.record(uuid).await {
        Ok(record) => record,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Some(record) = record.as_ref().filter(|r| r.kind == RecordKind::Bridge) {
        let incoming = Incoming {
            method: request.method,
            extra_path,
            headers: request.headers,
            query: request.query,
            body: request.body,
            channel: if request.batch {
                Channel::Batch
            } else {
                Channel::Bridge
            },
        };
        return bridge::handle(state, record.clone(), incoming, client).await;
    }
    if !extra_path.is_empty() {
        return ApiError::not_found().into_response();
    }
    let presented = match credential_input(&request) {
        Ok(presented) => presented,
        Err(e) => return e.into_response(),
    };
    serve(
        state,
        uuid,
        record,
        client,
        presented,
        request.query.as_deref(),
        request.batch,
    )
    .await
    .into_response()
}

/// What a caller presented to open a credential: GET takes an X-API-Key; POST takes an
/// X-API-Key or a JSON password.
fn credential_input(request: &Forwardable) -> ApiResult<Presented> {
    let key = api_key(&request.headers);
    match request.method {
        Method::GET | Method::HEAD => Ok(key.map_or(Presented::Nothing, Presented::ApiKey)),
        Method::POST => Ok(if let Some(key) = key {
            Presented::ApiKey(key)
        } else if request.body.is_empty() {
            Presented::Nothing
        } else if request.batch {
            // Any page may send a batch (its preflight admits every origin): a password in one
            // would let other sites' visitors count towards the record's lockout.
            return Err(ApiError::bad_request(
                "A batch item opens a record with its X-API-Key; send a record password to \
                 POST /r/{uuid} on its own.",
            ));
        } else if !crate::extract::is_json(&request.headers) {
            // A page of another site could otherwise post guesses from its visitors' browsers
            // (a `text/plain` body needs no preflight) and lock the record for everyone.
            return Err(ApiError::not_json());
        } else {
            let UnlockBody { password } = serde_json::from_slice(&request.body).map_err(|_| {
                ApiError::bad_request("Send the password as JSON: {\"password\": \"...\"}.")
            })?;
            Presented::Password(Zeroizing::new(password))
        }),
        _ => {
            let mut error = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "A credential is read with GET, or with POST and its password.",
            );
            error.allow = Some("GET, HEAD, POST".into());
            Err(error)
        }
    }
}

/// How an attempt's outcome is recorded: settling the `attempt` event written up front for a
/// password unlock (see `lockout`), or as a new event.
struct Ledger<'a> {
    state: &'a AppState,
    uuid: uuid::Uuid,
    channel: Channel,
    client: &'a ClientInfo,
    attempt: Option<Attempt>,
}

impl Ledger<'_> {
    async fn record(&mut self, outcome: Outcome) -> ApiResult<()> {
        match self.attempt.take() {
            Some(attempt) => attempt.settle(self.state, outcome).await,
            None => record_event(self.state, self.uuid, self.channel, outcome, self.client)
                .await
                .map(|_| ()),
        }
    }

    async fn refuse<T>(&mut self, outcome: Outcome, error: ApiError) -> ApiResult<T> {
        self.record(outcome).await?;
        Err(error)
    }
}

async fn serve(
    state: &AppState,
    uuid: uuid::Uuid,
    record: Option<brine_store::Record>,
    client: &ClientInfo,
    presented: Presented,
    query: Option<&str>,
    batch: bool,
) -> ApiResult<Response> {
    let Some(record) = record else {
        if let Presented::Password(password) = presented {
            vault::decoy_password_check(state, password).await?;
        }
        return Err(ApiError::not_found());
    };
    let unlocking = record.access == Access::Private && matches!(presented, Presented::Password(_));
    let mut ledger = Ledger {
        state,
        uuid,
        // Password unlocks have their own channel, where the lockout counts them.
        channel: if unlocking {
            Channel::Password
        } else if batch {
            Channel::Batch
        } else {
            Channel::Read
        },
        client,
        attempt: None,
    };

    let now = now_ms();
    if read_status(record.expires_at, record.max_reads, record.reads, now) != RecordStatus::Active {
        return ledger.refuse(Outcome::Gone, ApiError::not_found()).await;
    }
    // Limits bind before any key or password is checked: guessing costs budget too.
    let limits = RecordLimits::of(&record);
    let rate =
        crate::limits::admit_call(state, &record, limits.as_ref(), ledger.channel, client).await?;
    if unlocking {
        let password_set = record.slot(SlotKind::Password).map(|slot| slot.created_at);
        match lockout::admit(state, uuid, Channel::Password, client, password_set).await? {
            Admission::Go(attempt) => ledger.attempt = Some(attempt),
            Admission::Locked(retry_after) => return Err(ApiError::locked_out(retry_after)),
        }
    }
    let dek = match (record.access, presented) {
        (Access::OwnerOnly, _) => {
            return ledger
                .refuse(Outcome::Forbidden, ApiError::owner_only())
                .await;
        }
        (Access::Public, _) => vault::data_key_from_server(state, &record)?,
        (Access::Private, Presented::ApiKey(key)) => {
            match vault::data_key_from_api_key(&record, &key) {
                Some(dek) => dek,
                None => {
                    return ledger
                        .refuse(Outcome::Denied, ApiError::api_key_required())
                        .await;
                }
            }
        }
        (Access::Private, Presented::Password(password)) => {
            match vault::data_key_from_password(state, &record, SlotKind::Password, password)
                .await?
            {
                Some(dek) => dek,
                None => {
                    return ledger
                        .refuse(Outcome::Denied, ApiError::wrong_password())
                        .await;
                }
            }
        }
        (Access::Private, Presented::Nothing) => {
            return ledger
                .refuse(Outcome::Denied, ApiError::api_key_required())
                .await;
        }
    };
    if let Some(exhausted) = crate::limits::take_quota(state, &record, limits.as_ref()).await? {
        return ledger.refuse(Outcome::RateLimited, exhausted).await;
    }
    if record.max_reads.is_some() && !state.store.claim_read(uuid, now).await? {
        return ledger.refuse(Outcome::Gone, ApiError::not_found()).await;
    }
    let value = vault::decrypt(&record, &dek)?;
    let policy = CredentialPolicy::of(record.policy.as_deref());
    let data = match credential::answer(value, &policy, query) {
        Ok(data) => data,
        Err(e) => return ledger.refuse(Outcome::Denied, e).await,
    };
    ledger.record(Outcome::Ok).await?;
    let mut response = Json(DataBody { data }).into_response();
    if let Some(rate) = &rate {
        crate::limits::write_headers(rate, response.headers_mut());
    }
    Ok(response)
}
