//! Two-factor sign-in: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of clock
//! skew either way) and single-use recovery codes.
//!
//! The TOTP secret must be readable by the server to compute codes, so it is sealed with a
//! subkey of the master key and bound to its account (a sealed secret copied to another
//! account does not open). Recovery codes carry 80 random bits each, so a SHA-256 digest bound
//! to the account is enough to store them.

use brine_crypto::{Binding, Keyring, Subkeys, open, random_bytes, seal};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::fault::Fault;
use crate::vault::VaultError;

const STEP_SECS: u64 = 30;
const DIGITS: u8 = 6;
const SECRET_BYTES: usize = 20;
pub const RECOVERY_CODES: usize = 10;
const ISSUER: &str = "brine";

/// The key that seals TOTP secrets, under each master-key version: the current one seals, the
/// version a secret was sealed under opens it (and is bound into its associated data).
pub struct TotpKey(Subkeys);

impl TotpKey {
    pub fn new(ring: &Keyring) -> Result<Self, brine_crypto::CryptoError> {
        Ok(Self(ring.subkeys("brine totp v1")?))
    }

    fn binding(account: Uuid, version: u32) -> Binding<'static> {
        Binding::new(account, "totp", version)
    }

    /// The sealed secret and the master-key version that sealed it.
    pub fn seal(&self, account: Uuid, secret: &[u8]) -> Result<(Vec<u8>, i64), Fault> {
        let (version, key) = self.0.current();
        let sealed = seal(key, Self::binding(account, version), secret).map_err(crypto_fault)?;
        Ok((sealed, i64::from(version)))
    }

    pub fn open(
        &self,
        account: Uuid,
        version: i64,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Fault> {
        let version = u32::try_from(version).map_err(|_| Fault::from(VaultError::Version))?;
        let key = self
            .0
            .get(version)
            .ok_or(Fault::from(VaultError::MissingVersion(version)))?;
        open(key, Self::binding(account, version), sealed).map_err(crypto_fault)
    }
}

fn crypto_fault(e: brine_crypto::CryptoError) -> Fault {
    Fault::from(VaultError::from(e))
}

/// A new random secret.
pub fn new_secret() -> Result<Zeroizing<Vec<u8>>, Fault> {
    let bytes: [u8; SECRET_BYTES] = random_bytes().map_err(crypto_fault)?;
    Ok(Zeroizing::new(bytes.to_vec()))
}

fn totp(secret: &[u8], email: &str) -> Result<Totp, Fault> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        .with_account_name(email)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|_| Fault::Internal("a stored TOTP secret is not usable"))
}

/// What an authenticator app needs: the secret in base32 and the `otpauth://` URI.
pub fn enrolment(secret: &[u8], email: &str) -> Result<(String, String), Fault> {
    let uri = totp(secret, email)?
        .to_url()
        .map_err(|_| Fault::Internal("cannot write an otpauth URI"))?;
    Ok((Secret::from(secret.to_vec()).to_base32(), uri))
}

/// The 30-second step whose code `code` is, within one step of `now_secs`; `None` when the
/// code matches none of them.
pub fn matching_step(secret: &[u8], email: &str, code: &str, now_secs: u64) -> Option<i64> {
    let code = code.trim();
    if !is_app_code(code) {
        return None;
    }
    let step = totp(secret, email).ok()?.check(code, now_secs)?;
    i64::try_from(step).ok()
}

/// Whether `code` looks like an app code rather than a recovery code.
pub fn is_app_code(code: &str) -> bool {
    let code = code.trim();
    code.len() == usize::from(DIGITS) && code.bytes().all(|b| b.is_ascii_digit())
}

const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// New recovery codes, `xxxx-xxxx-xxxx-xxxx` (16 characters of a 32-letter alphabet without
/// look-alikes: 80 bits).
pub fn new_recovery_codes() -> Result<Vec<Zeroizing<String>>, Fault> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes: [u8; 16] = random_bytes().map_err(crypto_fault)?;
            let mut code = Zeroizing::new(String::with_capacity(19));
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 && i % 4 == 0 {
                    code.push('-');
                }
                code.push(char::from(RECOVERY_ALPHABET[usize::from(b & 31)]));
            }
            Ok(code)
        })
        .collect()
}

/// The stored form of a recovery code, whatever its case, spaces and dashes.
pub fn recovery_digest(account: Uuid, code: &str) -> Vec<u8> {
    let normal: Zeroizing<String> = Zeroizing::new(
        code.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    let mut hash = Sha256::new();
    hash.update(b"brine recovery v1");
    hash.update(account.as_bytes());
    hash.update(normal.as_bytes());
    hash.finalize().to_vec()
}

/// The QR code of an `otpauth://` URI, as an SVG image for an `<img>` (a `data:` URL).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_its_own_step_and_its_neighbours_only() {
        let secret = [7u8; SECRET_BYTES];
        let t = totp(&secret, "ana@example.com").unwrap();
        let now = 1_800_000_000u64;
        let code = t.generate(now).to_string();
        assert_eq!(
            matching_step(&secret, "ana@example.com", &code, now),
            Some((now / 30) as i64)
        );
        // Accepted 30 s late; not 90 s late.
        assert!(matching_step(&secret, "ana@example.com", &code, now + 30).is_some());
        assert!(matching_step(&secret, "ana@example.com", &code, now + 90).is_none());
        assert!(matching_step(&secret, "ana@example.com", "12345", now).is_none());
        assert!(matching_step(&secret, "ana@example.com", "abcdef", now).is_none());
    }

    #[test]
    fn recovery_codes_are_distinct_and_their_digests_ignore_formatting() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let account = Uuid::new_v4();
        let first = codes[0].as_str();
        assert_eq!(first.len(), 19);
        assert_eq!(
            recovery_digest(account, first),
            recovery_digest(account, &first.to_uppercase().replace('-', " "))
        );
        assert_ne!(
            recovery_digest(account, first),
            recovery_digest(Uuid::new_v4(), first)
        );
        assert_ne!(codes[0].as_str(), codes[1].as_str());
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account() {
        let ring = Keyring::single(brine_crypto::MasterKey::generate().unwrap());
        let key = TotpKey::new(&ring).unwrap();
        let ana = Uuid::new_v4();
        let (sealed, version) = key.seal(ana, b"01234567890123456789").unwrap();
        assert_eq!(version, 1);
        assert_eq!(
            key.open(ana, 1, &sealed).unwrap().as_slice(),
            b"01234567890123456789"
        );
        assert!(key.open(Uuid::new_v4(), 1, &sealed).is_err());
        // Claiming another version fails too (the version is bound in).
        assert!(key.open(ana, 2, &sealed).is_err());
    }
}
