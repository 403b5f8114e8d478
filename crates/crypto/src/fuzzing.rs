//! The properties the fuzz targets in `fuzz/` check (`envelope`, `keyring`), taking the raw
//! fuzz input. They live here (feature `fuzzing`, and in this crate's tests) so that the
//! committed seeds and every crash kept under `fuzz/regressions/` are replayed by a plain
//! `cargo test` with the same assertions. A property that does not hold panics.

use uuid::Uuid;

use crate::{
    Binding, CryptoError, DataKey, Kek, Keyring, KeyringError, MasterKey, SlotKdf, open, seal,
};

/// Prefix of every secret the targets make up, so that a leak is easy to spot.
pub const CANARY: &[u8] = b"canary-";

/// Takes fixed-size pieces off the front of the input, zero-padded when it runs out.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// `envelope`: input is key (32 bytes), record id (16), version (4), field length (1), field,
/// tamper position (2) and mask (1), then the payload. Arbitrary bytes are refused as
/// ciphertext, wrapped key or stored encoding; seal/open and wrap/unwrap round-trip; any change
/// of bytes or binding is refused; no output or message holds the canary plaintext.
pub fn envelope(data: &[u8]) {
    let mut c = Cursor(data);
    let key: [u8; 32] = c.take();
    let record = Uuid::from_bytes(c.take());
    let version = u32::from_be_bytes(c.take());
    let [field_len] = c.take();
    let field = String::from_utf8_lossy(c.bytes(usize::from(field_len))).into_owned();
    let at = usize::from(u16::from_be_bytes(c.take()));
    let [mask] = c.take();
    let payload = c.0;
    let binding = Binding::new(record, &field, version);

    // Arbitrary bytes never open (a forged tag is out of reach of a fuzzer).
    assert!(open(&key, binding, payload).is_err(), "garbage opened");
    let kek = Kek::from_api_key(payload, record).ok();
    if let Some(kek) = &kek {
        assert!(kek.unwrap(binding, payload).is_err(), "garbage unwrapped");
    }

    // Round trip, tampering and moved bytes.
    let mut plaintext = CANARY.to_vec();
    plaintext.extend_from_slice(payload);
    let Ok(sealed) = seal(&key, binding, &plaintext) else {
        return;
    };
    assert!(!contains(&sealed, &plaintext), "plaintext in ciphertext");
    let opened = open(&key, binding, &sealed);
    assert!(
        opened.as_deref().map(Vec::as_slice) == Ok(plaintext.as_slice()),
        "round trip failed"
    );
    if mask != 0 {
        let mut tampered = sealed.clone();
        let i = at % tampered.len();
        tampered[i] ^= mask;
        assert!(
            open(&key, binding, &tampered).is_err(),
            "tampered bytes opened"
        );
    }
    assert!(
        open(&key, binding, &sealed[..sealed.len() - 1]).is_err(),
        "truncated bytes opened"
    );
    let other_field = format!("{field}x");
    let elsewhere = [
        Binding::new(record, &field, version.wrapping_add(1)),
        Binding::new(Uuid::from_u128(record.as_u128() ^ 1), &field, version),
        Binding::new(record, &other_field, version),
    ];
    for other in elsewhere {
        assert!(open(&key, other, &sealed).is_err(), "moved bytes opened");
    }

    // Key slots: a wrapped data key unwraps under its own binding only.
    if let (Some(kek), Ok(dek)) = (kek, DataKey::generate())
        && let Ok(wrapped) = kek.wrap(binding, &dek)
    {
        let unwrapped = kek.unwrap(binding, &wrapped);
        assert!(
            unwrapped.is_ok(),
            "a freshly wrapped data key did not unwrap"
        );
        let Ok(unwrapped) = unwrapped else { return };
        let Ok(inner) = dek.seal(binding, &plaintext) else {
            return;
        };
        assert!(
            unwrapped
                .open(binding, &inner)
                .as_deref()
                .map(Vec::as_slice)
                == Ok(plaintext.as_slice()),
            "unwrapped key differs"
        );
        assert!(
            kek.unwrap(elsewhere[0], &wrapped).is_err(),
            "moved slot unwrapped"
        );
        assert!(!format!("{dek:?} {kek:?}").contains("canary"));
    }

    // Stored encodings: a master key in base64, a password slot's parameters.
    let text = String::from_utf8_lossy(payload);
    match MasterKey::from_base64(&text) {
        Ok(master) => {
            let again = MasterKey::from_base64(&master.to_base64());
            let same = match (again, master.check_value()) {
                (Ok(again), Ok(check)) => again.matches_check_value(&check) == Ok(true),
                _ => false,
            };
            assert!(same, "master key base64 round trip failed");
            assert!(!format!("{master:?}").contains(master.to_base64().as_str()));
        }
        Err(e) => assert!(!contains(e.to_string().as_bytes(), CANARY)),
    }
    assert_eq!(MasterKey::from_bytes(payload).is_ok(), payload.len() == 32);
    match SlotKdf::parse(&text) {
        Ok(kdf) => {
            let encoded = kdf.encode();
            let again = SlotKdf::parse(&encoded).map(|k| k.encode());
            assert_eq!(again.as_deref(), Ok(encoded.as_str()), "slot round trip");
        }
        Err(e) => assert!(!contains(e.to_string().as_bytes(), CANARY)),
    }
}

/// `keyring`: input is keyring text. A keyring that parses writes out as text that parses to
/// the same keys; a refusal shows no text of the input but a short quoted version.
pub fn keyring(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Keyring::parse(&text) {
        Ok(ring) => {
            let again = Keyring::parse(&ring.to_text());
            assert!(again.is_ok(), "a keyring's own text did not parse");
            let Ok(again) = again else { return };
            assert_eq!(again.current().version(), ring.current().version());
            assert_eq!(
                again.versions().collect::<Vec<_>>(),
                ring.versions().collect::<Vec<_>>()
            );
            for key in ring.keys() {
                let check = key.check_value().ok();
                let other = again.get(key.version());
                let same = match (other, check) {
                    (Some(other), Some(check)) => other.matches_check_value(&check) == Ok(true),
                    _ => false,
                };
                assert!(same, "version {} changed in the round trip", key.version());
            }
            let shown = format!("{ring:?}");
            for key in ring.keys() {
                assert!(
                    !shown.contains(key.to_base64().as_str()),
                    "Debug shows a key"
                );
            }
        }
        Err(e) => assert!(
            shows_no_key_text(&e),
            "a keyring error shows text of its input: {e}"
        ),
    }
}

/// A keyring error holds no text of the keyring but a quoted version of at most 8 characters
/// (a key is 44): every other message is fixed but for numbers. Checked on the error's
/// variants, not by searching its message for key text, which would call a version that
/// happens to repeat part of a key a leak.
fn shows_no_key_text(e: &KeyringError) -> bool {
    match e {
        KeyringError::Syntax(message) => {
            const FIXED: &[&str] = &[
                "each entry must be VERSION:BASE64 or current:VERSION",
                "`current` is given twice",
                "a key version must be a whole number from 1 (found a long word instead)",
            ];
            FIXED.contains(&message.as_str())
                || message
                    .strip_prefix('\'')
                    .and_then(|m| m.strip_suffix("' is not a key version (a whole number from 1)"))
                    .is_some_and(|quoted| quoted.chars().count() <= 8)
        }
        // The only key errors from parsing text; both are fixed messages.
        KeyringError::Key { source, .. } => {
            matches!(source, CryptoError::KeyEncoding | CryptoError::KeySize(_))
        }
        KeyringError::Duplicate(_) | KeyringError::NoCurrent(_) | KeyringError::Empty => true,
    }
}

#[cfg(test)]
mod tests {
    //! Replays the committed seeds and every kept crash through the same checks.

    include!("../../../fuzz/replay.rs");

    #[test]
    fn envelope_seeds_and_regressions() {
        replay("envelope", super::envelope);
    }

    #[test]
    fn keyring_seeds_and_regressions() {
        replay("keyring", super::keyring);
    }
}
