//! The owner's management API for records: request and answer types come from `brine_proto`,
//! the rules from `owner`; each handler extracts, calls and maps.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use brine_core::RecordKind;
use brine_proto::{
    ApiKeyBody, CreateRecord, EventList, EventQuery, KeyTestResult, RecordList, RecordView,
    RecordWithKey, RevealBody, RotateRecord, SecurePageBody, TryCall, TryResult, UpdateRecord,
};

use crate::auth::Owner;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, ClientInfo, RawBody, RecordId};
use crate::owner::{Owners, with_key};
use crate::proxy::api_key;

/// Store a credential or a bridge.
///
/// For a private record the response holds its X-API-Key: it is shown here once and never again.
#[utoipa::path(post, path = "/api/v1/records", tag = "records",
    request_body = CreateRecord,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = RecordWithKey),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn create(
    State(owners): State<Owners>,
    owner: Owner,
    ApiJson(body): ApiJson<CreateRecord>,
) -> ApiResult<(StatusCode, Json<RecordWithKey>)> {
    let (record, key) = owners.create(owner.account, body).await?;
    Ok((StatusCode::CREATED, Json(with_key(&record, key, now_ms()))))
}

/// List your records.
#[utoipa::path(get, path = "/api/v1/records", tag = "records",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your records, newest first", body = RecordList),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn list(State(owners): State<Owners>, owner: Owner) -> ApiResult<Json<RecordList>> {
    let records = owners.list(owner.account).await?;
    Ok(Json(RecordList { records }))
}

/// A record's metadata (never its value).
#[utoipa::path(get, path = "/api/v1/records/{uuid}", tag = "records",
    params(("uuid" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The record", body = RecordView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
    ))]
pub async fn show(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
) -> ApiResult<Json<RecordView>> {
    Ok(Json(owners.show(owner.account, uuid).await?))
}

/// Reveal a record's value to its owner (audited; refused for sealed records).
#[utoipa::path(get, path = "/api/v1/records/{uuid}/value", tag = "records",
    params(("uuid" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The value (for a bridge: its url, headers and fallback_urls)", body = RevealBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
        (status = 409, description = "Sealed: the owner cannot view it", body = ErrorBody),
    ))]
pub async fn reveal(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
) -> ApiResult<Json<RevealBody>> {
    let (kind, value) = owners.reveal(owner.account, uuid, &client).await?;
    let data = match kind {
        RecordKind::Credential => serde_json::Value::String(value.to_string()),
        RecordKind::Bridge => serde_json::from_str(&value).map_err(|_| ApiError::internal())?,
    };
    Ok(Json(RevealBody { data }))
}

/// Change a record's name, access, value, password, expiry or read limit.
///
/// Making a record private, or replacing a sealed record's value, issues a new X-API-Key, returned
/// once in this response. A bridge with a probe whose URL, headers or fallbacks change is first
/// tested with the new values: unless the upstream accepts them, nothing changes (`"verify":
/// false` skips the test).
#[utoipa::path(patch, path = "/api/v1/records/{uuid}", tag = "records",
    params(("uuid" = Uuid, Path)),
    request_body = UpdateRecord,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = RecordWithKey),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
        (status = 409, description = "Not possible on a sealed record", body = ErrorBody),
        (status = 422, description = "`Key rejected`: the upstream refused the bridge's probe with the new key", body = ErrorBody),
        (status = 502, description = "`Key not tested`: the probe could not reach the upstream", body = ErrorBody),
        (status = 504, description = "`Key not tested`: the upstream did not answer the probe in time", body = ErrorBody),
    ))]
pub async fn update(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    ApiJson(body): ApiJson<UpdateRecord>,
) -> ApiResult<Json<RecordWithKey>> {
    let (record, key) = owners.change(owner.account, uuid, body, &client).await?;
    Ok(Json(with_key(&record, key, now_ms())))
}

/// Disable a record: every public route (`/r`, bridges, batch items, the secure page) answers
/// as for a uuid that does not exist, on every node, from the moment this returns. Its value,
/// keys and passwords are kept; the owner still sees it.
#[utoipa::path(post, path = "/api/v1/records/{uuid}/disable", tag = "records",
    params(("uuid" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Disabled (status `disabled`)", body = RecordView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
    ))]
pub async fn disable(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
) -> ApiResult<Json<RecordView>> {
    owners
        .set_enabled(owner.account, uuid, false, &client)
        .await?;
    Ok(Json(owners.show(owner.account, uuid).await?))
}

/// Enable a disabled record again: its keys, passwords and secure page work as before.
#[utoipa::path(post, path = "/api/v1/records/{uuid}/enable", tag = "records",
    params(("uuid" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Enabled", body = RecordView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
    ))]
pub async fn enable(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
) -> ApiResult<Json<RecordView>> {
    owners
        .set_enabled(owner.account, uuid, true, &client)
        .await?;
    Ok(Json(owners.show(owner.account, uuid).await?))
}

/// Delete a record. It stops answering at once.
#[utoipa::path(delete, path = "/api/v1/records/{uuid}", tag = "records",
    params(("uuid" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
    ))]
pub async fn delete(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
) -> ApiResult<StatusCode> {
    owners.delete(owner.account, uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate a private record's X-API-Key. The old key fails from the moment this returns.
///
/// A sealed record needs either its current key in the `X-API-Key` header, or a new value in
/// the body (which replaces the old one).
#[utoipa::path(post, path = "/api/v1/records/{uuid}/api-key", tag = "records",
    params(("uuid" = Uuid, Path)),
    request_body(content = Option<RotateRecord>, description = "Sealed records only"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new key, shown once", body = ApiKeyBody),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Not signed in, or wrong current key", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
        (status = 409, description = "Not private, or sealed without key or value", body = ErrorBody),
    ))]
pub async fn rotate(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<ApiKeyBody>> {
    let current = api_key(&headers);
    let key = owners
        .rotate_key(owner.account, uuid, &body, current, &client)
        .await?;
    Ok(Json(ApiKeyBody {
        api_key: key.expose().to_owned(),
    }))
}

/// Who opened a record, when and from where: newest first.
#[utoipa::path(get, path = "/api/v1/records/{uuid}/events", tag = "records",
    params(("uuid" = Uuid, Path), EventQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Audit events", body = EventList),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
    ))]
pub async fn events(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventList>> {
    Ok(Json(owners.events(owner.account, uuid, query).await?))
}

/// Enable, re-key or disable the record's secure page (`/secure/{uuid}`).
///
/// A new password replaces the old one at once: links opened with the old password stop
/// working. Enabling or changing it starts the view count again.
#[utoipa::path(put, path = "/api/v1/records/{uuid}/secure-page", tag = "records",
    params(("uuid" = Uuid, Path)),
    request_body = SecurePageBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = RecordWithKey),
        (status = 400, description = "Invalid input, or not a private record", body = ErrorBody),
        (status = 401, description = "Not signed in, or (sealed) the X-API-Key header is wrong", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
        (status = 409, description = "Sealed, and no X-API-Key header was sent", body = ErrorBody),
    ))]
pub async fn put_secure_page(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SecurePageBody>,
) -> ApiResult<Json<RecordWithKey>> {
    let current = api_key(&headers);
    let record = owners
        .set_secure_page(owner.account, uuid, body, current, &client)
        .await?;
    Ok(Json(with_key(&record, None, now_ms())))
}

/// Turn off code access: the X-API-Key stops working at once; a secure page goes on working.
/// Rotating issues a new key.
#[utoipa::path(delete, path = "/api/v1/records/{uuid}/api-key", tag = "records",
    params(("uuid" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The key no longer works"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
        (status = 409, description = "The record has no X-API-Key", body = ErrorBody),
    ))]
pub async fn remove_api_key(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
) -> ApiResult<StatusCode> {
    owners.remove_key(owner.account, uuid, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Try a bridge from the dashboard: runs one call with the given method, path, params, headers,
/// body and select, and returns the status, headers, body and timing a caller would get.
#[utoipa::path(post, path = "/api/v1/records/{uuid}/try", tag = "records",
    params(("uuid" = Uuid, Path)),
    request_body = TryCall,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upstream's answer, as a caller would get it", body = TryResult),
        (status = 400, description = "Not a bridge, or the call breaks its policy", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
        (status = 409, description = "Sealed: the server cannot open it", body = ErrorBody),
        (status = 502, description = "The upstream could not be reached or is not allowed", body = ErrorBody),
        (status = 503, description = "Too many large answers are being selected from at once", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody),
    ))]
pub async fn try_bridge(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    ApiJson(call): ApiJson<TryCall>,
) -> ApiResult<Json<TryResult>> {
    Ok(Json(
        owners
            .try_bridge(owner.account, uuid, call, &client)
            .await?,
    ))
}

/// Test a bridge's stored key: sends the bridge's probe upstream and says whether the answer's
/// status means the key was accepted. Audited as `key_tested`.
#[utoipa::path(post, path = "/api/v1/records/{uuid}/test-key", tag = "records",
    params(("uuid" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upstream's status, and whether it means accepted", body = KeyTestResult),
        (status = 400, description = "Not a bridge, or the probe cannot make a URL", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
        (status = 409, description = "The bridge has no probe, or is sealed", body = ErrorBody),
        (status = 502, description = "The upstream could not be reached or is not allowed", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody),
    ))]
pub async fn test_key(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
) -> ApiResult<Json<KeyTestResult>> {
    Ok(Json(owners.test_key(owner.account, uuid, &client).await?))
}
