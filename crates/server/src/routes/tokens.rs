//! Service tokens in the owner's API (make, list, revoke), and `GET /api/v1/service-token`,
//! where a token learns what it may read.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use brine_proto::{
    CreateServiceToken, NewServiceToken, ServiceTokenList, ServiceTokenView, TokenRecord,
};
use brine_store::ServiceTokenRow;
use uuid::Uuid;

use crate::auth::Owner;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientInfo, RecordId};
use crate::fault::Fault;
use crate::proxy::api_key;
use crate::service_tokens::{ServiceTokens, TokenError};

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid(message) => ApiError::bad_request(message),
            TokenError::NameTaken => ApiError::new(
                StatusCode::CONFLICT,
                "Name taken",
                "You have a service token of that name; revoke it or choose another name.",
            ),
            TokenError::Fault(fault) => fault.into(),
        }
    }
}

/// The view of `rows`, with the names of the records in their scopes.
async fn views(
    tokens: &ServiceTokens,
    account: Uuid,
    rows: Vec<ServiceTokenRow>,
) -> Result<Vec<ServiceTokenView>, Fault> {
    let names: HashMap<Uuid, String> = tokens.record_names(account).await?.into_iter().collect();
    let now = now_ms();
    Ok(rows
        .into_iter()
        .map(|row| ServiceTokenView {
            id: row.id,
            expired: row.expires_at <= now,
            records: row
                .records
                .iter()
                .map(|uuid| TokenRecord {
                    uuid: *uuid,
                    name: names.get(uuid).cloned().unwrap_or_default(),
                })
                .collect(),
            name: row.name,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
        })
        .collect())
}

/// Make a service token.
///
/// A read-only token for CI and servers: send it as the `X-API-Key` of `GET /r/{uuid}` for any
/// record it names. Each read counts against the record's expiry, read limit, rate limits and
/// quota like any read, and its event names the token. The token is shown in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body = CreateServiceToken,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Made; the token is shown this once", body = NewServiceToken),
        (status = 400, description = "Bad name, expiry or records (not yours, a bridge, a sealed record)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "A token of that name exists", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn create(
    State(tokens): State<ServiceTokens>,
    owner: Owner,
    client: ClientInfo,
    ApiJson(body): ApiJson<CreateServiceToken>,
) -> ApiResult<(StatusCode, Json<NewServiceToken>)> {
    let issued = tokens
        .create(
            owner.account,
            &body.name,
            &body.records,
            body.expires_at.0,
            &client,
        )
        .await?;
    let mut view = views(&tokens, owner.account, vec![issued.row]).await?;
    let service_token = view
        .pop()
        .ok_or(Fault::Internal("a token view is missing"))?;
    Ok((
        StatusCode::CREATED,
        Json(NewServiceToken {
            token: issued.token.as_str().to_owned(),
            service_token,
        }),
    ))
}

/// The account's service tokens, newest first (expired ones too, until revoked).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tokens (never their secrets)", body = ServiceTokenList),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn list(
    State(tokens): State<ServiceTokens>,
    owner: Owner,
) -> ApiResult<Json<ServiceTokenList>> {
    let rows = tokens.list(owner.account).await?;
    Ok(Json(ServiceTokenList {
        tokens: views(&tokens, owner.account, rows).await?,
    }))
}

/// Revoke a service token: it stops working at once, on every node.
#[utoipa::path(delete, path = "/api/v1/tokens/{uuid}", tag = "tokens",
    params(("uuid" = Uuid, Path, description = "The token's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such token of yours", body = ErrorBody),
    ))]
pub async fn revoke(
    State(tokens): State<ServiceTokens>,
    owner: Owner,
    client: ClientInfo,
    RecordId(id): RecordId,
) -> ApiResult<StatusCode> {
    if tokens.revoke(owner.account, id, &client).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// The service token sent as `X-API-Key`: its name, expiry and the records it may read (by
/// name), so that a tool holding only the token can find a record by its name.
#[utoipa::path(get, path = "/api/v1/service-token", tag = "tokens",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The token", body = ServiceTokenView),
        (status = 401, description = "No valid service token", body = ErrorBody),
    ))]
pub async fn describe(
    State(tokens): State<ServiceTokens>,
    headers: HeaderMap,
) -> ApiResult<Json<ServiceTokenView>> {
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Authentication required",
            "Send a valid service token as the X-API-Key header.",
        )
    };
    let presented = api_key(&headers).ok_or_else(refused)?;
    let row = tokens.describe(presented).await?.ok_or_else(refused)?;
    let account = row.account;
    let mut view = views(&tokens, account, vec![row]).await?;
    Ok(Json(view.pop().ok_or_else(refused)?))
}
