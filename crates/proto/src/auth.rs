//! Accounts, their sessions, two-factor sign-in, and dashboard tokens.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Sign-up and sign-in.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[schema(example = "ana@example.com")]
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    /// For an account with two-factor sign-in: the 6-digit code from the authenticator app, or
    /// one of the recovery codes. Ignored at sign-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "123456")]
    pub code: Option<String>,
    /// Also return a refresh token, so the session can be renewed for days
    /// (`POST /api/v1/auth/refresh`). The CLI asks for one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refresh: bool,
}

/// (No `Debug`: it holds the token.)
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenBody {
    /// Send as `Authorization: Bearer <token>`. Expires after the configured lifetime.
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    /// When asked for at sign-in: renews the session at `POST /api/v1/auth/refresh`. Each use
    /// returns a new one; presenting a used one again ends the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// (No `Debug`: it holds the token.)
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// The signed-in account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    pub email: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Whether sign-in asks for a code from an authenticator app.
    pub two_factor: bool,
    /// Unused recovery codes (0 when two-factor sign-in is off).
    pub recovery_codes_left: u32,
}

/// A session that can act for the account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    /// `browser` (the dashboard) or `api` (a bearer token: the CLI, scripts).
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// The address it signed in from.
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
    /// Renewed with a refresh token (a signed-in CLI): it lasts until `expires_at` unless used.
    #[serde(default)]
    pub refreshable: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// Something that happened to the account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountEventView {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// `signed_up`, `signed_in`, `sign_in_failed`, `code_failed`, `signed_out`,
    /// `session_ended`, `password_changed`, `password_reset`, `two_factor_enabled`,
    /// `two_factor_disabled`, `recovery_code_used`.
    pub kind: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountEventList {
    pub events: Vec<AccountEventView>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    /// At least 10 characters.
    pub new_password: String,
}

/// Proof that the owner is at the keyboard, for actions that cannot be undone.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfirmation {
    pub password: String,
}

/// The first step of turning on two-factor sign-in: add this secret to an authenticator app.
/// (No `Debug`: it holds the secret.)
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TwoFactorSetup {
    /// The secret in base32, for typing into an app by hand.
    pub secret: String,
    /// The `otpauth://` URI that a QR code carries.
    pub otpauth_uri: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TwoFactorCode {
    /// The current 6-digit code from the app.
    pub code: String,
}

/// Shown once: each code signs in once in place of an app code. (No `Debug`: they are secrets.)
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}
