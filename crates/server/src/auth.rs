//! Dashboard tokens: HS256 JWTs whose `sid` names a session row. The signature proves the token
//! was issued here; the row proves it has not been revoked (logout deletes it), on every node.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use brine_crypto::Subkeys;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use axum::extract::FromRef;

use crate::accounts::{Accounts, SessionKind};
use crate::error::ApiError;

/// Signing keys, one per master-key version: tokens are signed with the current version's key
/// and name it in their `kid` header; a token signed with an older version still verifies while
/// that version is in the keyring, so rotating the master key signs nobody out.
pub struct TokenKeys {
    encoding: EncodingKey,
    /// The current version's `kid`.
    kid: String,
    /// Every version's key, by version.
    decoding: Vec<(u32, DecodingKey)>,
    validation: Validation,
    pub ttl: Duration,
}

impl TokenKeys {
    pub fn new(keys: &Subkeys, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is also enforced exactly by the session row; no grace period here either.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let (current, secret) = keys.current();
        Self {
            encoding: EncodingKey::from_secret(secret),
            kid: current.to_string(),
            decoding: keys
                .all()
                .map(|(v, k)| (v, DecodingKey::from_secret(k)))
                .collect(),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        // Tokens from before versioned keys carry no `kid`: they were signed with version 1.
        let version = match jsonwebtoken::decode_header(token).ok()?.kid {
            Some(kid) => kid.parse::<u32>().ok()?,
            None => 1,
        };
        let (_, key) = self.decoding.iter().find(|(v, _)| *v == version)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
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
