//! `/r/{uuid}`: where code reads a credential.

use axum::Json;
use axum::extract::State;
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
use crate::lockout::{self, Admission, Attempt};
use crate::state::AppState;
use crate::vault;

pub const API_KEY_HEADER: &str = "x-api-key";

/// A credential's value.
#[derive(Serialize, ToSchema)]
pub struct DataBody {
    #[schema(example = "sk_live_51H...")]
    pub data: String,
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
    ))]
pub async fn read(
    State(state): State<AppState>,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    headers: HeaderMap,
) -> ApiResult<Json<DataBody>> {
    let presented = api_key(&headers).map_or(Presented::Nothing, Presented::ApiKey);
    serve(&state, uuid, &client, presented).await
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
        (status = 429, description = "Too many wrong passwords: locked for a while", body = ErrorBody),
    ))]
pub async fn unlock(
    State(state): State<AppState>,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<DataBody>> {
    let presented = if let Some(key) = api_key(&headers) {
        Presented::ApiKey(key)
    } else if body.is_empty() {
        Presented::Nothing
    } else {
        let UnlockBody { password } = serde_json::from_slice(&body).map_err(|_| {
            ApiError::bad_request("Send the password as JSON: {\"password\": \"...\"}.")
        })?;
        Presented::Password(Zeroizing::new(password))
    };
    serve(&state, uuid, &client, presented).await
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
    client: &ClientInfo,
    presented: Presented,
) -> ApiResult<Json<DataBody>> {
    let Some(record) = state.store.record(uuid).await? else {
        if let Presented::Password(password) = presented {
            vault::decoy_password_check(state, password).await?;
        }
        return Err(ApiError::not_found());
    };
    let unlocking = record.access == Access::Private && matches!(presented, Presented::Password(_));
    let mut ledger = Ledger {
        state,
        uuid,
        channel: if unlocking {
            Channel::Password
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
    if unlocking {
        match lockout::admit(state, uuid, Channel::Password, client).await? {
            Admission::Go(attempt) => ledger.attempt = Some(attempt),
            Admission::Locked(retry_after) => return Err(ApiError::locked_out(retry_after)),
        }
    }
    let dek = match (record.access, presented) {
        (Access::OwnerOnly, _) => {
            return ledger
                .refuse(
                    Outcome::Forbidden,
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        "Forbidden",
                        "This record is available to its owner only.",
                    ),
                )
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
    if record.max_reads.is_some() && !state.store.claim_read(uuid, now).await? {
        return ledger.refuse(Outcome::Gone, ApiError::not_found()).await;
    }
    let data = vault::decrypt(&record, &dek)?;
    ledger.record(Outcome::Ok).await?;
    Ok(Json(DataBody { data }))
}
