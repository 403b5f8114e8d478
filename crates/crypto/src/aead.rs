//! AES-256-GCM with associated data that binds a ciphertext to where it is stored.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{CryptoError, KEY_LEN, random_bytes};

const NONCE_LEN: usize = 12;

/// Where a ciphertext lives: record, field and key version. It becomes the AEAD's associated
/// data, so bytes copied to another record, field or version fail to decrypt.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub record: Uuid,
    pub field: &'a str,
    pub version: u32,
}

impl<'a> Binding<'a> {
    pub fn new(record: Uuid, field: &'a str, version: u32) -> Self {
        Self {
            record,
            field,
            version,
        }
    }

    fn aad(&self) -> Vec<u8> {
        // Fixed-width uuid and version, field last: no two bindings share an encoding.
        let mut aad = Vec::with_capacity(9 + 16 + 4 + self.field.len());
        aad.extend_from_slice(b"brine/v1:");
        aad.extend_from_slice(self.record.as_bytes());
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad.extend_from_slice(self.field.as_bytes());
        aad
    }
}

/// Encrypts `plaintext` under `key` with a fresh random nonce. Output: `nonce || ciphertext || tag`.
pub fn seal(
    key: &[u8; KEY_LEN],
    binding: Binding<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(key.into());
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes()?;
    let nonce = Nonce::from(nonce_bytes);
    let aad = binding.aad();
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::Decrypt)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Decrypts what [`seal`] produced. Any change to the bytes, the key or the binding fails.
pub fn open(
    key: &[u8; KEY_LEN],
    binding: Binding<'_>,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Decrypt);
    }
    let (nonce_bytes, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_from(nonce_bytes).map_err(|_| CryptoError::Decrypt)?;
    let cipher = Aes256Gcm::new(key.into());
    let aad = binding.aad();
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
}
