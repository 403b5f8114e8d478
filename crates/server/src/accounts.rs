//! Accounts: signing up, signing in and out, and the sessions that dashboard tokens name.

use std::sync::Arc;

use brine_core::{AccountPassword, Email, ValidationError};
use brine_crypto::{hash_account_password, verify_account_password};
use brine_limits::Decision;
use brine_store::{Account, Store, StoreError};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::auth::{Claims, TokenKeys};
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::fault::Fault;
use crate::throttle::Limits;
use crate::vault::Vault;

#[derive(Debug)]
pub enum AccountError {
    /// Sign-up is turned off on this server.
    SignupClosed,
    Invalid(ValidationError),
    EmailTaken,
    /// Wrong email or password (the same answer for both).
    InvalidCredentials,
    /// Over the sign-in limits.
    Limited(Decision),
    Fault(Fault),
}

impl From<Fault> for AccountError {
    fn from(f: Fault) -> Self {
        AccountError::Fault(f)
    }
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        AccountError::Fault(e.into())
    }
}

/// A signed-in session: the token and its lifetime.
pub struct Session {
    pub token: String,
    pub expires_in: i64,
}

/// Cheap to clone: one reference count (requests clone handles as they extract them).
#[derive(Clone)]
pub struct Accounts(Arc<AccountsParts>);

impl std::ops::Deref for Accounts {
    type Target = AccountsParts;

    fn deref(&self) -> &AccountsParts {
        &self.0
    }
}

pub struct AccountsParts {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<TokenKeys>,
    vault: Vault,
    limits: Limits,
    /// A hash of a random password, verified when a login names an unknown email, so that the
    /// answer takes as long as for a known one.
    decoy_hash: Arc<str>,
    signup_open: bool,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        tokens: Arc<TokenKeys>,
        vault: Vault,
        limits: Limits,
        decoy_hash: Arc<str>,
        signup_open: bool,
    ) -> Self {
        Self(Arc::new(AccountsParts {
            store,
            tokens,
            vault,
            limits,
            decoy_hash,
            signup_open,
        }))
    }

    /// Creates an account and signs it in.
    pub async fn sign_up(
        &self,
        email: &str,
        password: String,
        client: &ClientInfo,
    ) -> Result<Session, AccountError> {
        if !self.signup_open {
            return Err(AccountError::SignupClosed);
        }
        let email = Email::parse(email).map_err(AccountError::Invalid)?;
        let password = AccountPassword::parse(password).map_err(AccountError::Invalid)?;
        // Each sign-up costs an Argon2 run: bounded per address like sign-in attempts.
        self.limits
            .admit_login(client.addr, None)
            .await
            .map_err(AccountError::Limited)?;
        let password_hash = self
            .vault
            .run_kdf(move |settings| hash_account_password(password.as_bytes(), settings))
            .await
            .map_err(Fault::from)?
            .map_err(|e| Fault::from(crate::vault::VaultError::from(e)))?;
        let account = Account {
            id: Uuid::new_v4(),
            email: email.as_str().to_owned(),
            password_hash,
            created_at: now_ms(),
        };
        match self.store.create_account(&account).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(AccountError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(account = %account.id, "account created");
        self.open_session(account.id).await
    }

    /// Signs in. Answers in the same time whether or not the email exists.
    pub async fn sign_in(
        &self,
        email: &str,
        password: String,
        client: &ClientInfo,
    ) -> Result<Session, AccountError> {
        // Before the lookup: known and unknown emails are counted, and answered, alike.
        self.limits
            .admit_login(client.addr, Some(email))
            .await
            .map_err(AccountError::Limited)?;
        let account = match Email::parse(email) {
            Ok(email) => self.store.account_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        // Unknown emails verify against a decoy hash, so both paths cost one Argon2 run.
        let hash = account
            .as_ref()
            .map_or_else(|| self.decoy_hash.to_string(), |a| a.password_hash.clone());
        let password = Zeroizing::new(password);
        let valid = self
            .vault
            .run_kdf(move |_| verify_account_password(password.as_bytes(), &hash))
            .await
            .map_err(Fault::from)?
            .map_err(|e| Fault::from(crate::vault::VaultError::from(e)))?;
        match account {
            Some(account) if valid => self.open_session(account.id).await,
            _ => Err(AccountError::InvalidCredentials),
        }
    }

    /// Signs out: the session's token stops working at once, on every node.
    pub async fn sign_out(&self, session: Uuid) -> Result<(), AccountError> {
        self.store.delete_session(session).await?;
        Ok(())
    }

    async fn open_session(&self, account: Uuid) -> Result<Session, AccountError> {
        let now = now_ms();
        let session = Uuid::new_v4();
        let ttl = self.tokens.ttl;
        self.store
            .create_session(session, account, now, now + ttl)
            .await?;
        let token = self
            .tokens
            .issue(&Claims::new(account, session, now, ttl))
            .map_err(|_| AccountError::Fault(Fault::Token))?;
        Ok(Session {
            token,
            expires_in: ttl.whole_seconds(),
        })
    }
}
