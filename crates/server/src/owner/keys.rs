//! A record's X-API-Key: rotating it (the old key stops working when the rotation returns) and
//! turning code access off.

use brine_core::{Access, RecordPassword, SecretValue};
use brine_crypto::ApiKey;
use brine_proto::RotateRecord;
use brine_store::{RecordChanges, SlotKind};
use uuid::Uuid;

use super::{OwnerError, OwnerResult, Owners};
use crate::audit::Outcome;
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::vault::next_version;

impl Owners {
    /// Issues a new X-API-Key. A sealed record needs either its current key or a new value (which
    /// replaces the old one under a fresh data key); other records take neither.
    pub async fn rotate_key(
        &self,
        owner: Uuid,
        uuid: Uuid,
        body: &[u8],
        current_key: Option<&str>,
        client: &ClientInfo,
    ) -> OwnerResult<ApiKey> {
        let record = self.owned(owner, uuid).await?;
        if !record.sealed && !body.is_empty() {
            return Err(OwnerError::invalid(
                "Rotating the key of a record that is not sealed takes no body; to change the \
                 value or password, use PATCH.",
            ));
        }
        let body: RotateRecord = if body.is_empty() {
            RotateRecord::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|_| OwnerError::invalid("The body must be JSON: {\"data\": \"...\"}."))?
        };
        if record.access != Access::Private {
            return Err(OwnerError::Conflict {
                error: "Not a private record",
                message: "Only private records have an X-API-Key to rotate.",
            });
        }
        let mut changes = RecordChanges {
            updated_at: Some(now_ms()),
            ..RecordChanges::default()
        };
        let key = match (record.sealed, body.data, current_key) {
            (true, Some(data), _) => {
                let data = SecretValue::parse(data)?;
                let password = body
                    .password
                    .map(|p| p.map(RecordPassword::parse).transpose())
                    .transpose()?;
                self.reseal(&record, data, password, &mut changes).await?
            }
            (true, None, Some(current)) => {
                let Some(dek) = self.vault.open_with_key(&record, current) else {
                    self.audit(uuid, Outcome::Denied, client).await?;
                    return Err(OwnerError::KeyRequired);
                };
                self.new_key_slot(&record, &dek, &mut changes)?
            }
            (true, None, None) => {
                return Err(OwnerError::Conflict {
                    error: "Sealed record",
                    message: "To rotate a sealed record's key, send its current key in the \
                              X-API-Key header, or a new value as data.",
                });
            }
            (false, _, _) => {
                let dek = self
                    .vault
                    .open_with_server(&record)
                    .map_err(OwnerError::from_vault)?;
                self.new_key_slot(&record, &dek, &mut changes)?
            }
        };
        self.commit(&record, &changes).await?;
        self.audit(uuid, Outcome::Rotated, client).await?;
        tracing::info!(record = %uuid, "api key rotated");
        Ok(key)
    }

    fn new_key_slot(
        &self,
        record: &brine_store::Record,
        dek: &brine_crypto::DataKey,
        changes: &mut RecordChanges,
    ) -> OwnerResult<ApiKey> {
        let version = next_version(record, SlotKind::ApiKey);
        let (slot, key) = self
            .vault
            .api_key_slot(record.uuid, version, dek)
            .map_err(OwnerError::from_vault)?;
        changes.put_slots.push(slot);
        Ok(key)
    }

    /// Turns off code access: the X-API-Key stops working, a secure page goes on. Rotating
    /// issues a new key again.
    pub async fn remove_key(
        &self,
        owner: Uuid,
        uuid: Uuid,
        client: &ClientInfo,
    ) -> OwnerResult<()> {
        let record = self.owned(owner, uuid).await?;
        if record.slot(SlotKind::ApiKey).is_none() {
            return Err(OwnerError::Conflict {
                error: "No X-API-Key",
                message: "This record has no X-API-Key to turn off.",
            });
        }
        let changes = RecordChanges {
            updated_at: Some(now_ms()),
            remove_slots: vec![SlotKind::ApiKey],
            ..RecordChanges::default()
        };
        self.commit(&record, &changes).await?;
        self.audit(uuid, Outcome::KeyRemoved, client).await?;
        tracing::info!(record = %uuid, "api key removed");
        Ok(())
    }
}
