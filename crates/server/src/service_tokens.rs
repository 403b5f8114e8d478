//! Service tokens: what CI and servers read secrets with. A token is made by an owner, names the
//! records it may read, and stops at its expiry or at once when revoked (its row is deleted, and
//! every use looks the row up). It goes where an X-API-Key goes (`GET /r/{uuid}`) and opens the
//! record through the gate like any read, so the record's expiry, read limit, rate limits and
//! quota bind it; the record's events name it.
//!
//! The token is `brst_` + the token's id (32 hex digits) + `_` + 256 random bits in URL-safe
//! base64. Only a SHA-256 digest of the secret part is stored.

use std::sync::Arc;

use brine_core::RecordKind;
use brine_store::{NewServiceToken, Record, ServiceTokenRow, Store, StoreError};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::fault::Fault;
use crate::id_token::IdToken;

pub const PREFIX: &str = "brst_";
const SERVICE: IdToken = IdToken {
    prefix: PREFIX,
    domain: b"brine service token v1\0",
};
/// The longest a token may live.
pub const MAX_LIFETIME: Duration = Duration::days(366);
const MAX_NAME: usize = 64;
const MAX_RECORDS: usize = 100;
/// How often a token's "last used" time is written, at most (it is shown to the minute).
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// What a presented token may do with one record.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It may read the record; events name it.
    Granted { name: String },
    /// A token of the record's owner that does not name this record.
    OutOfScope { name: String },
    /// Malformed, unknown, revoked, expired, or another account's.
    Invalid,
}

/// Why a token was not made.
#[derive(Debug)]
pub enum TokenError {
    /// The input breaks a rule; the message says which.
    Invalid(String),
    NameTaken,
    Fault(Fault),
}

impl From<Fault> for TokenError {
    fn from(f: Fault) -> Self {
        TokenError::Fault(f)
    }
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        TokenError::Fault(e.into())
    }
}

fn invalid(message: impl Into<String>) -> TokenError {
    TokenError::Invalid(message.into())
}

/// A token just made: the secret, shown once.
pub struct Issued {
    pub token: Zeroizing<String>,
    pub row: ServiceTokenRow,
}

/// Cheap to clone: one reference count.
#[derive(Clone)]
pub struct ServiceTokens {
    store: Arc<dyn Store>,
}

impl ServiceTokens {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Whether an X-API-Key header holds a service token rather than a record's key.
    pub fn is_token(key: &str) -> bool {
        key.starts_with(PREFIX)
    }

    /// What `presented` may do with `record`.
    pub async fn check(&self, presented: &str, record: &Record) -> Result<Verdict, Fault> {
        let Some((id, digest)) = parse(presented) else {
            return Ok(Verdict::Invalid);
        };
        let Some(found) = self.store.check_service_token(id, record.uuid).await? else {
            return Ok(Verdict::Invalid);
        };
        let now = now_ms();
        let genuine: bool = found.digest.as_slice().ct_eq(&digest).into();
        if !genuine || found.expires_at <= now || found.account != record.owner_id {
            return Ok(Verdict::Invalid);
        }
        if !found.covers {
            return Ok(Verdict::OutOfScope { name: found.name });
        }
        if found.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY) {
            self.store.touch_service_token(id, now).await?;
        }
        Ok(Verdict::Granted { name: found.name })
    }

    /// The token itself, when it is genuine and not expired (for `GET /api/v1/service-token`).
    pub async fn describe(&self, presented: &str) -> Result<Option<ServiceTokenRow>, Fault> {
        let Some((id, digest)) = parse(presented) else {
            return Ok(None);
        };
        let Some(check) = self.store.check_service_token(id, Uuid::nil()).await? else {
            return Ok(None);
        };
        let genuine: bool = check.digest.as_slice().ct_eq(&digest).into();
        if !genuine || check.expires_at <= now_ms() {
            return Ok(None);
        }
        Ok(self.store.service_token(id).await?)
    }

    /// Makes a token of `account` that reads `records` until `expires_at`.
    pub async fn create(
        &self,
        account: Uuid,
        name: &str,
        records: &[Uuid],
        expires_at: OffsetDateTime,
        client: &ClientInfo,
    ) -> Result<Issued, TokenError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "Give the token a name of 1 to {MAX_NAME} characters."
            )));
        }
        let now = now_ms();
        if expires_at <= now {
            return Err(invalid("The expiry must be in the future."));
        }
        if expires_at - now > MAX_LIFETIME {
            return Err(invalid(
                "A service token lives at most 366 days; make a new one when it ends.",
            ));
        }
        let mut scope = records.to_vec();
        scope.sort_unstable();
        scope.dedup();
        if scope.is_empty() || scope.len() > MAX_RECORDS {
            return Err(invalid(format!(
                "Name 1 to {MAX_RECORDS} records the token may read."
            )));
        }
        let owned = self.store.records_of(account).await.map_err(Fault::from)?;
        for uuid in &scope {
            let Some(record) = owned.iter().find(|r| r.uuid == *uuid) else {
                return Err(invalid(format!("{uuid} is not one of your records.")));
            };
            if record.kind == RecordKind::Bridge {
                return Err(invalid(format!(
                    "'{}' is a bridge; a service token reads credentials.",
                    record.name
                )));
            }
            if record.sealed {
                return Err(invalid(format!(
                    "'{}' is sealed: only its own X-API-Key opens it, so a token cannot.",
                    record.name
                )));
            }
        }
        let id = Uuid::new_v4();
        let (token, digest) = SERVICE.issue(id)?;
        let new = NewServiceToken {
            id,
            account,
            name,
            digest: &digest,
            created_at: now,
            expires_at,
            records: &scope,
        };
        match self.store.create_service_token(&new).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(TokenError::NameTaken),
            Err(e) => return Err(e.into()),
        }
        self.account_event(account, "service_token_created", client)
            .await?;
        let row = self
            .store
            .service_token(id)
            .await
            .map_err(Fault::from)?
            .ok_or(Fault::Internal("a token just made is gone"))?;
        Ok(Issued { token, row })
    }

    /// The names of the account's records, for showing a token's scope.
    pub async fn record_names(&self, account: Uuid) -> Result<Vec<(Uuid, String)>, Fault> {
        Ok(self
            .store
            .record_names(account)
            .await?
            .into_iter()
            .filter(|r| !r.deleted)
            .map(|r| (r.uuid, r.name))
            .collect())
    }

    pub async fn list(&self, account: Uuid) -> Result<Vec<ServiceTokenRow>, Fault> {
        Ok(self.store.service_tokens_of(account).await?)
    }

    /// Revokes the account's token at once; returns whether there was one.
    pub async fn revoke(
        &self,
        account: Uuid,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<bool, Fault> {
        let revoked = self.store.delete_service_token_of(account, id).await?;
        if revoked {
            self.account_event(account, "service_token_revoked", client)
                .await?;
        }
        Ok(revoked)
    }

    async fn account_event(
        &self,
        account: Uuid,
        kind: &str,
        client: &ClientInfo,
    ) -> Result<(), Fault> {
        self.store
            .append_account_event(
                account,
                now_ms(),
                kind,
                client.origin.client_ip.as_deref(),
                client.origin.user_agent.as_deref(),
            )
            .await?;
        Ok(())
    }
}

/// The token's id and the digest of its secret, when it has the token's shape.
pub(crate) fn parse(presented: &str) -> Option<(Uuid, [u8; 32])> {
    SERVICE.parse(presented)
}

#[cfg(test)]
fn digest(secret: &str) -> [u8; 32] {
    SERVICE.digest(secret)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_the_token_shape_parses() {
        let id = Uuid::new_v4();
        let secret = "A".repeat(43);
        let token = format!("{PREFIX}{}_{secret}", id.simple());
        assert_eq!(parse(&token), Some((id, digest(&secret))));
        for bad in [
            "brk_abc".to_owned(),
            format!("{PREFIX}{}", id.simple()),
            format!("{PREFIX}{}_{}", id.simple(), "A".repeat(42)),
            format!("{PREFIX}{}-{secret}", id.simple()),
            format!("{PREFIX}{}é_{secret}", &id.simple().to_string()[..30]),
            PREFIX.to_owned(),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        /// Any X-API-Key value that looks like a token is parsed or refused, never a panic.
        #[test]
        fn any_presented_token_parses_or_is_refused(tail in "\\PC{0,120}") {
            let _ = parse(&format!("{PREFIX}{tail}"));
        }

        /// A well-formed token always names its id, and its digest is its secret's.
        #[test]
        fn well_formed_tokens_name_their_id(id in proptest::prelude::any::<u128>(), secret in "[A-Za-z0-9_-]{43}") {
            let id = Uuid::from_u128(id);
            let token = format!("{PREFIX}{}_{secret}", id.simple());
            proptest::prop_assert_eq!(parse(&token), Some((id, digest(&secret))));
        }
    }
}
