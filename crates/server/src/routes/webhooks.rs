//! A record's webhook in the owner's API: set, show, remove, rotate its signing secret.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brine_proto::{WebhookBody, WebhookSecret, WebhookView};

use crate::auth::Owner;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientInfo, RecordId};
use crate::webhooks::Webhooks;

fn no_webhook() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "This record has no webhook.",
    )
}

/// Set the record's webhook: a signed POST to `url` on the chosen events.
///
/// A new webhook's answer (201) holds its signing secret (`whsec_...`), shown once. Replacing a
/// webhook (200) keeps its secret; rotate it with `POST .../webhook/secret`.
#[utoipa::path(put, path = "/api/v1/records/{uuid}/webhook", tag = "records",
    params(("uuid" = Uuid, Path)),
    request_body = WebhookBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced (the secret is unchanged and not shown)", body = WebhookView),
        (status = 201, description = "Created, with its signing secret shown once", body = WebhookView),
        (status = 400, description = "Invalid URL, address not allowed, or unknown event", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ))]
pub async fn put(
    State(hooks): State<Webhooks>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<(StatusCode, Json<WebhookView>)> {
    let (view, created) = hooks.put(owner.account, uuid, body, &client).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// The record's webhook and its newest deliveries (never the secret).
#[utoipa::path(get, path = "/api/v1/records/{uuid}/webhook", tag = "records",
    params(("uuid" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours, or no webhook", body = ErrorBody),
    ))]
pub async fn show(
    State(hooks): State<Webhooks>,
    owner: Owner,
    RecordId(uuid): RecordId,
) -> ApiResult<Json<WebhookView>> {
    match hooks.show(owner.account, uuid).await? {
        Some(view) => Ok(Json(view)),
        None => Err(no_webhook()),
    }
}

/// Remove the record's webhook; deliveries still queued are dropped.
#[utoipa::path(delete, path = "/api/v1/records/{uuid}/webhook", tag = "records",
    params(("uuid" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours, or no webhook", body = ErrorBody),
    ))]
pub async fn delete(
    State(hooks): State<Webhooks>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
) -> ApiResult<StatusCode> {
    if hooks.remove(owner.account, uuid, &client).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_webhook())
    }
}

/// Issue a new signing secret, shown once. The old one stops signing at once: deliveries still
/// queued are signed with the new one.
#[utoipa::path(post, path = "/api/v1/records/{uuid}/webhook/secret", tag = "records",
    params(("uuid" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new secret, shown once", body = WebhookSecret),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours, or no webhook", body = ErrorBody),
    ))]
pub async fn rotate_secret(
    State(hooks): State<Webhooks>,
    owner: Owner,
    RecordId(uuid): RecordId,
    client: ClientInfo,
) -> ApiResult<Json<WebhookSecret>> {
    match hooks.rotate_secret(owner.account, uuid, &client).await? {
        Some(secret) => Ok(Json(WebhookSecret {
            secret: secret.expose().to_owned(),
        })),
        None => Err(no_webhook()),
    }
}
