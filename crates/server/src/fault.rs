//! What can go wrong inside the server that is nobody's input: storage, cryptography, the audit
//! log. Domain refusals (a wrong key, a locked page) are their own types; a fault is a 503 to
//! the caller when the database is unreachable or cannot be written, else a 500, and always an
//! error in the log (see `error.rs`).

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

impl Fault {
    /// The database (or the audit log in it) cannot be reached or written right now.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Fault::Store(e) => e.is_unavailable(),
            Fault::Audit => true,
            Fault::Vault(_) | Fault::Token | Fault::Internal(_) | Fault::Stale => false,
        }
    }
}

impl From<AuditError> for Fault {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Stale => Fault::Stale,
            AuditError::Unavailable => Fault::Audit,
        }
    }
}
