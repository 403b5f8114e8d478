//! Accounts: signing up, in (with a second factor when the owner turned it on) and out; the
//! sessions that dashboard cookies and API tokens name; password changes; deleting an account;
//! and the account's own audit log. The pages, the JSON API and the CLI all come through here,
//! so no way in skips the second factor or the sign-in limits.

pub(crate) mod refresh;
mod two_factor;

use std::sync::Arc;

use brine_core::{AccountPassword, Email, ValidationError};
use brine_crypto::{hash_account_password, verify_account_password};
use brine_limits::Decision;
use brine_store::{Account, AccountEvent, NewSession, Refresh, SessionRow, Store, StoreError};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

use self::refresh::{new_refresh, parse_refresh};
pub use self::two_factor::{TotpKey, qr_svg};
use crate::auth::{Claims, Owner, TokenKeys};
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::fault::Fault;
use crate::owner::{OwnerError, Owners};
use crate::throttle::Limits;
use crate::vault::{Vault, VaultError};

#[derive(Debug)]
pub enum AccountError {
    /// Sign-up is turned off on this server.
    SignupClosed,
    Invalid(ValidationError),
    EmailTaken,
    /// Wrong email, password or code (one answer for all, so none is confirmed).
    InvalidCredentials,
    /// The password was right; the account also needs a code from its authenticator app.
    CodeRequired,
    /// The second step of a sign-in came too late (or its challenge is not one of ours).
    ChallengeExpired,
    /// Not possible as the account is (two-factor sign-in already on, no setup started...).
    Conflict(&'static str),
    /// No such session of this account.
    NotFound,
    /// Over the sign-in limits.
    Limited(Decision),
    /// A refresh token that is not (or no longer) valid; `reused` when it was an earlier token
    /// of a session, which has now been ended.
    RefreshRefused {
        reused: bool,
    },
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

impl From<VaultError> for AccountError {
    fn from(e: VaultError) -> Self {
        AccountError::Fault(e.into())
    }
}

pub type AccountResult<T> = Result<T, AccountError>;

/// How a session is carried: a browser's cookie or an API bearer token. A token of one kind is
/// refused where the other is expected, so a stolen API token cannot drive the dashboard's
/// forms and a cookie cannot be replayed as a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Browser,
    Api,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::Browser => "browser",
            SessionKind::Api => "api",
        }
    }
}

/// A signed-in session: its id, its token and its lifetime.
pub struct Session {
    pub id: Uuid,
    pub token: String,
    pub expires_in: i64,
    /// For a renewable session (the CLI's): what renews it, once.
    pub refresh_token: Option<Zeroizing<String>>,
}

/// How long a session lasts: a token's lifetime, or renewable with refresh tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    Fixed,
    Renewable,
}

/// What a right password gives.
pub enum SignIn {
    Session(Session),
    /// The account has two-factor sign-in: the next step sends a code with this challenge.
    NeedsCode {
        challenge: String,
    },
}

/// What the account page and `GET /api/v1/account` show.
pub struct AccountSummary {
    pub account: Account,
    pub recovery_codes_left: u32,
}

/// The first step of turning two-factor sign-in on.
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

/// How long the second step of a sign-in may take.
const CHALLENGE_TTL: Duration = Duration::minutes(5);

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
    store: Arc<dyn Store>,
    tokens: Arc<TokenKeys>,
    /// How long a renewable session lasts without being renewed.
    cli_session: Duration,
    /// Signs the short-lived challenges of a sign-in's second step; a different key from the
    /// session tokens', so one can never pass for the other.
    challenges: TokenKeys,
    totp: TotpKey,
    vault: Vault,
    limits: Limits,
    /// A hash of a random password, verified when a login names an unknown email, so that the
    /// answer takes as long as for a known one.
    decoy_hash: Arc<str>,
    signup_open: bool,
}

/// What [`Accounts::new`] needs.
pub struct AccountsConfig {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<TokenKeys>,
    pub cli_session: Duration,
    /// The challenge-signing key under each master-key version.
    pub challenge_keys: brine_crypto::Subkeys,
    pub totp: TotpKey,
    pub vault: Vault,
    pub limits: Limits,
    pub decoy_hash: Arc<str>,
    pub signup_open: bool,
}

impl Accounts {
    pub fn new(c: AccountsConfig) -> Self {
        Self(Arc::new(AccountsParts {
            store: c.store,
            tokens: c.tokens,
            cli_session: c.cli_session,
            challenges: TokenKeys::new(&c.challenge_keys, CHALLENGE_TTL),
            totp: c.totp,
            vault: c.vault,
            limits: c.limits,
            decoy_hash: c.decoy_hash,
            signup_open: c.signup_open,
        }))
    }

    /// Creates an account and signs it in.
    pub async fn sign_up(
        &self,
        email: &str,
        password: String,
        client: &ClientInfo,
        kind: SessionKind,
        lifetime: Lifetime,
    ) -> AccountResult<Session> {
        if !self.signup_open {
            return Err(AccountError::SignupClosed);
        }
        let email = Email::parse(email).map_err(AccountError::Invalid)?;
        let password = AccountPassword::parse(password).map_err(AccountError::Invalid)?;
        // Each sign-up costs an Argon2 run: bounded per address like sign-in attempts.
        self.limits
            .admit_login(client.tag, None)
            .await
            .map_err(AccountError::Limited)?;
        let password_hash = self.hash(password).await?;
        let account = Account {
            id: Uuid::new_v4(),
            email: email.as_str().to_owned(),
            password_hash,
            created_at: now_ms(),
            totp_secret: None,
            totp_key_version: 1,
        };
        match self.store.create_account(&account).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(AccountError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(account = %account.id, "account created");
        self.event(account.id, "signed_up", client).await?;
        self.open_session(account.id, kind, lifetime, client).await
    }

    /// Signs in. Answers in the same time whether or not the email exists. With two-factor
    /// sign-in on, a `code` completes the sign-in at once; without one, a browser gets a
    /// challenge for the second step and an API client is told that a code is required.
    pub async fn sign_in(
        &self,
        email: &str,
        password: String,
        code: Option<String>,
        client: &ClientInfo,
        kind: SessionKind,
        lifetime: Lifetime,
    ) -> AccountResult<SignIn> {
        // Before the lookup: known and unknown emails are counted, and answered, alike.
        self.limits
            .admit_login(client.tag, Some(email))
            .await
            .map_err(AccountError::Limited)?;
        let account = match Email::parse(email) {
            Ok(email) => self.store.account_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        let valid = self.verify(account.as_ref(), password).await?;
        let account = match account {
            Some(account) if valid => account,
            Some(account) => {
                self.event(account.id, "sign_in_failed", client).await?;
                return Err(AccountError::InvalidCredentials);
            }
            None => return Err(AccountError::InvalidCredentials),
        };
        if account.totp_secret.is_none() {
            return self
                .signed_in(account.id, kind, lifetime, client)
                .await
                .map(SignIn::Session);
        }
        match (code, kind) {
            (Some(code), _) => {
                self.check_code(&account, &code, client).await?;
                self.signed_in(account.id, kind, lifetime, client)
                    .await
                    .map(SignIn::Session)
            }
            (None, SessionKind::Browser) => {
                let now = now_ms();
                let challenge = self
                    .challenges
                    .issue(&Claims::new(account.id, Uuid::nil(), now, CHALLENGE_TTL))
                    .map_err(|_| Fault::Token)?;
                Ok(SignIn::NeedsCode { challenge })
            }
            (None, SessionKind::Api) => Err(AccountError::CodeRequired),
        }
    }

    /// The second step of a browser's sign-in: the challenge from the first, and a code.
    pub async fn second_factor(
        &self,
        challenge: &str,
        code: String,
        client: &ClientInfo,
    ) -> AccountResult<Session> {
        let claims = self
            .challenges
            .verify(challenge)
            .ok_or(AccountError::ChallengeExpired)?;
        let account = self
            .store
            .account(claims.sub)
            .await?
            .ok_or(AccountError::ChallengeExpired)?;
        // Codes are guessed against the same limits as passwords.
        self.limits
            .admit_login(client.tag, Some(&account.email))
            .await
            .map_err(AccountError::Limited)?;
        self.check_code(&account, &code, client).await?;
        self.signed_in(account.id, SessionKind::Browser, Lifetime::Fixed, client)
            .await
    }

    /// The owner of a live session carried as `kind`, from its token; `None` when the token is
    /// not valid, has expired, was ended, or is of the other kind.
    pub async fn owner(&self, token: &str, kind: SessionKind) -> Result<Option<Owner>, Fault> {
        let Some(claims) = self.tokens.verify(token.trim()) else {
            return Ok(None);
        };
        let session = self.store.session(claims.sid, now_ms()).await?;
        Ok(match session {
            Some(s) if s.account == claims.sub && s.kind == kind.as_str() => Some(Owner {
                account: s.account,
                session: s.id,
            }),
            _ => None,
        })
    }

    /// Renews a renewable session with its current refresh token: a new bearer token and a new
    /// refresh token, the session extended. An earlier refresh token of the session, presented
    /// again, means someone holds a copy: the session ends, for the copy and the owner alike.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> AccountResult<Session> {
        let Some((id, old)) = parse_refresh(refresh_token) else {
            return Err(AccountError::RefreshRefused { reused: false });
        };
        let (new_token, new) = new_refresh(id)?;
        let now = now_ms();
        match self
            .store
            .rotate_refresh(id, &old, &new, now, now + self.cli_session)
            .await?
        {
            Refresh::Rotated(session) => {
                let ttl = self.tokens.ttl;
                let token = self
                    .tokens
                    .issue(&Claims::new(session.account, id, now, ttl))
                    .map_err(|_| Fault::Token)?;
                Ok(Session {
                    id,
                    token,
                    expires_in: ttl.whole_seconds(),
                    refresh_token: Some(new_token),
                })
            }
            Refresh::Reused { account } => {
                tracing::warn!(session = %id, "an earlier refresh token was presented again; the session has been ended");
                self.event(account, "refresh_token_reused", client).await?;
                Err(AccountError::RefreshRefused { reused: true })
            }
            Refresh::Unknown => Err(AccountError::RefreshRefused { reused: false }),
        }
    }

    /// Signs out: the session's token stops working at once, on every node.
    pub async fn sign_out(&self, owner: Owner, client: &ClientInfo) -> AccountResult<()> {
        self.store.delete_session(owner.session).await?;
        self.event(owner.account, "signed_out", client).await
    }

    pub async fn summary(&self, owner: Owner) -> AccountResult<AccountSummary> {
        let account = self.account(owner.account).await?;
        let recovery_codes_left = if account.totp_secret.is_some() {
            u32::try_from(self.store.recovery_codes(account.id).await?.len()).unwrap_or(u32::MAX)
        } else {
            0
        };
        Ok(AccountSummary {
            account,
            recovery_codes_left,
        })
    }

    pub async fn sessions(&self, owner: Owner) -> AccountResult<Vec<SessionRow>> {
        Ok(self.store.sessions_of(owner.account, now_ms()).await?)
    }

    /// Ends one of the owner's sessions (another browser, a CLI login), at once.
    pub async fn end_session(
        &self,
        owner: Owner,
        session: Uuid,
        client: &ClientInfo,
    ) -> AccountResult<()> {
        if !self.store.delete_session_of(owner.account, session).await? {
            return Err(AccountError::NotFound);
        }
        self.event(owner.account, "session_ended", client).await
    }

    pub async fn events(&self, owner: Owner, limit: u32) -> AccountResult<Vec<AccountEvent>> {
        Ok(self.store.account_events(owner.account, limit).await?)
    }

    /// Changes the password. Every session ends, this one included; the caller gets a new
    /// session of the same kind to carry on with.
    pub async fn change_password(
        &self,
        owner: Owner,
        current: String,
        new: String,
        client: &ClientInfo,
        kind: SessionKind,
    ) -> AccountResult<Session> {
        let account = self.account(owner.account).await?;
        self.confirm_password(&account, current, client).await?;
        let new = AccountPassword::parse(new).map_err(AccountError::Invalid)?;
        let hash = self.hash(new).await?;
        let lifetime = match self.store.session(owner.session, now_ms()).await? {
            Some(session) if session.refreshable => Lifetime::Renewable,
            _ => Lifetime::Fixed,
        };
        self.store.set_password(account.id, &hash, None).await?;
        self.event(account.id, "password_changed", client).await?;
        self.open_session(account.id, kind, lifetime, client).await
    }

    /// Deletes the account after its password: its records first, through the owner's
    /// operations, so that no copy in memory answers for them afterwards; then the account and
    /// everything it holds (sessions, events), by cascade.
    pub async fn delete_account(
        &self,
        owners: &Owners,
        owner: Owner,
        password: String,
        client: &ClientInfo,
    ) -> AccountResult<()> {
        let account = self.account(owner.account).await?;
        self.confirm_password(&account, password, client).await?;
        let records = owners.list(owner.account).await.map_err(owner_fault)?;
        for record in records {
            match owners.delete(owner.account, record.uuid).await {
                Ok(()) | Err(OwnerError::NotFound) => {}
                Err(e) => return Err(owner_fault(e)),
            }
        }
        self.store.delete_account(owner.account).await?;
        tracing::info!(account = %owner.account, "account deleted");
        Ok(())
    }

    /// Starts turning two-factor sign-in on: a new secret, kept aside until a code proves the
    /// app has it.
    pub async fn start_two_factor(&self, owner: Owner) -> AccountResult<Enrolment> {
        let account = self.account(owner.account).await?;
        if account.totp_secret.is_some() {
            return Err(AccountError::Conflict("Two-factor sign-in is already on."));
        }
        let secret = two_factor::new_secret()?;
        let (sealed, key_version) = self.totp.seal(account.id, &secret)?;
        self.store
            .set_totp_pending(account.id, Some(&sealed), key_version)
            .await?;
        let (secret, otpauth_uri) = two_factor::enrolment(&secret, &account.email)?;
        Ok(Enrolment {
            secret,
            otpauth_uri,
        })
    }

    /// The setup in progress, if any (to show its QR code again).
    pub async fn pending_two_factor(&self, owner: Owner) -> AccountResult<Option<Enrolment>> {
        let account = self.account(owner.account).await?;
        let Some((sealed, key_version)) = self.store.totp_pending(account.id).await? else {
            return Ok(None);
        };
        let secret = self.totp.open(account.id, key_version, &sealed)?;
        let (secret, otpauth_uri) = two_factor::enrolment(&secret, &account.email)?;
        Ok(Some(Enrolment {
            secret,
            otpauth_uri,
        }))
    }

    /// Finishes turning two-factor sign-in on with a code from the app; returns the recovery
    /// codes, shown this once.
    pub async fn enable_two_factor(
        &self,
        owner: Owner,
        code: &str,
        client: &ClientInfo,
    ) -> AccountResult<Vec<Zeroizing<String>>> {
        let account = self.account(owner.account).await?;
        let (sealed, key_version) =
            self.store
                .totp_pending(account.id)
                .await?
                .ok_or(AccountError::Conflict(
                    "Start the setup first: there is no secret waiting for a code.",
                ))?;
        let secret = self.totp.open(account.id, key_version, &sealed)?;
        let now = OffsetDateTime::now_utc().unix_timestamp().unsigned_abs();
        if two_factor::matching_step(&secret, &account.email, code, now).is_none() {
            return Err(AccountError::Invalid(ValidationError::new(
                "code",
                "That code is not correct. Enter the 6-digit code your app shows now.",
            )));
        }
        let codes = two_factor::new_recovery_codes()?;
        let digests: Vec<Vec<u8>> = codes
            .iter()
            .map(|c| two_factor::recovery_digest(account.id, c))
            .collect();
        self.store
            .enable_totp(account.id, &sealed, key_version, &digests)
            .await?;
        self.event(account.id, "two_factor_enabled", client).await?;
        Ok(codes)
    }

    /// Turns two-factor sign-in off, after the password.
    pub async fn disable_two_factor(
        &self,
        owner: Owner,
        password: String,
        client: &ClientInfo,
    ) -> AccountResult<()> {
        let account = self.account(owner.account).await?;
        self.confirm_password(&account, password, client).await?;
        if account.totp_secret.is_none() {
            return Err(AccountError::Conflict("Two-factor sign-in is already off."));
        }
        self.store.disable_totp(account.id).await?;
        self.event(account.id, "two_factor_disabled", client).await
    }

    async fn account(&self, id: Uuid) -> AccountResult<Account> {
        // A session outlives its account only if the account was deleted a moment ago.
        self.store
            .account(id)
            .await?
            .ok_or(AccountError::InvalidCredentials)
    }

    /// Re-checks the password for an action that cannot be undone, under the sign-in limits.
    async fn confirm_password(
        &self,
        account: &Account,
        password: String,
        client: &ClientInfo,
    ) -> AccountResult<()> {
        self.limits
            .admit_login(client.tag, Some(&account.email))
            .await
            .map_err(AccountError::Limited)?;
        if self.verify(Some(account), password).await? {
            Ok(())
        } else {
            self.event(account.id, "sign_in_failed", client).await?;
            Err(AccountError::InvalidCredentials)
        }
    }

    /// A code from the app (each works once) or an unused recovery code.
    async fn check_code(
        &self,
        account: &Account,
        code: &str,
        client: &ClientInfo,
    ) -> AccountResult<()> {
        let accepted = match &account.totp_secret {
            None => true,
            Some(sealed) if two_factor::is_app_code(code) => {
                let secret = self
                    .totp
                    .open(account.id, account.totp_key_version, sealed)?;
                let now = OffsetDateTime::now_utc().unix_timestamp().unsigned_abs();
                match two_factor::matching_step(&secret, &account.email, code, now) {
                    Some(step) => self.store.take_totp_step(account.id, step).await?,
                    None => false,
                }
            }
            Some(_) => {
                let digest = two_factor::recovery_digest(account.id, code);
                let used = self.store.use_recovery_code(account.id, &digest).await?;
                if used {
                    self.event(account.id, "recovery_code_used", client).await?;
                }
                used
            }
        };
        if accepted {
            Ok(())
        } else {
            self.event(account.id, "code_failed", client).await?;
            Err(AccountError::InvalidCredentials)
        }
    }

    async fn verify(&self, account: Option<&Account>, password: String) -> AccountResult<bool> {
        // Unknown emails verify against a decoy hash, so both paths cost one Argon2 run.
        let hash = account.map_or_else(|| self.decoy_hash.to_string(), |a| a.password_hash.clone());
        let password = Zeroizing::new(password);
        Ok(self
            .vault
            .run_kdf(move |_| verify_account_password(password.as_bytes(), &hash))
            .await?
            .map_err(VaultError::from)?)
    }

    async fn hash(&self, password: AccountPassword) -> AccountResult<String> {
        Ok(self
            .vault
            .run_kdf(move |settings| hash_account_password(password.as_bytes(), settings))
            .await?
            .map_err(VaultError::from)?)
    }

    async fn signed_in(
        &self,
        account: Uuid,
        kind: SessionKind,
        lifetime: Lifetime,
        client: &ClientInfo,
    ) -> AccountResult<Session> {
        self.event(account, "signed_in", client).await?;
        self.open_session(account, kind, lifetime, client).await
    }

    async fn event(&self, account: Uuid, kind: &str, client: &ClientInfo) -> AccountResult<()> {
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

    async fn open_session(
        &self,
        account: Uuid,
        kind: SessionKind,
        lifetime: Lifetime,
        client: &ClientInfo,
    ) -> AccountResult<Session> {
        let now = now_ms();
        let id = Uuid::new_v4();
        let ttl = self.tokens.ttl;
        let (refresh_token, refresh_digest, expires_at) = match lifetime {
            Lifetime::Fixed => (None, None, now + ttl),
            Lifetime::Renewable => {
                let (token, digest) = new_refresh(id)?;
                (Some(token), Some(digest), now + self.cli_session.max(ttl))
            }
        };
        self.store
            .create_session(&NewSession {
                id,
                account,
                kind: kind.as_str(),
                created_at: now,
                expires_at,
                client_ip: client.origin.client_ip.as_deref(),
                user_agent: client.origin.user_agent.as_deref(),
                refresh_digest: refresh_digest.as_ref().map(|d| d.as_slice()),
            })
            .await?;
        let token = self
            .tokens
            .issue(&Claims::new(account, id, now, ttl))
            .map_err(|_| Fault::Token)?;
        Ok(Session {
            id,
            token,
            expires_in: ttl.whole_seconds(),
            refresh_token,
        })
    }
}

/// Listing and deleting records fail only on storage.
fn owner_fault(e: OwnerError) -> AccountError {
    match e {
        OwnerError::Fault(fault) => AccountError::Fault(fault),
        other => {
            tracing::error!(error = ?other, "deleting an account's records failed");
            AccountError::Fault(Fault::Internal(
                "an owner operation failed while deleting an account",
            ))
        }
    }
}
