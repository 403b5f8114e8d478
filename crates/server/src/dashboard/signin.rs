//! Signing in (with a second step when the account has two-factor sign-in), signing up and
//! signing out, through the same [`Accounts`] operations as the JSON API.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::session::{MaybeSigned, Signed, Site};
use super::{Chrome, Nav, PageResult, render, see_other};
use crate::accounts::{AccountError, Accounts, Lifetime, Session, SessionKind, SignIn};
use crate::extract::ClientInfo;
use crate::forms::FormGuard;

#[derive(Template)]
#[template(path = "dashboard/signin.html")]
struct SignInPage<'a> {
    chrome: Chrome,
    email: &'a str,
    error: Option<String>,
    signup_open: bool,
}

#[derive(Template)]
#[template(path = "dashboard/signup.html")]
struct SignUpPage<'a> {
    chrome: Chrome,
    email: &'a str,
    email_error: Option<String>,
    password_error: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/code.html")]
struct CodePage<'a> {
    chrome: Chrome,
    challenge: &'a str,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    form_token: Option<String>,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    code: String,
    form_token: Option<String>,
}

#[derive(Deserialize)]
pub struct SignOutForm {
    form_token: Option<String>,
}

fn sign_in_page(
    forms: &FormGuard,
    headers: &HeaderMap,
    site: &Site,
    email: &str,
    error: Option<String>,
    status: StatusCode,
) -> PageResult<Response> {
    let chrome = Chrome::new(forms, headers, false, Nav::None)?;
    let page = SignInPage {
        email,
        error,
        signup_open: site.signup_open,
        chrome,
    };
    render(&page, &page.chrome, status)
}

pub async fn show(
    State(forms): State<FormGuard>,
    State(site): State<Site>,
    MaybeSigned(owner): MaybeSigned,
    headers: HeaderMap,
) -> PageResult<Response> {
    if owner.is_some() {
        return Ok(see_other("/"));
    }
    sign_in_page(&forms, &headers, &site, "", None, StatusCode::OK)
}

/// The browser's session starts: the cookie, then the secrets list.
fn signed_in(site: &Site, session: &Session) -> Response {
    site.sign_in(&session.token, session.expires_in, see_other("/"))
}

/// What a failed sign-in says: never which of email and password was wrong.
fn refusal(e: AccountError) -> PageResult<(String, StatusCode)> {
    match e {
        AccountError::InvalidCredentials => Ok((
            "The email or password is not correct.".into(),
            StatusCode::UNAUTHORIZED,
        )),
        AccountError::Limited(decision) => Ok((
            format!(
                "Too many sign-in attempts. Try again in {} seconds.",
                decision.retry_after.as_secs().max(1)
            ),
            StatusCode::TOO_MANY_REQUESTS,
        )),
        AccountError::Invalid(e) => Ok((e.message, StatusCode::BAD_REQUEST)),
        AccountError::Fault(fault) => Err(fault.into()),
        other => Ok((account_message(&other), StatusCode::BAD_REQUEST)),
    }
}

pub async fn submit(
    State(forms): State<FormGuard>,
    State(site): State<Site>,
    State(accounts): State<Accounts>,
    client: ClientInfo,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> PageResult<Response> {
    forms.check(&headers, form.form_token.as_deref())?;
    let email = form.email.trim();
    let result = accounts
        .sign_in(
            email,
            form.password,
            None,
            &client,
            SessionKind::Browser,
            Lifetime::Fixed,
        )
        .await;
    match result {
        Ok(SignIn::Session(session)) => Ok(signed_in(&site, &session)),
        Ok(SignIn::NeedsCode { challenge }) => {
            code_page(&forms, &headers, &challenge, None, StatusCode::OK)
        }
        Err(e) => {
            let (message, status) = refusal(e)?;
            sign_in_page(&forms, &headers, &site, email, Some(message), status)
        }
    }
}

fn code_page(
    forms: &FormGuard,
    headers: &HeaderMap,
    challenge: &str,
    error: Option<String>,
    status: StatusCode,
) -> PageResult<Response> {
    let chrome = Chrome::new(forms, headers, false, Nav::None)?;
    let page = CodePage {
        chrome,
        challenge,
        error,
    };
    render(&page, &page.chrome, status)
}

/// The second step: a code from the authenticator app, or a recovery code.
pub async fn code(
    State(forms): State<FormGuard>,
    State(site): State<Site>,
    State(accounts): State<Accounts>,
    client: ClientInfo,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> PageResult<Response> {
    forms.check(&headers, form.form_token.as_deref())?;
    match accounts
        .second_factor(&form.challenge, form.code, &client)
        .await
    {
        Ok(session) => Ok(signed_in(&site, &session)),
        Err(AccountError::InvalidCredentials) => code_page(
            &forms,
            &headers,
            &form.challenge,
            Some("That code is not correct. Enter the current code from your app, or a recovery code.".into()),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => {
            // An expired or used challenge: start again from the password.
            let (message, status) = refusal(e)?;
            sign_in_page(&forms, &headers, &site, "", Some(message), status)
        }
    }
}

pub async fn show_signup(
    State(forms): State<FormGuard>,
    State(site): State<Site>,
    MaybeSigned(owner): MaybeSigned,
    headers: HeaderMap,
) -> PageResult<Response> {
    if owner.is_some() {
        return Ok(see_other("/"));
    }
    if !site.signup_open {
        return sign_in_page(
            &forms,
            &headers,
            &site,
            "",
            Some(account_message(&AccountError::SignupClosed)),
            StatusCode::FORBIDDEN,
        );
    }
    let chrome = Chrome::new(&forms, &headers, false, Nav::None)?;
    let page = SignUpPage {
        chrome,
        email: "",
        email_error: None,
        password_error: None,
        error: None,
    };
    render(&page, &page.chrome, StatusCode::OK)
}

pub async fn signup(
    State(forms): State<FormGuard>,
    State(site): State<Site>,
    State(accounts): State<Accounts>,
    client: ClientInfo,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> PageResult<Response> {
    forms.check(&headers, form.form_token.as_deref())?;
    let email = form.email.trim();
    let result = accounts
        .sign_up(
            email,
            form.password,
            &client,
            SessionKind::Browser,
            Lifetime::Fixed,
        )
        .await;
    let (mut email_error, mut password_error, mut error) = (None, None, None);
    let status = match result {
        Ok(session) => return Ok(signed_in(&site, &session)),
        Err(AccountError::Invalid(e)) => {
            if e.field == "password" {
                password_error = Some(e.message);
            } else {
                email_error = Some(e.message);
            }
            StatusCode::BAD_REQUEST
        }
        Err(AccountError::EmailTaken) => {
            email_error = Some(account_message(&AccountError::EmailTaken));
            StatusCode::CONFLICT
        }
        Err(e) => {
            let (message, status) = refusal(e)?;
            error = Some(message);
            status
        }
    };
    let chrome = Chrome::new(&forms, &headers, false, Nav::None)?;
    let page = SignUpPage {
        chrome,
        email,
        email_error,
        password_error,
        error,
    };
    render(&page, &page.chrome, status)
}

/// Ends the session on the server, and the cookie in the browser.
pub async fn signout(
    State(forms): State<FormGuard>,
    State(site): State<Site>,
    State(accounts): State<Accounts>,
    Signed(owner): Signed,
    client: ClientInfo,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> PageResult<Response> {
    forms.check(&headers, form.form_token.as_deref())?;
    match accounts.sign_out(owner, &client).await {
        Ok(()) => {}
        Err(AccountError::Fault(fault)) => return Err(fault.into()),
        Err(_) => {}
    }
    let mut response = see_other("/signin");
    response
        .headers_mut()
        .append(header::SET_COOKIE, site.clear_cookie());
    Ok(response.into_response())
}

/// The words for an account refusal that has no field of its own.
pub fn account_message(e: &AccountError) -> String {
    match e {
        AccountError::SignupClosed => {
            "This server does not accept new accounts; ask its operator for one.".into()
        }
        AccountError::EmailTaken => {
            "An account with this email already exists. Sign in instead.".into()
        }
        AccountError::InvalidCredentials => "The email or password is not correct.".into(),
        AccountError::Invalid(e) => e.message.clone(),
        AccountError::ChallengeExpired => {
            "This sign-in took too long or was already used; enter your email and password again."
                .into()
        }
        AccountError::Limited(_) => "Too many attempts; wait a little and try again.".into(),
        AccountError::CodeRequired => "Enter the code from your authenticator app.".into(),
        AccountError::Conflict(message) => (*message).into(),
        AccountError::NotFound => "There is no such session.".into(),
        AccountError::RefreshRefused { .. } => "This session has ended; sign in again.".into(),
        AccountError::Fault(_) => "The server could not complete this; try again.".into(),
    }
}
