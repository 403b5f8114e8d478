//! Envelope encryption for brine (the key hierarchy of docs/security.md).
//!
//! Every record has its own random [`DataKey`]. Its payload is sealed with AES-256-GCM under that
//! key, and the data key itself is stored only *wrapped* in key slots, each under a different
//! key-encryption key ([`Kek`]): the master key (server slot), an X-API-Key (api-key slot) or a
//! password run through Argon2id (password slot). Every ciphertext carries associated data that
//! binds it to its record, field and key version, so stored bytes cannot be moved or swapped.

#![forbid(unsafe_code)]

mod aead;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod keyring;
mod keys;
mod passphrase;
mod password;

pub use aead::{Binding, open, seal};
pub use keyring::{Keyring, KeyringError, Subkeys};
pub use keys::{ApiKey, DataKey, Kek, MasterKey};
pub use passphrase::generate_passphrase;
pub use password::{Argon2Settings, SlotKdf, hash_account_password, verify_account_password};

/// Length in bytes of every symmetric key brine uses.
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Authentication failed: wrong key, tampered bytes or bytes moved from another place.
    #[error("decryption failed")]
    Decrypt,
    #[error("a key must be exactly 32 bytes (256 bits), got {0}")]
    KeySize(usize),
    #[error("the key is not valid base64")]
    KeyEncoding,
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("invalid key-derivation parameters: {0}")]
    KdfParams(String),
    #[error("stored password hash is malformed")]
    PasswordHash,
}

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| CryptoError::Random)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
