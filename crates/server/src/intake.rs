//! Intake links, the submitter's side: what an open link asks for, and taking one value
//! through it.
//!
//! The order of a submission is what makes it safe: the password is checked (every attempt
//! counted first, for the lockout) and the value checked before the link is spent; the link is
//! then spent by one conditional update, so of two submissions only one stores a value; if the
//! value cannot be stored after all, the link opens again. Unknown, used, revoked and expired
//! links all answer alike.

use std::sync::Arc;

use brine_store::{IntakeLink, Store};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::fault::Fault;
use crate::lockout::LockoutSettings;
use crate::owner::intake::{state, token_hash};
use crate::owner::{OwnerError, Owners};
use crate::vault::Vault;

/// An open link, as its page shows it.
pub struct OpenLink {
    pub asked_for: String,
    pub has_password: bool,
    pub expires_at: Option<OffsetDateTime>,
}

/// What the submitter is shown after the value was stored (never the value).
pub struct Receipt {
    pub asked_for: String,
    pub received_at: OffsetDateTime,
}

/// Why a submission was not taken.
#[derive(Debug)]
pub enum IntakeRefusal {
    /// No such link, or used, revoked or expired: the same answer for all.
    NotOpen,
    /// The link's password is missing or wrong.
    WrongPassword,
    /// Too many password attempts; retry after this many seconds.
    Locked(u64),
    /// The value cannot be stored (empty, too long, not a valid header value); the link stays
    /// open.
    Invalid(String),
    Fault(Fault),
}

impl From<Fault> for IntakeRefusal {
    fn from(f: Fault) -> Self {
        IntakeRefusal::Fault(f)
    }
}

impl From<brine_store::StoreError> for IntakeRefusal {
    fn from(e: brine_store::StoreError) -> Self {
        IntakeRefusal::Fault(e.into())
    }
}

/// The desk where values are handed in. Cheap to clone.
#[derive(Clone)]
pub struct IntakeDesk(Arc<Parts>);

pub struct Parts {
    owners: Owners,
    store: Arc<dyn Store>,
    vault: Vault,
    lockout: LockoutSettings,
}

impl IntakeDesk {
    pub fn new(
        owners: Owners,
        store: Arc<dyn Store>,
        vault: Vault,
        lockout: LockoutSettings,
    ) -> Self {
        Self(Arc::new(Parts {
            owners,
            store,
            vault,
            lockout,
        }))
    }

    /// The link behind `token` while it is open.
    async fn open_link(&self, token: &str) -> Result<Option<IntakeLink>, Fault> {
        // Tokens are 43 characters of base64url; anything else is not worth a query.
        if token.len() != 43 {
            return Ok(None);
        }
        let link = self.0.store.intake_by_token(&token_hash(token)).await?;
        Ok(link.filter(|l| state(l, now_ms()) == "open"))
    }

    /// What an open link asks for. Looking changes nothing: link-preview bots spend nothing.
    pub async fn look(&self, token: &str) -> Result<Option<OpenLink>, Fault> {
        Ok(self.open_link(token).await?.map(|l| OpenLink {
            asked_for: l.asked_for,
            has_password: l.password_hash.is_some(),
            expires_at: l.expires_at,
        }))
    }

    /// Takes `value` through the link, once.
    pub async fn submit(
        &self,
        token: &str,
        password: Option<Zeroizing<String>>,
        value: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<Receipt, IntakeRefusal> {
        let link = self.open_link(token).await?.ok_or(IntakeRefusal::NotOpen)?;
        if let Some(hash) = &link.password_hash {
            self.check_password(&link, hash.clone(), password, client)
                .await?;
        }
        // Pasted values often end with a line break the person did not mean to send.
        let value = Zeroizing::new(value.trim().to_owned());
        if value.is_empty() {
            return Err(IntakeRefusal::Invalid(
                "Paste the value before sending it.".into(),
            ));
        }
        let spent_at = now_ms();
        if !self.0.store.claim_intake(link.id, spent_at).await? {
            return Err(IntakeRefusal::NotOpen);
        }
        match self.0.owners.deliver_intake(&link, value, client).await {
            Ok(()) => Ok(Receipt {
                asked_for: link.asked_for,
                received_at: spent_at,
            }),
            Err(e) => {
                // Nothing was stored: the link may be used again.
                self.0.store.release_intake(link.id, spent_at).await?;
                Err(match e {
                    OwnerError::Invalid { message, .. } => IntakeRefusal::Invalid(message),
                    OwnerError::Fault(fault) => IntakeRefusal::Fault(fault),
                    // The bridge was deleted or sealed since: the link cannot be used.
                    _ => IntakeRefusal::NotOpen,
                })
            }
        }
    }

    /// Counts the attempt (before checking, so parallel guesses all count), then checks it.
    async fn check_password(
        &self,
        link: &IntakeLink,
        hash: String,
        password: Option<Zeroizing<String>>,
        client: &ClientInfo,
    ) -> Result<(), IntakeRefusal> {
        let Some(password) = password.filter(|p| !p.is_empty()) else {
            return Err(IntakeRefusal::WrongPassword);
        };
        let settings = self.0.lockout;
        let now = now_ms();
        let window = Duration::seconds(i64::from(settings.window_secs));
        let attempts = self
            .0
            .store
            .note_intake_attempt(
                link.id,
                client.origin.client_ip.as_deref(),
                now,
                now - window,
            )
            .await?;
        if attempts.client > i64::from(settings.per_client)
            || attempts.all > i64::from(settings.per_record)
        {
            return Err(IntakeRefusal::Locked(u64::from(settings.window_secs)));
        }
        let right = self
            .0
            .vault
            .run_kdf(move |_| brine_crypto::verify_account_password(password.as_bytes(), &hash))
            .await
            .map_err(|e| IntakeRefusal::Fault(e.into()))?
            .map_err(|e| IntakeRefusal::Fault(crate::vault::VaultError::from(e).into()))?;
        if right {
            Ok(())
        } else {
            Err(IntakeRefusal::WrongPassword)
        }
    }
}
