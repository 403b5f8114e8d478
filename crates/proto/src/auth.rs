//! Accounts and dashboard tokens.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Sign-up and sign-in.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[schema(example = "ana@example.com")]
    pub email: String,
    /// At least 10 characters.
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenBody {
    /// Send as `Authorization: Bearer <token>`. Expires after the configured lifetime.
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
}
