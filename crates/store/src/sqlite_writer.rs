//! SQLite's audit writer: one thread that owns a connection of its own and writes each group of
//! events in one transaction, every statement on that thread. (sqlx's driver hands each statement
//! to its worker thread and back; for a group of a hundred events that was a hundred round trips
//! between threads, where this is one.) rusqlite shares sqlx's `libsqlite3-sys`, so both open the
//! same bundled SQLite.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::time_ms::to_ms;
use crate::{Appended, NewAuditEvent, Result, Settle, StoreError};

/// An event with everything it borrows copied, to cross to the writer thread.
struct Event {
    record: Uuid,
    at: i64,
    channel: String,
    outcome: String,
    client_ip: Option<String>,
    user_agent: Option<String>,
    detail: Option<String>,
    expect_version: Option<i64>,
}

struct Update {
    id: i64,
    outcome: String,
    detail: Option<String>,
}

struct Job {
    events: Vec<Event>,
    settles: Vec<Update>,
    done: oneshot::Sender<Result<Vec<Appended>>>,
}

pub struct AuditWriter {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn writer_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Writer(e.to_string())
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(writer_error)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(writer_error)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
    .map_err(writer_error)?;
    Ok(conn)
}

impl AuditWriter {
    /// Opens the writer's connection to the database file at `path` (which exists and is
    /// migrated) and starts its thread.
    pub fn start(path: &Path) -> Result<Self> {
        let conn = open(path)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("brine-audit".into())
            .spawn(move || run(conn, queue))
            .map_err(writer_error)?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub async fn write(
        &self,
        events: &[NewAuditEvent<'_>],
        settles: &[Settle<'_>],
    ) -> Result<Vec<Appended>> {
        let (done, result) = oneshot::channel();
        let job = Job {
            events: events
                .iter()
                .map(|e| Event {
                    record: e.record,
                    at: to_ms(e.at),
                    channel: e.channel.to_owned(),
                    outcome: e.outcome.to_owned(),
                    client_ip: e.client_ip.map(str::to_owned),
                    user_agent: e.user_agent.map(str::to_owned),
                    detail: e.detail.map(str::to_owned),
                    expect_version: e.expect_version,
                })
                .collect(),
            settles: settles
                .iter()
                .map(|s| Update {
                    id: s.id,
                    outcome: s.outcome.to_owned(),
                    detail: s.detail.map(str::to_owned),
                })
                .collect(),
            done,
        };
        let sent = self
            .jobs
            .lock()
            .map_err(writer_error)?
            .as_ref()
            .map(|jobs| jobs.send(job).is_ok());
        if sent != Some(true) {
            return Err(StoreError::Writer("the audit writer has stopped".into()));
        }
        result
            .await
            .map_err(|_| StoreError::Writer("the audit writer stopped mid-write".into()))?
    }

    /// Stops the thread once it has written what it was given, and closes its connection.
    pub async fn stop(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn run(mut conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        let result = write_group(&mut conn, &job.events, &job.settles).map_err(writer_error);
        if let Err(e) = &result {
            tracing::error!(error = %e, "cannot store audit events");
        }
        let _ = job.done.send(result);
    }
}

fn write_group(
    conn: &mut Connection,
    events: &[Event],
    settles: &[Update],
) -> rusqlite::Result<Vec<Appended>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut versions: HashMap<Uuid, Option<i64>> = HashMap::new();
    {
        let mut version = tx.prepare_cached("SELECT version FROM records WHERE uuid = ?1")?;
        for event in events {
            if let std::collections::hash_map::Entry::Vacant(entry) = versions.entry(event.record) {
                let found = version
                    .query_row([event.record.as_bytes().as_slice()], |row| row.get(0))
                    .optional()?;
                entry.insert(found);
            }
        }
    }
    {
        let mut settle = tx.prepare_cached(
            "UPDATE audit_events SET outcome = ?1, detail = COALESCE(?2, detail) WHERE id = ?3",
        )?;
        for s in settles {
            settle.execute(params![s.outcome, s.detail, s.id])?;
        }
    }
    let mut out = Vec::with_capacity(events.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO audit_events \
             (record_uuid, at, channel, outcome, client_ip, user_agent, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        )?;
        for e in events {
            let current = versions.get(&e.record).copied().flatten();
            let fresh = match (current, e.expect_version) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(now), Some(expected)) => now == expected,
            };
            if !fresh {
                out.push(Appended::Stale);
                continue;
            }
            let id = insert.query_row(
                params![
                    e.record.as_bytes().as_slice(),
                    e.at,
                    e.channel,
                    e.outcome,
                    e.client_ip,
                    e.user_agent,
                    e.detail
                ],
                |row| row.get(0),
            )?;
            out.push(Appended::Stored(id));
        }
    }
    tx.commit()?;
    Ok(out)
}
