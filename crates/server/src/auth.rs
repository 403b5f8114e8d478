//! Dashboard tokens: HS256 JWTs whose `sid` names a session row. The signature proves the token
//! was issued here; the row proves it has not been revoked (logout deletes it), on every node.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use axum::extract::FromRef;

use crate::accounts::{Accounts, SessionKind};
use crate::error::ApiError;

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is also enforced exactly by the session row; no grace period here either.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Account id.
    pub sub: Uuid,
    /// Session id.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    pub fn new(account: Uuid, session: Uuid, now: OffsetDateTime, ttl: Duration) -> Self {
        Self {
            sub: account,
            sid: session,
            iat: now.unix_timestamp(),
            exp: (now + ttl).unix_timestamp(),
        }
    }
}

/// A signed-in account, from a valid bearer token whose session is still open.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub account: Uuid,
    pub session: Uuid,
}

impl<S: Send + Sync> FromRequestParts<S> for Owner
where
    Accounts: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let accounts = Accounts::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(ApiError::unauthenticated)?;
        match accounts.owner(token, SessionKind::Api).await {
            Ok(Some(owner)) => Ok(owner),
            Ok(None) => Err(ApiError::unauthenticated()),
            Err(fault) => Err(fault.into()),
        }
    }
}
