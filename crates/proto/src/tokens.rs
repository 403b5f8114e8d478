//! Service tokens: read-only tokens for CI and servers, scoped to named records.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Timestamp;

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceToken {
    /// Unique among the account's tokens; events of its reads carry it.
    #[schema(example = "github-actions deploy")]
    pub name: String,
    /// The credentials it may read (uuids of the account's records; not sealed ones, which the
    /// server cannot open, nor bridges).
    pub records: Vec<Uuid>,
    /// When it stops working: in the future, at most 366 days ahead.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// A record in a token's scope.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenRecord {
    pub uuid: Uuid,
    pub name: String,
}

/// A service token, as its owner (or the token itself) sees it. Never the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceTokenView {
    pub id: Uuid,
    pub name: String,
    pub records: Vec<TokenRecord>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
    /// Past its expiry: it reads nothing, and stays listed until revoked.
    pub expired: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceTokenList {
    pub tokens: Vec<ServiceTokenView>,
}

/// A new token: the secret is shown this once. (No `Debug`: it holds the secret.)
#[derive(Serialize, Deserialize, ToSchema)]
pub struct NewServiceToken {
    /// Send it as the `X-API-Key` header of `GET /r/{uuid}` for any record in its scope.
    #[schema(example = "brst_0f8e...")]
    pub token: String,
    pub service_token: ServiceTokenView,
}
