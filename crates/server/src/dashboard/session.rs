//! Browser sessions: the cookie, and the extractor that turns it into a signed-in owner.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

use crate::accounts::{Accounts, SessionKind};
use crate::auth::Owner;
use crate::client_ip::TrustedProxies;

/// Where people reach this server, and how its cookies are marked.
#[derive(Clone)]
pub struct Site(Arc<SiteParts>);

pub struct SiteParts {
    /// `https://vault.example.com`: the configured `public_url`, or `http://` and the listening
    /// address. Links shown to owners are built from it, never from a request's `Host`.
    pub base_url: String,
    /// Whether the configured `public_url` is https (cookies are then `Secure`).
    pub secure: bool,
    /// Whether anyone may create an account.
    pub signup_open: bool,
}

impl std::ops::Deref for Site {
    type Target = SiteParts;

    fn deref(&self) -> &SiteParts {
        &self.0
    }
}

impl Site {
    pub fn new(parts: SiteParts) -> Self {
        Self(Arc::new(parts))
    }

    /// The cookie's name: `__Host-` pins it to this host (no sibling subdomain can set it), and
    /// browsers accept that prefix only on `Secure` cookies.
    fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-brine_session"
        } else {
            "brine_session"
        }
    }

    /// The `Set-Cookie` that starts a browser session.
    fn session_cookie(&self, token: &str, max_age: i64) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
            self.cookie_name()
        ))
        .ok()
    }

    /// The `Set-Cookie` that ends it in the browser.
    pub fn clear_cookie(&self) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
            self.cookie_name()
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("brine_session=; Max-Age=0"))
    }

    fn session_token<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, value)| *name == self.cookie_name() && !value.is_empty())
            .map(|(_, value)| value)
    }

    /// A response that signs the browser in: the cookie, then a page.
    pub fn sign_in(&self, token: &str, max_age: i64, mut response: Response) -> Response {
        if let Some(cookie) = self.session_cookie(token, max_age) {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        response
    }
}

/// The signed-in owner of a dashboard page. Without a live browser session, a page answers with
/// a redirect to the sign-in page.
pub struct Signed(pub Owner);

/// The owner when a browser session is live, else nothing (for pages that show either).
pub struct MaybeSigned(pub Option<Owner>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeSigned
where
    Accounts: FromRef<S>,
    Site: FromRef<S>,
    Arc<TrustedProxies>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let site = Site::from_ref(state);
        let Some(token) = site.session_token(&parts.headers).map(str::to_owned) else {
            return Ok(MaybeSigned(None));
        };
        let accounts = Accounts::from_ref(state);
        match accounts.owner(&token, SessionKind::Browser).await {
            Ok(owner) => Ok(MaybeSigned(owner)),
            Err(fault) => Err(super::PageError::from(fault).into_response()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Signed
where
    Accounts: FromRef<S>,
    Site: FromRef<S>,
    Arc<TrustedProxies>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match MaybeSigned::from_request_parts(parts, state).await? {
            MaybeSigned(Some(owner)) => Ok(Signed(owner)),
            MaybeSigned(None) => Err(Redirect::to("/signin").into_response()),
        }
    }
}
