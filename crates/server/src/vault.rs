//! Record operations that combine crypto and storage: creating a record, opening it through one
//! of its key slots, and changing it. Handlers call these; these never see HTTP.

use brine_core::{Access, RecordKind, RecordName, RecordPassword, SecretValue};
use brine_crypto::{ApiKey, Binding, DataKey, Kek, SlotKdf};
use brine_store::{KeySlot, PageLimits, Record, RecordChanges, SlotKind};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const DATA_FIELD: &str = "data";

fn slot_field(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Server => "slot:server",
        SlotKind::ApiKey => "slot:api_key",
        SlotKind::Password => "slot:password",
        SlotKind::SecurePage => "slot:secure_page",
    }
}

fn version_u32(v: i64) -> ApiResult<u32> {
    u32::try_from(v).map_err(|_| {
        tracing::error!(version = v, "stored key version out of range");
        ApiError::internal()
    })
}

fn payload_binding(record: Uuid, version: i64) -> ApiResult<Binding<'static>> {
    Ok(Binding::new(record, DATA_FIELD, version_u32(version)?))
}

fn wrap(
    kek: &Kek,
    record: Uuid,
    kind: SlotKind,
    version: i64,
    dek: &DataKey,
) -> ApiResult<Vec<u8>> {
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

fn next_version(record: &Record, kind: SlotKind) -> i64 {
    record.slot(kind).map_or(1, |s| s.version + 1)
}

fn server_slot(state: &AppState, record: Uuid, dek: &DataKey) -> ApiResult<KeySlot> {
    let version = i64::from(state.master.version());
    Ok(KeySlot {
        kind: SlotKind::Server,
        version,
        wrapped: wrap(&state.master.kek(), record, SlotKind::Server, version, dek)?,
        kdf: None,
        created_at: now_ms(),
    })
}

fn api_key_slot(record: Uuid, version: i64, dek: &DataKey) -> ApiResult<(KeySlot, ApiKey)> {
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

/// A slot whose KEK is Argon2id of a password: the record password or the secure page's.
async fn password_slot(
    state: &AppState,
    kind: SlotKind,
    record: Uuid,
    version: i64,
    password: RecordPassword,
    dek: &DataKey,
) -> ApiResult<KeySlot> {
    let kdf = SlotKdf::new(state.argon2)?;
    let params = kdf.clone();
    let kek = state
        .kdf
        .run(move || params.derive(password.as_bytes()))
        .await??;
    Ok(KeySlot {
        kind,
        version,
        wrapped: wrap(&kek, record, kind, version, dek)?,
        kdf: Some(kdf.encode()),
        created_at: now_ms(),
    })
}

/// What a new record is made of, already validated.
pub struct NewRecord {
    pub name: RecordName,
    pub kind: RecordKind,
    pub access: Access,
    pub sealed: bool,
    /// The secret: a credential's value, or a bridge's URL and headers (as JSON).
    pub data: SecretValue,
    /// Settings that are not secret (JSON): a bridge's policy, a credential's params.
    pub policy: Option<String>,
    /// The owner's rate limit and quota (JSON).
    pub limits: Option<String>,
    pub password: Option<RecordPassword>,
    pub expires_at: Option<OffsetDateTime>,
    pub max_reads: Option<i64>,
    /// Whether a private record gets an X-API-Key (a record only for a person needs none).
    pub api_key: bool,
    pub secure_page: Option<SecurePageSetup>,
}

/// A secure page to enable: its password and its own limits.
pub struct SecurePageSetup {
    pub password: RecordPassword,
    pub expires_at: Option<OffsetDateTime>,
    pub max_views: Option<i64>,
}

/// Encrypts and stores a new record. Returns it and, for a private record, its X-API-Key:
/// the only time that key exists outside the caller's hands.
pub async fn create(
    state: &AppState,
    owner: Uuid,
    input: NewRecord,
    now: OffsetDateTime,
) -> ApiResult<(Record, Option<ApiKey>)> {
    let uuid = Uuid::new_v4();
    let dek = DataKey::generate()?;
    let payload = dek.seal(payload_binding(uuid, 1)?, input.data.as_bytes())?;
    let mut slots = Vec::with_capacity(3);
    if !input.sealed {
        slots.push(server_slot(state, uuid, &dek)?);
    }
    let api_key = if input.access == Access::Private && input.api_key {
        let (slot, key) = api_key_slot(uuid, 1, &dek)?;
        slots.push(slot);
        Some(key)
    } else {
        None
    };
    if let Some(password) = input.password {
        slots.push(password_slot(state, SlotKind::Password, uuid, 1, password, &dek).await?);
    }
    let mut page = PageLimits::default();
    if let Some(setup) = input.secure_page {
        page = PageLimits {
            expires_at: setup.expires_at,
            max_views: setup.max_views,
            views: 0,
        };
        slots
            .push(password_slot(state, SlotKind::SecurePage, uuid, 1, setup.password, &dek).await?);
    }
    let record = Record {
        uuid,
        owner_id: owner,
        name: input.name.into_string(),
        kind: input.kind,
        access: input.access,
        sealed: input.sealed,
        payload,
        payload_version: 1,
        expires_at: input.expires_at,
        max_reads: input.max_reads,
        reads: 0,
        page,
        policy: input.policy,
        limits: input.limits,
        created_at: now,
        updated_at: now,
        slots,
    };
    state.store.insert_record(&record).await?;
    Ok((record, api_key))
}

/// The data key through the server slot (public records, owner reveal). Sealed records have none.
pub fn data_key_from_server(state: &AppState, record: &Record) -> ApiResult<DataKey> {
    let slot = record.slot(SlotKind::Server).ok_or_else(sealed_error)?;
    unwrap(&state.master.kek(), record.uuid, slot).ok_or_else(|| {
        tracing::error!(record = %record.uuid, "server slot does not open with the master key");
        ApiError::internal()
    })
}

/// The data key through the api-key slot, if `presented` is the record's X-API-Key.
pub fn data_key_from_api_key(record: &Record, presented: &str) -> Option<DataKey> {
    let slot = record.slot(SlotKind::ApiKey)?;
    let kek = Kek::from_api_key(presented.as_bytes(), record.uuid).ok()?;
    unwrap(&kek, record.uuid, slot)
}

/// The data key through a password slot (`Password` or `SecurePage`), if `password` opens it.
/// Runs Argon2id on the bounded blocking pool.
pub async fn data_key_from_password(
    state: &AppState,
    record: &Record,
    kind: SlotKind,
    password: Zeroizing<String>,
) -> ApiResult<Option<DataKey>> {
    let Some(slot) = record.slot(kind) else {
        decoy_password_check(state, password).await?;
        return Ok(None);
    };
    let kdf = SlotKdf::parse(slot.kdf.as_deref().unwrap_or_default())?;
    let kek = state
        .kdf
        .run(move || kdf.derive(password.as_bytes()))
        .await??;
    Ok(unwrap(&kek, record.uuid, slot))
}

/// Spends the time of one password check on nothing, so that "no such page" and "no password
/// set" answer as slowly as a wrong password.
pub async fn decoy_password_check(state: &AppState, password: Zeroizing<String>) -> ApiResult<()> {
    let kdf = SlotKdf::new(state.argon2)?;
    state
        .kdf
        .run(move || kdf.derive(password.as_bytes()))
        .await??;
    Ok(())
}

/// Decrypts a record's value.
pub fn decrypt(record: &Record, dek: &DataKey) -> ApiResult<String> {
    let plain = dek.open(
        payload_binding(record.uuid, record.payload_version)?,
        &record.payload,
    )?;
    String::from_utf8(plain.to_vec()).map_err(|_| ApiError::internal())
}

pub fn sealed_error() -> ApiError {
    ApiError::conflict(
        "Sealed record",
        "A sealed record opens only with its X-API-Key or password; its owner can replace the \
         value but not view it.",
    )
}

/// A change to a record, already validated field by field. `None` leaves a field as it is;
/// `Some(None)` clears an optional one.
#[derive(Default)]
pub struct RecordPatch {
    pub name: Option<RecordName>,
    pub access: Option<Access>,
    pub data: Option<SecretValue>,
    pub password: Option<Option<RecordPassword>>,
    pub expires_at: Option<Option<OffsetDateTime>>,
    pub max_reads: Option<Option<i64>>,
    /// A new policy (JSON): a bridge's, with its secrets in `data`.
    pub policy: Option<String>,
    /// New limits (JSON).
    pub limits: Option<String>,
}

/// Applies a patch. Returns a new X-API-Key when one had to be issued: the record became
/// private, or a sealed record's value was replaced (the server cannot wrap a new data key for
/// a key it never knew).
pub async fn update(
    state: &AppState,
    record: &Record,
    patch: RecordPatch,
    now: OffsetDateTime,
) -> ApiResult<Option<ApiKey>> {
    let access = patch.access.unwrap_or(record.access);
    if record.sealed && access != Access::Private {
        return Err(ApiError::bad_request(
            "A sealed record stays private: create a new record to share it another way.",
        ));
    }
    if matches!(patch.password, Some(Some(_))) && access != Access::Private {
        return Err(ApiError::bad_request(
            "Only private records can have a record password.",
        ));
    }
    if let Some(Some(at)) = patch.expires_at
        && at <= now
    {
        return Err(ApiError::bad_request("The expiry must be in the future."));
    }
    if let Some(Some(n)) = patch.max_reads
        && n < 1
    {
        return Err(ApiError::bad_request("max_reads must be at least 1."));
    }

    let mut changes = RecordChanges {
        name: patch.name.map(RecordName::into_string),
        access: patch.access,
        expires_at: patch.expires_at,
        max_reads: patch.max_reads,
        policy: patch.policy,
        limits: patch.limits,
        updated_at: Some(now),
        ..RecordChanges::default()
    };

    let new_key = if record.sealed {
        match (patch.data, patch.password) {
            (Some(data), password) => {
                Some(reseal(state, record, data, password, &mut changes).await?)
            }
            (None, Some(Some(_))) => {
                return Err(ApiError::conflict(
                    "Sealed record",
                    "The server cannot wrap a sealed record's key under a new password: send the \
                     value again as data together with the password.",
                ));
            }
            (None, Some(None)) => {
                changes.remove_slots.push(SlotKind::Password);
                None
            }
            (None, None) => None,
        }
    } else {
        let clears_password = matches!(patch.password, Some(None));
        // Becoming private issues a key; a private record whose key was turned off keeps it off.
        let becomes_private = access == Access::Private && record.access != Access::Private;
        let needs_key =
            patch.data.is_some() || matches!(patch.password, Some(Some(_))) || becomes_private;
        let dek = if needs_key {
            Some(data_key_from_server(state, record)?)
        } else {
            None
        };
        let mut new_key = None;
        if let Some(dek) = &dek {
            if let Some(data) = &patch.data {
                seal_next_payload(record, dek, data, &mut changes)?;
            }
            if let Some(Some(password)) = patch.password {
                replace_password_slot(state, record, password, dek, &mut changes).await?;
            }
            if becomes_private {
                let (slot, key) = api_key_slot(record.uuid, 1, dek)?;
                changes.put_slots.push(slot);
                new_key = Some(key);
            }
        }
        if clears_password {
            changes.remove_slots.push(SlotKind::Password);
        }
        new_key
    };

    // Leaving private access retires the key, the password and the secure page for good, so
    // that returning to private later cannot revive them.
    if access != Access::Private {
        changes
            .remove_slots
            .extend([SlotKind::ApiKey, SlotKind::Password, SlotKind::SecurePage]);
        changes.page = Some(PageLimits::default());
    }
    commit(state, record, &changes).await?;
    Ok(new_key)
}

/// Replaces a sealed record's value under a fresh data key, with a fresh X-API-Key. The password
/// slot is rebuilt when a password is given and dropped when it is explicitly cleared; leaving
/// it unspecified is refused, so a password never disappears silently.
async fn reseal(
    state: &AppState,
    record: &Record,
    data: SecretValue,
    password: Option<Option<RecordPassword>>,
    changes: &mut RecordChanges,
) -> ApiResult<ApiKey> {
    if record.slot(SlotKind::SecurePage).is_some() {
        return Err(ApiError::conflict(
            "Sealed record",
            "The secure page's password wraps this sealed record's current data key: disable the \
             secure page, replace the value (which issues a new X-API-Key), then enable the page \
             again, sending that key in the X-API-Key header.",
        ));
    }
    if record.slot(SlotKind::Password).is_some() && password.is_none() {
        return Err(ApiError::bad_request(
            "Replacing a sealed record's value needs its password again (or \"password\": null \
             to remove it).",
        ));
    }
    let dek = DataKey::generate()?;
    seal_next_payload(record, &dek, &data, changes)?;
    let (slot, key) = api_key_slot(record.uuid, next_version(record, SlotKind::ApiKey), &dek)?;
    changes.put_slots.push(slot);
    match password {
        Some(Some(password)) => {
            replace_password_slot(state, record, password, &dek, changes).await?;
        }
        _ => changes.remove_slots.push(SlotKind::Password),
    }
    Ok(key)
}

/// Seals `data` under `dek` as the record's next payload version.
fn seal_next_payload(
    record: &Record,
    dek: &DataKey,
    data: &SecretValue,
    changes: &mut RecordChanges,
) -> ApiResult<()> {
    let version = record.payload_version + 1;
    let payload = dek.seal(payload_binding(record.uuid, version)?, data.as_bytes())?;
    changes.payload = Some((payload, version));
    Ok(())
}

/// Wraps `dek` under a new record password, replacing the password slot.
async fn replace_password_slot(
    state: &AppState,
    record: &Record,
    password: RecordPassword,
    dek: &DataKey,
    changes: &mut RecordChanges,
) -> ApiResult<()> {
    let version = next_version(record, SlotKind::Password);
    let slot = password_slot(
        state,
        SlotKind::Password,
        record.uuid,
        version,
        password,
        dek,
    )
    .await?;
    changes.put_slots.push(slot);
    Ok(())
}

/// How a rotation recovers the data key it re-wraps under the new X-API-Key.
pub enum RotationSource {
    /// Through the server slot (records that are not sealed).
    Server,
    /// A sealed record, opened with its current key.
    CurrentKey(String),
    /// A sealed record whose value is replaced at the same time.
    NewValue {
        data: SecretValue,
        password: Option<Option<RecordPassword>>,
    },
}

/// Issues a new X-API-Key. The old key stops working when this returns: its slot is replaced.
pub async fn rotate_api_key(
    state: &AppState,
    record: &Record,
    source: RotationSource,
    now: OffsetDateTime,
) -> ApiResult<ApiKey> {
    if record.access != Access::Private {
        return Err(ApiError::conflict(
            "Not a private record",
            "Only private records have an X-API-Key to rotate.",
        ));
    }
    let mut changes = RecordChanges {
        updated_at: Some(now),
        ..RecordChanges::default()
    };
    let dek = match (record.sealed, source) {
        (true, RotationSource::NewValue { data, password }) => {
            let key = reseal(state, record, data, password, &mut changes).await?;
            return commit(state, record, &changes).await.map(|()| key);
        }
        (true, RotationSource::CurrentKey(current)) => {
            data_key_from_api_key(record, &current).ok_or_else(ApiError::api_key_required)?
        }
        (true, RotationSource::Server) => {
            return Err(ApiError::conflict(
                "Sealed record",
                "To rotate a sealed record's key, send its current key in the X-API-Key header, \
                 or a new value as data.",
            ));
        }
        (false, RotationSource::Server) => data_key_from_server(state, record)?,
        (false, _) => {
            return Err(ApiError::bad_request(
                "Rotating the key of a record that is not sealed takes no body.",
            ));
        }
    };
    let (slot, key) = api_key_slot(record.uuid, next_version(record, SlotKind::ApiKey), &dek)?;
    changes.put_slots.push(slot);
    commit(state, record, &changes).await?;
    Ok(key)
}

async fn commit(state: &AppState, record: &Record, changes: &RecordChanges) -> ApiResult<()> {
    if state
        .store
        .update_record(record.uuid, record.owner_id, changes)
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

/// Enables (or re-keys) the secure page with a new password and limits, or disables it. A new
/// password replaces the slot, so the old password stops working when this returns.
pub async fn set_secure_page(
    state: &AppState,
    record: &Record,
    setup: Option<SecurePageSetup>,
    current_key: Option<&str>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let mut changes = RecordChanges {
        updated_at: Some(now),
        ..RecordChanges::default()
    };
    match setup {
        None => {
            changes.remove_slots.push(SlotKind::SecurePage);
            changes.page = Some(PageLimits::default());
        }
        Some(setup) => {
            if record.kind != RecordKind::Credential {
                return Err(ApiError::bad_request(
                    "Only credentials can have a secure page (a bridge's secrets are its URL and \
                     headers, never shown to a person).",
                ));
            }
            if record.access != Access::Private {
                return Err(ApiError::bad_request(
                    "Only private records can have a secure page.",
                ));
            }
            let dek = match (record.sealed, current_key) {
                (false, _) => data_key_from_server(state, record)?,
                (true, Some(key)) => {
                    data_key_from_api_key(record, key).ok_or_else(ApiError::api_key_required)?
                }
                (true, None) => {
                    return Err(ApiError::conflict(
                        "Sealed record",
                        "The server cannot open a sealed record on its own: send the record's \
                         X-API-Key header to set its secure page.",
                    ));
                }
            };
            let version = next_version(record, SlotKind::SecurePage);
            changes.put_slots.push(
                password_slot(
                    state,
                    SlotKind::SecurePage,
                    record.uuid,
                    version,
                    setup.password,
                    &dek,
                )
                .await?,
            );
            changes.page = Some(PageLimits {
                expires_at: setup.expires_at,
                max_views: setup.max_views,
                views: 0,
            });
        }
    }
    commit(state, record, &changes).await
}

/// Turns off code access: the X-API-Key stops working, the secure page (if any) goes on.
/// Rotating issues a new key again.
pub async fn remove_api_key(
    state: &AppState,
    record: &Record,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let changes = RecordChanges {
        updated_at: Some(now),
        remove_slots: vec![SlotKind::ApiKey],
        ..RecordChanges::default()
    };
    commit(state, record, &changes).await
}
