//! The gate: the one way into a record, for every channel — `/r` reads, password unlocks, bridge
//! calls, batch items, the secure page, the owner's reveal.
//!
//! Opening a record goes through four stages, each a type that only the previous one makes, so
//! the order cannot be broken:
//!
//! 1. [`Gate::find`] → [`Found`]: the record (a copy from memory, on a first try).
//! 2. [`Found::admit`] → [`Admitted`]: still active, within its rate limits, not locked out.
//! 3. [`Admitted::unlock`] → [`Unlocked`]: the caller's key or password (or the server's own
//!    slot) opens its data key. Owner-only records stop before any key is looked at.
//! 4. [`Unlocked::charge`] → [`Charged`]: one request from the quota, one read or view claimed.
//!
//! Then [`Charged::finish`] stores the audit event before the answer leaves (or
//! [`Charged::start_call`] before a bridge calls its upstream). Every refusal on the way is
//! audited by the stage that refuses. What differs between channels is in one table, [`rules`].

mod records;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use brine_core::{Access, RecordStatus, read_status};
use brine_crypto::DataKey;
use brine_limits::Decision;
use brine_store::{Record, SlotKind};
use uuid::Uuid;
use zeroize::Zeroizing;

pub use self::records::{Copy, Records};
use crate::audit::{AuditLog, Channel, Event, Outcome};
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::fault::Fault;
use crate::lockout::{Admission, Attempt, Lockout};
use crate::metrics::{DbCall, LimitRefusal};
use crate::service_tokens::{ServiceTokens, Verdict};
use crate::throttle::{Limited, Limits};
use crate::vault::Vault;

/// Why a caller is refused. Nothing here knows HTTP: `error.rs` maps each to its answer.
#[derive(Debug)]
pub enum Refusal {
    /// Unknown, expired, used up — the same answer for all (no existence oracle).
    NotFound,
    /// An owner-only record, asked for by someone else.
    OwnerOnly,
    /// A private record without its X-API-Key (or with a wrong one).
    KeyRequired,
    WrongPassword,
    /// Too many wrong passwords; retry after this many seconds.
    Locked(u64),
    Limited(Limited),
    /// The record's quota for the period is used up; retry after this many seconds.
    QuotaExhausted(u64),
    /// A bridge's cap on calls in flight, or the caller's.
    Busy(crate::proxy::inflight::Holder),
    /// A browser origin not in a bridge's `allowed_origins`.
    OriginNotAllowed,
    /// A method a bridge (or a credential) does not take; the ones it does.
    MethodNotAllowed {
        allowed: Vec<Method>,
        message: &'static str,
    },
    /// A record password sent as anything but JSON.
    NotJson,
    /// A path below a bridge that its `allowed_paths` does not allow.
    PathNotAllowed,
    /// The caller's input cannot make the call (a parameter, `select`); safe to show.
    BadRequest(String),
    /// A sealed record, which the server cannot open for its owner (or a service token).
    Sealed,
    /// A service token that is malformed, unknown, revoked, expired or another account's.
    TokenInvalid,
    /// A service token of the record's owner that does not name this record.
    TokenOutOfScope,
}

/// A refusal, or a fault of the server's own.
#[derive(Debug)]
pub enum GateError {
    Refused(Refusal),
    Fault(Fault),
}

impl From<Fault> for GateError {
    fn from(f: Fault) -> Self {
        GateError::Fault(f)
    }
}

impl From<Refusal> for GateError {
    fn from(r: Refusal) -> Self {
        GateError::Refused(r)
    }
}

/// How a caller proves it may open a record.
pub enum Credential {
    Nothing,
    ApiKey(String),
    Password(Zeroizing<String>),
    /// The server's own slot: the owner's own operations.
    Server,
    /// A service token (`brst_...`), checked against the record's owner and its scope; it
    /// opens the record with the server's slot.
    ServiceToken(String),
}

/// Which counter an opening spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    Nothing,
    Read,
    View,
}

/// What differs between channels.
#[derive(Debug, Clone, Copy)]
struct Rules {
    /// An expired or used-up record is refused before anything else.
    status: bool,
    /// The record's rate limits and quota apply.
    limits: bool,
    /// The password slot whose failures the lockout counts.
    lockout: Option<SlotKind>,
    claim: Claim,
}

/// The channel table. (A secure page checks its own limits and the record's expiry when it
/// claims a view, after the password; the owner sees records whatever their state.)
fn rules(channel: Channel) -> Rules {
    match channel {
        Channel::Read | Channel::Batch | Channel::Bridge => Rules {
            status: true,
            limits: true,
            lockout: None,
            claim: Claim::Read,
        },
        Channel::Password => Rules {
            status: true,
            limits: true,
            lockout: Some(SlotKind::Password),
            claim: Claim::Read,
        },
        Channel::SecurePage => Rules {
            status: false,
            limits: false,
            lockout: Some(SlotKind::SecurePage),
            claim: Claim::View,
        },
        Channel::Owner => Rules {
            status: false,
            limits: false,
            lockout: None,
            claim: Claim::Nothing,
        },
        // Webhook deliveries are recorded, never gated: nothing opens a record through them.
        Channel::Webhook => Rules {
            status: true,
            limits: false,
            lockout: None,
            claim: Claim::Nothing,
        },
    }
}

/// Everything the gate uses, as handles.
/// Cheap to clone: one reference count (requests clone handles as they extract them).
#[derive(Clone)]
pub struct Gate(Arc<GateParts>);

impl std::ops::Deref for Gate {
    type Target = GateParts;

    fn deref(&self) -> &GateParts {
        &self.0
    }
}

pub struct GateParts {
    pub records: Records,
    vault: Vault,
    audit: AuditLog,
    limits: Limits,
    lockout: Lockout,
    tokens: ServiceTokens,
}

/// How many times a request starts again when its record changes under it.
const ATTEMPTS: usize = 3;
/// How old a copy from memory may be to decide an answer that stores no event (a refusal over
/// rate limits, a preflight) on its own word.
const TRUST_ALONE_FOR: Duration = Duration::from_secs(1);

impl Gate {
    pub fn new(
        records: Records,
        vault: Vault,
        audit: AuditLog,
        limits: Limits,
        lockout: Lockout,
    ) -> Self {
        let tokens = ServiceTokens::new(records.store().clone());
        Self(Arc::new(GateParts {
            records,
            vault,
            audit,
            limits,
            lockout,
            tokens,
        }))
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn tokens(&self) -> &ServiceTokens {
        &self.tokens
    }

    /// Stage 1: the record, as a read ([`Found::via`] names another channel). Unknown uuids are
    /// refused without an event: there is no record to hold one. A disabled record is refused
    /// with the very same answer (no existence oracle), after an event for its owner. The first
    /// try may use a copy from memory; a later one reads the database.
    pub async fn find(
        &self,
        uuid: Uuid,
        client: &ClientInfo,
        attempt: Try,
    ) -> Result<Found, GateError> {
        let found = self.find_any(uuid, client, attempt).await?;
        if found.record.disabled_at.is_some() {
            return Err(found.refuse_disabled().await);
        }
        Ok(found)
    }

    /// Stage 1 whatever the record's state, for its owner (who sees a disabled record too).
    pub async fn find_any(
        &self,
        uuid: Uuid,
        client: &ClientInfo,
        attempt: Try,
    ) -> Result<Found, GateError> {
        if attempt.number > 0 {
            self.records.metrics().stale_retry();
        }
        let found = self
            .records
            .get(uuid, attempt.number == 0)
            .await
            .map_err(Fault::from)?;
        let Some((record, copy)) = found else {
            return Err(Refusal::NotFound.into());
        };
        crate::metrics::note_record(record.kind);
        Ok(Found {
            gate: self.clone(),
            record,
            copy,
            channel: Channel::Read,
            rules: rules(Channel::Read),
            client: client.clone(),
            detail: None,
        })
    }

    /// As slow as a password check, for a password presented to no record.
    pub async fn decoy(&self, password: Zeroizing<String>) -> Result<(), Fault> {
        Ok(self.vault.decoy(password).await?)
    }
}

/// Which try of a request this is. A request answered from a copy in memory starts again from
/// the database when the record changed under it:
///
/// ```ignore
/// let mut attempt = Try::FIRST;
/// let result = loop {
///     let result = open_once(gate, uuid, attempt).await;
///     match attempt.after(&result) {
///         Some(next) => attempt = next,
///         None => break result,
///     }
/// };
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Try {
    number: usize,
}

impl Try {
    pub const FIRST: Try = Try { number: 0 };

    /// The next try, when `result` says the record changed under this one (a few at most).
    pub fn after<T>(self, result: &Result<T, GateError>) -> Option<Try> {
        let stale = matches!(result, Err(GateError::Fault(Fault::Stale)));
        (stale && self.number + 1 < ATTEMPTS).then_some(Try {
            number: self.number + 1,
        })
    }
}

/// What every stage carries.
pub struct Found {
    gate: Gate,
    record: Arc<Record>,
    copy: Copy,
    channel: Channel,
    rules: Rules,
    client: ClientInfo,
    /// The detail every event of this opening carries unless a stage gives its own: which
    /// service token opened it.
    detail: Option<String>,
}

impl Found {
    pub fn record(&self) -> &Record {
        &self.record
    }

    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// The channel this opening goes through. A record password presented to a record that has
    /// none to check (a public or owner-only record) makes an ordinary read.
    pub fn via(mut self, channel: Channel) -> Self {
        self.channel = match channel {
            Channel::Password if self.record.access != Access::Private => Channel::Read,
            other => other,
        };
        self.rules = rules(self.channel);
        self
    }

    /// The record as the database has it when this copy from memory is over a second old. For
    /// answers that store no event (a CORS preflight, a secure page that is not there): no
    /// version check would catch a copy that is out of date, so they trust a copy only briefly.
    pub async fn current(self) -> Result<Found, GateError> {
        if self.trusted_alone() {
            return Ok(self);
        }
        let again = Try { number: 1 };
        let found = self
            .gate
            .find(self.record.uuid, &self.client, again)
            .await?;
        Ok(found.via(self.channel))
    }

    /// Whether this copy may decide an answer that stores no event: it was read from the
    /// database by this request, or less than a second ago.
    pub fn trusted_alone(&self) -> bool {
        !matches!(self.copy, Copy::Memory(loaded) if loaded.elapsed() > TRUST_ALONE_FOR)
    }

    /// The version the record's events must find, when it is a copy from memory.
    fn expect_version(&self) -> Option<i64> {
        matches!(self.copy, Copy::Memory(_)).then_some(self.record.version)
    }

    fn event(&self, outcome: Outcome) -> Event {
        let mut event = Event::new(self.record.uuid, self.channel, outcome, &self.client)
            .expect_version(self.expect_version());
        event.detail.clone_from(&self.detail);
        event
    }

    /// Stores an event that is no opening (a secure page's form was loaded, a loop refused);
    /// returns its id.
    pub async fn note(&self, outcome: Outcome, detail: Option<String>) -> Result<i64, Fault> {
        let mut event = self.event(outcome);
        event.detail = detail;
        Ok(self.gate.audit.append(event).await?)
    }

    /// Refuses the call, storing an event with `outcome` (and `detail`) first.
    pub async fn refuse(
        &self,
        outcome: Outcome,
        refusal: Refusal,
        detail: Option<String>,
    ) -> GateError {
        let mut event = self.event(outcome);
        if detail.is_some() {
            event.detail = detail;
        }
        match self.gate.audit.append(event).await {
            Ok(_) => GateError::Refused(refusal),
            Err(e) => GateError::Fault(e.into()),
        }
    }

    /// Refuses a disabled record as if it did not exist. The event carries the copy's version,
    /// so a copy from memory that is out of date (enabled since, on any node) fails as stale and
    /// the request starts again from the database, like a rotation.
    async fn refuse_disabled(self) -> GateError {
        let channel = match self.record.kind {
            brine_core::RecordKind::Bridge => Channel::Bridge,
            brine_core::RecordKind::Credential => Channel::Read,
        };
        let detail = Some(r#"{"refused_by":"disabled"}"#.to_owned());
        self.via(channel)
            .refuse(Outcome::Gone, Refusal::NotFound, detail)
            .await
    }

    /// Stage 2: active, within its rate limits, not locked out.
    pub async fn admit(self) -> Result<Admitted, GateError> {
        let record = &self.record;
        let now = now_ms();
        if self.rules.status
            && read_status(record.expires_at, record.max_reads, record.reads, now)
                != RecordStatus::Active
        {
            return Err(self.refuse(Outcome::Gone, Refusal::NotFound, None).await);
        }
        let mut rate = None;
        if self.rules.limits {
            match self.gate.limits.admit_call(record, self.client.tag).await {
                Ok(decision) => rate = decision,
                // A copy from memory may hold limits since lifted, and refusals are audited only
                // now and then, so no stale event would catch it: a copy older than a second
                // is checked against the database before it refuses.
                Err(_) if !self.trusted_alone() => {
                    return Err(Fault::Stale.into());
                }
                Err(limited) => return Err(self.refuse_limited(limited).await),
            }
        }
        let mut attempt = None;
        if let Some(slot) = self.rules.lockout {
            let password_set = record.slot(slot).map(|s| s.created_at);
            let admission = self
                .gate
                .lockout
                .admit(
                    record.uuid,
                    self.channel,
                    &self.client,
                    password_set,
                    self.expect_version(),
                )
                .await?;
            match admission {
                Admission::Go(a) => attempt = Some(a),
                Admission::Locked(retry_after) => {
                    return Err(Refusal::Locked(retry_after).into());
                }
            }
        }
        Ok(Admitted {
            found: self,
            rate,
            attempt,
        })
    }

    /// A rate-limit refusal, audited at most once a second per record and client.
    async fn refuse_limited(&self, limited: Limited) -> GateError {
        let (reason, counted) = match limited {
            Limited::Rate(_) => ("rate limit", LimitRefusal::Rate),
            Limited::Unavailable => ("rate limits unavailable", LimitRefusal::Unavailable),
        };
        self.gate.records.metrics().limit_refusal(counted);
        let refusal = Refusal::Limited(limited);
        let Some(unlogged) = self
            .gate
            .limits
            .audit_refusal(self.record.uuid, self.client.addr)
        else {
            return GateError::Refused(refusal);
        };
        let detail = serde_json::json!({"refused_by": reason, "unlogged_refusals": unlogged});
        self.refuse(Outcome::RateLimited, refusal, Some(detail.to_string()))
            .await
    }
}

/// Stage 2 passed.
pub struct Admitted {
    found: Found,
    /// The budget left under the record's rate limits, for the answer's headers.
    rate: Option<Decision>,
    /// The lockout's `attempt` event, settled with the outcome.
    attempt: Option<Attempt>,
}

impl Admitted {
    pub fn record(&self) -> &Record {
        &self.found.record
    }

    /// Refuses the call: settles the attempt, or stores an event.
    async fn refuse(self, outcome: Outcome, refusal: Refusal) -> GateError {
        match self.attempt {
            Some(attempt) => {
                self.found.gate.lockout.settle(attempt, outcome).await;
                GateError::Refused(refusal)
            }
            None => self.found.refuse(outcome, refusal, None).await,
        }
    }

    /// Stage 3: the caller's key or password opens the record's data key.
    pub async fn unlock(mut self, credential: Credential) -> Result<Unlocked, GateError> {
        let record = self.found.record.clone();
        let gate = self.found.gate.clone();
        let vault = &gate.vault;
        let owner = self.found.channel == Channel::Owner;
        let dek = match (record.access, credential) {
            (_, Credential::Server) if owner => {
                vault.open_with_server(&record).map_err(Fault::from)?
            }
            (_, Credential::ServiceToken(token)) => {
                match gate.tokens.check(&token, &record).await? {
                    Verdict::Granted { name } => {
                        self.found.detail = Some(token_detail(&name));
                        if record.sealed {
                            return Err(self.refuse(Outcome::Denied, Refusal::Sealed).await);
                        }
                        vault.open_with_server(&record).map_err(Fault::from)?
                    }
                    Verdict::OutOfScope { name } => {
                        self.found.detail = Some(token_detail(&name));
                        let refusal = Refusal::TokenOutOfScope;
                        return Err(self.refuse(Outcome::Forbidden, refusal).await);
                    }
                    Verdict::Invalid => {
                        let detail = r#"{"refused_by":"service token"}"#.to_owned();
                        self.found.detail = Some(detail);
                        return Err(self.refuse(Outcome::Denied, Refusal::TokenInvalid).await);
                    }
                }
            }
            (Access::OwnerOnly, _) => {
                return Err(self.refuse(Outcome::Forbidden, Refusal::OwnerOnly).await);
            }
            (Access::Public, _) => vault.open_with_server(&record).map_err(Fault::from)?,
            (Access::Private, Credential::ApiKey(key)) => {
                match vault.open_with_key(&record, &key) {
                    Some(dek) => dek,
                    None => return Err(self.refuse(Outcome::Denied, Refusal::KeyRequired).await),
                }
            }
            (Access::Private, Credential::Password(password)) => {
                let slot = self.found.rules.lockout.unwrap_or(SlotKind::Password);
                let opened = vault
                    .open_with_password(&record, slot, password)
                    .await
                    .map_err(Fault::from)?;
                match opened {
                    Some(dek) => dek,
                    None => return Err(self.refuse(Outcome::Denied, Refusal::WrongPassword).await),
                }
            }
            (Access::Private, Credential::Nothing | Credential::Server) => {
                return Err(self.refuse(Outcome::Denied, Refusal::KeyRequired).await);
            }
        };
        Ok(Unlocked {
            admitted: self,
            dek,
        })
    }
}

/// The detail of the events of an opening by a service token.
fn token_detail(name: &str) -> String {
    serde_json::json!({ "service_token": name }).to_string()
}

/// Stage 3 passed: the data key is open.
pub struct Unlocked {
    admitted: Admitted,
    dek: DataKey,
}

impl Unlocked {
    pub fn record(&self) -> &Record {
        &self.admitted.found.record
    }

    pub fn dek(&self) -> &DataKey {
        &self.dek
    }

    pub fn client(&self) -> &ClientInfo {
        &self.admitted.found.client
    }

    /// Refuses a call that cannot be made (checked before anything is spent).
    pub async fn refuse(self, outcome: Outcome, refusal: Refusal) -> GateError {
        self.admitted.refuse(outcome, refusal).await
    }

    /// Stage 4: one request from the quota, one read or view.
    pub async fn charge(self) -> Result<Charged, GateError> {
        let found = &self.admitted.found;
        let gate = &found.gate;
        if found.rules.limits {
            match gate.limits.take_quota(&found.record).await? {
                Ok(()) => {}
                Err(retry_after) => {
                    gate.records.metrics().limit_refusal(LimitRefusal::Quota);
                    let refusal = Refusal::QuotaExhausted(retry_after);
                    return Err(self.refuse(Outcome::RateLimited, refusal).await);
                }
            }
        }
        let store = gate.records.store();
        let metrics = gate.records.metrics();
        let uuid = found.record.uuid;
        let claimed = match found.rules.claim {
            Claim::Nothing => true,
            Claim::Read if found.record.max_reads.is_none() => true,
            Claim::Read => {
                metrics.db(DbCall::ClaimRead);
                store
                    .claim_read(uuid, now_ms())
                    .await
                    .map_err(Fault::from)?
            }
            Claim::View => {
                metrics.db(DbCall::ClaimView);
                store
                    .claim_view(uuid, now_ms())
                    .await
                    .map_err(Fault::from)?
            }
        };
        if !claimed {
            return Err(self.refuse(Outcome::Gone, Refusal::NotFound).await);
        }
        Ok(Charged { unlocked: self })
    }
}

/// Stage 4 passed: the record may be opened.
pub struct Charged {
    unlocked: Unlocked,
}

impl Charged {
    pub fn record(&self) -> &Record {
        self.unlocked.record()
    }

    pub fn dek(&self) -> &DataKey {
        &self.unlocked.dek
    }

    /// The budget left under the record's rate limits.
    pub fn rate(&self) -> Option<&Decision> {
        self.unlocked.admitted.rate.as_ref()
    }

    /// The record's value.
    pub fn value(&self) -> Result<Zeroizing<String>, Fault> {
        let found = &self.unlocked.admitted.found;
        Ok(found
            .gate
            .vault
            .decrypt(&found.record, &self.unlocked.dek)?)
    }

    /// Refuses after all (the answer cannot be made: a bad `select`).
    pub async fn refuse(self, outcome: Outcome, refusal: Refusal) -> GateError {
        self.unlocked.refuse(outcome, refusal).await
    }

    /// Records the opening before its answer leaves: stores its event, or settles the lockout's
    /// attempt. A copy from memory that turns out to be out of date fails with `Fault::Stale`.
    pub async fn finish(self, outcome: Outcome) -> Result<(), GateError> {
        let admitted = self.unlocked.admitted;
        match admitted.attempt {
            Some(attempt) => admitted.found.gate.lockout.settle(attempt, outcome).await,
            None => {
                let event = admitted.found.event(outcome);
                admitted
                    .found
                    .gate
                    .audit
                    .append(event)
                    .await
                    .map_err(Fault::from)?;
            }
        }
        Ok(())
    }

    /// Records a proxied call before the upstream is called: an `attempt` event with `detail`,
    /// settled when the call ends. Returns its id.
    pub async fn start_call(self, detail: String) -> Result<i64, GateError> {
        let found = self.unlocked.admitted.found;
        let event = found.event(Outcome::Attempt).detail(detail);
        Ok(found.gate.audit.append(event).await.map_err(Fault::from)?)
    }
}
