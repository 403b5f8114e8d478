//! Finding the master keyring at start-up, and refusing to run with a wrong or missing key.
//!
//! The keyring comes from the first of: the `master_keys` setting (`BRINE_MASTER_KEYS`), the
//! `master_key` setting (`BRINE_MASTER_KEY`, version 1), `DATA_DIR/master.keyring`,
//! `DATA_DIR/master.key` (version 1), or a new `master.key` for a database that never had one.
//! The database registers each version's check value in `meta` the first time a node holding it
//! starts, so a wrong key of any version is refused; and a node refuses to start without a
//! version that something in the database is still wrapped or sealed under.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use brine_crypto::{CryptoError, Keyring, MasterKey};
use brine_store::{SealedField, Store};
use secrecy::ExposeSecret;

use crate::StartupError;
use crate::config::Settings;

/// Version 1's check value keeps the name it had before keyrings existed.
pub const CHECK_VALUE_KEY: &str = "master_key_check";
const CHECK_PREFIX: &str = "master_key_check:";
const RETIRED_PREFIX: &str = "master_key_retired:";
pub const KEY_FILE: &str = "master.key";
pub const KEYRING_FILE: &str = "master.keyring";

/// The meta key of `version`'s check value.
pub fn check_key(version: u32) -> String {
    if version == 1 {
        CHECK_VALUE_KEY.to_owned()
    } else {
        format!("{CHECK_PREFIX}{version}")
    }
}

/// The meta key that marks `version` retired.
pub fn retired_key(version: u32) -> String {
    format!("{RETIRED_PREFIX}{version}")
}

/// What the database knows of the master key's versions.
#[derive(Debug, Default)]
pub struct Registered {
    pub checks: BTreeMap<u32, Vec<u8>>,
    pub retired: BTreeSet<u32>,
}

impl Registered {
    pub async fn read(store: &dyn Store) -> Result<Self, brine_store::StoreError> {
        let mut known = Self::default();
        for (key, value) in store.master_key_meta().await? {
            let version = |rest: &str| rest.parse::<u32>().ok();
            if key == CHECK_VALUE_KEY {
                known.checks.insert(1, value);
            } else if let Some(v) = key.strip_prefix(CHECK_PREFIX).and_then(version) {
                known.checks.insert(v, value);
            } else if let Some(v) = key.strip_prefix(RETIRED_PREFIX).and_then(version) {
                known.retired.insert(v);
            }
        }
        Ok(known)
    }
}

/// The versions something in the database is still wrapped or sealed under, among `candidates`.
pub async fn versions_in_use(
    store: &dyn Store,
    candidates: impl IntoIterator<Item = u32>,
) -> Result<Vec<u32>, brine_store::StoreError> {
    let mut used = Vec::new();
    for version in candidates {
        for field in SealedField::ALL {
            if store.sealed_uses(field, i64::from(version)).await? {
                used.push(version);
                break;
            }
        }
    }
    Ok(used)
}

/// The keyring this node runs with, checked against the database (see the module's comment).
/// `create` lets a brand-new installation get a generated `master.key` (servers, not tools).
pub async fn load(
    settings: &Settings,
    store: &dyn Store,
    create: bool,
) -> Result<Keyring, StartupError> {
    let known = Registered::read(store).await?;
    let ring = read_keyring(settings, !known.checks.is_empty(), create)?;
    check_against(&ring, store, &known).await?;
    Ok(ring)
}

fn read_keyring(
    settings: &Settings,
    database_has_key: bool,
    create: bool,
) -> Result<Keyring, StartupError> {
    let key_path = settings.data_dir.join(KEY_FILE);
    let ring_path = settings.data_dir.join(KEYRING_FILE);
    if settings.master_keys.is_some() && settings.master_key.is_some() {
        return Err(StartupError::MasterKey(
            "both master_keys (BRINE_MASTER_KEYS) and master_key (BRINE_MASTER_KEY) are set; \
             set only master_keys, with the old key as version 1"
                .into(),
        ));
    }
    if let Some(text) = &settings.master_keys {
        return Keyring::parse(text.expose_secret()).map_err(|e| {
            StartupError::MasterKey(format!(
                "the master_keys setting (BRINE_MASTER_KEYS) is not a keyring: {e}"
            ))
        });
    }
    if let Some(encoded) = &settings.master_key {
        let key = MasterKey::from_base64(encoded.expose_secret()).map_err(|e| {
            StartupError::MasterKey(describe(&e, "the master_key setting (BRINE_MASTER_KEY)"))
        })?;
        return Ok(Keyring::single(key));
    }
    if ring_path.exists() {
        if key_path.exists() {
            tracing::info!(
                ignored = %key_path.display(),
                "the master keyring file is used; master.key beside it is ignored"
            );
        }
        return read_keyring_file(&ring_path);
    }
    if key_path.exists() {
        return read_key_file(&key_path).map(Keyring::single);
    }
    if database_has_key || !create {
        return Err(StartupError::MasterKey(format!(
            "this database was created with a master key, but none was given: set \
             BRINE_MASTER_KEY or BRINE_MASTER_KEYS, or restore {} or {}",
            key_path.display(),
            ring_path.display()
        )));
    }
    create_key_file(&key_path).map(Keyring::single)
}

async fn check_against(
    ring: &Keyring,
    store: &dyn Store,
    known: &Registered,
) -> Result<(), StartupError> {
    let current = ring.current().version();
    if known.retired.contains(&current) {
        return Err(StartupError::MasterKey(format!(
            "master key version {current} was retired from this database; make a newer \
             version current in the keyring"
        )));
    }
    for key in ring.keys() {
        let version = key.version();
        let matches = match known.checks.get(&version) {
            Some(check) => key.matches_check_value(check)?,
            None => {
                // Another node may register this version at the same moment: the first one
                // wins, and every other key is refused like any mismatch.
                let check = key.check_value()?;
                let name = check_key(version);
                store.insert_meta_if_absent(&name, &check).await?
                    || key.matches_check_value(&store.meta(&name).await?.unwrap_or_default())?
            }
        };
        if !matches {
            return Err(mismatch(version, ring.keys().len() > 1));
        }
        if known.retired.contains(&version) {
            tracing::warn!(
                version,
                "the keyring holds a retired master key version; it can be removed"
            );
        }
    }
    let held: BTreeSet<u32> = ring.versions().collect();
    // Retired versions are checked too: a node that still wrote under one after it was
    // retired would otherwise leave values that nobody can open.
    let missing = versions_in_use(
        store,
        known.checks.keys().copied().filter(|v| !held.contains(v)),
    )
    .await?;
    if !missing.is_empty() {
        return Err(StartupError::MasterKey(format!(
            "this database still needs master key version{} {}, which this node's keyring does \
             not hold: add {} to BRINE_MASTER_KEYS or DATA_DIR/master.keyring, or finish \
             `brine admin rotate-master-key` first",
            if missing.len() > 1 { "s" } else { "" },
            list(&missing),
            if missing.len() > 1 { "them" } else { "it" },
        )));
    }
    tracing::info!(
        current,
        versions = ?held,
        "master keyring loaded"
    );
    Ok(())
}

/// `1`, `1 and 2`, `1, 2 and 3`.
pub fn list(versions: &[u32]) -> String {
    let text: Vec<String> = versions.iter().map(u32::to_string).collect();
    match text.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn mismatch(version: u32, several: bool) -> StartupError {
    StartupError::MasterKey(if several {
        format!(
            "master key version {version} does not match this database (it registered another \
             key under that version); give that version its original key"
        )
    } else {
        "the master key does not match this database (it was created with another key); \
         start with the key it was created with"
            .into()
    })
}

fn describe(e: &CryptoError, source: &str) -> String {
    match e {
        CryptoError::KeySize(n) => {
            format!(
                "{source} must be base64 of exactly 32 bytes (256 bits), but it holds {n} bytes"
            )
        }
        CryptoError::KeyEncoding => format!("{source} is not valid base64"),
        other => format!("{source}: {other}"),
    }
}

pub fn read_key_file(path: &Path) -> Result<MasterKey, StartupError> {
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            StartupError::MasterKey(format!("cannot read {}: {e}", path.display()))
        })?);
    warn_if_readable_by_others(path);
    MasterKey::from_base64(&text)
        .map_err(|e| StartupError::MasterKey(describe(&e, &path.display().to_string())))
}

fn read_keyring_file(path: &Path) -> Result<Keyring, StartupError> {
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            StartupError::MasterKey(format!("cannot read {}: {e}", path.display()))
        })?);
    warn_if_readable_by_others(path);
    Keyring::parse(&text)
        .map_err(|e| StartupError::MasterKey(format!("{} is not a keyring: {e}", path.display())))
}

/// Writes a keyring file (mode 0600) through a temporary file and a rename, so that a crash
/// leaves the old file or the new one, never half of one.
pub fn write_keyring_file(path: &Path, ring: &Keyring) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut file = open_private(&tmp)?;
    file.write_all(ring.to_text().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn create_key_file(path: &Path) -> Result<MasterKey, StartupError> {
    let key = MasterKey::generate()?;
    let fail = |e: std::io::Error| {
        StartupError::MasterKey(format!("cannot create {}: {e}", path.display()))
    };
    let mut file = open_private(path).map_err(fail)?;
    file.write_all(key.to_base64().as_bytes()).map_err(fail)?;
    file.write_all(b"\n").map_err(fail)?;
    file.sync_all().map_err(fail)?;
    tracing::warn!(
        path = %path.display(),
        "created a new master key; back it up now: without it no record can be decrypted"
    );
    Ok(key)
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the master key file is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Creates the data directory, private to this user.
pub fn ensure_data_dir(dir: &Path) -> Result<PathBuf, StartupError> {
    let fail =
        |e: std::io::Error| StartupError::DataDir(format!("cannot create {}: {e}", dir.display()));
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(fail)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
        }
    }
    Ok(dir.to_path_buf())
}
