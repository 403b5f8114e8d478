//! The signed-in owner's account: its settings, sessions, history, password, second factor and
//! deletion. Each handler extracts, calls [`Accounts`] and maps.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brine_proto::{
    AccountEventList, AccountEventView, AccountView, ChangePassword, PasswordConfirmation,
    RecoveryCodes, SessionList, SessionView, TokenBody, TwoFactorCode, TwoFactorSetup,
};

use super::auth::token;
use crate::accounts::{Accounts, SessionKind};
use crate::auth::Owner;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientInfo, RecordId};
use crate::owner::Owners;

/// The events the account page and `GET /api/v1/account/events` show.
pub const EVENT_LIMIT: u32 = 100;

/// The signed-in account.
#[utoipa::path(get, path = "/api/v1/account", tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = AccountView),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn show(State(accounts): State<Accounts>, owner: Owner) -> ApiResult<Json<AccountView>> {
    let summary = accounts.summary(owner).await?;
    Ok(Json(AccountView {
        id: summary.account.id,
        email: summary.account.email,
        created_at: summary.account.created_at,
        two_factor: summary.account.totp_secret.is_some(),
        recovery_codes_left: summary.recovery_codes_left,
    }))
}

/// Delete the account, with all its records. Needs the password.
#[utoipa::path(delete, path = "/api/v1/account", tag = "account",
    request_body = PasswordConfirmation,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted, with every record, session and event"),
        (status = 401, description = "Not signed in, or the password is wrong", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn delete(
    State(accounts): State<Accounts>,
    State(owners): State<Owners>,
    owner: Owner,
    client: ClientInfo,
    ApiJson(body): ApiJson<PasswordConfirmation>,
) -> ApiResult<StatusCode> {
    accounts
        .delete_account(&owners, owner, body.password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password. Every session ends, this one too; the answer carries a new token.
#[utoipa::path(post, path = "/api/v1/account/password", tag = "account",
    request_body = ChangePassword,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed; use the new token", body = TokenBody),
        (status = 400, description = "The new password breaks a rule", body = ErrorBody),
        (status = 401, description = "Not signed in, or the current password is wrong", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn change_password(
    State(accounts): State<Accounts>,
    owner: Owner,
    client: ClientInfo,
    ApiJson(body): ApiJson<ChangePassword>,
) -> ApiResult<Json<TokenBody>> {
    let session = accounts
        .change_password(
            owner,
            body.current_password,
            body.new_password,
            &client,
            SessionKind::Api,
        )
        .await?;
    Ok(Json(token(session)))
}

/// The account's open sessions (dashboard browsers and API tokens), newest first.
#[utoipa::path(get, path = "/api/v1/account/sessions", tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Open sessions", body = SessionList),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn sessions(
    State(accounts): State<Accounts>,
    owner: Owner,
) -> ApiResult<Json<SessionList>> {
    let sessions = accounts
        .sessions(owner)
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: s.id == owner.session,
            id: s.id,
            kind: s.kind,
            created_at: s.created_at,
            expires_at: s.expires_at,
            client_ip: s.client_ip,
            user_agent: s.user_agent,
            refreshable: s.refreshable,
        })
        .collect();
    Ok(Json(SessionList { sessions }))
}

/// End a session: its token or cookie stops working at once, on every node.
#[utoipa::path(delete, path = "/api/v1/account/sessions/{id}", tag = "account",
    params(("id" = uuid::Uuid, Path, description = "The session")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such session of this account", body = ErrorBody),
    ))]
pub async fn end_session(
    State(accounts): State<Accounts>,
    owner: Owner,
    client: ClientInfo,
    RecordId(id): RecordId,
) -> ApiResult<StatusCode> {
    accounts.end_session(owner, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's history: sign-ins, failed sign-ins, password and two-factor changes, newest
/// first (the latest 100).
#[utoipa::path(get, path = "/api/v1/account/events", tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Account events", body = AccountEventList),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn events(
    State(accounts): State<Accounts>,
    owner: Owner,
) -> ApiResult<Json<AccountEventList>> {
    let events = accounts
        .events(owner, EVENT_LIMIT)
        .await?
        .into_iter()
        .map(|e| AccountEventView {
            at: e.at,
            kind: e.kind,
            client_ip: e.client_ip,
            user_agent: e.user_agent,
        })
        .collect();
    Ok(Json(AccountEventList { events }))
}

/// Start turning on two-factor sign-in: a secret for the authenticator app.
///
/// Nothing changes until a code from the app confirms it (`/two-factor/enable`).
#[utoipa::path(post, path = "/api/v1/account/two-factor/setup", tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Add this secret to the app", body = TwoFactorSetup),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "Two-factor sign-in is already on", body = ErrorBody),
    ))]
pub async fn two_factor_setup(
    State(accounts): State<Accounts>,
    owner: Owner,
) -> ApiResult<Json<TwoFactorSetup>> {
    let enrolment = accounts.start_two_factor(owner).await?;
    Ok(Json(TwoFactorSetup {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauth_uri,
    }))
}

/// Turn on two-factor sign-in with the app's current code. The answer holds the recovery codes,
/// shown this once.
#[utoipa::path(post, path = "/api/v1/account/two-factor/enable", tag = "account",
    request_body = TwoFactorCode,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "On; keep the recovery codes somewhere safe", body = RecoveryCodes),
        (status = 400, description = "The code is not correct", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "No setup was started", body = ErrorBody),
    ))]
pub async fn two_factor_enable(
    State(accounts): State<Accounts>,
    owner: Owner,
    client: ClientInfo,
    ApiJson(body): ApiJson<TwoFactorCode>,
) -> ApiResult<Json<RecoveryCodes>> {
    let codes = accounts
        .enable_two_factor(owner, &body.code, &client)
        .await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes.iter().map(|c| c.to_string()).collect(),
    }))
}

/// Turn off two-factor sign-in. Needs the password.
#[utoipa::path(post, path = "/api/v1/account/two-factor/disable", tag = "account",
    request_body = PasswordConfirmation,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Off"),
        (status = 401, description = "Not signed in, or the password is wrong", body = ErrorBody),
        (status = 409, description = "Two-factor sign-in is already off", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn two_factor_disable(
    State(accounts): State<Accounts>,
    owner: Owner,
    client: ClientInfo,
    ApiJson(body): ApiJson<PasswordConfirmation>,
) -> ApiResult<StatusCode> {
    accounts
        .disable_two_factor(owner, body.password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
