//! Compiled bridges, kept between calls: decrypting the stored URL and headers, parsing the
//! templates and building the scrubber's automaton cost far more than the call's own work.
//!
//! An entry is used only for the exact record version it was built from (every edit, rotation
//! or re-key makes a new version), and only after the caller passed the gate with that version
//! (origin, method, key), so nothing it holds outlives a change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use brine_bridge::scrub::Scrubber;
use brine_core::BridgePolicy;
use brine_crypto::DataKey;
use brine_store::{Record, StoreError};
use uuid::Uuid;

use super::compiled::{Bridge, BridgeSecrets};
use crate::fault::Fault;
use crate::vault::Vault;

pub struct Compiled {
    pub bridge: Bridge,
    pub scrubber: Scrubber,
}

type Entries = HashMap<Uuid, (i64, Arc<Compiled>)>;

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
    pub fn get_or_compile(
        &self,
        record: &Record,
        vault: &Vault,
        dek: &DataKey,
    ) -> Result<Arc<Compiled>, Fault> {
        if let Some((version, compiled)) = self.lock().get(&record.uuid)
            && *version == record.version
        {
            return Ok(compiled.clone());
        }
        let compiled = Arc::new(compile(record, vault, dek)?);
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(record.uuid, (record.version, compiled.clone()));
        Ok(compiled)
    }
}

/// Decrypts and compiles a stored bridge. Everything stored was checked when it was written, so
/// a failure here is a fault of the stored data.
pub fn compile(record: &Record, vault: &Vault, dek: &DataKey) -> Result<Compiled, Fault> {
    let policy = record
        .policy
        .bridge()
        .ok_or_else(|| corrupt(record.uuid, "not a bridge".into()))?;
    let plain = vault.decrypt(record, dek)?;
    compile_plain(record.uuid, &plain, policy)
}

/// Compiles a bridge's secret part, given in the clear (as sealed: JSON), with `policy`.
pub fn compile_plain(uuid: Uuid, plain: &str, policy: &BridgePolicy) -> Result<Compiled, Fault> {
    let secrets: BridgeSecrets =
        serde_json::from_str(plain).map_err(|_| corrupt(uuid, "unreadable upstream".into()))?;
    let bridge = Bridge::compile(&secrets, policy.clone()).map_err(|e| corrupt(uuid, e.message))?;
    let scrubber = Scrubber::new(bridge.secrets.iter().map(String::as_str));
    Ok(Compiled { bridge, scrubber })
}

fn corrupt(uuid: Uuid, what: String) -> Fault {
    Fault::Store(StoreError::Corrupt(format!("bridge {uuid}: {what}")))
}
