//! The intake page, `/intake/{token}`: where someone the owner asked pastes a value.
//!
//! A GET shows what is asked for and the form, and changes nothing (link-preview bots and mail
//! scanners spend nothing); only the POST with the value spends the link. Unknown, used,
//! revoked and expired links get the same page. The page has the secure page's protections:
//! its own strict CSP, no caching, a form token, a lockout on the link's password.

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};
use crate::extract::ClientInfo;
use crate::forms::FormGuard;
use crate::intake::{IntakeDesk, IntakeRefusal, OpenLink, Receipt};

pub enum IntakeState<'a> {
    /// The form, with an error to show above it when a submission was refused.
    Form(&'a OpenLink, Option<&'a str>),
    /// Unknown, used, revoked or expired.
    NotOpen,
    /// A POST that did not come from this page.
    Refused,
    /// Minutes until the password may be tried again.
    Locked(u64),
    Received(&'a Receipt),
}

#[derive(Template)]
#[template(path = "intake_page.html")]
struct IntakePage<'a> {
    state: IntakeState<'a>,
    form_token: &'a str,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl IntakePage<'_> {
    fn expires(&self) -> Option<String> {
        match &self.state {
            IntakeState::Form(link, _) => link.expires_at.map(rfc3339),
            _ => None,
        }
    }

    fn received_at(&self) -> String {
        match &self.state {
            IntakeState::Received(receipt) => rfc3339(receipt.received_at),
            _ => String::new(),
        }
    }
}

fn page(
    forms: &FormGuard,
    request: &HeaderMap,
    status: StatusCode,
    state: IntakeState<'_>,
) -> ApiResult<Response> {
    let form = forms.issue(request).map_err(|e| {
        tracing::error!(error = %e, "cannot make a form token");
        ApiError::internal()
    })?;
    let html = IntakePage {
        state,
        form_token: &form.token,
    }
    .render()
    .map_err(|e| {
        tracing::error!(error = %e, "cannot render the intake page");
        ApiError::internal()
    })?;
    let mut response = (status, Html(html)).into_response();
    if let Some(cookie) = form.set_cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// What an open link asks for, and the form to answer it (the same "not valid" page for every
/// other address). Spends nothing.
#[utoipa::path(get, path = "/intake/{token}", tag = "intake page",
    params(("token" = String, Path)),
    responses(
        (status = 200, description = "The form", content_type = "text/html", body = String),
        (status = 404, description = "No open link here (unknown, used, revoked or expired)", content_type = "text/html", body = String),
    ))]
pub async fn show(
    State(desk): State<IntakeDesk>,
    State(forms): State<FormGuard>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    match desk.look(&token).await? {
        Some(link) => page(
            &forms,
            &headers,
            StatusCode::OK,
            IntakeState::Form(&link, None),
        ),
        None => page(
            &forms,
            &headers,
            StatusCode::NOT_FOUND,
            IntakeState::NotOpen,
        ),
    }
}

#[derive(Deserialize)]
pub struct SubmitForm {
    form_token: Option<String>,
    password: Option<String>,
    value: Option<String>,
}

/// Send the value (form fields `value`, `password` when the link has one, and the form's
/// `form_token`). Stored encrypted for the link's owner; the link is spent.
#[utoipa::path(post, path = "/intake/{token}", tag = "intake page",
    params(("token" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", content = String,
                 description = "value=...&password=...&form_token=... (the hidden field of the \
                                page's form, with the form cookie the page set)"),
    responses(
        (status = 200, description = "Received: a receipt (never the value)", content_type = "text/html", body = String),
        (status = 400, description = "No value, or one that cannot be stored", content_type = "text/html", body = String),
        (status = 401, description = "Wrong or missing password", content_type = "text/html", body = String),
        (status = 403, description = "Not posted from the page's own form", content_type = "text/html", body = String),
        (status = 404, description = "No open link here (unknown, used, revoked or expired)", content_type = "text/html", body = String),
        (status = 429, description = "Locked out for a while", content_type = "text/html", body = String),
    ))]
pub async fn submit(
    State(desk): State<IntakeDesk>,
    State(forms): State<FormGuard>,
    Path(token): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Form<SubmitForm>, FormRejection>,
) -> ApiResult<Response> {
    let (form_token, password, value) = match form {
        Ok(Form(f)) => (
            f.form_token,
            f.password.map(Zeroizing::new),
            f.value.map(Zeroizing::new),
        ),
        Err(_) => (None, None, None),
    };
    // Before anything is looked up or counted: another site's post changes nothing.
    if forms.check(&headers, form_token.as_deref()).is_err() {
        return page(
            &forms,
            &headers,
            StatusCode::FORBIDDEN,
            IntakeState::Refused,
        );
    }
    let value = value.unwrap_or_default();
    let refusal = match desk.submit(&token, password, value, &client).await {
        Ok(receipt) => {
            return page(
                &forms,
                &headers,
                StatusCode::OK,
                IntakeState::Received(&receipt),
            );
        }
        Err(refusal) => refusal,
    };
    let (status, message) = match refusal {
        IntakeRefusal::NotOpen => {
            return page(
                &forms,
                &headers,
                StatusCode::NOT_FOUND,
                IntakeState::NotOpen,
            );
        }
        IntakeRefusal::Locked(secs) => {
            let mut response = page(
                &forms,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                IntakeState::Locked(secs.div_ceil(60)),
            )?;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return Ok(response);
        }
        IntakeRefusal::Fault(fault) => return Err(fault.into()),
        IntakeRefusal::WrongPassword => (
            StatusCode::UNAUTHORIZED,
            "That password is not right. Nothing was sent; type the password again, and paste \
             the value again."
                .to_owned(),
        ),
        IntakeRefusal::Invalid(message) => (
            StatusCode::BAD_REQUEST,
            format!("Nothing was sent: {message}"),
        ),
    };
    // The link is still open: the form again, with what went wrong (never the value).
    match desk.look(&token).await? {
        Some(link) => page(
            &forms,
            &headers,
            status,
            IntakeState::Form(&link, Some(&message)),
        ),
        None => page(
            &forms,
            &headers,
            StatusCode::NOT_FOUND,
            IntakeState::NotOpen,
        ),
    }
}
