//! Changing a record: its name, access, value, password, expiry, read limit, params, bridge and
//! limits. A sealed record's value can be replaced (never read); doing so issues a new key.

use brine_core::{
    Access, Policy, RecordKind, RecordLimits, RecordName, RecordPassword, SecretValue,
};
use brine_crypto::{ApiKey, DataKey};
use brine_proto::UpdateRecord;
use brine_store::{PageLimits, Record, RecordChanges, SlotKind};
use uuid::Uuid;

use super::create::content;
use super::{OwnerError, OwnerResult, Owners};
use crate::audit::Outcome;
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::vault::next_version;

impl Owners {
    /// Applies a change. Returns the record as it is now and, when one had to be issued, a new
    /// X-API-Key: the record became private, or a sealed record's value was replaced (the server
    /// cannot wrap a new data key for a key it never knew).
    pub async fn change(
        &self,
        owner: Uuid,
        uuid: Uuid,
        body: UpdateRecord,
        client: &ClientInfo,
    ) -> OwnerResult<(Record, Option<ApiKey>)> {
        let record = self.owned(owner, uuid).await?;
        let now = now_ms();
        let params_sent = body.params.is_some();
        let verify = body.verify.unwrap_or(true);
        let (bridge, secrets_changed) = match body.bridge {
            Some(patch) => {
                let (bridge, changed) = self.patched_bridge(&record, patch)?;
                (Some(bridge), changed)
            }
            None => (None, false),
        };
        let (data, policy) = match (body.data, bridge) {
            (None, None) => match (record.kind, body.params) {
                (_, None) => (None, None),
                (RecordKind::Credential, Some(params)) => (
                    None,
                    Some(Policy::Credential(brine_core::CredentialPolicy::new(
                        params,
                    )?)),
                ),
                (RecordKind::Bridge, Some(_)) => {
                    return Err(OwnerError::invalid(
                        "A bridge declares its params inside 'bridge'.",
                    ));
                }
            },
            (data, bridge) => {
                let (data, policy) = content(record.kind, data, bridge, body.params)?;
                // A credential's new value keeps its params unless new ones were sent.
                let keep = record.kind == RecordKind::Credential && !params_sent;
                (Some(data), (!keep).then_some(policy))
            }
        };
        if record.kind == RecordKind::Bridge && matches!(body.password, Some(Some(_))) {
            return Err(OwnerError::invalid("Bridges take no password."));
        }
        let password = body
            .password
            .map(|p| p.map(RecordPassword::parse).transpose())
            .transpose()?;
        let access = body.access.unwrap_or(record.access);
        if record.sealed && access != Access::Private {
            return Err(OwnerError::invalid(
                "A sealed record stays private: create a new record to share it another way.",
            ));
        }
        if matches!(password, Some(Some(_))) {
            brine_core::private_only(
                access,
                "password",
                "Only private records can have a record password.",
            )?;
        }
        let expires_at = body.expires_at.map(|t| t.map(|t| t.0));
        brine_core::future("expires_at", "The expiry", expires_at.flatten(), now)?;
        brine_core::at_least_one("max_reads", body.max_reads.flatten())?;
        let limits = match (body.rate_limit, body.quota) {
            (None, None) => None,
            (rate_limit, quota) => {
                // Only what was sent changes; `null` removes it.
                let mut limits = record.limits.clone();
                let (rate_limit_sent, quota_sent) = (rate_limit.is_some(), quota.is_some());
                let sent = RecordLimits::from_fields(rate_limit.flatten(), quota.flatten())?;
                if rate_limit_sent {
                    limits.rate_limit = sent.rate_limit;
                }
                if quota_sent {
                    limits.quota = sent.quota;
                }
                Some(limits)
            }
        };
        let mut changes = RecordChanges {
            name: body
                .name
                .as_deref()
                .map(RecordName::parse)
                .transpose()?
                .map(RecordName::into_string),
            access: body.access,
            expires_at,
            max_reads: body.max_reads,
            policy,
            limits,
            updated_at: Some(now),
            ..RecordChanges::default()
        };
        // Once the input has been checked: a new key is tried upstream before it replaces the one
        // that works.
        let key_check = match (&data, &changes.policy) {
            (Some(plain), Some(Policy::Bridge(policy))) if secrets_changed => {
                match (&policy.probe, verify) {
                    (Some(probe), true) => Some(
                        self.check_new_key(&record, plain, policy, probe, client)
                            .await?,
                    ),
                    (Some(_), false) => Some(serde_json::json!({"key_check": "skipped"})),
                    (None, _) => None,
                }
            }
            _ => None,
        };
        let new_key = if record.sealed {
            match (data, password) {
                (Some(data), password) => {
                    Some(self.reseal(&record, data, password, &mut changes).await?)
                }
                (None, Some(Some(_))) => {
                    return Err(OwnerError::Conflict {
                        error: "Sealed record",
                        message: "The server cannot wrap a sealed record's key under a new \
                                  password: send the value again as data together with the \
                                  password.",
                    });
                }
                (None, Some(None)) => {
                    changes.remove_slots.push(SlotKind::Password);
                    None
                }
                (None, None) => None,
            }
        } else {
            let clears_password = matches!(password, Some(None));
            // Becoming private issues a key; a private record whose key was turned off keeps it
            // off.
            let becomes_private = access == Access::Private && record.access != Access::Private;
            let needs_key = data.is_some() || matches!(password, Some(Some(_))) || becomes_private;
            let mut new_key = None;
            if needs_key {
                let dek = self
                    .vault
                    .open_with_server(&record)
                    .map_err(OwnerError::from_vault)?;
                if let Some(data) = &data {
                    self.seal_next_payload(&record, &dek, data, &mut changes)?;
                }
                if let Some(Some(password)) = password {
                    self.replace_password(&record, password, &dek, &mut changes)
                        .await?;
                }
                if becomes_private {
                    let (slot, key) = self
                        .vault
                        .api_key_slot(record.uuid, 1, &dek)
                        .map_err(OwnerError::from_vault)?;
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
            changes.remove_slots.extend([
                SlotKind::ApiKey,
                SlotKind::Password,
                SlotKind::SecurePage,
            ]);
            changes.page = Some(PageLimits::default());
            changes.page_label = Some(None);
        }
        self.commit(&record, &changes).await?;
        match key_check {
            Some(detail) => {
                self.audit_detail(uuid, Outcome::Updated, detail, client)
                    .await?
            }
            None => self.audit(uuid, Outcome::Updated, client).await?,
        }
        tracing::info!(record = %uuid, "record updated");
        Ok((self.reload(uuid).await?, new_key))
    }

    /// Replaces a sealed record's value under a fresh data key, with a fresh X-API-Key. The
    /// password slot is rebuilt when a password is given and dropped when it is explicitly
    /// cleared; leaving it unspecified is refused, so a password never disappears silently.
    pub(super) async fn reseal(
        &self,
        record: &Record,
        data: SecretValue,
        password: Option<Option<RecordPassword>>,
        changes: &mut RecordChanges,
    ) -> OwnerResult<ApiKey> {
        if record.slot(SlotKind::SecurePage).is_some() {
            return Err(OwnerError::Conflict {
                error: "Sealed record",
                message: "The secure page's password wraps this sealed record's current data \
                          key: disable the secure page, replace the value (which issues a new \
                          X-API-Key), then enable the page again, sending that key in the \
                          X-API-Key header.",
            });
        }
        if record.slot(SlotKind::Password).is_some() && password.is_none() {
            return Err(OwnerError::invalid(
                "Replacing a sealed record's value needs its password again (or \"password\": \
                 null to remove it).",
            ));
        }
        let dek = DataKey::generate()?;
        self.seal_next_payload(record, &dek, &data, changes)?;
        let (slot, key) = self
            .vault
            .api_key_slot(record.uuid, next_version(record, SlotKind::ApiKey), &dek)
            .map_err(OwnerError::from_vault)?;
        changes.put_slots.push(slot);
        match password {
            Some(Some(password)) => {
                self.replace_password(record, password, &dek, changes)
                    .await?
            }
            _ => changes.remove_slots.push(SlotKind::Password),
        }
        Ok(key)
    }

    /// Seals `data` under `dek` as the record's next payload version.
    fn seal_next_payload(
        &self,
        record: &Record,
        dek: &DataKey,
        data: &SecretValue,
        changes: &mut RecordChanges,
    ) -> OwnerResult<()> {
        let version = record.payload_version + 1;
        let payload = self
            .vault
            .seal(record.uuid, version, dek, data.as_bytes())
            .map_err(OwnerError::from_vault)?;
        changes.payload = Some((payload, version));
        Ok(())
    }

    /// Wraps `dek` under a new record password, replacing the password slot.
    async fn replace_password(
        &self,
        record: &Record,
        password: RecordPassword,
        dek: &DataKey,
        changes: &mut RecordChanges,
    ) -> OwnerResult<()> {
        let version = next_version(record, SlotKind::Password);
        let slot = self
            .vault
            .password_slot(SlotKind::Password, record.uuid, version, password, dek)
            .await
            .map_err(OwnerError::from_vault)?;
        changes.put_slots.push(slot);
        Ok(())
    }
}
