//! The owner's management API for records.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use brine_core::{
    Access, NewRecordPolicy, RecordKind, RecordName, RecordPassword, RecordStatus, SecretValue,
    read_status,
};
use brine_crypto::ApiKey;
use brine_store::{AuditEvent, Record, SlotKind};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::audit::{Channel, Outcome, record_event};
use crate::auth::Owner;
use crate::bridge::config::{Bridge, BridgeBody, BridgePolicy, BridgeSecrets, MAX_FALLBACKS};
use crate::bridge::{TryCall, TryResult};
use crate::clock::now_ms;
use crate::credential::CredentialPolicy;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, ClientInfo, RawBody, RecordId};
use crate::limits::{Quota, RateLimit, RecordLimits};
use crate::routes::public::API_KEY_HEADER;
use crate::state::AppState;
use crate::vault::{self, NewRecord, RecordPatch, RotationSource, SecurePageSetup};

/// A record as its owner sees it: metadata only, never the value.
#[derive(Serialize, ToSchema)]
pub struct RecordView {
    pub uuid: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: RecordKind,
    pub access: Access,
    /// Only the X-API-Key or the password opens it; the owner cannot view it.
    pub sealed: bool,
    pub has_api_key: bool,
    pub has_password: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub max_reads: Option<i64>,
    /// Reads counted against `max_reads`.
    pub reads: i64,
    /// Whether `/r/{uuid}` serves it, and if not, why.
    pub status: RecordStatus,
    /// Where code reads it.
    #[schema(example = "/r/6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978")]
    pub path: String,
    /// The password-protected page for a person, when enabled.
    pub secure_page: Option<SecurePageView>,
    /// A bridge's policy (its URL and headers are secret: see `/value`).
    pub bridge: Option<BridgePolicy>,
    /// A credential's declared `{{param}}` names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Requests taken from the quota in the current period (on `GET /api/v1/records/{uuid}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_used: Option<i64>,
    /// Problems with the record as stored, for its owner to fix (on
    /// `GET /api/v1/records/{uuid}`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl RecordView {
    fn of(record: &Record, now: OffsetDateTime) -> Self {
        let limits = RecordLimits::of(record).unwrap_or_default();
        Self {
            uuid: record.uuid,
            name: record.name.clone(),
            kind: record.kind,
            access: record.access,
            sealed: record.sealed,
            has_api_key: record.slot(SlotKind::ApiKey).is_some(),
            has_password: record.slot(SlotKind::Password).is_some(),
            expires_at: record.expires_at,
            max_reads: record.max_reads,
            reads: record.reads,
            status: read_status(record.expires_at, record.max_reads, record.reads, now),
            path: format!("/r/{}", record.uuid),
            secure_page: record
                .slot(SlotKind::SecurePage)
                .map(|_| SecurePageView::of(record, now)),
            bridge: match record.kind {
                RecordKind::Bridge => record
                    .policy
                    .as_deref()
                    .and_then(|p| serde_json::from_str(p).ok()),
                RecordKind::Credential => None,
            },
            params: match record.kind {
                RecordKind::Credential => CredentialPolicy::of(record.policy.as_deref()).params,
                RecordKind::Bridge => Vec::new(),
            },
            rate_limit: limits.rate_limit,
            quota: limits.quota,
            quota_used: None,
            warnings: Vec::new(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SecurePageView {
    /// Where the person opens it. Send the password over another channel.
    #[schema(example = "/secure/6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978")]
    pub path: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub max_views: Option<i64>,
    /// Reveals counted against `max_views`.
    pub views: i64,
    /// Whether the page still reveals, and if not, why.
    pub status: RecordStatus,
}

impl SecurePageView {
    fn of(record: &Record, now: OffsetDateTime) -> Self {
        let page = &record.page;
        let record_status = read_status(record.expires_at, None, 0, now);
        Self {
            path: format!("/secure/{}", record.uuid),
            expires_at: page.expires_at,
            max_views: page.max_views,
            views: page.views,
            status: match record_status {
                RecordStatus::Active => {
                    read_status(page.expires_at, page.max_views, page.views, now)
                }
                other => other,
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RecordWithKey {
    pub record: RecordView,
    /// The record's X-API-Key. Shown in this response only: store it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Advice about the record's set-up, for a person to read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl RecordWithKey {
    fn of(record: &Record, api_key: Option<ApiKey>, now: OffsetDateTime) -> Self {
        let mut warnings = Vec::new();
        if record.slot(SlotKind::ApiKey).is_some() && record.slot(SlotKind::SecurePage).is_some() {
            warnings.push(
                "This record opens both for code (X-API-Key at /r) and for a person (secure page \
                 at /secure) under the same uuid. Prefer two records: one for the person, one \
                 for code, so that each can be revoked alone."
                    .to_owned(),
            );
        }
        Self {
            record: RecordView::of(record, now),
            api_key: api_key.map(|k| k.expose().to_owned()),
            warnings,
        }
    }
}

/// The secure page's settings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurePageBody {
    pub enabled: bool,
    /// Required when enabling: at least 8 characters. Send it to the person over a different
    /// channel than the link.
    pub password: Option<String>,
    /// The page stops revealing at this time (the record's own expiry applies too).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// The page reveals at most this many times. The owner's own reveals do not count.
    #[schema(minimum = 1)]
    pub max_views: Option<i64>,
}

impl SecurePageBody {
    fn parse(self, now: OffsetDateTime) -> ApiResult<Option<SecurePageSetup>> {
        if !self.enabled {
            if self.password.is_some() || self.expires_at.is_some() || self.max_views.is_some() {
                return Err(ApiError::bad_request(
                    "A disabled secure page takes no password or limits.",
                ));
            }
            return Ok(None);
        }
        let password = self
            .password
            .ok_or_else(|| ApiError::bad_request("Enabling the secure page needs a password."))?;
        let expires_at = self.expires_at.map(|t| t.0);
        if expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::bad_request(
                "The page's expiry must be in the future.",
            ));
        }
        if self.max_views.is_some_and(|n| n < 1) {
            return Err(ApiError::bad_request("max_views must be at least 1."));
        }
        Ok(Some(SecurePageSetup {
            password: RecordPassword::parse(password)?,
            expires_at,
            max_views: self.max_views,
        }))
    }
}

#[derive(Serialize, ToSchema)]
pub struct RecordList {
    pub records: Vec<RecordView>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyBody {
    /// The new X-API-Key. Shown once; the previous key no longer works.
    pub api_key: String,
}

/// An RFC 3339 timestamp in a request, kept as UTC at the store's millisecond precision, so
/// that answers show what later reads will show.
#[derive(Clone, Copy)]
pub struct Timestamp(OffsetDateTime);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = time::serde::rfc3339::deserialize(d)?.to_offset(time::UtcOffset::UTC);
        Ok(Timestamp(
            t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
                .unwrap_or(t),
        ))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRecord {
    #[schema(example = "Stripe live key")]
    pub name: String,
    /// Defaults to `credential`.
    #[serde(rename = "type", default)]
    pub kind: Option<RecordKind>,
    pub access: Access,
    /// The secret value (credentials).
    #[schema(example = "sk_live_51H...")]
    pub data: Option<String>,
    /// The upstream and its policy (bridges).
    pub bridge: Option<BridgeBody>,
    /// Names of `{{name}}` placeholders in a credential's value, filled from query parameters.
    pub params: Option<Vec<String>>,
    /// A record password that also opens a private record (`POST /r/{uuid}`).
    pub password: Option<String>,
    /// No server slot: only the X-API-Key or the password decrypts it.
    #[serde(default)]
    pub sealed: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    #[schema(minimum = 1)]
    pub max_reads: Option<i64>,
    /// For private records: whether code can read it with an X-API-Key (default true). A record
    /// meant only for a person's secure page needs none.
    pub api_key: Option<bool>,
    /// A password-protected page for a person (private records only).
    pub secure_page: Option<SecurePageBody>,
    /// Rate limits on `/r/{uuid}`, e.g. `{"per_ip": "60/min", "total": "1000/hour"}`.
    #[schema(value_type = Option<RateLimit>)]
    pub rate_limit: Option<serde_json::Value>,
    /// A usage budget per calendar period, e.g. `{"requests": 10000, "per": "month"}`.
    #[schema(value_type = Option<Quota>)]
    pub quota: Option<serde_json::Value>,
}

/// The secret to seal and the policy to keep, for a record of `kind`: a credential takes `data`,
/// a bridge takes `bridge` (checked and compiled here, so a broken bridge is never stored).
fn record_content(
    kind: RecordKind,
    data: Option<String>,
    bridge: Option<BridgeBody>,
) -> ApiResult<(SecretValue, Option<String>)> {
    match (kind, data, bridge) {
        (RecordKind::Credential, Some(data), None) => Ok((SecretValue::parse(data)?, None)),
        (RecordKind::Bridge, None, Some(body)) => {
            let secrets = BridgeSecrets {
                url: body.url,
                headers: body.headers,
                fallback_urls: body.fallback_urls,
            };
            secrets.check_new()?;
            Bridge::compile(&secrets, body.policy.clone())?;
            let sealed = serde_json::to_string(&secrets).map_err(|_| ApiError::internal())?;
            let policy = serde_json::to_string(&body.policy).map_err(|_| ApiError::internal())?;
            Ok((SecretValue::parse(sealed)?, Some(policy)))
        }
        (RecordKind::Credential, None, _) => Err(ApiError::bad_request(
            "A credential needs its value in 'data'.",
        )),
        (RecordKind::Credential, Some(_), Some(_)) => Err(ApiError::bad_request(
            "A credential takes 'data', not 'bridge'.",
        )),
        (RecordKind::Bridge, _, _) => Err(ApiError::bad_request(
            "A bridge takes its upstream in 'bridge', not 'data'.",
        )),
    }
}

/// Limits as stored: checked, and absent when there are none.
fn limits_json(limits: &RecordLimits) -> ApiResult<Option<String>> {
    limits.validate()?;
    if limits.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(limits)
        .map(Some)
        .map_err(|_| ApiError::internal())
}

/// A credential's declared params, as its stored policy.
fn params_policy(kind: RecordKind, params: Option<Vec<String>>) -> ApiResult<Option<String>> {
    match (kind, params) {
        (_, None) => Ok(None),
        (RecordKind::Credential, Some(params)) => {
            let policy = CredentialPolicy::new(params)?;
            Ok(Some(
                serde_json::to_string(&policy).map_err(|_| ApiError::internal())?,
            ))
        }
        (RecordKind::Bridge, Some(_)) => Err(ApiError::bad_request(
            "A bridge declares its params inside 'bridge'.",
        )),
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRecord {
    pub name: Option<String>,
    pub access: Option<Access>,
    /// A new value (credentials). On a sealed record this issues a new X-API-Key.
    pub data: Option<String>,
    /// A new upstream and policy, replacing the old ones (bridges).
    pub bridge: Option<BridgeBody>,
    /// New `{{name}}` placeholder names (credentials).
    pub params: Option<Vec<String>>,
    /// Sets or changes the record password; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
    /// `null` removes the expiry.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<Timestamp>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub max_reads: Option<Option<i64>>,
    /// New rate limits, replacing the old ones; `null` removes them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<RateLimit>)]
    pub rate_limit: Option<Option<serde_json::Value>>,
    /// A new quota (usage so far in the period is kept); `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Quota>)]
    pub quota: Option<Option<serde_json::Value>>,
}

/// Only for sealed records, which the server cannot re-wrap on its own.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateRecord {
    /// A new value, replacing the old one under a fresh data key.
    pub data: Option<String>,
    /// The record password to keep (required with `data` when the record has one); `null`
    /// drops it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `read` (X-API-Key or public), `password` (record password), `secure_page`, `bridge` or
    /// `owner` (the owner's own actions).
    pub channel: String,
    /// What happened: `ok`, `denied`, `forbidden`, `gone`, `rate_limited`, `opened`, `attempt`,
    /// `revealed`, `rotated`, `updated`, ... (docs/api.md lists them all).
    pub outcome: String,
    /// Details of a proxied call (bridges): method, path, upstream status, latency, bytes, hop,
    /// origin.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl From<AuditEvent> for EventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            channel: e.channel,
            outcome: e.outcome,
            client_ip: e.client_ip,
            user_agent: e.user_agent,
            detail: e.detail.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// At most this many events (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Only events older than this event id (for paging).
    pub before: Option<i64>,
}

fn parse_password(p: Option<String>) -> ApiResult<Option<RecordPassword>> {
    Ok(p.map(RecordPassword::parse).transpose()?)
}

/// The caller's own record, or 404 (another account's record is indistinguishable from none).
async fn owned_record(state: &AppState, owner: &Owner, uuid: Uuid) -> ApiResult<Record> {
    match state.store.record(uuid).await? {
        Some(record) if record.owner_id == owner.account => Ok(record),
        _ => Err(ApiError::not_found()),
    }
}

async fn reload(state: &AppState, uuid: Uuid) -> ApiResult<Record> {
    state
        .store
        .record(uuid)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// Store a credential.
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
    State(state): State<AppState>,
    owner: Owner,
    ApiJson(body): ApiJson<CreateRecord>,
) -> ApiResult<(StatusCode, Json<RecordWithKey>)> {
    let kind = body.kind.unwrap_or(RecordKind::Credential);
    let now = now_ms();
    let (data, bridge) = record_content(kind, body.data, body.bridge)?;
    let settings = params_policy(kind, body.params)?.or(bridge);
    if kind == RecordKind::Bridge && (body.password.is_some() || body.secure_page.is_some()) {
        return Err(ApiError::bad_request(
            "Bridges open with their X-API-Key (or for anyone, when public); they take no \
             password or secure page.",
        ));
    }
    let policy = NewRecordPolicy {
        access: body.access,
        sealed: body.sealed,
        has_password: body.password.is_some(),
        expires_at: body.expires_at.map(|t| t.0),
        max_reads: body.max_reads,
    };
    policy.check(now)?;
    let limits = RecordLimits::from_fields(body.rate_limit, body.quota)?;
    let input = NewRecord {
        name: RecordName::parse(&body.name)?,
        kind,
        access: body.access,
        sealed: body.sealed,
        data,
        policy: settings,
        limits: limits_json(&limits)?,
        password: parse_password(body.password)?,
        expires_at: policy.expires_at,
        max_reads: body.max_reads,
        api_key: body.api_key.unwrap_or(true),
        secure_page: body
            .secure_page
            .map(|p| p.parse(now))
            .transpose()?
            .flatten(),
    };
    if input.secure_page.is_some() && input.access != Access::Private {
        return Err(ApiError::bad_request(
            "Only private records can have a secure page.",
        ));
    }
    if input.sealed && !input.api_key && input.password.is_none() && input.secure_page.is_none() {
        return Err(ApiError::bad_request(
            "A sealed record without an X-API-Key, password or secure page could never be opened.",
        ));
    }
    if body.api_key.is_some() && input.access != Access::Private {
        return Err(ApiError::bad_request(
            "Only private records have an X-API-Key to turn on or off.",
        ));
    }
    let (record, api_key) = vault::create(&state, owner.account, input, now).await?;
    tracing::info!(record = %record.uuid, access = record.access.as_str(), "record created");
    Ok((
        StatusCode::CREATED,
        Json(RecordWithKey::of(&record, api_key, now)),
    ))
}

/// List your records.
#[utoipa::path(get, path = "/api/v1/records", tag = "records",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your records, newest first", body = RecordList),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>, owner: Owner) -> ApiResult<Json<RecordList>> {
    let now = now_ms();
    let records = state.store.records_of(owner.account).await?;
    Ok(Json(RecordList {
        records: records.iter().map(|r| RecordView::of(r, now)).collect(),
    }))
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
    State(state): State<AppState>,
    owner: Owner,
    RecordId(uuid): RecordId,
) -> ApiResult<Json<RecordView>> {
    let record = owned_record(&state, &owner, uuid).await?;
    let now = now_ms();
    let mut view = RecordView::of(&record, now);
    if let Some(quota) = &view.quota {
        let (period, _) = quota.per.bounds(now);
        view.quota_used = Some(state.store.quota_used(uuid, period).await?);
    }
    let unused = crate::bridge::unused_fallbacks(&state, &record)?;
    if unused > 0 {
        view.warnings.push(format!(
            "This bridge stores {unused} fallback URLs more than the {MAX_FALLBACKS} that calls \
             try; the rest are never used. Replace the bridge with at most {MAX_FALLBACKS}."
        ));
    }
    Ok(Json(view))
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
    State(state): State<AppState>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
) -> ApiResult<Json<RevealBody>> {
    let record = owned_record(&state, &owner, uuid).await?;
    if record.sealed {
        record_event(&state, uuid, Channel::Owner, Outcome::Forbidden, &client).await?;
        return Err(vault::sealed_error());
    }
    let dek = vault::data_key_from_server(&state, &record)?;
    let plain = vault::decrypt(&record, &dek)?;
    let data = match record.kind {
        RecordKind::Credential => serde_json::Value::String(plain),
        RecordKind::Bridge => serde_json::from_str(&plain).map_err(|_| ApiError::internal())?,
    };
    record_event(&state, uuid, Channel::Owner, Outcome::Ok, &client).await?;
    Ok(Json(RevealBody { data }))
}

/// A record's value as its owner sees it.
#[derive(Serialize, ToSchema)]
pub struct RevealBody {
    /// A credential's value (a string), or a bridge's `{url, headers, fallback_urls}`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Change a record's name, access, value, password, expiry or read limit.
///
/// Making a record private, or replacing a sealed record's value, issues a new X-API-Key, returned
/// once in this response.
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
    ))]
pub async fn update(
    State(state): State<AppState>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    ApiJson(body): ApiJson<UpdateRecord>,
) -> ApiResult<Json<RecordWithKey>> {
    let record = owned_record(&state, &owner, uuid).await?;
    let now = now_ms();
    let (data, bridge) = match (body.data, body.bridge) {
        (None, None) => (None, None),
        (data, bridge) => {
            let (data, bridge) = record_content(record.kind, data, bridge)?;
            (Some(data), bridge)
        }
    };
    if record.kind == RecordKind::Bridge && matches!(body.password, Some(Some(_))) {
        return Err(ApiError::bad_request("Bridges take no password."));
    }
    let patch = RecordPatch {
        name: body.name.as_deref().map(RecordName::parse).transpose()?,
        access: body.access,
        data,
        password: body.password.map(parse_password).transpose()?,
        expires_at: body.expires_at.map(|t| t.map(|t| t.0)),
        max_reads: body.max_reads,
        policy: params_policy(record.kind, body.params)?.or(bridge),
        limits: match (body.rate_limit, body.quota) {
            (None, None) => None,
            (rate_limit, quota) => {
                // Only what was sent changes; `null` removes it.
                let mut limits = RecordLimits::of(&record).unwrap_or_default();
                let (rate_limit_sent, quota_sent) = (rate_limit.is_some(), quota.is_some());
                let sent = RecordLimits::from_fields(rate_limit.flatten(), quota.flatten())?;
                if rate_limit_sent {
                    limits.rate_limit = sent.rate_limit;
                }
                if quota_sent {
                    limits.quota = sent.quota;
                }
                // Never NULL once set: the store keeps a column when given none.
                Some(limits_json(&limits)?.unwrap_or_else(|| "{}".into()))
            }
        },
    };
    let api_key = vault::update(&state, &record, patch, now).await?;
    record_event(&state, uuid, Channel::Owner, Outcome::Updated, &client).await?;
    tracing::info!(record = %uuid, "record updated");
    Ok(Json(RecordWithKey::of(
        &reload(&state, uuid).await?,
        api_key,
        now,
    )))
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
    State(state): State<AppState>,
    owner: Owner,
    RecordId(uuid): RecordId,
) -> ApiResult<StatusCode> {
    if state.store.delete_record(uuid, owner.account).await? {
        tracing::info!(record = %uuid, "record deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
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
    State(state): State<AppState>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<ApiKeyBody>> {
    let record = owned_record(&state, &owner, uuid).await?;
    if !record.sealed && !body.is_empty() {
        return Err(ApiError::bad_request(
            "Rotating the key of a record that is not sealed takes no body; to change the value \
             or password, use PATCH.",
        ));
    }
    let body: RotateRecord = if body.is_empty() {
        RotateRecord::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("The body must be JSON: {\"data\": \"...\"}."))?
    };
    let source = match (record.sealed, body.data) {
        (false, None) if body.password.is_none() => RotationSource::Server,
        (false, _) => {
            return Err(ApiError::bad_request(
                "Rotating the key of a record that is not sealed takes no body; to change the \
                 value or password, use PATCH.",
            ));
        }
        (true, Some(data)) => RotationSource::NewValue {
            data: SecretValue::parse(data)?,
            password: body.password.map(parse_password).transpose()?,
        },
        (true, None) => match headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()) {
            Some(current) => RotationSource::CurrentKey(current.trim().to_owned()),
            None => RotationSource::Server,
        },
    };
    let key = match vault::rotate_api_key(&state, &record, source, now_ms()).await {
        Ok(key) => key,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            record_event(&state, uuid, Channel::Owner, Outcome::Denied, &client).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    record_event(&state, uuid, Channel::Owner, Outcome::Rotated, &client).await?;
    tracing::info!(record = %uuid, "api key rotated");
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
    State(state): State<AppState>,
    owner: Owner,
    RecordId(uuid): RecordId,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventList>> {
    owned_record(&state, &owner, uuid).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let events = state.store.events(uuid, limit, query.before).await?;
    Ok(Json(EventList {
        events: events.into_iter().map(EventView::from).collect(),
    }))
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
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
        (status = 401, description = "Sealed, and the X-API-Key header is wrong", body = ErrorBody),
        (status = 409, description = "Sealed, and no X-API-Key header was sent", body = ErrorBody),
    ))]
pub async fn put_secure_page(
    State(state): State<AppState>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SecurePageBody>,
) -> ApiResult<Json<RecordWithKey>> {
    let record = owned_record(&state, &owner, uuid).await?;
    let now = now_ms();
    let setup = body.parse(now)?;
    // A sealed record's key is recovered with its X-API-Key; others use the server slot.
    let key = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let outcome = if setup.is_some() {
        Outcome::PageEnabled
    } else {
        Outcome::PageDisabled
    };
    vault::set_secure_page(&state, &record, setup, key, now).await?;
    record_event(&state, uuid, Channel::Owner, outcome, &client).await?;
    tracing::info!(record = %uuid, "secure page changed");
    Ok(Json(RecordWithKey::of(
        &reload(&state, uuid).await?,
        None,
        now,
    )))
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
    State(state): State<AppState>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
) -> ApiResult<StatusCode> {
    let record = owned_record(&state, &owner, uuid).await?;
    if record.slot(SlotKind::ApiKey).is_none() {
        return Err(ApiError::conflict(
            "No X-API-Key",
            "This record has no X-API-Key to turn off.",
        ));
    }
    vault::remove_api_key(&state, &record, now_ms()).await?;
    record_event(&state, uuid, Channel::Owner, Outcome::KeyRemoved, &client).await?;
    tracing::info!(record = %uuid, "api key removed");
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
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody),
    ))]
pub async fn try_bridge(
    State(state): State<AppState>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    ApiJson(call): ApiJson<TryCall>,
) -> ApiResult<Json<TryResult>> {
    let record = owned_record(&state, &owner, uuid).await?;
    let result = crate::bridge::try_call(&state, &record, call).await?;
    record_event(&state, uuid, Channel::Owner, Outcome::Tried, &client).await?;
    Ok(Json(result))
}
