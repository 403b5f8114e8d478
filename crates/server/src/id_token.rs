//! Secrets that name the row they belong to: `PREFIX` + the row's id (32 hex digits) + `_` +
//! 256 random bits in URL-safe base64. The row keeps only a SHA-256 digest of the secret part,
//! under a domain string of the token's kind; the secret is random enough that no slow KDF is
//! needed. Service tokens and refresh tokens are of this form.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::fault::Fault;
use crate::vault::VaultError;

/// One kind of such token.
pub struct IdToken {
    pub prefix: &'static str,
    /// Keeps the digests of different kinds apart.
    pub domain: &'static [u8],
}

/// Base64 of 32 bytes, unpadded.
const SECRET_CHARS: usize = 43;

impl IdToken {
    /// A new token naming `id`, and the digest to store.
    pub fn issue(&self, id: Uuid) -> Result<(Zeroizing<String>, [u8; 32]), Fault> {
        let secret: Zeroizing<[u8; 32]> = Zeroizing::new(
            brine_crypto::random_bytes().map_err(|e| Fault::from(VaultError::from(e)))?,
        );
        let mut token =
            Zeroizing::new(String::with_capacity(self.prefix.len() + 33 + SECRET_CHARS));
        token.push_str(self.prefix);
        token.push_str(&id.simple().to_string());
        token.push('_');
        URL_SAFE_NO_PAD.encode_string(secret.as_slice(), &mut token);
        let digest = self.digest(&token[self.prefix.len() + 33..]);
        Ok((token, digest))
    }

    /// The id a presented token names and the digest of its secret, when it has the shape.
    pub fn parse(&self, token: &str) -> Option<(Uuid, [u8; 32])> {
        let rest = token.strip_prefix(self.prefix)?;
        let (id, secret) = rest.split_at_checked(32)?;
        let secret = secret
            .strip_prefix('_')
            .filter(|s| s.len() == SECRET_CHARS)?;
        Some((Uuid::try_parse(id).ok()?, self.digest(secret)))
    }

    pub fn digest(&self, secret: &str) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(self.domain);
        hash.update(secret.as_bytes());
        hash.finalize().into()
    }
}
