//! The embedded SQLite backend: one file, WAL journal, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::sql::impl_sql_store;
use crate::sqlite_writer::AuditWriter;
use crate::{Appended, NewAuditEvent, Result, Settle, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Audit events go through their own connection and thread (see `sqlite_writer`).
    audit: Arc<AuditWriter>,
    /// Whether that thread keeps the usage roll-ups.
    rollups: Arc<AtomicBool>,
    /// A shared lock on the database file while it is open here: `brine restore` refuses to
    /// replace a database in use (see `backup`).
    _in_use: Arc<std::fs::File>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at a `sqlite:` URL and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?;
        let path = options.get_filename().to_path_buf();
        if path.as_os_str().is_empty() || path == std::path::Path::new(":memory:") {
            return Err(StoreError::UnsupportedUrl(
                "sqlite: an in-memory database cannot be shared; name a file".into(),
            ));
        }
        owner_only(&path).map_err(StoreError::File)?;
        let in_use = Arc::new(crate::backup::hold_in_use(&path)?);
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable against process crashes; a power cut can lose the last
            // transactions but never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .before_acquire(|conn, _| Box::pin(async move { Ok(settled(conn)) }))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let rollups = Arc::new(AtomicBool::new(true));
        let audit = Arc::new(AuditWriter::start(&path, rollups.clone())?);
        Ok(Self {
            pool,
            audit,
            rollups,
            _in_use: in_use,
        })
    }

    async fn write_events(
        &self,
        events: &[NewAuditEvent<'_>],
        settles: &[Settle<'_>],
    ) -> Result<Vec<Appended>> {
        self.audit.write(events, settles).await
    }

    async fn close_writer(&self) {
        self.audit.stop().await;
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Whether a pooled connection is fit to hand out again: not inside a transaction as sqlx
/// counts them. When a COMMIT fails with "database or disk is full", SQLite may already have
/// rolled the transaction back; the ROLLBACK sqlx then sends fails ("no transaction is active"),
/// and sqlx still counts one transaction open. On that connection the next `begin()` would be a
/// SAVEPOINT that opens a real transaction, and a failed RELEASE then leaves it open for good:
/// later "commits" only release savepoints inside it (acknowledged writes never saved) and its
/// write lock makes every other writer fail with "database is locked". The pool closes such a
/// connection (closing rolls back whatever SQLite still holds) and opens a fresh one.
///
/// Checked when the connection is taken from the pool, not when it is given back: a transaction
/// dropped without a commit rolls back on the connection's worker after the drop, and the
/// pool's ping on release and on acquire waits for that. The check reads one counter.
fn settled(conn: &mut sqlx::SqliteConnection) -> bool {
    use sqlx::Connection;
    let settled = !conn.is_in_transaction();
    if !settled {
        tracing::warn!("closing a database connection left inside a failed transaction");
    }
    settled
}

/// Makes the database file readable by its owner only (it holds ciphertext, but also who opened
/// what and from where): created with mode 0600, or tightened when it was created more open.
/// SQLite gives its `-wal` and `-shm` files the database file's mode.
#[cfg(unix)]
fn owner_only(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut files = vec![path.to_path_buf()];
            for suffix in ["-wal", "-shm"] {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                files.push(name.into());
            }
            for file in files.iter().filter(|f| f.exists()) {
                if std::fs::metadata(file)?.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(file = %file.display(), "database file was readable by others; now 0600");
                    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn owner_only(_: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

impl_sql_store!(SqliteStore, Sqlite, SqliteRow);
crate::accounts::impl_account_store!(SqliteStore, SqliteRow);
crate::webhooks::impl_webhook_store!(SqliteStore, SqliteRow);
crate::handoffs::impl_handoff_store!(SqliteStore, SqliteRow);
crate::logs::impl_log_store!(SqliteStore, SqliteRow);
crate::key_versions::impl_key_version_store!(SqliteStore, SqliteRow);
crate::tokens::impl_token_store!(SqliteStore, SqliteRow);
crate::intake::impl_intake_store!(SqliteStore, SqliteRow);
