//! Key types. None of them prints its bytes in `Debug`, and all zero their memory on drop.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::aead::{Binding, open, seal};
use crate::{CryptoError, KEY_LEN, random_bytes};

/// The key-encryption key at the top of the hierarchy. Lives in a file or the environment, never
/// in the database; the database holds only its check value.
pub struct MasterKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    version: u32,
}

impl MasterKey {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self {
            key: Zeroizing::new(random_bytes()?),
            version: 1,
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| CryptoError::KeySize(bytes.len()))?;
        Ok(Self {
            key: Zeroizing::new(key),
            version: 1,
        })
    }

    /// Parses standard base64 (surrounding whitespace ignored) of exactly 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(encoded.trim())
                .map_err(|_| CryptoError::KeyEncoding)?,
        );
        Self::from_bytes(&bytes)
    }

    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.key.as_slice()))
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The same key as version `version` of a keyring (keys are version 1 until placed).
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// A value that identifies this key without revealing it, stored in the database so that a
    /// server started with the wrong key refuses to run instead of failing on every record.
    pub fn check_value(&self) -> Result<[u8; 32], CryptoError> {
        self.derive(b"brine key-check v1")
    }

    pub fn matches_check_value(&self, stored: &[u8]) -> Result<bool, CryptoError> {
        Ok(self.check_value()?.ct_eq(stored).into())
    }

    /// A purpose-bound subkey (for example the JWT signing key), so the master key itself is
    /// only ever used to wrap data keys.
    pub fn derive_subkey(&self, purpose: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        Ok(Zeroizing::new(self.derive(purpose.as_bytes())?))
    }

    fn derive(&self, label: &[u8]) -> Result<[u8; 32], CryptoError> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_slice())
            .map_err(|_| CryptoError::KeySize(KEY_LEN))?;
        mac.update(label);
        Ok(mac.finalize().into_bytes().into())
    }

    pub fn kek(&self) -> Kek {
        Kek(Zeroizing::new(*self.key))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(v{}, ***)", self.version)
    }
}

/// A record's own random data-encryption key. Stored only wrapped in key slots.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(Zeroizing::new(random_bytes()?)))
    }

    pub fn seal(&self, binding: Binding<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal(&self.0, binding, plaintext)
    }

    pub fn open(
        &self,
        binding: Binding<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open(&self.0, binding, sealed)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(***)")
    }
}

/// A key-encryption key for one slot: it wraps and unwraps a record's [`DataKey`].
pub struct Kek(Zeroizing<[u8; KEY_LEN]>);

impl Kek {
    /// The api-key slot's KEK. The X-API-Key carries 256 bits of randomness, so HKDF suffices;
    /// a successful unwrap is the key check (the AEAD tag), done in constant time.
    pub fn from_api_key(api_key: &[u8], record: Uuid) -> Result<Self, CryptoError> {
        let hk = Hkdf::<Sha256>::new(Some(record.as_bytes()), api_key);
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        hk.expand(b"brine api-key slot v1", okm.as_mut())
            .map_err(|_| CryptoError::KeySize(KEY_LEN))?;
        Ok(Self(okm))
    }

    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self(bytes)
    }

    pub fn wrap(&self, binding: Binding<'_>, data_key: &DataKey) -> Result<Vec<u8>, CryptoError> {
        seal(&self.0, binding, data_key.0.as_slice())
    }

    pub fn unwrap(&self, binding: Binding<'_>, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let bytes = open(&self.0, binding, wrapped)?;
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(DataKey(Zeroizing::new(key)))
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(***)")
    }
}

/// A record's X-API-Key: `brk_` followed by 256 random bits in URL-safe base64.
/// Shown once at creation or rotation and never stored.
pub struct ApiKey(SecretString);

impl ApiKey {
    pub const PREFIX: &'static str = "brk_";

    pub fn generate() -> Result<Self, CryptoError> {
        let bytes = Zeroizing::new(random_bytes::<KEY_LEN>()?);
        let mut encoded = String::with_capacity(Self::PREFIX.len() + 43);
        encoded.push_str(Self::PREFIX);
        URL_SAFE_NO_PAD.encode_string(bytes.as_slice(), &mut encoded);
        Ok(Self(SecretString::from(encoded)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn kek(&self, record: Uuid) -> Result<Kek, CryptoError> {
        Kek::from_api_key(self.expose().as_bytes(), record)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}
