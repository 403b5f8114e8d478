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
use brine_store::SlotKind;
use serde::Deserialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::access::{Credential, Found, Gate, GateError, Refusal, Try};
use crate::audit::{Channel, Outcome};
use crate::error::{ApiError, ApiResult, UNAVAILABLE_RETRY_SECS};
use crate::extract::{ClientInfo, canonical_uuid};
use crate::fault::Fault;
use crate::forms::FormGuard;
use crate::page_loads::{Load, PageLoads};
use crate::throttle::client_network;

pub enum PageState<'a> {
    Form,
    Failed,
    /// A POST that did not come from this page (another site's form, or a stale page).
    Refused,
    /// Minutes until unlocking is possible again.
    Locked(u64),
    /// The database cannot be reached or written: nothing was checked or shown.
    Unavailable,
    Revealed(&'a Revealed),
}

/// What a right password shows: the value, and what is left of the page.
pub struct Revealed {
    value: Zeroizing<String>,
    /// When the page (or its record) stops revealing, as RFC 3339 text.
    expires_at: Option<String>,
    /// Reveals left after this one, when the page has a limit.
    views_left: Option<i64>,
}

#[derive(Template)]
#[template(path = "secure_page.html")]
struct SecurePage<'a> {
    state: PageState<'a>,
    /// The owner's label for the page, shown only when they set one (escaped by the template).
    label: Option<&'a str>,
    /// The hidden field of the password form (see `forms`).
    form_token: &'a str,
}

/// Renders the page; the password form in it carries a token for the browser's form cookie
/// (set here when the browser has none yet).
fn page(
    forms: &FormGuard,
    request: &HeaderMap,
    status: StatusCode,
    page_state: PageState<'_>,
    label: Option<&str>,
) -> ApiResult<Response> {
    let form = forms.issue(request).map_err(|e| {
        tracing::error!(error = %e, "cannot make a form token");
        ApiError::internal()
    })?;
    let html = SecurePage {
        state: page_state,
        label,
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

/// The record behind a secure page: found, and with a page enabled. Anything else is refused
/// without an event, as for a uuid that does not exist.
async fn find_page(
    gate: &Gate,
    uuid: Option<Uuid>,
    client: &ClientInfo,
    attempt: Try,
) -> Result<Found, GateError> {
    let uuid = uuid.ok_or(Refusal::NotFound)?;
    let mut found = gate.find(uuid, client, attempt).await?;
    if found.record().slot(SlotKind::SecurePage).is_none() {
        // Perhaps enabled through another node since this copy was read.
        found = found.current().await?;
    }
    if found.record().slot(SlotKind::SecurePage).is_none() {
        return Err(Refusal::NotFound.into());
    }
    Ok(found.via(Channel::SecurePage))
}

/// The password form. Audited as `opened` (no secret shown) when the page exists: the first load
/// from each client in a minute, with later ones counted in its `detail.repeats`.
#[utoipa::path(get, path = "/secure/{uuid}", tag = "secure page",
    params(("uuid" = String, Path)),
    responses((status = 200, description = "The password form (the same for every uuid)",
               content_type = "text/html", body = String)))]
pub async fn show(
    State(gate): State<Gate>,
    State(forms): State<FormGuard>,
    State(loads): State<PageLoads>,
    Path(raw): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let uuid = canonical_uuid(&raw);
    let mut attempt = Try::FIRST;
    let found = loop {
        let found = find_page(&gate, uuid, &client, attempt).await;
        match attempt.after(&found) {
            Some(next) => attempt = next,
            None => break found,
        }
    };
    let mut label = None;
    match found {
        Ok(found) => {
            label = found.record().page_label.clone();
            let uuid = found.record().uuid;
            let from = client.addr.map(client_network);
            if let Load::Store = loads.load(uuid, from) {
                match found.note(Outcome::Opened, None).await {
                    Ok(event) => loads.stored(uuid, from, event),
                    // The page changed meanwhile: this load is not worth another look.
                    Err(Fault::Stale) => {}
                    Err(fault) => return fault_page(&forms, &headers, fault, label.as_deref()),
                }
            }
        }
        Err(GateError::Refused(_)) => {}
        Err(GateError::Fault(fault)) => {
            return fault_page(&forms, &headers, fault, label.as_deref());
        }
    }
    page(
        &forms,
        &headers,
        StatusCode::OK,
        PageState::Form,
        label.as_deref(),
    )
}

/// Unlock with the password (form field `password`, and the form's `form_token`).
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
    State(gate): State<Gate>,
    State(forms): State<FormGuard>,
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
    if forms.check(&headers, form_token.as_deref()).is_err() {
        return page(
            &forms,
            &headers,
            StatusCode::FORBIDDEN,
            PageState::Refused,
            None,
        );
    }
    let Some(password) = password else {
        return page(
            &forms,
            &headers,
            StatusCode::BAD_REQUEST,
            PageState::Failed,
            None,
        );
    };
    let uuid = canonical_uuid(&raw);
    let mut attempt = Try::FIRST;
    // The page's label, once its page is found: shown on every answer of that page.
    let mut label = None;
    let revealed = loop {
        let revealed = reveal_once(&gate, uuid, &client, &password, attempt, &mut label).await;
        match attempt.after(&revealed) {
            Some(next) => attempt = next,
            None => break revealed,
        }
    };
    match revealed {
        Ok(revealed) => page(
            &forms,
            &headers,
            StatusCode::OK,
            PageState::Revealed(&revealed),
            label.as_deref(),
        ),
        Err(GateError::Refused(Refusal::Locked(retry_after))) => {
            let mut response = page(
                &forms,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                PageState::Locked(retry_after.div_ceil(60)),
                label.as_deref(),
            )?;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            Ok(response)
        }
        Err(GateError::Refused(_)) => page(
            &forms,
            &headers,
            StatusCode::UNAUTHORIZED,
            PageState::Failed,
            label.as_deref(),
        ),
        Err(GateError::Fault(fault)) => fault_page(&forms, &headers, fault, label.as_deref()),
    }
}

/// A fault on the page: the database out of reach is a page saying so (503, `Retry-After`), for
/// a person rather than a script; any other fault is the usual 500.
fn fault_page(
    forms: &FormGuard,
    headers: &HeaderMap,
    fault: Fault,
    label: Option<&str>,
) -> ApiResult<Response> {
    if !fault.is_unavailable() {
        return Err(fault.into());
    }
    tracing::error!(error = %fault, "the secure page cannot reach its database");
    let mut response = page(
        forms,
        headers,
        StatusCode::SERVICE_UNAVAILABLE,
        PageState::Unavailable,
        label,
    )?;
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(UNAVAILABLE_RETRY_SECS),
    );
    Ok(response)
}

/// One try of a reveal: the value once the password is right. `label` gets the page's label as
/// soon as the page is found (a page that is not there has none, like an unknown uuid).
async fn reveal_once(
    gate: &Gate,
    uuid: Option<Uuid>,
    client: &ClientInfo,
    password: &Zeroizing<String>,
    attempt: Try,
    label: &mut Option<String>,
) -> Result<Revealed, GateError> {
    *label = None;
    let found = match find_page(gate, uuid, client, attempt).await {
        Ok(found) => {
            label.clone_from(&found.record().page_label);
            found
        }
        Err(GateError::Refused(refusal)) => {
            // As slow as a real check, so the answer's timing says nothing either.
            gate.decoy(password.clone()).await?;
            return Err(refusal.into());
        }
        Err(e) => return Err(e),
    };
    // The view is claimed only after the password, atomically: wrong passwords cost nothing, and
    // parallel right ones cannot reveal more often than allowed.
    let charged = found
        .admit()
        .await?
        .unlock(Credential::Password(password.clone()))
        .await?
        .charge()
        .await?;
    let value = charged.value()?;
    let record_uuid = charged.record().uuid;
    charged.finish(Outcome::Revealed).await?;
    // Read again after the claim: a copy from memory does not follow the view counter. Reveals
    // are rare (each costs an Argon2 run), so the extra read costs nothing that shows.
    let store = gate.records.store();
    let now = store.record(record_uuid).await.map_err(Fault::from)?;
    let (expires_at, views_left) = match now {
        Some(r) => {
            let expires_at = match (r.page.expires_at, r.expires_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let left = r.page.max_views.map(|max| (max - r.page.views).max(0));
            *label = r.page_label;
            (expires_at, left)
        }
        None => (None, None),
    };
    let expires_at = expires_at.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    });
    let revealed = Revealed {
        value,
        expires_at,
        views_left,
    };
    Ok(revealed)
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
