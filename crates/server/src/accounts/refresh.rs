//! Refresh tokens, which renew a CLI's session: each is used once and replaced.

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::fault::Fault;
use crate::id_token::IdToken;

/// Refresh tokens: `brrt_` + the session's id (32 hex digits) + `_` + 256 random bits in
/// URL-safe base64. The session row keeps a SHA-256 digest of the current one's secret.
const REFRESH_PREFIX: &str = "brrt_";

const REFRESH: IdToken = IdToken {
    prefix: REFRESH_PREFIX,
    domain: b"brine refresh token v1\0",
};

/// A new refresh token for `session`, and the digest to store.
pub fn new_refresh(session: Uuid) -> Result<(Zeroizing<String>, [u8; 32]), Fault> {
    REFRESH.issue(session)
}

/// The session and the digest of the secret of a presented refresh token.
pub fn parse_refresh(token: &str) -> Option<(Uuid, [u8; 32])> {
    REFRESH.parse(token.trim())
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
