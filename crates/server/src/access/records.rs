//! Records served from memory. A bounded cache of decoded records (keys still wrapped, values
//! still sealed: nothing in it is plaintext), so that a read does not wait for the database to
//! find its record.
//!
//! A copy from memory is never trusted on its own: the audit event that every answer writes
//! carries the copy's version, and the store refuses the event when the record has changed or
//! gone since (see `brine_store::NewAuditEvent::expect_version`). The gate then starts again
//! from the database. So a rotation, a new password, a change or a deletion committed on any
//! node is obeyed by the very next request on every node, at no extra database round trip.
//!
//! Records with a read limit or a quota are always read from the database, since serving them
//! writes to it anyway.

use std::sync::Arc;
use std::time::Instant;

use brine_store::{Record, Store, StoreError};
use quick_cache::Weighter;

use crate::metrics::{DbCall, Metrics};
use quick_cache::sync::Cache;
use uuid::Uuid;

/// What a record costs in memory, roughly, in bytes.
#[derive(Clone)]
struct Size;

impl Weighter<Uuid, (Arc<Record>, Instant)> for Size {
    fn weight(&self, _: &Uuid, (record, _): &(Arc<Record>, Instant)) -> u64 {
        let slots: usize = record
            .slots
            .iter()
            .map(|s| 64 + s.wrapped.len() + s.kdf.as_ref().map_or(0, String::len))
            .sum();
        (512 + record.payload.len() + record.name.len() + slots) as u64
    }
}

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// From memory, read from the database at that time: its version is checked when its audit
    /// event is stored.
    Memory(Instant),
    /// Just read from the database.
    Stored,
}

/// Records by uuid, with the time each was read from the database.
type Memory = Cache<Uuid, (Arc<Record>, Instant), Size>;

#[derive(Clone)]
pub struct Records {
    store: Arc<dyn Store>,
    memory: Option<Arc<Memory>>,
    metrics: Metrics,
}

/// Roughly what one record takes, to size the cache's hash table.
const TYPICAL_RECORD_BYTES: u64 = 1024;

impl Records {
    /// A cache holding up to `bytes` of records; 0 keeps none in memory.
    pub fn new(store: Arc<dyn Store>, bytes: u64, metrics: Metrics) -> Self {
        let memory = (bytes > 0).then(|| {
            let items = usize::try_from(bytes / TYPICAL_RECORD_BYTES).unwrap_or(usize::MAX);
            Arc::new(Cache::with_weighter(items.max(16), bytes, Size))
        });
        Self {
            store,
            memory,
            metrics,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The record, from memory when `memory` allows and it is there, else from the database.
    pub async fn get(
        &self,
        uuid: Uuid,
        memory: bool,
    ) -> Result<Option<(Arc<Record>, Copy)>, StoreError> {
        if memory
            && let Some(cache) = &self.memory
            && let Some((record, loaded)) = cache.get(&uuid)
        {
            self.metrics.cache(true);
            return Ok(Some((record, Copy::Memory(loaded))));
        }
        self.metrics.cache(false);
        self.metrics.db(DbCall::Record);
        let Some(record) = self.store.record(uuid).await? else {
            self.forget(uuid);
            return Ok(None);
        };
        let record = Arc::new(record);
        if let Some(cache) = &self.memory {
            if record.max_reads.is_none() && record.limits.quota.is_none() {
                cache.insert(uuid, (record.clone(), Instant::now()));
            } else {
                cache.remove(&uuid);
            }
        }
        Ok(Some((record, Copy::Stored)))
    }

    /// Drops the copy in memory (after this node changed or deleted the record).
    pub fn forget(&self, uuid: Uuid) {
        if let Some(cache) = &self.memory {
            cache.remove(&uuid);
        }
    }
}
