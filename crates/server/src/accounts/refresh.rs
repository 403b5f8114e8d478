//! Refresh tokens, which renew a CLI's session: each is used once and replaced.

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::fault::Fault;
use crate::vault::VaultError;

/// Refresh tokens: `brrt_` + the session's id (32 hex digits) + `_` + 256 random bits in
/// URL-safe base64. The session row keeps a SHA-256 digest of the current one's secret.
const REFRESH_PREFIX: &str = "brrt_";

/// A new refresh token for `session`, and the digest to store.
pub fn new_refresh(session: Uuid) -> Result<(Zeroizing<String>, [u8; 32]), Fault> {
    use base64::Engine;
    let secret: Zeroizing<[u8; 32]> =
        Zeroizing::new(brine_crypto::random_bytes().map_err(|e| Fault::from(VaultError::from(e)))?);
    let mut token = Zeroizing::new(String::with_capacity(REFRESH_PREFIX.len() + 76));
    token.push_str(REFRESH_PREFIX);
    token.push_str(&session.simple().to_string());
    token.push('_');
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(secret.as_slice(), &mut token);
    let digest = refresh_digest(&token[REFRESH_PREFIX.len() + 33..]);
    Ok((token, digest))
}

/// The session and the digest of the secret of a presented refresh token.
pub fn parse_refresh(token: &str) -> Option<(Uuid, [u8; 32])> {
    let rest = token.trim().strip_prefix(REFRESH_PREFIX)?;
    let (id, secret) = rest.split_at_checked(32)?;
    let secret = secret.strip_prefix('_').filter(|s| s.len() == 43)?;
    Some((Uuid::try_parse(id).ok()?, refresh_digest(secret)))
}

fn refresh_digest(secret: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"brine refresh token v1\0");
    hash.update(secret.as_bytes());
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refresh_tokens_name_their_session() {
        let session = Uuid::new_v4();
        let (token, digest) = new_refresh(session).unwrap();
        assert_eq!(parse_refresh(&token), Some((session, digest)));
        let (other, _) = new_refresh(session).unwrap();
        assert_ne!(parse_refresh(&other), Some((session, digest)));
        assert_eq!(parse_refresh(&token[..token.len() - 1]), None);
        assert_eq!(parse_refresh("brst_whatever"), None);
    }

    proptest::proptest! {
        /// Whatever is sent as a refresh token is parsed or refused, never a panic.
        #[test]
        fn any_refresh_token_parses_or_is_refused(text in "(brrt_)?\\PC{0,120}") {
            let _ = parse_refresh(&text);
        }
    }
}
