//! SQLite's audit writer: one thread that owns a connection of its own and writes each group of
//! events in one transaction, every statement on that thread. (sqlx's driver hands each statement
//! to its worker thread and back; for a group of a hundred events that was a hundred round trips
//! between threads, where this is one.) rusqlite shares sqlx's `libsqlite3-sys`, so both open the
//! same bundled SQLite.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::time_ms::to_ms;
use crate::usage::{RollupBatch, tally};
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
    country: Option<String>,
    city: Option<String>,
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
    pub fn start(path: &Path, rollups: Arc<AtomicBool>) -> Result<Self> {
        let conn = open(path)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("brine-audit".into())
            .spawn({
                let path = path.to_path_buf();
                move || run(conn, &path, queue, &rollups)
            })
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
                    country: e.country.map(str::to_owned),
                    city: e.city.map(str::to_owned),
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

fn run(mut conn: Connection, path: &Path, queue: mpsc::Receiver<Job>, rollups: &AtomicBool) {
    while let Ok(job) = queue.recv() {
        let keep = rollups.load(Ordering::Relaxed);
        let result = write_group(&mut conn, &job.events, &job.settles, keep).map_err(writer_error);
        if let Err(e) = &result {
            tracing::error!(error = %e, "cannot store audit events");
            if !conn.is_autocommit() {
                conn = reopened(conn, path);
            }
        }
        let _ = job.done.send(result);
    }
}

/// A fresh connection for one still inside a transaction after a failed write. rusqlite rolls a
/// failed transaction back when it is dropped (unless SQLite already did, as it may after "disk
/// full"), but ignores an error from that ROLLBACK: a connection left inside the transaction
/// would hold the write lock, and every other writer would get "database is locked" until a
/// restart. Closing it rolls back whatever SQLite still holds. Only on the error path.
fn reopened(conn: Connection, path: &Path) -> Connection {
    if conn.execute_batch("ROLLBACK").is_ok() && conn.is_autocommit() {
        return conn;
    }
    match open(path) {
        Ok(fresh) => {
            tracing::warn!("reopened the audit writer's connection, left inside a transaction");
            drop(conn);
            fresh
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot reopen the audit writer's connection");
            conn
        }
    }
}

fn write_group(
    conn: &mut Connection,
    events: &[Event],
    settles: &[Update],
    keep_rollups: bool,
) -> rusqlite::Result<Vec<Appended>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Each record's version and owner: None when the record is gone.
    let mut records: HashMap<Uuid, Option<(i64, Uuid)>> = HashMap::new();
    {
        let mut record =
            tx.prepare_cached("SELECT version, owner_id FROM records WHERE uuid = ?1")?;
        for event in events {
            if let std::collections::hash_map::Entry::Vacant(entry) = records.entry(event.record) {
                let found = record
                    .query_row([event.record.as_bytes().as_slice()], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()?;
                entry.insert(found);
            }
        }
    }
    let mut rollups = RollupBatch::default();
    {
        // The event as it was, for the difference its settle makes to the roll-ups.
        let mut old = tx.prepare_cached(
            "SELECT owner_id, record_uuid, at, channel, outcome, detail \
             FROM audit_events WHERE id = ?1",
        )?;
        let mut settle = tx.prepare_cached(
            "UPDATE audit_events SET outcome = ?1, detail = COALESCE(?2, detail) WHERE id = ?3",
        )?;
        for s in settles {
            let before = old
                .query_row([s.id], |row| {
                    Ok((
                        row.get::<_, Uuid>(0)?,
                        row.get::<_, Uuid>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, Option<String>>(5)?,
                    ))
                })
                .optional()?;
            settle.execute(params![s.outcome, s.detail, s.id])?;
            if let Some((owner, record, at, channel, outcome, detail)) = before {
                let detail_after = s.detail.as_deref().or(detail.as_deref());
                rollups.change(
                    owner,
                    record,
                    at,
                    tally(&channel, &outcome, detail.as_deref()),
                    tally(&channel, &s.outcome, detail_after),
                );
            }
        }
    }
    let mut out = Vec::with_capacity(events.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO audit_events \
             (owner_id, record_uuid, at, channel, outcome, client_ip, user_agent, detail, \
              country, city) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        )?;
        for e in events {
            let current = records.get(&e.record).copied().flatten();
            let owner = match (current, e.expect_version) {
                (Some((_, owner)), None) => owner,
                (Some((now, owner)), Some(expected)) if now == expected => owner,
                _ => {
                    out.push(Appended::Stale);
                    continue;
                }
            };
            let id = insert.query_row(
                params![
                    owner,
                    e.record,
                    e.at,
                    e.channel,
                    e.outcome,
                    e.client_ip,
                    e.user_agent,
                    e.detail,
                    e.country,
                    e.city
                ],
                |row| row.get(0),
            )?;
            rollups.change(
                owner,
                e.record,
                e.at,
                None,
                tally(&e.channel, &e.outcome, e.detail.as_deref()),
            );
            out.push(Appended::Stored(id));
        }
    }
    if keep_rollups {
        write_rollups(&tx, &rollups)?;
    }
    tx.commit()?;
    Ok(out)
}

fn write_rollups(tx: &rusqlite::Transaction<'_>, rollups: &RollupBatch) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO usage_rollups AS u (record_uuid, span, start, owner_id, requests, denied, \
         limited, gone, invalid, upstream_4xx, upstream_5xx, bytes, lat_0, lat_1, lat_2, lat_3, \
         lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11, last_at, last_ok_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26) \
         ON CONFLICT (record_uuid, span, start) DO UPDATE SET \
         requests = u.requests + excluded.requests, denied = u.denied + excluded.denied, \
         limited = u.limited + excluded.limited, gone = u.gone + excluded.gone, \
         invalid = u.invalid + excluded.invalid, \
         upstream_4xx = u.upstream_4xx + excluded.upstream_4xx, \
         upstream_5xx = u.upstream_5xx + excluded.upstream_5xx, \
         bytes = u.bytes + excluded.bytes, \
         lat_0 = u.lat_0 + excluded.lat_0, lat_1 = u.lat_1 + excluded.lat_1, \
         lat_2 = u.lat_2 + excluded.lat_2, lat_3 = u.lat_3 + excluded.lat_3, \
         lat_4 = u.lat_4 + excluded.lat_4, lat_5 = u.lat_5 + excluded.lat_5, \
         lat_6 = u.lat_6 + excluded.lat_6, lat_7 = u.lat_7 + excluded.lat_7, \
         lat_8 = u.lat_8 + excluded.lat_8, lat_9 = u.lat_9 + excluded.lat_9, \
         lat_10 = u.lat_10 + excluded.lat_10, lat_11 = u.lat_11 + excluded.lat_11, \
         last_at = MAX(COALESCE(u.last_at, 0), COALESCE(excluded.last_at, 0)), \
         last_ok_at = CASE WHEN excluded.last_ok_at > COALESCE(u.last_ok_at, 0) \
                      THEN excluded.last_ok_at ELSE u.last_ok_at END",
    )?;
    for (key, delta) in rollups.rows() {
        let c = &delta.counts;
        let l = &c.latency;
        upsert.execute(params![
            key.record,
            key.span,
            key.start,
            delta.owner,
            c.requests,
            c.denied,
            c.limited,
            c.gone,
            c.invalid,
            c.upstream_4xx,
            c.upstream_5xx,
            c.bytes,
            l[0],
            l[1],
            l[2],
            l[3],
            l[4],
            l[5],
            l[6],
            l[7],
            l[8],
            l[9],
            l[10],
            l[11],
            delta.last_at,
            delta.last_ok_at
        ])?;
    }
    Ok(())
}
