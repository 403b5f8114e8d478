//! Storage for brine, behind traits split by capability. The backend is chosen once at start-up
//! from the database URL ([`connect`]); the rest of the server only sees `Arc<dyn Store>`.
//!
//! Everything secret arrives here already encrypted: the store never sees a plaintext value,
//! an X-API-Key or a password.

mod accounts;
pub mod backup;
mod handoffs;
mod intake;
pub mod key_versions;
mod logs;
mod model;
mod postgres;
mod sql;
mod sqlite;
mod sqlite_writer;
#[cfg(feature = "testing")]
pub mod testing;
mod time_ms;
mod tokens;
pub mod transfer;
pub mod usage;
mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

pub use accounts::{Account, AccountEvent, AccountStore, NewSession, Refresh, SessionRow};
pub use handoffs::{Handoff, HandoffStore};
pub use intake::{IntakeAttempts, IntakeLink, IntakeStore, IntakeTarget};
pub use key_versions::{KeyVersionStore, SealedField, SealedValue, VersionCount};
pub use logs::{DeletedRecord, LogStore, RecordName, RecordUsage, SeriesPoint, UsageRange};
pub use model::{
    Appended, AuditEvent, KeySlot, LockoutEdges, NewAuditEvent, PageLimits, RecentFailures, Record,
    RecordChanges, Settle, SlotKind,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use tokens::{NewServiceToken, ServiceTokenRow, TokenCheck, TokenStore};
pub use webhooks::{
    ClaimedDelivery, DeliveryEnd, DeliveryRow, NewDelivery, Webhook, WebhookStore, WebhookWatch,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (for example an email already registered).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Stored data could not be decoded (for example an unknown enum value).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(String),
    // The cause is shown in the message rather than as a `source`, so it prints once.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("database file: {0}")]
    File(std::io::Error),
    #[error("audit writer: {0}")]
    Writer(String),
}

impl StoreError {
    /// Whether the database could not be reached or written for a reason outside the request:
    /// connections refused or lost, a pool with no free connection in time, the server shutting
    /// down, a read-only or full volume. Callers answer 503 and may retry; every other error is a
    /// fault of its own (500).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => sqlx_unavailable(e),
            // The audit writer and the database file fail only on I/O.
            StoreError::File(_) | StoreError::Writer(_) => true,
            StoreError::Conflict(_)
            | StoreError::Corrupt(_)
            | StoreError::UnsupportedUrl(_)
            | StoreError::Migrate(_) => false,
        }
    }
}

fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                // SQLSTATE classes 08 (connection), 53 (resources, e.g. disk full), 57P0x
                // (shutting down / starting up), and 25006 (read-only transaction).
                let code = pg.code();
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P0")
                    || code == "25006"
            } else {
                // SQLite's primary result codes: BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
                db.code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(|code| matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
            }
        }
        _ => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Small installation-wide values, such as the master key's check value.
#[async_trait]
pub trait MetaStore: Send + Sync {
    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `value` unless the key exists; returns whether it was stored.
    async fn insert_meta_if_absent(&self, key: &str, value: &[u8]) -> Result<bool>;
}

#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Inserts a record with all its key slots, atomically.
    async fn insert_record(&self, record: &Record) -> Result<()>;
    /// A record with its key slots.
    async fn record(&self, uuid: Uuid) -> Result<Option<Record>>;
    /// The owner's records, newest first, with their key slots.
    async fn records_of(&self, owner: Uuid) -> Result<Vec<Record>>;
    /// Applies every change atomically if the record belongs to `owner`; returns whether it did.
    async fn update_record(&self, uuid: Uuid, owner: Uuid, changes: &RecordChanges)
    -> Result<bool>;
    /// Deletes the record if it is the owner's, keeping its events under a tombstone (its name
    /// and kind) so that its history still reads as that record's.
    async fn delete_record(&self, uuid: Uuid, owner: Uuid) -> Result<bool>;
    /// Atomically takes one read from a record with `max_reads`, if one is left and the record
    /// has not expired at `now`. Returns whether the read was granted.
    async fn claim_read(&self, uuid: Uuid, now: OffsetDateTime) -> Result<bool>;
    /// Atomically takes one secure-page reveal, if one is left and neither the page nor the
    /// record has expired at `now`. Returns whether the reveal was granted.
    async fn claim_view(&self, uuid: Uuid, now: OffsetDateTime) -> Result<bool>;
    /// Atomically takes one request from a record's quota for the period starting at `period`,
    /// unless `limit` were already taken in it (on any node). Returns whether it was granted.
    async fn take_quota(&self, uuid: Uuid, period: OffsetDateTime, limit: i64) -> Result<bool>;
    /// Requests taken from a record's quota in the period starting at `period`.
    async fn quota_used(&self, uuid: Uuid, period: OffsetDateTime) -> Result<i64>;
}

/// Which of a record's events to list; every field left out matches all.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFilter<'a> {
    /// Only events older than this event id (paging).
    pub before: Option<i64>,
    pub channel: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    /// Text in the user agent or the detail, whatever its case.
    pub text: Option<&'a str>,
    /// Only events at or after this time, and before that one.
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Stores an event and returns its id.
    async fn append_event(&self, event: &NewAuditEvent<'_>) -> Result<i64> {
        match self
            .append_events(std::slice::from_ref(event), &[])
            .await?
            .pop()
        {
            Some(Appended::Stored(id)) => Ok(id),
            Some(Appended::Stale) => Err(StoreError::Conflict("the record changed or is gone")),
            None => Err(StoreError::Corrupt("no id for a stored event".into())),
        }
    }
    /// Stores several events and settles several earlier ones, in one transaction (a group
    /// commit). An event whose record is gone, or not at its `expect_version`, is not stored
    /// (`Appended::Stale`); the rest are. Returns what became of each event, in order.
    async fn append_events(
        &self,
        events: &[NewAuditEvent<'_>],
        settles: &[Settle<'_>],
    ) -> Result<Vec<Appended>>;
    /// Whether the audit writers keep the usage roll-ups (on unless turned off; see `usage`).
    fn keep_rollups(&self, on: bool);
    /// Where a lockout's two tiers pass their limits, in one query.
    async fn recent_failures(&self, query: &RecentFailures<'_>) -> Result<LockoutEdges>;
    /// When each record of `owner` (or only record `only`, if it is the owner's) was last opened
    /// successfully: a read, a bridge call or a secure-page reveal (not the owner's own actions).
    /// Records never opened are left out. Read from the events, so serving a record writes
    /// nothing more for it.
    async fn last_used(
        &self,
        owner: Uuid,
        only: Option<Uuid>,
    ) -> Result<Vec<(Uuid, OffsetDateTime)>>;
    /// A record's events that match `filter`, newest first, at most `limit`.
    async fn events(
        &self,
        record: Uuid,
        limit: u32,
        filter: &EventFilter<'_>,
    ) -> Result<Vec<AuditEvent>>;
    /// Deletes at most `limit` of the oldest events from before `cutoff`; returns how many.
    /// Small batches keep each write short, so requests' own events are not held up.
    async fn delete_events_before(&self, cutoff: OffsetDateTime, limit: u32) -> Result<u64>;
}

/// Closing the connections: SQLite folds its write-ahead log back into the database file
/// when the last connection closes, so a stopped server leaves one self-contained file.
#[async_trait]
pub trait Lifecycle: Send + Sync {
    async fn close(&self);
}

/// Everything the server needs from storage.
pub trait Store:
    MetaStore
    + AccountStore
    + RecordStore
    + AuditStore
    + LogStore
    + WebhookStore
    + KeyVersionStore
    + TokenStore
    + HandoffStore
    + IntakeStore
    + Lifecycle
{
}
impl<T> Store for T where
    T: MetaStore
        + AccountStore
        + RecordStore
        + AuditStore
        + LogStore
        + WebhookStore
        + KeyVersionStore
        + TokenStore
        + HandoffStore
        + IntakeStore
        + Lifecycle
{
}

/// The storage engines brine runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names: `sqlite:` or `postgres:`/`postgresql:`.
    pub fn of_url(url: &str) -> Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            other => Err(StoreError::UnsupportedUrl(format!(
                "{other}: (use a sqlite: or postgres:// URL)"
            ))),
        }
    }
}

/// Opens the database named by `url`, applying pending migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    Ok(match Backend::of_url(url)? {
        Backend::Sqlite => Arc::new(SqliteStore::connect(url).await?),
        Backend::Postgres => Arc::new(PgStore::connect(url).await?),
    })
}
