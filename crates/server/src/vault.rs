//! The cryptography of records: sealing a value under a record's data key, wrapping that key
//! into slots (server, X-API-Key, passwords) and opening it again through one of them. No
//! storage and no HTTP here: the gate and the owner's operations store what this builds.

use std::sync::Arc;

use brine_core::RecordPassword;
use brine_crypto::{ApiKey, Argon2Settings, Binding, CryptoError, DataKey, Kek, Keyring, SlotKdf};
use brine_store::{KeySlot, Record, SlotKind};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::clock::now_ms;
use crate::kdf::KdfPool;

const DATA_FIELD: &str = "data";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("cryptography: {0}")]
    Crypto(#[from] CryptoError),
    #[error("the server slot of record {0} does not open with the master key")]
    ServerSlot(Uuid),
    #[error("the key-derivation threads are gone")]
    Kdf,
    #[error("a stored key version is out of range")]
    Version,
    /// Something was wrapped under a master-key version this node does not hold (start-up
    /// refuses that; a keyring changed under a running node could still meet it).
    #[error("master key version {0} is not in this node's keyring")]
    MissingVersion(u32),
    #[error("a record's value is not text")]
    NotText,
    /// A sealed record has no server slot: only its key or password opens it.
    #[error("the record is sealed")]
    Sealed,
}

/// The master keyring and the key-derivation threads: everything that opens or closes a record.
#[derive(Clone)]
pub struct Vault {
    /// Every master-key version this node holds; the current one wraps new server slots.
    master: Arc<Keyring>,
    kdf: KdfPool,
    argon2: Argon2Settings,
}

fn slot_field(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Server => "slot:server",
        SlotKind::ApiKey => "slot:api_key",
        SlotKind::Password => "slot:password",
        SlotKind::SecurePage => "slot:secure_page",
    }
}

fn version_u32(v: i64) -> Result<u32, VaultError> {
    u32::try_from(v).map_err(|_| VaultError::Version)
}

fn payload_binding(record: Uuid, version: i64) -> Result<Binding<'static>, VaultError> {
    Ok(Binding::new(record, DATA_FIELD, version_u32(version)?))
}

fn wrap(
    kek: &Kek,
    record: Uuid,
    kind: SlotKind,
    version: i64,
    dek: &DataKey,
) -> Result<Vec<u8>, VaultError> {
    let binding = Binding::new(record, slot_field(kind), version_u32(version)?);
    Ok(kek.wrap(binding, dek)?)
}

fn unwrap(kek: &Kek, record: Uuid, slot: &KeySlot) -> Option<DataKey> {
    let binding = Binding::new(
        record,
        slot_field(slot.kind),
        u32::try_from(slot.version).ok()?,
    );
    kek.unwrap(binding, &slot.wrapped).ok()
}

/// The version a replacement for `kind`'s slot gets.
pub fn next_version(record: &Record, kind: SlotKind) -> i64 {
    record.slot(kind).map_or(1, |s| s.version + 1)
}

impl Vault {
    pub fn new(master: Arc<Keyring>, kdf: KdfPool, argon2: Argon2Settings) -> Self {
        Self {
            master,
            kdf,
            argon2,
        }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.master
    }

    /// Argon2id runs so far, and calls waiting for and running on the key-derivation threads.
    pub fn kdf_load(&self) -> crate::metrics::KdfLoad {
        self.kdf.load()
    }

    /// Seals `value` as version `version` of `record`'s payload.
    pub fn seal(
        &self,
        record: Uuid,
        version: i64,
        dek: &DataKey,
        value: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        Ok(dek.seal(payload_binding(record, version)?, value)?)
    }

    /// A record's value.
    pub fn decrypt(&self, record: &Record, dek: &DataKey) -> Result<Zeroizing<String>, VaultError> {
        let mut plain = dek.open(
            payload_binding(record.uuid, record.payload_version)?,
            &record.payload,
        )?;
        // Moved, not copied: the only copy of the value stays in zeroized memory.
        String::from_utf8(std::mem::take(&mut *plain))
            .map(Zeroizing::new)
            .map_err(|_| VaultError::NotText)
    }

    /// The slot that lets the server open the record (absent on sealed records).
    pub fn server_slot(&self, record: Uuid, dek: &DataKey) -> Result<KeySlot, VaultError> {
        let current = self.master.current();
        // A server slot's version is the master-key version that wrapped it.
        let version = i64::from(current.version());
        Ok(KeySlot {
            kind: SlotKind::Server,
            version,
            wrapped: wrap(&current.kek(), record, SlotKind::Server, version, dek)?,
            kdf: None,
            created_at: now_ms(),
        })
    }

    /// A new X-API-Key and the slot it opens.
    pub fn api_key_slot(
        &self,
        record: Uuid,
        version: i64,
        dek: &DataKey,
    ) -> Result<(KeySlot, ApiKey), VaultError> {
        let key = ApiKey::generate()?;
        let slot = KeySlot {
            kind: SlotKind::ApiKey,
            version,
            wrapped: wrap(&key.kek(record)?, record, SlotKind::ApiKey, version, dek)?,
            kdf: None,
            created_at: now_ms(),
        };
        Ok((slot, key))
    }

    /// A slot whose key is Argon2id of a password: the record password or the secure page's.
    pub async fn password_slot(
        &self,
        kind: SlotKind,
        record: Uuid,
        version: i64,
        password: RecordPassword,
        dek: &DataKey,
    ) -> Result<KeySlot, VaultError> {
        let kdf = SlotKdf::new(self.argon2)?;
        let params = kdf.clone();
        let kek = self
            .kdf
            .run(move || params.derive(password.as_bytes()))
            .await
            .map_err(|_| VaultError::Kdf)??;
        Ok(KeySlot {
            kind,
            version,
            wrapped: wrap(&kek, record, kind, version, dek)?,
            kdf: Some(kdf.encode()),
            created_at: now_ms(),
        })
    }

    /// The data key through the server slot (public records, the owner's own operations).
    pub fn open_with_server(&self, record: &Record) -> Result<DataKey, VaultError> {
        let slot = record.slot(SlotKind::Server).ok_or(VaultError::Sealed)?;
        let version = version_u32(slot.version)?;
        // A scan of the few versions held: no allocation, no database round trip.
        let master = self
            .master
            .get(version)
            .ok_or(VaultError::MissingVersion(version))?;
        unwrap(&master.kek(), record.uuid, slot).ok_or(VaultError::ServerSlot(record.uuid))
    }

    /// A server slot's wrap, `wrapped` under master-key version `version`, re-wrapped under the
    /// current version (the same data key; the payload is untouched). Returns the new version
    /// and bytes.
    pub fn rewrap_server_slot(
        ring: &Keyring,
        record: Uuid,
        version: i64,
        wrapped: &[u8],
    ) -> Result<(i64, Vec<u8>), VaultError> {
        let old = version_u32(version)?;
        let master = ring.get(old).ok_or(VaultError::MissingVersion(old))?;
        let slot = KeySlot {
            kind: SlotKind::Server,
            version,
            wrapped: wrapped.to_vec(),
            kdf: None,
            created_at: now_ms(),
        };
        let dek = unwrap(&master.kek(), record, &slot).ok_or(VaultError::ServerSlot(record))?;
        let current = ring.current();
        let new = i64::from(current.version());
        Ok((
            new,
            wrap(&current.kek(), record, SlotKind::Server, new, &dek)?,
        ))
    }

    /// The data key through the X-API-Key slot, if `presented` is the record's key. The unwrap
    /// is the check: the AEAD tag verifies in constant time.
    pub fn open_with_key(&self, record: &Record, presented: &str) -> Option<DataKey> {
        let slot = record.slot(SlotKind::ApiKey)?;
        let kek = Kek::from_api_key(presented.as_bytes(), record.uuid).ok()?;
        unwrap(&kek, record.uuid, slot)
    }

    /// The data key through a password slot (`Password` or `SecurePage`), if `password` opens
    /// it. Without such a slot, as slow as a real check.
    pub async fn open_with_password(
        &self,
        record: &Record,
        kind: SlotKind,
        password: Zeroizing<String>,
    ) -> Result<Option<DataKey>, VaultError> {
        let Some(slot) = record.slot(kind) else {
            self.decoy(password).await?;
            return Ok(None);
        };
        let kdf = SlotKdf::parse(slot.kdf.as_deref().unwrap_or_default())?;
        let kek = self
            .kdf
            .run(move || kdf.derive(password.as_bytes()))
            .await
            .map_err(|_| VaultError::Kdf)??;
        Ok(unwrap(&kek, record.uuid, slot))
    }

    /// Spends the time of one password check on nothing, so that "no such page" and "no
    /// password set" answer as slowly as a wrong password.
    pub async fn decoy(&self, password: Zeroizing<String>) -> Result<(), VaultError> {
        let kdf = SlotKdf::new(self.argon2)?;
        self.kdf
            .run(move || kdf.derive(password.as_bytes()))
            .await
            .map_err(|_| VaultError::Kdf)??;
        Ok(())
    }

    /// Runs account-password work (hashing, verifying) on the key-derivation threads.
    pub async fn run_kdf<T: Send + 'static>(
        &self,
        work: impl FnOnce(Argon2Settings) -> T + Send + 'static,
    ) -> Result<T, VaultError> {
        let settings = self.argon2;
        self.kdf
            .run(move || work(settings))
            .await
            .map_err(|_| VaultError::Kdf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brine_core::{Access, Policy, RecordKind, RecordLimits};
    use brine_store::PageLimits;

    fn vault() -> Vault {
        vault_with(Keyring::single(
            brine_crypto::MasterKey::generate().unwrap(),
        ))
    }

    fn vault_with(ring: Keyring) -> Vault {
        let fast = Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        Vault::new(Arc::new(ring), KdfPool::new(1).unwrap(), fast)
    }

    fn record(vault: &Vault, value: &str) -> (Record, DataKey) {
        let uuid = Uuid::new_v4();
        let dek = DataKey::generate().unwrap();
        let now = now_ms();
        let record = Record {
            uuid,
            owner_id: Uuid::new_v4(),
            name: "r".into(),
            kind: RecordKind::Credential,
            access: Access::Private,
            sealed: false,
            payload: vault.seal(uuid, 1, &dek, value.as_bytes()).unwrap(),
            payload_version: 1,
            expires_at: None,
            max_reads: None,
            reads: 0,
            page: PageLimits::default(),
            policy: Policy::Credential(Default::default()),
            limits: RecordLimits::default(),
            disabled_at: None,
            page_label: None,
            version: 1,
            created_at: now,
            updated_at: now,
            slots: vec![vault.server_slot(uuid, &dek).unwrap()],
        };
        (record, dek)
    }

    #[tokio::test]
    async fn every_slot_opens_the_same_value_and_nothing_else_does() {
        let vault = vault();
        let (mut record, dek) = record(&vault, "sk_live_vault");
        let (slot, key) = vault.api_key_slot(record.uuid, 1, &dek).unwrap();
        record.slots.push(slot);
        let password = RecordPassword::parse("open sesame 1".into()).unwrap();
        let slot = vault
            .password_slot(SlotKind::Password, record.uuid, 1, password, &dek)
            .await
            .unwrap();
        record.slots.push(slot);

        let by_server = vault.open_with_server(&record).unwrap();
        assert_eq!(
            *vault.decrypt(&record, &by_server).unwrap(),
            "sk_live_vault"
        );
        let by_key = vault.open_with_key(&record, key.expose()).unwrap();
        assert_eq!(*vault.decrypt(&record, &by_key).unwrap(), "sk_live_vault");
        let by_password = vault
            .open_with_password(
                &record,
                SlotKind::Password,
                Zeroizing::new("open sesame 1".into()),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            *vault.decrypt(&record, &by_password).unwrap(),
            "sk_live_vault"
        );

        assert!(vault.open_with_key(&record, "brk_wrong").is_none());
        let wrong = Zeroizing::new("open sesame 2".to_owned());
        assert!(
            vault
                .open_with_password(&record, SlotKind::Password, wrong)
                .await
                .unwrap()
                .is_none()
        );
        let page = Zeroizing::new("open sesame 1".to_owned());
        assert!(
            vault
                .open_with_password(&record, SlotKind::SecurePage, page)
                .await
                .unwrap()
                .is_none(),
            "a slot that does not exist opens nothing"
        );
        // A slot moved to another record does not open it.
        let (mut other, _) = self::record(&vault, "other");
        other.slots = record.slots.clone();
        assert!(vault.open_with_key(&other, key.expose()).is_none());
        assert!(matches!(
            vault.open_with_server(&other),
            Err(VaultError::ServerSlot(_))
        ));
        record.slots.retain(|s| s.kind != SlotKind::Server);
        assert!(matches!(
            vault.open_with_server(&record),
            Err(VaultError::Sealed)
        ));
    }

    #[test]
    fn server_slots_open_under_any_held_version_and_rewrap_to_the_current_one() {
        use brine_crypto::MasterKey;
        let one = MasterKey::generate().unwrap();
        let two = MasterKey::generate().unwrap().with_version(2);
        let copy = |k: &MasterKey| {
            MasterKey::from_base64(&k.to_base64())
                .unwrap()
                .with_version(k.version())
        };
        let old = vault_with(Keyring::single(copy(&one)));
        let both = vault_with(Keyring::new(vec![copy(&one), copy(&two)], 2).unwrap());
        let new_only = vault_with(Keyring::single(copy(&two)));

        let (mut record, dek) = record(&old, "sk_live_rotate");
        assert_eq!(record.slot(SlotKind::Server).unwrap().version, 1);
        // A node holding both versions opens the old slot and writes new ones under version 2.
        let opened = both.open_with_server(&record).unwrap();
        assert_eq!(*both.decrypt(&record, &opened).unwrap(), "sk_live_rotate");
        assert_eq!(both.server_slot(record.uuid, &dek).unwrap().version, 2);
        assert!(matches!(
            new_only.open_with_server(&record),
            Err(VaultError::MissingVersion(1))
        ));

        let slot = record.slot(SlotKind::Server).unwrap().clone();
        let (version, wrapped) =
            Vault::rewrap_server_slot(both.keyring(), record.uuid, slot.version, &slot.wrapped)
                .unwrap();
        assert_eq!(version, 2);
        record.slots.retain(|s| s.kind != SlotKind::Server);
        record.slots.push(KeySlot {
            version,
            wrapped: wrapped.clone(),
            ..slot
        });
        let opened = new_only.open_with_server(&record).unwrap();
        assert_eq!(
            *new_only.decrypt(&record, &opened).unwrap(),
            "sk_live_rotate"
        );
        assert!(matches!(
            old.open_with_server(&record),
            Err(VaultError::MissingVersion(2))
        ));
        // The version is bound in: the new wrap claimed as version 1 opens nothing.
        record.slots.last_mut().unwrap().version = 1;
        assert!(matches!(
            both.open_with_server(&record),
            Err(VaultError::ServerSlot(_))
        ));
    }
}
