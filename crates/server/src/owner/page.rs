//! A record's secure page (`/secure/{uuid}`): enabling it, giving it a new password (the old one
//! stops working when this returns), disabling it.

use brine_core::{Access, RecordKind};
use brine_proto::SecurePageBody;
use brine_store::{PageLimits, Record, RecordChanges, SlotKind};
use uuid::Uuid;

use super::create::PageSetup;
use super::{OwnerError, OwnerResult, Owners};
use crate::audit::Outcome;
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::vault::next_version;

impl Owners {
    /// Enables (or re-keys) the page with a new password and limits, or disables it. A sealed
    /// record's data key is recovered with its X-API-Key (`current_key`).
    pub async fn set_secure_page(
        &self,
        owner: Uuid,
        uuid: Uuid,
        body: SecurePageBody,
        current_key: Option<&str>,
        client: &ClientInfo,
    ) -> OwnerResult<Record> {
        let record = self.owned(owner, uuid).await?;
        let now = now_ms();
        let setup = PageSetup::parse(body, now)?;
        let mut changes = RecordChanges {
            updated_at: Some(now),
            ..RecordChanges::default()
        };
        let outcome = match setup {
            None => {
                changes.remove_slots.push(SlotKind::SecurePage);
                changes.page = Some(PageLimits::default());
                changes.page_label = Some(None);
                Outcome::PageDisabled
            }
            Some(setup) => {
                if record.kind != RecordKind::Credential {
                    return Err(OwnerError::invalid(
                        "Only credentials can have a secure page (a bridge's secrets are its URL \
                         and headers, never shown to a person).",
                    ));
                }
                if record.access != Access::Private {
                    return Err(OwnerError::invalid(
                        "Only private records can have a secure page.",
                    ));
                }
                let dek = match (record.sealed, current_key) {
                    (false, _) => self
                        .vault
                        .open_with_server(&record)
                        .map_err(OwnerError::from_vault)?,
                    (true, Some(key)) => self
                        .vault
                        .open_with_key(&record, key)
                        .ok_or(OwnerError::KeyRequired)?,
                    (true, None) => {
                        return Err(OwnerError::Conflict {
                            error: "Sealed record",
                            message: "The server cannot open a sealed record on its own: send \
                                      the record's X-API-Key header to set its secure page.",
                        });
                    }
                };
                let version = next_version(&record, SlotKind::SecurePage);
                let slot = self
                    .vault
                    .password_slot(SlotKind::SecurePage, uuid, version, setup.password, &dek)
                    .await
                    .map_err(OwnerError::from_vault)?;
                changes.put_slots.push(slot);
                changes.page = Some(PageLimits {
                    expires_at: setup.expires_at,
                    max_views: setup.max_views,
                    views: 0,
                });
                // The page's settings are replaced as a whole: no label sent, none shown.
                changes.page_label = Some(setup.label);
                Outcome::PageEnabled
            }
        };
        self.commit(&record, &changes).await?;
        self.audit(uuid, outcome, client).await?;
        tracing::info!(record = %uuid, "secure page changed");
        self.reload(uuid).await
    }
}
