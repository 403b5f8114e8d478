//! The account page: two-factor sign-in, open sessions, sign-in history, password, deletion.
//! Every form calls the same [`Accounts`] operations as the JSON API.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use zeroize::Zeroizing;

use super::fields::Fields;
use super::session::{Signed, Site};
use super::signin::account_message;
use super::view::{When, when};
use super::{Chrome, Nav, PageError, PageResult, render, see_other};
use crate::accounts::{AccountError, Accounts, SessionKind, qr_svg};
use crate::auth::Owner;
use crate::clock::now_ms;
use crate::extract::{ClientInfo, canonical_uuid};
use crate::forms::FormGuard;
use crate::owner::Owners;
use crate::routes::account::EVENT_LIMIT;

pub struct Setup {
    pub secret: String,
    pub qr_svg: String,
}

pub struct SessionLine {
    pub id: String,
    pub kind: &'static str,
    pub client: String,
    pub created: When,
    pub current: bool,
}

pub struct HistoryLine {
    pub what: &'static str,
    pub when: When,
    pub client: String,
}

#[derive(Template)]
#[template(path = "dashboard/account.html")]
struct AccountPage {
    chrome: Chrome,
    email: String,
    two_factor: bool,
    setup: Option<Setup>,
    recovery_codes: Option<Vec<Zeroizing<String>>>,
    sessions: Vec<SessionLine>,
    history: Vec<HistoryLine>,
    notice: Option<(String, bool)>,
    form_error: Option<(&'static str, String)>,
}

impl AccountPage {
    /// The error of the form named `form`, if it is the one that failed.
    pub fn error_of(&self, form: &str) -> Option<&str> {
        self.form_error
            .as_ref()
            .filter(|(f, _)| *f == form)
            .map(|(_, message)| message.as_str())
    }
}

/// What one answer adds to the page: a notice, an error beside its form, codes shown once.
#[derive(Default)]
struct Extra {
    notice: Option<(String, bool)>,
    form_error: Option<(&'static str, String)>,
    recovery_codes: Option<Vec<Zeroizing<String>>>,
    /// A new session cookie (after a password change).
    set_cookie: Option<(String, i64)>,
}

fn what(kind: &str) -> &'static str {
    match kind {
        "signed_up" => "Account created",
        "signed_in" => "Signed in",
        "sign_in_failed" => "Failed sign-in: wrong password",
        "code_failed" => "Failed sign-in: wrong two-factor code",
        "signed_out" => "Signed out",
        "session_ended" => "A session was ended",
        "password_changed" => "Password changed",
        "password_reset" => "Password reset by the server's operator",
        "two_factor_enabled" => "Two-factor sign-in turned on",
        "two_factor_disabled" => "Two-factor sign-in turned off",
        "recovery_code_used" => "Signed in with a recovery code",
        "refresh_token_reused" => "A command-line session ended: its refresh token was used twice",
        "service_token_created" => "Service token made",
        "service_token_revoked" => "Service token revoked",
        _ => "Account event",
    }
}

fn client_text(ip: Option<&str>, user_agent: Option<&str>) -> String {
    match (ip, user_agent) {
        (Some(ip), Some(ua)) => format!("{ip} · {ua}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => String::new(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn account_page(
    forms: &FormGuard,
    site: &Site,
    accounts: &Accounts,
    headers: &HeaderMap,
    owner: Owner,
    extra: Extra,
    status: StatusCode,
) -> PageResult<Response> {
    let summary = accounts.summary(owner).await.map_err(account_fault)?;
    let two_factor = summary.account.totp_secret.is_some();
    let setup = if two_factor {
        None
    } else {
        accounts
            .pending_two_factor(owner)
            .await
            .map_err(account_fault)?
            .map(|e| Setup {
                qr_svg: qr_svg(&e.otpauth_uri)
                    .map(|svg| match svg.find("<svg") {
                        Some(start) => svg[start..].to_owned(),
                        None => svg,
                    })
                    .unwrap_or_default(),
                secret: e.secret,
            })
    };
    let now = now_ms();
    let sessions = accounts
        .sessions(owner)
        .await
        .map_err(account_fault)?
        .into_iter()
        .map(|s| SessionLine {
            id: s.id.to_string(),
            kind: match (s.kind.as_str(), s.refreshable) {
                ("browser", _) => "Browser",
                (_, true) => "Command line (stays signed in while used)",
                (_, false) => "API token (CLI or script)",
            },
            client: client_text(s.client_ip.as_deref(), s.user_agent.as_deref()),
            created: when(s.created_at, now),
            current: s.id == owner.session,
        })
        .collect();
    let history = accounts
        .events(owner, EVENT_LIMIT)
        .await
        .map_err(account_fault)?
        .into_iter()
        .map(|e| HistoryLine {
            what: what(&e.kind),
            when: when(e.at, now),
            client: client_text(e.client_ip.as_deref(), e.user_agent.as_deref()),
        })
        .collect();
    let chrome = Chrome::new(forms, headers, true, Nav::Account)?;
    let page = AccountPage {
        chrome,
        email: summary.account.email,
        two_factor,
        setup,
        recovery_codes: extra.recovery_codes,
        sessions,
        history,
        notice: extra.notice,
        form_error: extra.form_error,
    };
    let response = render(&page, &page.chrome, status)?;
    Ok(match extra.set_cookie {
        Some((token, max_age)) => site.sign_in(&token, max_age, response),
        None => response,
    })
}

fn account_fault(e: AccountError) -> PageError {
    match e {
        AccountError::Fault(fault) => fault.into(),
        AccountError::NotFound => PageError::NotFound,
        other => {
            tracing::error!(error = ?other, "an account operation failed on a page");
            PageError::Internal
        }
    }
}

/// A refusal shown beside the form `form`; faults become the error page.
fn refusal(form: &'static str, e: AccountError) -> PageResult<(Extra, StatusCode)> {
    let status = match &e {
        AccountError::Fault(_) => return Err(account_fault(e)),
        AccountError::InvalidCredentials => StatusCode::UNAUTHORIZED,
        AccountError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
        AccountError::Conflict(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    let message = match e {
        AccountError::InvalidCredentials => "The password is not correct.".to_owned(),
        AccountError::Conflict(message) => message.to_owned(),
        other => account_message(&other),
    };
    Ok((
        Extra {
            form_error: Some((form, message)),
            ..Extra::default()
        },
        status,
    ))
}

pub async fn show(
    State(forms): State<FormGuard>,
    State(site): State<Site>,
    State(accounts): State<Accounts>,
    Signed(owner): Signed,
    headers: HeaderMap,
) -> PageResult<Response> {
    account_page(
        &forms,
        &site,
        &accounts,
        &headers,
        owner,
        Extra::default(),
        StatusCode::OK,
    )
    .await
}

pub async fn change_password(
    State(forms): State<FormGuard>,
    State(site): State<Site>,
    State(accounts): State<Accounts>,
    Signed(owner): Signed,
    client: ClientInfo,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let result = accounts
        .change_password(
            owner,
            fields.text("current_password").to_owned(),
            fields.text("new_password").to_owned(),
            &client,
            SessionKind::Browser,
        )
        .await;
    let (extra, status, owner) = match result {
        Ok(session) => (
            Extra {
                notice: Some((
                    "Password changed. Every other session has ended.".into(),
                    false,
                )),
                set_cookie: Some((session.token, session.expires_in)),
                ..Extra::default()
            },
            StatusCode::OK,
            Owner {
                account: owner.account,
                session: session.id,
            },
        ),
        Err(e) => {
            let (extra, status) = refusal("password", e)?;
            (extra, status, owner)
        }
    };
    account_page(&forms, &site, &accounts, &headers, owner, extra, status).await
}

pub async fn two_factor(
    State(forms): State<FormGuard>,
    State(site): State<Site>,
    State(accounts): State<Accounts>,
    Signed(owner): Signed,
    client: ClientInfo,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let result = match fields.text("action") {
        "setup" => accounts
            .start_two_factor(owner)
            .await
            .map(|_| Extra::default()),
        "enable" => accounts
            .enable_two_factor(owner, fields.text("code"), &client)
            .await
            .map(|codes| Extra {
                notice: Some((
                    "Two-factor sign-in is on. Save your recovery codes now.".into(),
                    false,
                )),
                recovery_codes: Some(codes),
                ..Extra::default()
            }),
        "disable" => accounts
            .disable_two_factor(owner, fields.text("password").to_owned(), &client)
            .await
            .map(|()| Extra {
                notice: Some(("Two-factor sign-in is off.".into(), false)),
                ..Extra::default()
            }),
        _ => return Err(PageError::NotFound),
    };
    let (extra, status) = match result {
        Ok(extra) => (extra, StatusCode::OK),
        Err(AccountError::Invalid(e)) => (
            Extra {
                form_error: Some(("tfa", e.message)),
                ..Extra::default()
            },
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => refusal("tfa", e)?,
    };
    account_page(&forms, &site, &accounts, &headers, owner, extra, status).await
}

pub async fn end_session(
    State(forms): State<FormGuard>,
    State(accounts): State<Accounts>,
    Signed(owner): Signed,
    Path(raw): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let id = canonical_uuid(&raw).ok_or(PageError::NotFound)?;
    accounts
        .end_session(owner, id, &client)
        .await
        .map_err(account_fault)?;
    Ok(see_other("/account"))
}

#[allow(clippy::too_many_arguments)]
pub async fn delete(
    State(forms): State<FormGuard>,
    State(site): State<Site>,
    State(accounts): State<Accounts>,
    State(owners): State<Owners>,
    Signed(owner): Signed,
    client: ClientInfo,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    if !fields.ticked("confirm") {
        let extra = Extra {
            form_error: Some((
                "delete",
                "Tick the box to confirm: deleting cannot be undone.".into(),
            )),
            ..Extra::default()
        };
        return account_page(
            &forms,
            &site,
            &accounts,
            &headers,
            owner,
            extra,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let password = fields.text("password").to_owned();
    match accounts
        .delete_account(&owners, owner, password, &client)
        .await
    {
        Ok(()) => {
            let mut response = see_other("/signin");
            response
                .headers_mut()
                .append(header::SET_COOKIE, site.clear_cookie());
            Ok(response)
        }
        Err(e) => {
            let (extra, status) = refusal("delete", e)?;
            account_page(&forms, &site, &accounts, &headers, owner, extra, status).await
        }
    }
}
