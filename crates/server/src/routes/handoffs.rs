//! Handoffs in the owner's API: start one (two records from one value), list, show, end now,
//! tick the to-do.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use brine_proto::{CreateHandoff, HandoffCreated, HandoffList, HandoffView};
use uuid::Uuid;

use crate::auth::Owner;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientInfo, canonical_uuid};
use crate::handoffs::Handoffs;
use crate::owner::OwnerError;

fn no_handoff() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "No handoff of yours has this id.",
    )
}

/// The owner errors of a handoff, with a 404 that names a handoff rather than a record.
fn api_error(e: OwnerError) -> ApiError {
    match e {
        OwnerError::NotFound => no_handoff(),
        other => other.into(),
    }
}

/// The `{id}` of a handoff path; anything else gets the same 404 as an unknown handoff.
pub struct HandoffId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for HandoffId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| no_handoff())?;
        canonical_uuid(&raw).map(HandoffId).ok_or_else(no_handoff)
    }
}

/// Start a handoff: from one value, a secure page for the person (with a generated password)
/// and a private record with its own X-API-Key for their code, both ending at `ends_at`.
///
/// Send the page link and the password over different channels. The password and the key are
/// in this answer only.
#[utoipa::path(post, path = "/api/v1/handoffs", tag = "handoffs",
    request_body = CreateHandoff,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created: the page password and the X-API-Key, shown once", body = HandoffCreated),
        (status = 400, description = "Invalid name, value or end date", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn create(
    State(handoffs): State<Handoffs>,
    owner: Owner,
    ApiJson(body): ApiJson<CreateHandoff>,
) -> ApiResult<(StatusCode, Json<HandoffCreated>)> {
    let created = handoffs
        .create(owner.account, body)
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        Json(HandoffCreated {
            handoff: created.view,
            page_password: created.page_password.to_string(),
            api_key: created.api_key.expose().to_owned(),
        }),
    ))
}

/// Your handoffs, newest first, with their records' last use and any to-do.
#[utoipa::path(get, path = "/api/v1/handoffs", tag = "handoffs",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your handoffs", body = HandoffList),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn list(State(handoffs): State<Handoffs>, owner: Owner) -> ApiResult<Json<HandoffList>> {
    let handoffs = handoffs.list(owner.account).await.map_err(api_error)?;
    Ok(Json(HandoffList { handoffs }))
}

/// One handoff.
#[utoipa::path(get, path = "/api/v1/handoffs/{id}", tag = "handoffs",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The handoff", body = HandoffView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such handoff of yours", body = ErrorBody),
    ))]
pub async fn show(
    State(handoffs): State<Handoffs>,
    owner: Owner,
    HandoffId(id): HandoffId,
) -> ApiResult<Json<HandoffView>> {
    Ok(Json(
        handoffs.show(owner.account, id).await.map_err(api_error)?,
    ))
}

/// End a handoff now: both records are disabled from the moment this returns (audited in each
/// record's timeline), and the to-do "rotate the upstream key at the provider" is raised.
/// Ending an ended handoff changes nothing.
#[utoipa::path(post, path = "/api/v1/handoffs/{id}/end", tag = "handoffs",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Ended", body = HandoffView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such handoff of yours", body = ErrorBody),
    ))]
pub async fn end(
    State(handoffs): State<Handoffs>,
    owner: Owner,
    HandoffId(id): HandoffId,
    client: ClientInfo,
) -> ApiResult<Json<HandoffView>> {
    Ok(Json(
        handoffs
            .end(owner.account, id, &client)
            .await
            .map_err(api_error)?,
    ))
}

/// Tick an ended handoff's to-do, once the upstream key has been rotated at its provider.
#[utoipa::path(post, path = "/api/v1/handoffs/{id}/done", tag = "handoffs",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Ticked", body = HandoffView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such handoff of yours", body = ErrorBody),
        (status = 409, description = "The handoff has not ended: there is no to-do yet", body = ErrorBody),
    ))]
pub async fn done(
    State(handoffs): State<Handoffs>,
    owner: Owner,
    HandoffId(id): HandoffId,
) -> ApiResult<Json<HandoffView>> {
    Ok(Json(
        handoffs.done(owner.account, id).await.map_err(api_error)?,
    ))
}
