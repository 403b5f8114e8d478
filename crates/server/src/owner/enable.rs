//! Disabling a record and enabling it again. A disabled record keeps everything (value, keys,
//! passwords, secure page) but answers every public channel as a uuid that does not exist (the
//! gate refuses it at its first stage); its owner still sees it.

use brine_store::{Record, RecordChanges};
use uuid::Uuid;

use super::{OwnerResult, Owners};
use crate::audit::{Event, Outcome};
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::fault::Fault;

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
        self.set_enabled_because(owner, uuid, enabled, client, None)
            .await
    }

    /// [`Self::set_enabled`], with why in the event's `detail` (JSON), e.g. the handoff whose
    /// end disabled the record.
    pub async fn set_enabled_because(
        &self,
        owner: Uuid,
        uuid: Uuid,
        enabled: bool,
        client: &ClientInfo,
        detail: Option<&str>,
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
        let mut event = Event::new(uuid, crate::audit::Channel::Owner, outcome, client);
        event.detail = detail.map(str::to_owned);
        self.audit.append(event).await.map_err(Fault::from)?;
        tracing::info!(record = %uuid, enabled, "record state changed");
        self.reload(uuid).await
    }
}
