//! Compiled bridges, kept between calls: decrypting the stored URL and headers, parsing the
//! templates and building the scrubber's automaton cost far more than the call's own work.
//!
//! An entry is used only for the exact record version it was built from (`updated_at` and the
//! payload version change with every edit, rotation or re-key), and only after the caller passed
//! the same checks as ever (origin, method, key), so nothing it holds outlives a change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use brine_bridge::scrub::Scrubber;
use brine_crypto::DataKey;
use brine_store::Record;
use uuid::Uuid;

use super::config::{Bridge, BridgePolicy};
use crate::error::ApiResult;

pub struct Compiled {
    pub bridge: Bridge,
    pub scrubber: Scrubber,
}

/// The record version an entry was built from.
type Stamp = (i64, i64);
type Entries = HashMap<Uuid, (Stamp, Arc<Compiled>)>;

#[derive(Clone, Default)]
pub struct BridgeCache(Arc<Mutex<Entries>>);

/// Bounds the memory the cache can take; past it, the cache starts over.
const MAX_ENTRIES: usize = 10_000;

impl BridgeCache {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The compiled bridge for this version of `record`, built with `dek` when not cached.
    pub fn get_or_open(
        &self,
        record: &Record,
        dek: &DataKey,
        policy: &BridgePolicy,
    ) -> ApiResult<Arc<Compiled>> {
        let stamp = (
            record.updated_at.unix_timestamp_nanos() as i64,
            record.payload_version,
        );
        if let Some((cached, compiled)) = self.lock().get(&record.uuid)
            && *cached == stamp
        {
            return Ok(compiled.clone());
        }
        let bridge = super::open(record, dek, policy.clone())?;
        let scrubber = Scrubber::new(bridge.secrets.iter().map(String::as_str));
        let compiled = Arc::new(Compiled { bridge, scrubber });
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(record.uuid, (stamp, compiled.clone()));
        Ok(compiled)
    }
}
