//! Online master-key rotation, the operator's side (`brine admin rotate-master-key` and
//! `retire-master-key`): re-wrap every server slot, and re-seal every value sealed under a
//! subkey of the master key, under the keyring's current version; then retire an old version
//! once nothing needs it.
//!
//! Each value is replaced by one conditional UPDATE that applies only if the value is still the
//! one read, so the walk can be killed at any moment (every value is then under the old version
//! or the new one, and both read) and run again (it picks up what is not yet under the current
//! version). A data key is only re-wrapped: record payloads are never re-encrypted.

use brine_crypto::Keyring;
use brine_store::{SealedField, SealedValue, Store, StoreError, VersionCount};
use uuid::Uuid;

use crate::accounts::TotpKey;
use crate::fault::Fault;
use crate::master_key::{Registered, list, retired_key, versions_in_use};
use crate::vault::Vault;
use crate::webhooks::{SECRET_FIELD, URL_FIELD, WebhookKey};

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Crypto(#[from] brine_crypto::CryptoError),
    #[error("{0}")]
    Refused(String),
}

/// How far a rotation has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Values now under the current version.
    pub resealed: u64,
    /// Values that changed while being re-sealed (an owner's edit, another rotation): their
    /// new value was written by a node and is counted again by the next run if still old.
    pub raced: u64,
    /// Values that could not be opened (their version is missing, or the bytes are damaged).
    pub failed: u64,
}

/// What one run did, and whether it stopped at its limit before the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub progress: Progress,
    pub stopped_at_limit: bool,
}

/// The sealers of every field, under one keyring.
struct Sealers<'a> {
    ring: &'a Keyring,
    totp: TotpKey,
    webhooks: WebhookKey,
}

impl Sealers<'_> {
    /// `value` re-sealed under the current version: (version, bytes).
    fn reseal(&self, value: &SealedValue) -> Result<(i64, Vec<u8>), Fault> {
        let v = value.key_version;
        let id = value.id;
        match value.field {
            // An intake link's data key is wrapped exactly as its future record's server slot.
            SealedField::ServerSlot | SealedField::IntakeSlot => {
                Ok(Vault::rewrap_server_slot(self.ring, id, v, &value.bytes)?)
            }
            SealedField::TotpSecret | SealedField::TotpPending => {
                let plain = self.totp.open(id, v, &value.bytes)?;
                let (bytes, version) = self.totp.seal(id, &plain)?;
                Ok((version, bytes))
            }
            SealedField::WebhookUrl | SealedField::WebhookSecret => {
                let field = if value.field == SealedField::WebhookUrl {
                    URL_FIELD
                } else {
                    SECRET_FIELD
                };
                let plain = self.webhooks.open(id, field, v, &value.bytes)?;
                let (bytes, version) = self.webhooks.seal(id, field, &plain)?;
                Ok((version, bytes))
            }
        }
    }
}

/// Re-wraps and re-seals, in batches of `batch`, every value not under `ring`'s current
/// version; stops after `limit` values when given. `report` is called after each batch.
pub async fn rotate(
    store: &dyn Store,
    ring: &Keyring,
    batch: u32,
    limit: Option<u64>,
    mut report: impl FnMut(SealedField, &Progress),
) -> Result<Outcome, RotationError> {
    let sealers = Sealers {
        ring,
        totp: TotpKey::new(ring)?,
        webhooks: WebhookKey::new(ring)?,
    };
    let current = i64::from(ring.current().version());
    let mut progress = Progress::default();
    for field in SealedField::ALL {
        // Walking by id goes on past values that fail; each run starts from the beginning.
        let mut after = Uuid::nil();
        loop {
            let values = store
                .sealed_not_under(field, current, after, batch.max(1))
                .await?;
            let Some(last) = values.last() else { break };
            after = last.id;
            for value in &values {
                if limit.is_some_and(|l| progress.resealed + progress.raced >= l) {
                    report(field, &progress);
                    return Ok(Outcome {
                        progress,
                        stopped_at_limit: true,
                    });
                }
                match sealers.reseal(value) {
                    Ok((version, bytes)) => {
                        if store.reseal(value, version, &bytes).await? {
                            progress.resealed += 1;
                        } else {
                            progress.raced += 1;
                        }
                    }
                    Err(error) => {
                        // Ids only: never a value.
                        tracing::error!(field = field.label(), id = %value.id, version = value.key_version, %error, "cannot re-seal");
                        progress.failed += 1;
                    }
                }
            }
            report(field, &progress);
        }
    }
    Ok(Outcome {
        progress,
        stopped_at_limit: false,
    })
}

/// How many values each field holds under each version.
pub async fn usage(store: &dyn Store) -> Result<Vec<(SealedField, Vec<VersionCount>)>, StoreError> {
    let mut all = Vec::new();
    for field in SealedField::ALL {
        all.push((field, store.sealed_counts(field).await?));
    }
    Ok(all)
}

/// Values not under `version`, across every field.
pub fn left_over(usage: &[(SealedField, Vec<VersionCount>)], version: u32) -> i64 {
    usage
        .iter()
        .flat_map(|(_, counts)| counts)
        .filter(|c| c.key_version != i64::from(version))
        .map(|c| c.count)
        .sum()
}

/// Marks `version` retired: nothing may still be under it, and no node may make it current
/// again. Returns false when it was retired already.
pub async fn retire(store: &dyn Store, version: u32) -> Result<bool, RotationError> {
    let known = Registered::read(store).await?;
    if !known.checks.contains_key(&version) {
        let versions: Vec<u32> = known.checks.keys().copied().collect();
        return Err(RotationError::Refused(format!(
            "this database has no master key version {version} (it knows version{} {})",
            if versions.len() == 1 { "" } else { "s" },
            list(&versions)
        )));
    }
    if known.retired.contains(&version) {
        return Ok(false);
    }
    if !versions_in_use(store, [version]).await?.is_empty() {
        let used: i64 = usage(store)
            .await?
            .iter()
            .flat_map(|(_, counts)| counts)
            .filter(|c| c.key_version == i64::from(version))
            .map(|c| c.count)
            .sum();
        return Err(RotationError::Refused(format!(
            "{used} value{} still under master key version {version}: make a newer version \
             current on every node and run `brine admin rotate-master-key` first",
            if used == 1 { " is" } else { "s are" }
        )));
    }
    if known
        .checks
        .keys()
        .all(|v| *v == version || known.retired.contains(v))
    {
        return Err(RotationError::Refused(format!(
            "version {version} is the only version left in this database; add a new version and \
             rotate to it first"
        )));
    }
    let at = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    store
        .insert_meta_if_absent(&retired_key(version), at.as_bytes())
        .await?;
    Ok(true)
}
