//! Finding the master key at start-up, and refusing to run with a wrong one.

use std::io::Write;
use std::path::{Path, PathBuf};

use brine_crypto::{CryptoError, MasterKey};
use brine_store::Store;
use secrecy::ExposeSecret;

use crate::StartupError;
use crate::config::Settings;

const CHECK_VALUE_KEY: &str = "master_key_check";

/// The master key from `BRINE_MASTER_KEY`, else from `DATA_DIR/master.key`, else a new key written
/// there — but only for a database that has never had one. The key must match the check value
/// stored in the database.
pub async fn load(settings: &Settings, store: &dyn Store) -> Result<MasterKey, StartupError> {
    let stored_check = store.meta(CHECK_VALUE_KEY).await?;
    let path = settings.data_dir.join("master.key");
    let key = if let Some(encoded) = &settings.master_key {
        MasterKey::from_base64(encoded.expose_secret()).map_err(|e| {
            StartupError::MasterKey(describe(&e, "the master_key setting (BRINE_MASTER_KEY)"))
        })?
    } else if path.exists() {
        read_key_file(&path)?
    } else if stored_check.is_some() {
        return Err(StartupError::MasterKey(format!(
            "this database was created with a master key, but none was given: set \
             BRINE_MASTER_KEY or restore {}",
            path.display()
        )));
    } else {
        create_key_file(&path)?
    };

    match stored_check {
        Some(check) if key.matches_check_value(&check)? => Ok(key),
        Some(_) => Err(mismatch()),
        None => {
            // Another node may have registered its key in the meantime: the first one wins,
            // and every other key is refused like any mismatch.
            let check = key.check_value()?;
            if store.insert_meta_if_absent(CHECK_VALUE_KEY, &check).await?
                || key
                    .matches_check_value(&store.meta(CHECK_VALUE_KEY).await?.unwrap_or_default())?
            {
                Ok(key)
            } else {
                Err(mismatch())
            }
        }
    }
}

fn mismatch() -> StartupError {
    StartupError::MasterKey(
        "the master key does not match this database (it was created with another key); \
         start with the key it was created with"
            .into(),
    )
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

fn read_key_file(path: &Path) -> Result<MasterKey, StartupError> {
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            StartupError::MasterKey(format!("cannot read {}: {e}", path.display()))
        })?);
    warn_if_readable_by_others(path);
    MasterKey::from_base64(&text)
        .map_err(|e| StartupError::MasterKey(describe(&e, &path.display().to_string())))
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
