//! Passwords that a person types from a text message: five groups of four characters from an
//! alphabet without look-alikes (no 0/o, 1/l/i), about 99 bits of randomness.

use zeroize::Zeroizing;

use crate::{CryptoError, random_bytes};

const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
const GROUPS: usize = 5;
const GROUP_LEN: usize = 4;

pub fn generate_passphrase() -> Result<Zeroizing<String>, CryptoError> {
    let mut out = Zeroizing::new(String::with_capacity(GROUPS * (GROUP_LEN + 1)));
    let mut produced = 0;
    // Rejection sampling keeps every character equally likely.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    while produced < GROUPS * GROUP_LEN {
        let bytes = Zeroizing::new(random_bytes::<32>()?);
        for &b in bytes.iter().filter(|&&b| b < limit) {
            if produced == GROUPS * GROUP_LEN {
                break;
            }
            if produced > 0 && produced % GROUP_LEN == 0 {
                out.push('-');
            }
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            produced += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_have_the_documented_shape_and_differ() {
        let a = generate_passphrase().unwrap();
        let b = generate_passphrase().unwrap();
        assert_ne!(*a, *b);
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.len(), GROUPS);
        assert!(groups.iter().all(|g| g.len() == GROUP_LEN));
        assert!(
            a.bytes()
                .filter(|&c| c != b'-')
                .all(|c| ALPHABET.contains(&c))
        );
    }
}
