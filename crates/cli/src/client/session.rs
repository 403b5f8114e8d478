//! The session file: which server you signed in to and the token it gave you.
//!
//! Only you may read it (mode 0600, in a 0700 directory). It is replaced atomically: a temporary
//! file created with mode 0600 next to it is renamed over it, so it is never half-written or, even
//! briefly, readable by others.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "session.json";

/// Deliberately not `Debug`: it holds the token.
#[derive(Serialize, Deserialize)]
pub struct Session {
    pub server: String,
    pub token: String,
}

fn non_empty_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `$BRINE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/brine`, else `$HOME/.config/brine`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = non_empty_env("BRINE_CONFIG_DIR") {
        return Ok(dir);
    }
    // The XDG spec says relative paths are invalid and must be ignored.
    if let Some(dir) = non_empty_env("XDG_CONFIG_HOME").filter(|d| d.is_absolute()) {
        return Ok(dir.join("brine"));
    }
    if let Some(home) = non_empty_env("HOME") {
        return Ok(home.join(".config").join("brine"));
    }
    bail!("cannot tell where to keep the session: set BRINE_CONFIG_DIR or HOME")
}

pub fn path() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join(FILE_NAME))
}

/// The saved session, or `None` when there is no session file.
pub fn load_optional() -> anyhow::Result<Option<Session>> {
    let path = path()?;
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // serde_json's messages can quote values, so they are not shown: the file holds a token.
    let session = serde_json::from_str(&text).map_err(|_| {
        anyhow::anyhow!(
            "{} is damaged; run `brine login` to replace it",
            path.display()
        )
    })?;
    Ok(Some(session))
}

/// The saved session, or an error telling how to get one.
pub fn load() -> anyhow::Result<Session> {
    match load_optional()? {
        Some(session) => Ok(session),
        None => bail!("not signed in: run `brine login` first"),
    }
}

/// Saves the session; returns the file's path.
pub fn save(session: &Session) -> anyhow::Result<PathBuf> {
    let dir = config_dir()?;
    create_private_dir(&dir)?;
    let path = dir.join(FILE_NAME);
    let json = serde_json::to_vec_pretty(session).context("cannot encode the session")?;
    write_atomically(&dir, &path, &json)
        .with_context(|| format!("cannot write the session file {}", path.display()))?;
    Ok(path)
}

/// Deletes the session file; `false` if there was none.
pub fn remove() -> anyhow::Result<bool> {
    let path = path()?;
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot delete {}", path.display())),
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", uuid::Uuid::new_v4()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed?;
    // Makes the rename itself durable; failing to is no reason to fail the login.
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
