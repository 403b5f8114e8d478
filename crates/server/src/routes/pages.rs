//! The secure page, `/secure/{uuid}`: a password form for a person, and the value once the
//! password is right.
//!
//! Every uuid gets the same form — unknown, disabled or expired ones too — so the page is no
//! existence oracle; and a GET never reveals or consumes anything, so link-preview bots and mail
//! scanners change nothing.

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use brine_store::{Record, SlotKind};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::audit::{Channel, Outcome, record_event};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::extract::ClientInfo;
use crate::lockout::{self, Admission};
use crate::page_loads::Load;
use crate::state::AppState;
use crate::vault;

pub enum PageState<'a> {
    Form,
    Failed,
    /// A POST that did not come from this page (another site's form, or a stale page).
    Refused,
    /// Minutes until unlocking is possible again.
    Locked(u64),
    Revealed(&'a str),
}

#[derive(Template)]
#[template(path = "secure_page.html")]
struct SecurePage<'a> {
    state: PageState<'a>,
    /// The hidden field of the password form (see `forms`).
    form_token: &'a str,
}

/// Renders the page; the password form in it carries a token for the browser's form cookie
/// (set here when the browser has none yet).
fn page(
    state: &AppState,
    request: &HeaderMap,
    status: StatusCode,
    page_state: PageState<'_>,
) -> ApiResult<Response> {
    let form = state.forms.issue(request)?;
    let html = SecurePage {
        state: page_state,
        form_token: &form.token,
    }
    .render()
    .map_err(|e| {
        tracing::error!(error = %e, "cannot render the secure page");
        ApiError::internal()
    })?;
    let mut response = (status, Html(html)).into_response();
    if let Some(cookie) = form.set_cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct UnlockForm {
    password: Option<String>,
    form_token: Option<String>,
}

/// The record behind a secure page, if the uuid is valid and the record has one enabled.
async fn page_record(state: &AppState, raw: &str) -> ApiResult<Option<Record>> {
    let Some(uuid) = crate::extract::canonical_uuid(raw) else {
        return Ok(None);
    };
    Ok(state
        .store
        .record(uuid)
        .await?
        .filter(|r| r.slot(SlotKind::SecurePage).is_some()))
}

/// The password form. Audited as `opened` (no secret shown) when the page exists: the first load
/// from each client in a minute, with later ones counted in its `detail.repeats`.
#[utoipa::path(get, path = "/secure/{uuid}", tag = "secure page",
    params(("uuid" = String, Path)),
    responses((status = 200, description = "The password form (the same for every uuid)",
               content_type = "text/html", body = String)))]
pub async fn show(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(record) = page_record(&state, &raw).await? {
        let from = client.addr.map(crate::limits::client_network);
        if let Load::Store = state.page_loads.load(record.uuid, from) {
            let event = record_event(
                &state,
                record.uuid,
                Channel::SecurePage,
                Outcome::Opened,
                &client,
            )
            .await?;
            state.page_loads.stored(record.uuid, from, event);
        }
    }
    page(&state, &headers, StatusCode::OK, PageState::Form)
}

/// Unlock with the password (form field `password`).
///
/// Right password: the value, once per allowed view. Anything else: the same generic failure.
/// Too many failures on this record (from this address, or in all): 429 with `Retry-After`.
#[utoipa::path(post, path = "/secure/{uuid}", tag = "secure page",
    params(("uuid" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", content = String,
                 description = "password=...&form_token=... (the hidden field of the page's form, \
                                with the form cookie the page set)"),
    responses(
        (status = 200, description = "The value", content_type = "text/html", body = String),
        (status = 400, description = "No password in the form", content_type = "text/html", body = String),
        (status = 401, description = "Wrong password, or no such page", content_type = "text/html", body = String),
        (status = 403, description = "Not posted from the page's own form (another site, or a missing or stale form token)", content_type = "text/html", body = String),
        (status = 429, description = "Locked out for a while", content_type = "text/html", body = String),
    ))]
pub async fn unlock(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Form<UnlockForm>, FormRejection>,
) -> ApiResult<Response> {
    let (password, form_token) = match form {
        Ok(Form(UnlockForm {
            password,
            form_token,
        })) => (password.map(Zeroizing::new), form_token),
        Err(_) => (None, None),
    };
    // Before anything is looked up or counted: another site's post never reaches the lockout.
    if state.forms.check(&headers, form_token.as_deref()).is_err() {
        return page(&state, &headers, StatusCode::FORBIDDEN, PageState::Refused);
    }
    let Some(password) = password else {
        return page(&state, &headers, StatusCode::BAD_REQUEST, PageState::Failed);
    };
    let Some(record) = page_record(&state, &raw).await? else {
        // As slow as a real check, so the answer's timing says nothing either.
        vault::decoy_password_check(&state, password).await?;
        return page(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            PageState::Failed,
        );
    };
    let password_set = record
        .slot(SlotKind::SecurePage)
        .map(|slot| slot.created_at);
    let attempt = match lockout::admit(
        &state,
        record.uuid,
        Channel::SecurePage,
        &client,
        password_set,
    )
    .await?
    {
        Admission::Go(attempt) => attempt,
        Admission::Locked(retry_after) => {
            let mut response = page(
                &state,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                PageState::Locked(retry_after.div_ceil(60)),
            )?;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return Ok(response);
        }
    };
    let Some(dek) =
        vault::data_key_from_password(&state, &record, SlotKind::SecurePage, password).await?
    else {
        attempt.settle(&state, Outcome::Denied).await?;
        return page(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            PageState::Failed,
        );
    };
    // The view is claimed only now, atomically: wrong passwords cost nothing, and parallel
    // right ones cannot reveal more often than allowed.
    if !state.store.claim_view(record.uuid, now_ms()).await? {
        attempt.settle(&state, Outcome::Gone).await?;
        return page(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            PageState::Failed,
        );
    }
    let value = Zeroizing::new(vault::decrypt(&record, &dek)?);
    attempt.settle(&state, Outcome::Revealed).await?;
    page(
        &state,
        &headers,
        StatusCode::OK,
        PageState::Revealed(&value),
    )
}

/// Stylesheet and the Copy button's script, embedded in the binary (no CDN).
pub async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/brine.css"),
    )
}

pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/secure-page.js"),
    )
}
