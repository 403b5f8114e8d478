//! Disabling a record and enabling it again. A disabled record keeps everything (value, keys,
//! passwords, secure page) but answers every public channel as a uuid that does not exist (the
//! gate refuses it at its first stage); its owner still sees it.

use brine_store::{Record, RecordChanges};
use uuid::Uuid;

use super::{OwnerResult, Owners};
use crate::audit::Outcome;
use crate::clock::now_ms;
use crate::extract::ClientInfo;

impl Owners {
    /// Disables (`enabled: false`) or enables a record of `owner`. Like a rotation, the change
    /// bumps the record's version, so a copy in memory on any node is out of date at once.
    /// Asking for the state the record already has changes nothing and stores no event.
    pub async fn set_enabled(
        &self,
        owner: Uuid,
        uuid: Uuid,
        enabled: bool,
        client: &ClientInfo,
    ) -> OwnerResult<Record> {
        let record = self.owned(owner, uuid).await?;
        if record.disabled_at.is_none() == enabled {
            return Ok(record);
        }
        let now = now_ms();
        let changes = RecordChanges {
            disabled_at: Some((!enabled).then_some(now)),
            updated_at: Some(now),
            ..RecordChanges::default()
        };
        self.commit(&record, &changes).await?;
        let outcome = if enabled {
            Outcome::Enabled
        } else {
            Outcome::Disabled
        };
        self.audit(uuid, outcome, client).await?;
        tracing::info!(record = %uuid, enabled, "record state changed");
        self.reload(uuid).await
    }
}
