//! Accounts: sign up, log in, log out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brine_core::{AccountPassword, Email};
use brine_crypto::{hash_account_password, verify_account_password};
use brine_store::{Account, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Claims, Owner};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientInfo};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[schema(example = "ana@example.com")]
    pub email: String,
    /// At least 10 characters.
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenBody {
    /// Send as `Authorization: Bearer <token>`. Expires after the configured lifetime.
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

async fn open_session(state: &AppState, account: Uuid) -> ApiResult<TokenBody> {
    let now = now_ms();
    let session = Uuid::new_v4();
    let ttl = state.tokens.ttl;
    state
        .store
        .create_session(session, account, now, now + ttl)
        .await?;
    let token = state
        .tokens
        .issue(&Claims::new(account, session, now, ttl))?;
    Ok(TokenBody {
        token,
        expires_in: ttl.whole_seconds(),
    })
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
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, Json<TokenBody>)> {
    if !state.signup_open {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Sign-up closed",
            "This server does not accept new accounts; ask its operator.",
        ));
    }
    let email = Email::parse(&body.email)?;
    let password = AccountPassword::parse(body.password)?;
    // Each sign-up costs an Argon2 run: bounded per address like sign-in attempts.
    state.limits.admit_login(client.addr, None).await?;
    let settings = state.argon2;
    let password_hash = state
        .kdf
        .run(move || hash_account_password(password.as_bytes(), settings))
        .await??;
    let account = Account {
        id: Uuid::new_v4(),
        email: email.as_str().to_owned(),
        password_hash,
        created_at: now_ms(),
    };
    match state.store.create_account(&account).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict(
                "Email taken",
                "An account with this email already exists; log in instead.",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(account = %account.id, "account created");
    Ok((
        StatusCode::CREATED,
        Json(open_session(&state, account.id).await?),
    ))
}

/// Sign in.
///
/// Answers in the same time whether or not the email exists.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = TokenBody),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 429, description = "Too many attempts for this address or email", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Json<TokenBody>> {
    // Before the lookup: known and unknown emails are counted, and answered, alike.
    state
        .limits
        .admit_login(client.addr, Some(&body.email))
        .await?;
    let account = match Email::parse(&body.email) {
        Ok(email) => state.store.account_by_email(email.as_str()).await?,
        Err(_) => None,
    };
    // Unknown emails verify against a decoy hash, so both paths cost one Argon2 run.
    let hash = account.as_ref().map_or_else(
        || state.decoy_password_hash.to_string(),
        |a| a.password_hash.clone(),
    );
    let password = zeroize::Zeroizing::new(body.password);
    let valid = state
        .kdf
        .run(move || verify_account_password(password.as_bytes(), &hash))
        .await??;
    match account {
        Some(account) if valid => Ok(Json(open_session(&state, account.id).await?)),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials",
            "The email or password is not correct.",
        )),
    }
}

/// Sign out: the token stops working at once, on every node.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn logout(State(state): State<AppState>, owner: Owner) -> ApiResult<StatusCode> {
    state.store.delete_session(owner.session).await?;
    Ok(StatusCode::NO_CONTENT)
}
