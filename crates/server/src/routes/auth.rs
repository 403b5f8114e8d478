//! Accounts: sign up, log in (with the second factor when it is on), log out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brine_proto::{Credentials, RefreshBody, TokenBody};
use zeroize::Zeroizing;

use crate::accounts::{AccountError, Accounts, Lifetime, Session, SessionKind, SignIn};
use crate::auth::Owner;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientInfo};

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::SignupClosed => ApiError::new(
                StatusCode::FORBIDDEN,
                "Sign-up closed",
                "This server does not accept new accounts; ask its operator.",
            ),
            AccountError::Invalid(e) => e.into(),
            AccountError::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                "Email taken",
                "An account with this email already exists; log in instead.",
            ),
            AccountError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Invalid credentials",
                "The email, password or code is not correct.",
            ),
            AccountError::CodeRequired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Code required",
                "This account uses two-factor sign-in: send the code from the authenticator app \
                 (or a recovery code) as 'code' with the email and password.",
            ),
            AccountError::ChallengeExpired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Sign-in expired",
                "The sign-in took too long; start again with the email and password.",
            ),
            AccountError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "Conflict", message)
            }
            AccountError::NotFound => ApiError::not_found(),
            AccountError::Limited(decision) => ApiError::login_limited(decision),
            AccountError::RefreshRefused { reused: false } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Session ended",
                "This refresh token is not valid (the session expired or was ended); sign in \
                 again.",
            ),
            AccountError::RefreshRefused { reused: true } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Session ended",
                "This refresh token was already used, so a copy of it may exist: the session \
                 has been ended everywhere. Sign in again.",
            ),
            AccountError::Fault(fault) => fault.into(),
        }
    }
}

pub fn token(session: Session) -> TokenBody {
    TokenBody {
        token: session.token,
        expires_in: session.expires_in,
        refresh_token: session.refresh_token.map(|t| t.as_str().to_owned()),
    }
}

/// A session renewed with refresh tokens when the client asks for one.
fn lifetime(refresh: bool) -> Lifetime {
    if refresh {
        Lifetime::Renewable
    } else {
        Lifetime::Fixed
    }
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 201, description = "Account created; signed in", body = TokenBody),
        (status = 400, description = "Invalid email or password", body = ErrorBody),
        (status = 403, description = "Sign-up is closed on this server", body = ErrorBody),
        (status = 409, description = "The email is already registered", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    ))]
pub async fn signup(
    State(accounts): State<Accounts>,
    client: ClientInfo,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, Json<TokenBody>)> {
    let session = accounts
        .sign_up(
            &body.email,
            body.password,
            &client,
            SessionKind::Api,
            lifetime(body.refresh),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(token(session))))
}

/// Sign in.
///
/// Answers in the same time whether or not the email exists. An account with two-factor
/// sign-in needs `code` too: without it the answer is 401 "Code required". With `"refresh":
/// true` the answer also carries a refresh token that renews the session (for the CLI).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = TokenBody),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong email, password or code; or a code is required", body = ErrorBody),
        (status = 429, description = "Too many attempts for this address or email", body = ErrorBody),
    ))]
pub async fn login(
    State(accounts): State<Accounts>,
    client: ClientInfo,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Json<TokenBody>> {
    match accounts
        .sign_in(
            &body.email,
            body.password,
            body.code,
            &client,
            SessionKind::Api,
            lifetime(body.refresh),
        )
        .await?
    {
        SignIn::Session(session) => Ok(Json(token(session))),
        // Only browsers get a challenge; an API sign-in without a code is refused above.
        SignIn::NeedsCode { .. } => Err(AccountError::CodeRequired.into()),
    }
}

/// Renew a session with its refresh token.
///
/// Returns a new bearer token and a new refresh token; the one sent stops working. Sending a
/// refresh token that was already used ends the session (someone may hold a copy of it).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "Renewed", body = TokenBody),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Not a valid refresh token, or one already used (the session is ended)", body = ErrorBody),
    ))]
pub async fn refresh(
    State(accounts): State<Accounts>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<TokenBody>> {
    let body = Zeroizing::new(body.refresh_token);
    let session = accounts.refresh(&body, &client).await?;
    Ok(Json(token(session)))
}

/// Sign out: the token stops working at once, on every node.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn logout(
    State(accounts): State<Accounts>,
    owner: Owner,
    client: ClientInfo,
) -> ApiResult<StatusCode> {
    accounts.sign_out(owner, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
