//! What can go wrong inside the server that is nobody's input: storage, cryptography, the audit
//! log. Domain refusals (a wrong key, a locked page) are their own types; a fault is always a
//! 500 to the caller and an error in the log (see `error.rs`).

use brine_store::StoreError;

use crate::audit::AuditError;
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("vault: {0}")]
    Vault(#[from] VaultError),
    #[error("the audit log cannot store events")]
    Audit,
    #[error("cannot sign a token")]
    Token,
    /// Something that cannot happen with the data the server itself wrote.
    #[error("{0}")]
    Internal(&'static str),
    /// The record changed (or was deleted) while a request was answered from an older copy:
    /// the gate starts the request again from the stored record.
    #[error("the record changed while it was being served")]
    Stale,
}

impl From<AuditError> for Fault {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Stale => Fault::Stale,
            AuditError::Unavailable => Fault::Audit,
        }
    }
}
