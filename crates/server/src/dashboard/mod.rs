//! The dashboard: server-rendered pages where owners sign in, add secrets, hand them out and
//! watch who opened them. Every page calls the same operations as the JSON API
//! ([`crate::owner::Owners`], [`crate::accounts::Accounts`]); nothing here decides a rule.
//!
//! - A browser session is a cookie (HttpOnly, `SameSite=Strict`, `Secure` over https) holding an
//!   opaque token, apart from the API's bearer tokens: one never works as the other.
//! - Every form carries the cross-site token of [`crate::forms`]; a POST without it changes
//!   nothing.
//! - A new X-API-Key is shown in the answer to the POST that made it, never in a URL or a
//!   redirect, and the answer is not stored by the browser (`Cache-Control: no-store`).

mod account;
mod bridge_form;
mod chart;
mod fields;
mod handoffs;
mod intake;
mod logs;
mod record;
mod records;
mod session;
mod signin;
mod tokens;
mod view;

use askama::Template;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::forms::FormGuard;
use crate::state::AppState;

pub use self::session::{Site, SiteParts};

/// The dashboard's routes, with their security headers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(records::home))
        .route("/signin", get(signin::show).post(signin::submit))
        .route("/signin/code", post(signin::code))
        .route("/signup", get(signin::show_signup).post(signin::signup))
        .route("/signout", post(signin::signout))
        .route("/new", get(records::new).post(records::create))
        .route("/records/{uuid}", get(record::show))
        .route("/records/{uuid}/settings", post(record::settings))
        .route("/records/{uuid}/value", post(record::replace_value))
        .route("/records/{uuid}/bridge", post(record::edit_bridge))
        .route("/records/{uuid}/reveal", post(record::reveal))
        .route("/records/{uuid}/rotate", post(record::rotate))
        .route("/records/{uuid}/secure-page", post(record::secure_page))
        .route("/records/{uuid}/webhook", post(record::webhook))
        .route("/records/{uuid}/state", post(record::set_state))
        .route("/records/{uuid}/delete", post(record::delete))
        .route("/records/{uuid}/try", post(record::try_call))
        .route("/records/{uuid}/test-key", post(record::test_key))
        .route("/records/{uuid}/select", post(record::preview_select))
        .route("/handoffs", get(handoffs::list))
        .route("/handoffs/new", get(handoffs::new).post(handoffs::create))
        .route("/handoffs/{id}", get(handoffs::show))
        .route("/handoffs/{id}/end", post(handoffs::end))
        .route("/handoffs/{id}/done", post(handoffs::done))
        .route("/intake-links", get(intake::show))
        .route("/intake-links/new", post(intake::create))
        .route("/intake-links/{id}/revoke", post(intake::revoke))
        .route("/logs", get(logs::show))
        .route("/logs/export", get(logs::export))
        .route("/tokens", get(tokens::show).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        .route("/account/two-factor", post(account::two_factor))
        .route("/account/sessions/{id}/end", post(account::end_session))
        .route("/account/delete", post(account::delete))
        .route("/static/dashboard.css", get(stylesheet))
        .route("/static/dashboard.js", get(script))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                 connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
        ))
}

/// What every page's frame shows: who is signed in, where they are, and the form token.
pub struct Chrome {
    pub signed_in: bool,
    pub nav: Nav,
    pub form_token: String,
    /// The form cookie to set when the browser had none yet.
    set_cookie: Option<HeaderValue>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Secrets,
    New,
    Handoffs,
    Intake,
    Logs,
    Tokens,
    Account,
    None,
}

impl Chrome {
    pub fn new(
        forms: &FormGuard,
        request: &HeaderMap,
        signed_in: bool,
        nav: Nav,
    ) -> PageResult<Self> {
        let form = forms.issue(request).map_err(|e| {
            tracing::error!(error = %e, "cannot make a form token");
            PageError::Internal
        })?;
        Ok(Self {
            signed_in,
            nav,
            form_token: form.token,
            set_cookie: form.set_cookie,
        })
    }
}

impl Chrome {
    /// Whether the navigation link named `name` is the current page (for `aria-current`).
    pub fn at(&self, name: &str) -> bool {
        matches!(
            (self.nav, name),
            (Nav::Secrets, "secrets")
                | (Nav::New, "new")
                | (Nav::Handoffs, "handoffs")
                | (Nav::Intake, "intake")
                | (Nav::Logs, "logs")
                | (Nav::Tokens, "tokens")
                | (Nav::Account, "account")
        )
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// No such record of this owner, or no such page.
    NotFound,
    /// The form did not come from brine's own page (another site, or a stale page).
    CrossSite,
    /// The database cannot be reached or written right now (see `Fault::is_unavailable`).
    Unavailable,
    Internal,
}

pub type PageResult<T> = Result<T, PageError>;

/// A form that did not come from brine's own page changes nothing: `forms.check(..)?`.
impl From<crate::forms::CrossSite> for PageError {
    fn from(_: crate::forms::CrossSite) -> Self {
        PageError::CrossSite
    }
}

impl From<crate::fault::Fault> for PageError {
    fn from(fault: crate::fault::Fault) -> Self {
        tracing::error!(error = ?fault, "a dashboard page failed");
        if fault.is_unavailable() {
            return PageError::Unavailable;
        }
        PageError::Internal
    }
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such page, or no such secret in your account.",
            ),
            PageError::CrossSite => (
                StatusCode::FORBIDDEN,
                "This form could not be accepted",
                "It was sent from another site, or the page was out of date. Go back, reload \
                 the page and try again.",
            ),
            PageError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable for a moment",
                "The server cannot reach or write its database right now. Reload the page in \
                 a moment to see where things stand, then try again.",
            ),
            PageError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not complete this. Nothing was shown to anyone; try again in a \
                 moment.",
            ),
        };
        let mut response = match (ErrorPage { title, message }).render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => status.into_response(),
        };
        if let PageError::Unavailable = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                crate::error::UNAVAILABLE_RETRY_SECS.into(),
            );
        }
        response
    }
}

impl PageError {
    /// The same refusal for the page's own scripts, in the API's error envelope.
    pub fn json(self) -> Response {
        use crate::error::ApiError;
        match self {
            PageError::NotFound => ApiError::not_found().into_response(),
            PageError::CrossSite => ApiError::new(
                StatusCode::FORBIDDEN,
                "Cross-site request",
                "This request did not come from brine's own page; reload the page.",
            )
            .into_response(),
            PageError::Unavailable => ApiError::unavailable().into_response(),
            PageError::Internal => ApiError::internal().into_response(),
        }
    }
}

/// A rendered page, with the form cookie when one was issued.
pub fn render(
    template: &impl Template,
    chrome: &Chrome,
    status: StatusCode,
) -> PageResult<Response> {
    let html = template.render().map_err(|e| {
        tracing::error!(error = %e, "cannot render a dashboard page");
        PageError::Internal
    })?;
    let mut response = (status, Html(html)).into_response();
    if let Some(cookie) = &chrome.set_cookie {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, cookie.clone());
    }
    Ok(response)
}

/// After a form that changed something: back to a page by GET (so a reload does not post again).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/dashboard.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/dashboard.js"),
    )
}
