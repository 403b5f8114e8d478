//! Intake links in the owner's API: make one, list them, show one, revoke one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brine_proto::{CreateIntake, IntakeCreated, IntakeInto, IntakeList, IntakeView};
use brine_store::{IntakeLink, IntakeTarget};
use time::OffsetDateTime;

use crate::auth::Owner;
use crate::clock::now_ms;
use crate::dashboard::Site;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, RecordId};
use crate::owner::Owners;
use crate::owner::intake::state;

/// A link as the owner sees it.
pub fn view(link: &IntakeLink, now: OffsetDateTime) -> IntakeView {
    let into = match &link.target {
        IntakeTarget::Credential { name, .. } => IntakeInto::Credential {
            name: Some(name.clone()),
        },
        IntakeTarget::BridgeHeader { header, template } => IntakeInto::BridgeHeader {
            bridge: link.record,
            header: header.clone(),
            template: template.clone(),
        },
    };
    IntakeView {
        id: link.id,
        asked_for: link.asked_for.clone(),
        state: state(link, now).to_owned(),
        into,
        record: link.record,
        has_password: link.password_hash.is_some(),
        expires_at: link.expires_at,
        created_at: link.created_at,
        used_at: link.used_at,
        revoked_at: link.revoked_at,
    }
}

/// The address to send for a link's token.
pub fn link_url(site: &Site, token: &str) -> String {
    format!("{}/intake/{token}", site.base_url)
}

/// Make an intake link ("request a secret").
///
/// The answer holds the link's address and, for a new credential, its X-API-Key: each is shown
/// here once and never again (brine keeps only the token's hash, and the key's slot).
#[utoipa::path(post, path = "/api/v1/intake", tag = "intake",
    request_body = CreateIntake,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = IntakeCreated),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such bridge of yours", body = ErrorBody),
        (status = 409, description = "The bridge is sealed", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn create(
    State(owners): State<Owners>,
    State(site): State<Site>,
    owner: Owner,
    ApiJson(body): ApiJson<CreateIntake>,
) -> ApiResult<(StatusCode, Json<IntakeCreated>)> {
    let made = owners.create_intake(owner.account, body).await?;
    let created = IntakeCreated {
        link: view(&made.link, now_ms()),
        url: link_url(&site, &made.token),
        api_key: made.key.as_ref().map(|k| k.expose().to_owned()),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Your intake links, newest first: open, used, expired and revoked.
#[utoipa::path(get, path = "/api/v1/intake", tag = "intake",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your links", body = IntakeList),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn list(State(owners): State<Owners>, owner: Owner) -> ApiResult<Json<IntakeList>> {
    let now = now_ms();
    let links = owners.intakes(owner.account).await?;
    Ok(Json(IntakeList {
        links: links.iter().map(|l| view(l, now)).collect(),
    }))
}

/// One of your intake links (never its address: that is shown only when it is made).
#[utoipa::path(get, path = "/api/v1/intake/{id}", tag = "intake",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The link", body = IntakeView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such link of yours", body = ErrorBody),
    ))]
pub async fn show(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(id): RecordId,
) -> ApiResult<Json<IntakeView>> {
    let link = owners.intake(owner.account, id).await?;
    Ok(Json(view(&link, now_ms())))
}

/// Revoke an open link: from now on it answers like an unknown one.
#[utoipa::path(delete, path = "/api/v1/intake/{id}", tag = "intake",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked (revoking again changes nothing)", body = IntakeView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such link of yours", body = ErrorBody),
        (status = 409, description = "The link was used already", body = ErrorBody),
    ))]
pub async fn revoke(
    State(owners): State<Owners>,
    owner: Owner,
    RecordId(id): RecordId,
) -> ApiResult<Json<IntakeView>> {
    let link = owners.revoke_intake(owner.account, id).await?;
    Ok(Json(view(&link, now_ms())))
}
