//! The owner's operations on their records — create, change, rotate, reveal, delete, secure
//! pages, the playground — with their rules, written once. The JSON API calls these; so will
//! the dashboard's pages. Nothing here knows HTTP: failures are [`OwnerError`]s.

mod change;
pub(crate) mod create;
mod enable;
pub mod intake;
mod keys;
pub mod logs;
mod page;
mod patch;
mod probe;
mod view;

use std::sync::Arc;

use brine_core::ValidationError;
use brine_store::{Record, Store, StoreError};
use uuid::Uuid;

pub use self::probe::KeyCheckFailure;
pub use self::view::with_key;
use crate::access::{Gate, Records};
use crate::audit::{AuditLog, Channel, Event, Outcome};
use crate::extract::ClientInfo;
use crate::fault::Fault;
use crate::proxy::Proxy;
use crate::proxy::upstream::Failure;
use crate::vault::{Vault, VaultError};

/// Why an owner's operation did not happen.
#[derive(Debug)]
pub enum OwnerError {
    /// No such record of this owner (another account's record looks the same).
    NotFound,
    /// The input breaks a rule; the message says which, never quoting a secret. `field` names
    /// the input it concerns ("" when none in particular), so a form can show it there.
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Not possible on this record as it is (a sealed record, one without a key, ...).
    Conflict {
        error: &'static str,
        message: &'static str,
    },
    /// A sealed record's current X-API-Key, sent to prove the right to re-key it, is wrong.
    KeyRequired,
    /// The playground's call (or a key test) did not get an answer to show.
    Upstream(Failure),
    /// A bridge's new key was not stored: its probe was refused or could not be sent.
    KeyCheck(KeyCheckFailure),
    Fault(Fault),
}

impl OwnerError {
    pub fn invalid(message: impl Into<String>) -> Self {
        OwnerError::Invalid {
            field: "",
            message: message.into(),
        }
    }

    pub fn from_vault(e: VaultError) -> Self {
        match e {
            VaultError::Sealed => sealed(),
            other => OwnerError::Fault(other.into()),
        }
    }
}

impl From<ValidationError> for OwnerError {
    fn from(e: ValidationError) -> Self {
        OwnerError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<Fault> for OwnerError {
    fn from(f: Fault) -> Self {
        OwnerError::Fault(f)
    }
}

impl From<StoreError> for OwnerError {
    fn from(e: StoreError) -> Self {
        OwnerError::Fault(e.into())
    }
}

impl From<brine_crypto::CryptoError> for OwnerError {
    fn from(e: brine_crypto::CryptoError) -> Self {
        OwnerError::Fault(VaultError::from(e).into())
    }
}

/// What the owner may not do to a sealed record without its key.
pub fn sealed() -> OwnerError {
    OwnerError::Conflict {
        error: "Sealed record",
        message: "A sealed record opens only with its X-API-Key or password; its owner can \
                  replace the value but not view it.",
    }
}

pub type OwnerResult<T> = Result<T, OwnerError>;

/// Everything the owner's operations use, as handles.
/// Cheap to clone: one reference count (requests clone handles as they extract them).
#[derive(Clone)]
pub struct Owners(Arc<OwnersParts>);

impl std::ops::Deref for Owners {
    type Target = OwnersParts;

    fn deref(&self) -> &OwnersParts {
        &self.0
    }
}

pub struct OwnersParts {
    store: Arc<dyn Store>,
    records: Records,
    vault: Vault,
    audit: AuditLog,
    gate: Gate,
    proxy: Proxy,
}

impl Owners {
    pub fn new(gate: Gate, proxy: Proxy) -> Self {
        Self(Arc::new(OwnersParts {
            store: gate.records.store().clone(),
            records: gate.records.clone(),
            vault: gate.vault().clone(),
            audit: gate.audit().clone(),
            gate,
            proxy,
        }))
    }

    /// The owner's record, read from the database, or `NotFound`.
    async fn owned(&self, owner: Uuid, uuid: Uuid) -> OwnerResult<Record> {
        match self.store.record(uuid).await? {
            Some(record) if record.owner_id == owner => {
                crate::metrics::note_record(record.kind);
                Ok(record)
            }
            _ => Err(OwnerError::NotFound),
        }
    }

    /// Records an owner's action on a record.
    async fn audit(&self, uuid: Uuid, outcome: Outcome, client: &ClientInfo) -> OwnerResult<()> {
        let event = Event::new(uuid, Channel::Owner, outcome, client);
        self.audit.append(event).await.map_err(Fault::from)?;
        Ok(())
    }

    /// Applies changes to a record of `owner` and forgets any copy of it in memory.
    async fn commit(
        &self,
        record: &Record,
        changes: &brine_store::RecordChanges,
    ) -> OwnerResult<()> {
        let applied = self
            .store
            .update_record(record.uuid, record.owner_id, changes)
            .await?;
        self.records.forget(record.uuid);
        if applied {
            Ok(())
        } else {
            Err(OwnerError::NotFound)
        }
    }

    /// The record as stored now.
    async fn reload(&self, uuid: Uuid) -> OwnerResult<Record> {
        self.store.record(uuid).await?.ok_or(OwnerError::NotFound)
    }

    /// Deletes a record; it stops answering at once.
    pub async fn delete(&self, owner: Uuid, uuid: Uuid) -> OwnerResult<()> {
        let deleted = self.store.delete_record(uuid, owner).await?;
        self.records.forget(uuid);
        if deleted {
            tracing::info!(record = %uuid, "record deleted");
            Ok(())
        } else {
            Err(OwnerError::NotFound)
        }
    }

    /// Runs one call through a bridge of the owner's (audited as `tried`).
    pub async fn try_bridge(
        &self,
        owner: Uuid,
        uuid: Uuid,
        call: brine_proto::TryCall,
        client: &ClientInfo,
    ) -> OwnerResult<brine_proto::TryResult> {
        let record = self.owned(owner, uuid).await?;
        let result = self.proxy.try_call(&record, call).await?;
        self.audit(uuid, Outcome::Tried, client).await?;
        Ok(result)
    }
}
