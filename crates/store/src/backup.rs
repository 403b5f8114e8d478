//! Online backups of the SQLite database, and putting one back.
//!
//! A snapshot is SQLite's `VACUUM INTO` from a plain connection: one read transaction, so in
//! WAL mode the server's writers and readers carry on while it runs, and the copy is exactly
//! the database as of the moment it began. The master key never is in the database, so it is
//! never in a backup either.
//!
//! Servers and `brine` commands hold a shared lock on the database file while they have it open
//! (see [`hold_in_use`]); a restore takes it exclusively, so it refuses while anything uses
//! the database. These are `flock` locks, apart from SQLite's own byte-range locks.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use crate::Backend;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "brine backup copies SQLite databases only; for PostgreSQL use pg_dump --format=custom \
         and pg_restore (docs/operations.md, \"Backups and restore\")"
    )]
    Postgres,
    #[error("{0}")]
    Refused(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// What a backup holds, read back from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    pub records: i64,
    pub accounts: i64,
    /// The newest schema migration applied to it.
    pub schema: i64,
    /// The master-key versions it registers, retired ones left out.
    pub key_versions: Vec<u32>,
    pub bytes: u64,
}

/// The SQLite file a `sqlite:` URL names; other URLs are PostgreSQL (refused) or unsupported.
pub fn sqlite_path(url: &str) -> Result<PathBuf, BackupError> {
    match Backend::of_url(url)? {
        Backend::Postgres => Err(BackupError::Postgres),
        Backend::Sqlite => Ok(SqliteConnectOptions::from_str(url)?
            .get_filename()
            .to_path_buf()),
    }
}

/// Writes a consistent snapshot of the database at `url` to `target` (mode 0600) while servers
/// keep serving. Refuses to overwrite `target` unless `overwrite`.
pub async fn snapshot(
    url: &str,
    target: &Path,
    overwrite: bool,
) -> Result<BackupInfo, BackupError> {
    let source = sqlite_path(url)?;
    if !source.exists() {
        return Err(BackupError::Refused(format!(
            "there is no database at {}",
            source.display()
        )));
    }
    if target.exists() && !overwrite {
        return Err(BackupError::Refused(format!(
            "{} exists; pass --force to replace it",
            target.display()
        )));
    }
    // Written beside the target and renamed over it when complete and checked: a crash or a
    // kill leaves no half backup under the target's name.
    let partial = with_suffix(target, ".partial");
    let _ = std::fs::remove_file(&partial);
    create_private(&partial).map_err(file_error(&partial))?;
    let written = async {
        let mut conn = SqliteConnectOptions::new()
            .filename(&source)
            .busy_timeout(Duration::from_secs(30))
            .connect()
            .await?;
        let partial_text = partial.to_string_lossy().into_owned();
        sqlx::query("VACUUM INTO $1")
            .bind(partial_text)
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        inspect(&partial).await
    }
    .await;
    let info = match written {
        Ok(info) => info,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    sync(&partial)?;
    std::fs::rename(&partial, target).map_err(file_error(target))?;
    Ok(info)
}

/// Checks a backup file and says what it holds: a SQLite database that passes SQLite's
/// integrity check and has brine's tables.
pub async fn inspect(path: &Path) -> Result<BackupInfo, BackupError> {
    let bytes = std::fs::metadata(path).map_err(file_error(path))?.len();
    // Immutable: reading the file neither needs nor creates -wal and -shm files beside it.
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .immutable(true)
        .connect()
        .await
        .map_err(|e| BackupError::Refused(format!("{} is not a database: {e}", path.display())))?;
    let not_brine = |_| BackupError::Refused(format!("{} is not a brine database", path.display()));
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(not_brine)?;
    if check != "ok" {
        return Err(BackupError::Refused(format!(
            "{} is damaged: {check}",
            path.display()
        )));
    }
    let records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
        .fetch_one(&mut conn)
        .await
        .map_err(not_brine)?;
    let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
        .fetch_one(&mut conn)
        .await
        .map_err(not_brine)?;
    let schema: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .map_err(not_brine)?;
    let rows = sqlx::query("SELECT key FROM meta WHERE key LIKE 'master_key_%'")
        .fetch_all(&mut conn)
        .await
        .map_err(not_brine)?;
    let keys: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>("key"))
        .collect::<Result<_, _>>()?;
    conn.close().await?;
    let retired: Vec<u32> = keys
        .iter()
        .filter_map(|k| k.strip_prefix("master_key_retired:")?.parse().ok())
        .collect();
    let mut key_versions: Vec<u32> = keys
        .iter()
        .filter_map(|k| match k.as_str() {
            "master_key_check" => Some(1),
            other => other.strip_prefix("master_key_check:")?.parse().ok(),
        })
        .filter(|v| !retired.contains(v))
        .collect();
    key_versions.sort_unstable();
    Ok(BackupInfo {
        records,
        accounts,
        schema,
        key_versions,
        bytes,
    })
}

/// Puts the backup at `backup` in place of the database at `url`. Refuses while a server or
/// another `brine` command has the database open, and refuses to replace an existing database
/// unless `replace` (which keeps it beside, renamed `…replaced-UNIXTIME`). Returns what the
/// backup holds and where the replaced database went.
pub async fn restore(
    backup: &Path,
    url: &str,
    replace: bool,
) -> Result<(BackupInfo, Option<PathBuf>), BackupError> {
    let target = sqlite_path(url)?;
    let info = inspect(backup).await?;
    let _lock = if target.exists() {
        if !replace {
            return Err(BackupError::Refused(format!(
                "{} already holds a database; pass --force to replace it (it is kept beside, \
                 renamed)",
                target.display()
            )));
        }
        Some(lock_unused(&target)?)
    } else {
        None
    };
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(file_error(dir))?;
    }
    let incoming = with_suffix(&target, ".restoring");
    let _ = std::fs::remove_file(&incoming);
    {
        let mut out = create_private(&incoming).map_err(file_error(&incoming))?;
        let mut src = File::open(backup).map_err(file_error(backup))?;
        std::io::copy(&mut src, &mut out).map_err(file_error(&incoming))?;
        out.sync_all().map_err(file_error(&incoming))?;
    }
    let replaced = if target.exists() {
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let aside = with_suffix(&target, &format!(".replaced-{stamp}"));
        std::fs::rename(&target, &aside).map_err(file_error(&target))?;
        Some(aside)
    } else {
        None
    };
    // The old database's write-ahead log must not be applied to the restored file.
    for suffix in ["-wal", "-shm"] {
        let stale = with_suffix(&target, suffix);
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error(&stale)(e)),
        }
    }
    std::fs::rename(&incoming, &target).map_err(file_error(&target))?;
    Ok((info, replaced))
}

/// Takes the database file's lock exclusively, or says who has it.
fn lock_unused(db: &Path) -> Result<File, BackupError> {
    let file = File::open(db).map_err(file_error(db))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::Refused(format!(
            "{} is in use by a running brine server or command; stop it first",
            db.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(file_error(db)(e)),
    }
}

/// Marks the database file as in use for as long as the returned file is open (servers and
/// commands call it when they open the database). Fails while a restore replaces it.
pub(crate) fn hold_in_use(db: &Path) -> Result<File, crate::StoreError> {
    let file = File::open(db).map_err(crate::StoreError::File)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(crate::StoreError::File(std::io::Error::other(format!(
                "{} is being restored from a backup; try again when the restore has finished",
                db.display()
            ))))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(crate::StoreError::File(e)),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sync(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(file_error(path))
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}
