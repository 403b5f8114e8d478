//! Argon2id: password slots (a KEK derived from a password) and account password hashes.
//!
//! Both are deliberately slow; callers run them off the async workers.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::keys::Kek;
use crate::{CryptoError, KEY_LEN, random_bytes};

const SALT_LEN: usize = 16;

/// Argon2id cost parameters. The default is OWASP's minimum recommendation
/// (19 MiB of memory, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

impl Argon2Settings {
    fn hasher(&self) -> Result<Argon2<'static>, CryptoError> {
        let params = Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// The parameters of one password slot, stored next to it so that settings can change without
/// breaking existing slots. Text form: `argon2id$v=19$m=19456,t=2,p=1$<salt, base64>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotKdf {
    settings: Argon2Settings,
    salt: [u8; SALT_LEN],
}

impl SlotKdf {
    /// Fresh parameters with a new random salt.
    pub fn new(settings: Argon2Settings) -> Result<Self, CryptoError> {
        settings.hasher()?;
        Ok(Self {
            settings,
            salt: random_bytes()?,
        })
    }

    pub fn settings(&self) -> Argon2Settings {
        self.settings
    }

    /// Derives the slot's KEK from a password. Slow by design.
    pub fn derive(&self, password: &[u8]) -> Result<Kek, CryptoError> {
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        self.settings
            .hasher()?
            .hash_password_into(password, &self.salt, out.as_mut())
            .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
        Ok(Kek::from_bytes(out))
    }

    pub fn encode(&self) -> String {
        let s = &self.settings;
        format!(
            "argon2id$v=19$m={},t={},p={}${}",
            s.memory_kib,
            s.iterations,
            s.parallelism,
            STANDARD_NO_PAD.encode(self.salt)
        )
    }

    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let bad = || CryptoError::KdfParams("unrecognised slot parameters".into());
        let mut parts = text.split('$');
        if parts.next() != Some("argon2id") || parts.next() != Some("v=19") {
            return Err(bad());
        }
        let costs = parts.next().ok_or_else(bad)?;
        let salt_b64 = parts.next().ok_or_else(bad)?;
        if parts.next().is_some() {
            return Err(bad());
        }
        let mut settings = Argon2Settings::default();
        for pair in costs.split(',') {
            let (name, value) = pair.split_once('=').ok_or_else(bad)?;
            let value: u32 = value.parse().map_err(|_| bad())?;
            match name {
                "m" => settings.memory_kib = value,
                "t" => settings.iterations = value,
                "p" => settings.parallelism = value,
                _ => return Err(bad()),
            }
        }
        let salt_vec = STANDARD_NO_PAD.decode(salt_b64).map_err(|_| bad())?;
        let salt: [u8; SALT_LEN] = salt_vec.as_slice().try_into().map_err(|_| bad())?;
        settings.hasher()?;
        Ok(Self { settings, salt })
    }
}

/// Hashes an account password to a PHC string (`$argon2id$v=19$...`) with a random salt.
pub fn hash_account_password(
    password: &[u8],
    settings: Argon2Settings,
) -> Result<String, CryptoError> {
    settings
        .hasher()?
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|e| CryptoError::KdfParams(e.to_string()))
}

/// Checks a password against a PHC string made by [`hash_account_password`]. The parameters
/// stored in the hash are used, whatever the current settings are.
pub fn verify_account_password(password: &[u8], phc: &str) -> Result<bool, CryptoError> {
    match Argon2::default().verify_password(password, phc) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(CryptoError::PasswordHash),
    }
}
