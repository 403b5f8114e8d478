//! A keyring of versioned master keys: every version it holds reads, the current one writes.
//! Rotating the master key adds a version, makes it current, re-wraps what the older versions
//! wrapped, and finally drops them (docs/operations.md, "Master-key rotation").

use std::fmt;

use zeroize::Zeroizing;

use crate::CryptoError;
use crate::keys::MasterKey;

/// Several master keys, each with its version, one of them current.
pub struct Keyring {
    /// Sorted by version, no two alike; never empty.
    keys: Vec<MasterKey>,
    current: u32,
}

/// Why a keyring's text was refused. Never holds key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyringError {
    #[error("{0}")]
    Syntax(String),
    #[error("version {version}: {source}")]
    Key { version: u32, source: CryptoError },
    #[error("version {0} is listed twice")]
    Duplicate(u32),
    #[error("it names version {0} as current, but holds no key of that version")]
    NoCurrent(u32),
    #[error("it holds no key")]
    Empty,
}

impl Keyring {
    /// One key, version 1: the single-key forms (`master_key`, `DATA_DIR/master.key`).
    pub fn single(key: MasterKey) -> Self {
        let current = key.version();
        Self {
            keys: vec![key],
            current,
        }
    }

    /// Keys and the current version. Refuses duplicates, an empty ring and a current version
    /// that is not in it.
    pub fn new(mut keys: Vec<MasterKey>, current: u32) -> Result<Self, KeyringError> {
        keys.sort_by_key(MasterKey::version);
        if let Some(pair) = keys.windows(2).find(|w| w[0].version() == w[1].version()) {
            return Err(KeyringError::Duplicate(pair[0].version()));
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        if !keys.iter().any(|k| k.version() == current) {
            return Err(KeyringError::NoCurrent(current));
        }
        Ok(Self { keys, current })
    }

    /// Parses the keyring format: entries `VERSION:BASE64` and at most one `current:VERSION`,
    /// separated by newlines, commas or spaces; `#` starts a comment that runs to the end of
    /// its line. Without a `current` entry, the highest version is current.
    ///
    /// ```text
    /// # DATA_DIR/master.keyring
    /// current: 2
    /// 1: q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=
    /// 2: 7Hk2c0JjYWxsIG1lIElzaG1hZWwsIHNvbWUgeWVhcnM=
    /// ```
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        let mut keys = Vec::new();
        let mut current = None;
        let uncommented: Zeroizing<String> = Zeroizing::new(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let mut tokens = uncommented
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty());
        while let Some(token) = tokens.next() {
            // `1: abc` and `1:abc` alike: a name ending in `:` takes the next token as value.
            let joined;
            let entry = match (token.ends_with(':'), token.matches(':').count()) {
                (true, 1) => {
                    joined = Zeroizing::new(format!("{token}{}", tokens.next().unwrap_or("")));
                    joined.as_str()
                }
                _ => token,
            };
            let Some((name, value)) = entry.split_once(':') else {
                return Err(KeyringError::Syntax(
                    "each entry must be VERSION:BASE64 or current:VERSION".into(),
                ));
            };
            if name.eq_ignore_ascii_case("current") {
                if current.is_some() {
                    return Err(KeyringError::Syntax("`current` is given twice".into()));
                }
                current = Some(parse_version(value)?);
                continue;
            }
            let version = parse_version(name)?;
            let key = MasterKey::from_base64(value)
                .map_err(|source| KeyringError::Key { version, source })?
                .with_version(version);
            keys.push(key);
        }
        let current = match current {
            Some(v) => v,
            None => keys
                .iter()
                .map(MasterKey::version)
                .max()
                .ok_or(KeyringError::Empty)?,
        };
        Self::new(keys, current)
    }

    /// The keyring in the format [`Keyring::parse`] reads (for writing a keyring file).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(format!(
            "# brine master keyring: VERSION: BASE64 per line; every version reads, `current` writes.\n\
             # Keep it private (chmod 600) and apart from backups of the database.\ncurrent: {}\n",
            self.current
        ));
        for key in &self.keys {
            text.push_str(&key.version().to_string());
            text.push_str(": ");
            text.push_str(&key.to_base64());
            text.push('\n');
        }
        text
    }

    /// The key that wraps and seals everything new.
    pub fn current(&self) -> &MasterKey {
        // `new` guarantees the current version is present; the first key is never reached.
        self.get(self.current).unwrap_or(&self.keys[0])
    }

    /// The key of `version`, if this keyring holds it. A scan of a handful of entries: no
    /// allocation, cheap enough for every read.
    pub fn get(&self, version: u32) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.version() == version)
    }

    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }

    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(MasterKey::version)
    }

    /// The same purpose-bound subkey under every version (see [`MasterKey::derive_subkey`]).
    pub fn subkeys(&self, purpose: &str) -> Result<Subkeys, CryptoError> {
        let keys = self
            .keys
            .iter()
            .map(|k| Ok((k.version(), k.derive_subkey(purpose)?)))
            .collect::<Result<Vec<_>, CryptoError>>()?;
        Ok(Subkeys {
            keys,
            current: self.current,
        })
    }

    /// A keyring with one more, newly generated key under the next free version, made current
    /// when `make_current`.
    pub fn with_new_key(&self, make_current: bool) -> Result<Self, CryptoError> {
        let version = self.keys.iter().map(MasterKey::version).max().unwrap_or(0) + 1;
        let mut keys: Vec<MasterKey> = self
            .keys
            .iter()
            .map(|k| {
                MasterKey::from_base64(&k.to_base64()).map(|copy| copy.with_version(k.version()))
            })
            .collect::<Result<_, _>>()?;
        keys.push(MasterKey::generate()?.with_version(version));
        let current = if make_current { version } else { self.current };
        Ok(Self { keys, current })
    }
}

fn parse_version(text: &str) -> Result<u32, KeyringError> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            // A key written where a version belongs (`KEY:1`, `current: KEY`) must not reach
            // the logs, not even its first characters: only short text is shown.
            let text = text.trim();
            KeyringError::Syntax(if text.chars().count() <= MAX_SHOWN_VERSION {
                format!("'{text}' is not a key version (a whole number from 1)")
            } else {
                "a key version must be a whole number from 1 (found a long word instead)".into()
            })
        })
}

/// Longest text quoted back in a "not a key version" error; keys are 44 characters.
const MAX_SHOWN_VERSION: usize = 8;

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let versions: Vec<u32> = self.versions().collect();
        write!(
            f,
            "Keyring(current v{}, versions {versions:?})",
            self.current
        )
    }
}

/// One purpose's subkey under every version of a keyring.
pub struct Subkeys {
    keys: Vec<(u32, Zeroizing<[u8; 32]>)>,
    current: u32,
}

impl Subkeys {
    /// The current version and its subkey: what signs and seals anything new.
    pub fn current(&self) -> (u32, &[u8; 32]) {
        let found = self.get(self.current);
        // `Keyring::subkeys` derives every version, the current one included.
        (self.current, found.unwrap_or(&self.keys[0].1))
    }

    pub fn get(&self, version: u32) -> Option<&[u8; 32]> {
        self.keys
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, k)| &**k)
    }

    /// Every version and its subkey, current first (what a check tries in turn).
    pub fn all(&self) -> impl Iterator<Item = (u32, &[u8; 32])> {
        let current = self.current;
        self.keys
            .iter()
            .filter(move |(v, _)| *v == current)
            .chain(self.keys.iter().filter(move |(v, _)| *v != current))
            .map(|(v, k)| (*v, &**k))
    }
}

impl fmt::Debug for Subkeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subkeys(current v{}, ***)", self.current)
    }
}
