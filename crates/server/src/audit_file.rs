//! `audit_log_file`: every audit event, as it is stored, also written as one JSON line to a
//! file or to stdout (`-`), for a log shipper (Vector, Fluent Bit, Promtail...).
//!
//! A thread of its own does the writing, so a slow disk never holds up the audit writer; it
//! takes lines from a bounded queue and, when that is full, the lines that do not fit are
//! counted and reported rather than held in memory without end (the database keeps them all).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use uuid::Uuid;

/// Lines waiting for the writer thread at most.
const QUEUE: usize = 65_536;

#[derive(Clone)]
pub struct AuditFile {
    lines: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

/// One line: an event as stored, or the final outcome of one stored earlier (`settled`).
#[derive(Serialize)]
pub struct Line<'a> {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'a str>,
    pub outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub settled: bool,
}

/// A detail as JSON to embed as it is (it is always JSON; anything else is left out).
pub fn raw(detail: Option<&str>) -> Option<&RawValue> {
    detail.and_then(|d| serde_json::from_str(d).ok())
}

impl AuditFile {
    /// Opens `target` (`-` for stdout; a file is appended to, created with mode 0600) and
    /// starts the writer thread.
    pub fn open(target: &str) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            Box::new(options.open(Path::new(target))?)
        };
        let (lines, queue) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("brine-audit-file".into())
            .spawn(move || write_lines(out, queue))?;
        Ok(Self {
            lines,
            dropped: Arc::default(),
        })
    }

    pub fn write(&self, line: &Line<'_>) {
        let Ok(text) = serde_json::to_string(line) else {
            return;
        };
        match self.lines.try_send(text) {
            Ok(()) => {
                let dropped = self.dropped.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    tracing::warn!(dropped, "audit_log_file fell behind: lines were left out");
                }
            }
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

fn write_lines(out: Box<dyn Write + Send>, queue: Receiver<String>) {
    let mut out = std::io::BufWriter::new(out);
    while let Ok(line) = queue.recv() {
        let mut next = Some(line);
        // Everything already queued, then one flush: a shipper sees whole lines promptly.
        while let Some(line) = next {
            if writeln!(out, "{line}").is_err() {
                tracing::error!("cannot write to audit_log_file");
            }
            next = queue.try_recv().ok();
        }
        if out.flush().is_err() {
            tracing::error!("cannot write to audit_log_file");
        }
    }
}
