//! Accounts, their sessions, their second factor and their own audit log: the types, the trait,
//! and the SQL (shared by both backends, like [`crate::sql`]).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    /// Normalised (lower-case) email.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: OffsetDateTime,
    /// The TOTP secret, sealed by the server (see the accounts module of the server); `None`
    /// when two-factor sign-in is off.
    pub totp_secret: Option<Vec<u8>>,
    /// The master-key version whose TOTP subkey sealed `totp_secret` (1 before rotation).
    pub totp_key_version: i64,
}

/// A session being opened.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id: Uuid,
    pub account: Uuid,
    /// `browser` or `api`.
    pub kind: &'a str,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// SHA-256 of the session's first refresh token, for a session that can be renewed.
    pub refresh_digest: Option<&'a [u8]>,
}

/// An open session, as the owner's sessions list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: Uuid,
    pub account: Uuid,
    pub kind: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Renewed with a refresh token (the CLI's sessions).
    pub refreshable: bool,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// It was the session's current token: replaced by the new one, the session extended.
    Rotated(SessionRow),
    /// An earlier token of an open session of `account`, presented again: someone holds a
    /// copy, so the session has been ended.
    Reused { account: Uuid },
    /// No open session of that id.
    Unknown,
}

/// Something that happened to an account: `signed_in`, `sign_in_failed`, `password_changed`...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    pub id: i64,
    pub at: OffsetDateTime,
    pub kind: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Fails with [`crate::StoreError::Conflict`] when the email is taken.
    async fn create_account(&self, account: &Account) -> Result<()>;
    async fn account(&self, id: Uuid) -> Result<Option<Account>>;
    async fn account_by_email(&self, email: &str) -> Result<Option<Account>>;
    /// Every account, oldest first (for export).
    async fn accounts(&self) -> Result<Vec<Account>>;
    /// Deletes the account and, by cascade, its records, sessions and events.
    async fn delete_account(&self, id: Uuid) -> Result<bool>;
    /// Sets a new password hash and ends every session of the account but `keep`, atomically.
    async fn set_password(&self, id: Uuid, password_hash: &str, keep: Option<Uuid>)
    -> Result<bool>;

    /// A secret shown to the owner and waiting for its first code (`None` clears it).
    /// `key_version` is the master-key version that sealed it.
    async fn set_totp_pending(
        &self,
        id: Uuid,
        sealed: Option<&[u8]>,
        key_version: i64,
    ) -> Result<()>;
    /// The pending secret and the master-key version that sealed it, if any.
    async fn totp_pending(&self, id: Uuid) -> Result<Option<(Vec<u8>, i64)>>;
    /// Turns two-factor sign-in on with `sealed` (under master-key version `key_version`) and
    /// these recovery-code digests (replacing any earlier ones), atomically; clears the pending
    /// secret.
    async fn enable_totp(
        &self,
        id: Uuid,
        sealed: &[u8],
        key_version: i64,
        recovery: &[Vec<u8>],
    ) -> Result<()>;
    /// Turns two-factor sign-in off and deletes the recovery codes.
    async fn disable_totp(&self, id: Uuid) -> Result<()>;
    /// Records that the code of 30-second `step` was used, unless that step or a later one was
    /// used already. Returns whether it was recorded (a code works once).
    async fn take_totp_step(&self, id: Uuid, step: i64) -> Result<bool>;
    /// Deletes the recovery code with this digest; returns whether there was one.
    async fn use_recovery_code(&self, id: Uuid, digest: &[u8]) -> Result<bool>;
    /// The account's unused recovery-code digests.
    async fn recovery_codes(&self, id: Uuid) -> Result<Vec<Vec<u8>>>;

    async fn create_session(&self, session: &NewSession<'_>) -> Result<()>;
    /// A session that exists and has not expired at `now`.
    async fn session(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<SessionRow>>;
    /// The account's sessions that have not expired at `now`, newest first.
    async fn sessions_of(&self, account: Uuid, now: OffsetDateTime) -> Result<Vec<SessionRow>>;
    /// Presents refresh token digest `old` for `session` at `now`: when it is current, replaces
    /// it with `new` and moves the session's expiry to `expires_at`; when the session is open but
    /// `old` is not current, ends the session.
    async fn rotate_refresh(
        &self,
        session: Uuid,
        old: &[u8],
        new: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Refresh>;
    /// Returns whether a session was deleted.
    async fn delete_session(&self, id: Uuid) -> Result<bool>;
    /// Deletes the session if it belongs to `account`; returns whether it did.
    async fn delete_session_of(&self, account: Uuid, id: Uuid) -> Result<bool>;
    /// Ends every session of the account; returns how many.
    async fn delete_sessions_of(&self, account: Uuid) -> Result<u64>;

    async fn append_account_event(
        &self,
        account: Uuid,
        at: OffsetDateTime,
        kind: &str,
        client_ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<()>;
    /// The account's newest events, newest first.
    async fn account_events(&self, account: Uuid, limit: u32) -> Result<Vec<AccountEvent>>;
}

/// Implements [`AccountStore`] for `$store` (holding `pool`), with rows of type `$row`.
macro_rules! impl_account_store {
    ($store:ty, $row:ty) => {
        mod account_sql {
            use async_trait::async_trait;
            use sqlx::Row;
            use time::OffsetDateTime;
            use uuid::Uuid;

            use super::*;
            use crate::sql::is_unique_violation;
            use crate::time_ms::{from_ms, to_ms};
            use crate::{
                Account, AccountEvent, AccountStore, NewSession, Refresh, Result, SessionRow,
                StoreError,
            };

            fn account(row: &$row) -> Result<Account> {
                Ok(Account {
                    id: row.try_get::<Uuid, _>("id")?,
                    email: row.try_get("email")?,
                    password_hash: row.try_get("password_hash")?,
                    created_at: from_ms(row.try_get("created_at")?)?,
                    totp_secret: row.try_get("totp_secret")?,
                    totp_key_version: row.try_get("totp_secret_key_version")?,
                })
            }

            fn session(row: &$row) -> Result<SessionRow> {
                Ok(SessionRow {
                    id: row.try_get::<Uuid, _>("id")?,
                    account: row.try_get::<Uuid, _>("account_id")?,
                    kind: row.try_get("kind")?,
                    created_at: from_ms(row.try_get("created_at")?)?,
                    expires_at: from_ms(row.try_get("expires_at")?)?,
                    client_ip: row.try_get("client_ip")?,
                    user_agent: row.try_get("user_agent")?,
                    refreshable: row.try_get("refreshable")?,
                })
            }

            #[async_trait]
            impl AccountStore for $store {
                async fn create_account(&self, account: &Account) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO accounts (id, email, password_hash, created_at, totp_secret, \
                         totp_secret_key_version) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(account.id)
                    .bind(&account.email)
                    .bind(&account.password_hash)
                    .bind(to_ms(account.created_at))
                    .bind(account.totp_secret.as_deref())
                    .bind(account.totp_key_version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            StoreError::Conflict("email already registered")
                        } else {
                            e.into()
                        }
                    })?;
                    Ok(())
                }

                async fn account(&self, id: Uuid) -> Result<Option<Account>> {
                    let row = sqlx::query(
                        "SELECT id, email, password_hash, created_at, totp_secret, totp_secret_key_version FROM accounts WHERE id = $1"
                    )
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.as_ref().map(account).transpose()
                }

                async fn account_by_email(&self, email: &str) -> Result<Option<Account>> {
                    let row = sqlx::query(
                        "SELECT id, email, password_hash, created_at, totp_secret, totp_secret_key_version FROM accounts WHERE email = $1"
                    )
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.as_ref().map(account).transpose()
                }

                async fn accounts(&self) -> Result<Vec<Account>> {
                    let rows = sqlx::query(
                        "SELECT id, email, password_hash, created_at, totp_secret, totp_secret_key_version FROM accounts ORDER BY created_at, id"
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(account).collect()
                }

                async fn delete_account(&self, id: Uuid) -> Result<bool> {
                    let done = sqlx::query("DELETE FROM accounts WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn set_password(
                    &self,
                    id: Uuid,
                    password_hash: &str,
                    keep: Option<Uuid>,
                ) -> Result<bool> {
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
                        .bind(password_hash)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    // A nil id matches no session: with no `keep`, every session ends.
                    sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id <> $2")
                        .bind(id)
                        .bind(keep.unwrap_or(Uuid::nil()))
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn set_totp_pending(
                    &self,
                    id: Uuid,
                    sealed: Option<&[u8]>,
                    key_version: i64,
                ) -> Result<()> {
                    sqlx::query(
                        "UPDATE accounts SET totp_pending = $1, totp_pending_key_version = $2 \
                         WHERE id = $3",
                    )
                        .bind(sealed)
                        .bind(key_version)
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn totp_pending(&self, id: Uuid) -> Result<Option<(Vec<u8>, i64)>> {
                    let row = sqlx::query(
                        "SELECT totp_pending, totp_pending_key_version FROM accounts WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    let sealed: Option<Vec<u8>> = row.try_get("totp_pending")?;
                    let version: i64 = row.try_get("totp_pending_key_version")?;
                    Ok(sealed.map(|s| (s, version)))
                }

                async fn enable_totp(
                    &self,
                    id: Uuid,
                    sealed: &[u8],
                    key_version: i64,
                    recovery: &[Vec<u8>],
                ) -> Result<()> {
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(
                        "UPDATE accounts SET totp_secret = $1, totp_secret_key_version = $2, \
                         totp_pending = NULL, totp_last_step = NULL WHERE id = $3",
                    )
                    .bind(sealed)
                    .bind(key_version)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    for digest in recovery {
                        sqlx::query(
                            "INSERT INTO recovery_codes (account_id, digest) VALUES ($1, $2)",
                        )
                        .bind(id)
                        .bind(digest.as_slice())
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn disable_totp(&self, id: Uuid) -> Result<()> {
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(
                        "UPDATE accounts SET totp_secret = NULL, totp_pending = NULL, \
                         totp_last_step = NULL WHERE id = $1",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn take_totp_step(&self, id: Uuid, step: i64) -> Result<bool> {
                    // One conditional UPDATE: two nodes given the same code cannot both win.
                    let done = sqlx::query(
                        "UPDATE accounts SET totp_last_step = $1 WHERE id = $2 \
                         AND (totp_last_step IS NULL OR totp_last_step < $1)",
                    )
                    .bind(step)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn use_recovery_code(&self, id: Uuid, digest: &[u8]) -> Result<bool> {
                    let done = sqlx::query(
                        "DELETE FROM recovery_codes WHERE account_id = $1 AND digest = $2",
                    )
                    .bind(id)
                    .bind(digest)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn recovery_codes(&self, id: Uuid) -> Result<Vec<Vec<u8>>> {
                    let rows = sqlx::query(
                        "SELECT digest FROM recovery_codes WHERE account_id = $1 ORDER BY digest",
                    )
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| Ok(row.try_get::<Vec<u8>, _>("digest")?))
                        .collect()
                }

                async fn create_session(&self, s: &NewSession<'_>) -> Result<()> {
                    // Expired sessions are swept here, where sessions are written anyway.
                    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                        .bind(to_ms(s.created_at))
                        .execute(&self.pool)
                        .await?;
                    sqlx::query(
                        "INSERT INTO sessions (id, account_id, kind, created_at, expires_at, \
                         client_ip, user_agent, refresh_digest) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(s.id)
                    .bind(s.account)
                    .bind(s.kind)
                    .bind(to_ms(s.created_at))
                    .bind(to_ms(s.expires_at))
                    .bind(s.client_ip)
                    .bind(s.user_agent)
                    .bind(s.refresh_digest)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn session(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<SessionRow>> {
                    let row = sqlx::query(
                        "SELECT id, account_id, kind, created_at, expires_at, client_ip, user_agent, \
                         refresh_digest IS NOT NULL AS refreshable FROM sessions WHERE id = $1 AND expires_at > $2"
                    )
                    .bind(id)
                    .bind(to_ms(now))
                    .fetch_optional(&self.pool)
                    .await?;
                    row.as_ref().map(session).transpose()
                }

                async fn sessions_of(
                    &self,
                    account: Uuid,
                    now: OffsetDateTime,
                ) -> Result<Vec<SessionRow>> {
                    let rows = sqlx::query(
                        "SELECT id, account_id, kind, created_at, expires_at, client_ip, user_agent, \
                         refresh_digest IS NOT NULL AS refreshable FROM sessions WHERE account_id = $1 \
                         AND expires_at > $2 ORDER BY created_at DESC, id"
                    )
                    .bind(account)
                    .bind(to_ms(now))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(session).collect()
                }

                async fn rotate_refresh(
                    &self,
                    id: Uuid,
                    old: &[u8],
                    new: &[u8],
                    now: OffsetDateTime,
                    expires_at: OffsetDateTime,
                ) -> Result<Refresh> {
                    // Digests of 256-bit random secrets: comparing them in SQL leaks nothing
                    // that would help forge one.
                    let rotated = sqlx::query(
                        "UPDATE sessions SET refresh_digest = $1, expires_at = $2 \
                         WHERE id = $3 AND refresh_digest = $4 AND expires_at > $5",
                    )
                    .bind(new)
                    .bind(to_ms(expires_at))
                    .bind(id)
                    .bind(old)
                    .bind(to_ms(now))
                    .execute(&self.pool)
                    .await?;
                    if rotated.rows_affected() > 0 {
                        return Ok(match self.session(id, now).await? {
                            Some(row) => Refresh::Rotated(row),
                            None => Refresh::Unknown,
                        });
                    }
                    let ended = sqlx::query(
                        "DELETE FROM sessions WHERE id = $1 AND refresh_digest IS NOT NULL \
                         AND expires_at > $2 RETURNING account_id",
                    )
                    .bind(id)
                    .bind(to_ms(now))
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(match ended {
                        Some(row) => Refresh::Reused {
                            account: row.try_get::<Uuid, _>("account_id")?,
                        },
                        None => Refresh::Unknown,
                    })
                }

                async fn delete_session(&self, id: Uuid) -> Result<bool> {
                    let done = sqlx::query("DELETE FROM sessions WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn delete_session_of(&self, account: Uuid, id: Uuid) -> Result<bool> {
                    let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND account_id = $2")
                        .bind(id)
                        .bind(account)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn delete_sessions_of(&self, account: Uuid) -> Result<u64> {
                    let done = sqlx::query("DELETE FROM sessions WHERE account_id = $1")
                        .bind(account)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                }

                async fn append_account_event(
                    &self,
                    account: Uuid,
                    at: OffsetDateTime,
                    kind: &str,
                    client_ip: Option<&str>,
                    user_agent: Option<&str>,
                ) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO account_events (account_id, at, kind, client_ip, user_agent) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(account)
                    .bind(to_ms(at))
                    .bind(kind)
                    .bind(client_ip)
                    .bind(user_agent)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn account_events(
                    &self,
                    account: Uuid,
                    limit: u32,
                ) -> Result<Vec<AccountEvent>> {
                    let rows = sqlx::query(
                        "SELECT id, at, kind, client_ip, user_agent FROM account_events \
                         WHERE account_id = $1 ORDER BY id DESC LIMIT $2",
                    )
                    .bind(account)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(AccountEvent {
                                id: row.try_get("id")?,
                                at: from_ms(row.try_get("at")?)?,
                                kind: row.try_get("kind")?,
                                client_ip: row.try_get("client_ip")?,
                                user_agent: row.try_get("user_agent")?,
                            })
                        })
                        .collect()
                }
            }
        }
    };
}
pub(crate) use impl_account_store;
