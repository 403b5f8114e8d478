//! What the owner sees: records (never their values, except on an audited reveal) and their
//! audit events.

use std::collections::HashMap;

use brine_core::{RecordKind, RecordStatus, read_status};
use brine_crypto::ApiKey;
use brine_proto::{EventList, EventQuery, EventView, RecordView, RecordWithKey, SecurePageView};
use brine_store::{AuditEvent, EventFilter, Record, SlotKind};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{OwnerError, OwnerResult, Owners, sealed};
use crate::access::{Credential, GateError, Refusal, Try};
use crate::audit::{Channel, Outcome};
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::fault::Fault;
use crate::proxy::compiled::{BridgeSecrets, MAX_FALLBACKS};

/// A record as its owner sees it. `last_used_at` comes from the audit log (see
/// `AuditStore::last_used`).
pub fn record_view(
    record: &Record,
    now: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
) -> RecordView {
    RecordView {
        uuid: record.uuid,
        name: record.name.clone(),
        kind: record.kind,
        access: record.access,
        sealed: record.sealed,
        has_api_key: record.slot(SlotKind::ApiKey).is_some(),
        has_password: record.slot(SlotKind::Password).is_some(),
        expires_at: record.expires_at,
        max_reads: record.max_reads,
        reads: record.reads,
        status: match record.disabled_at {
            Some(_) => RecordStatus::Disabled,
            None => read_status(record.expires_at, record.max_reads, record.reads, now),
        },
        last_used_at,
        path: format!("/r/{}", record.uuid),
        secure_page: record
            .slot(SlotKind::SecurePage)
            .map(|_| page_view(record, now)),
        bridge: record.policy.bridge().cloned(),
        params: record
            .policy
            .credential()
            .map(|c| c.params.clone())
            .unwrap_or_default(),
        rate_limit: record.limits.rate_limit.clone(),
        quota: record.limits.quota,
        quota_used: None,
        warnings: Vec::new(),
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

fn page_view(record: &Record, now: OffsetDateTime) -> SecurePageView {
    let page = &record.page;
    let record_status = read_status(record.expires_at, None, 0, now);
    SecurePageView {
        path: format!("/secure/{}", record.uuid),
        expires_at: page.expires_at,
        max_views: page.max_views,
        views: page.views,
        status: match (record.disabled_at, record_status) {
            (Some(_), _) => RecordStatus::Disabled,
            (None, RecordStatus::Active) => {
                read_status(page.expires_at, page.max_views, page.views, now)
            }
            (None, other) => other,
        },
        label: record.page_label.clone(),
    }
}

/// Advice about a record's set-up: one record that opens both for code and for a person.
fn set_up_advice(record: &Record) -> Option<String> {
    (record.slot(SlotKind::ApiKey).is_some() && record.slot(SlotKind::SecurePage).is_some()).then(
        || {
            "This record opens both for code (X-API-Key at /r) and for a person (secure page at \
             /secure) under the same uuid. Prefer two records: one for the person, one for code, \
             so that each can be revoked alone."
                .to_owned()
        },
    )
}

/// A record with its new X-API-Key (shown this once), and advice about its set-up.
pub fn with_key(record: &Record, api_key: Option<ApiKey>, now: OffsetDateTime) -> RecordWithKey {
    RecordWithKey {
        record: record_view(record, now, None),
        api_key: api_key.map(|k| k.expose().to_owned()),
        warnings: set_up_advice(record).into_iter().collect(),
    }
}

/// An audit event as its owner sees it.
pub fn event_view(e: AuditEvent) -> EventView {
    let detail: Option<serde_json::Value> = e.detail.and_then(|d| serde_json::from_str(&d).ok());
    let upstream_status = detail
        .as_ref()
        .and_then(|d| d.get("status"))
        .and_then(serde_json::Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    let answer = crate::error::caller_answer(&e.channel, &e.outcome, upstream_status);
    EventView {
        id: e.id,
        at: e.at,
        record: e.record,
        record_name: None,
        record_deleted: false,
        status: answer.and_then(|(status, _)| status),
        error: answer.map(|(_, title)| title.to_owned()),
        channel: e.channel,
        outcome: e.outcome,
        client_ip: e.client_ip,
        user_agent: e.user_agent,
        country: e.country,
        city: e.city,
        detail,
    }
}

impl Owners {
    /// The owner's records, newest first.
    pub async fn list(&self, owner: Uuid) -> OwnerResult<Vec<RecordView>> {
        let now = now_ms();
        let records = self.store.records_of(owner).await?;
        let used = self.last_used(owner, None).await?;
        Ok(records
            .iter()
            .map(|r| record_view(r, now, used.get(&r.uuid).copied()))
            .collect())
    }

    /// One record, with its quota's use in the current period and any problem to fix or advice
    /// about its set-up.
    pub async fn show(&self, owner: Uuid, uuid: Uuid) -> OwnerResult<RecordView> {
        let record = self.owned(owner, uuid).await?;
        let now = now_ms();
        let used = self.last_used(owner, Some(uuid)).await?;
        let mut view = record_view(&record, now, used.get(&uuid).copied());
        if let Some(quota) = &view.quota {
            let (period, _) = quota.per.bounds(now);
            view.quota_used = Some(self.store.quota_used(uuid, period).await?);
        }
        view.warnings.extend(set_up_advice(&record));
        let unused = self.unused_fallbacks(&record)?;
        if unused > 0 {
            view.warnings.push(format!(
                "This bridge stores {unused} fallback URLs more than the {MAX_FALLBACKS} that \
                 calls try; the rest are never used. Replace the bridge with at most \
                 {MAX_FALLBACKS}."
            ));
        }
        Ok(view)
    }

    /// When each of the owner's records (or only `only`) was last opened successfully. The
    /// audit log is flushed first, so an access answered before this call is counted.
    async fn last_used(
        &self,
        owner: Uuid,
        only: Option<Uuid>,
    ) -> OwnerResult<HashMap<Uuid, OffsetDateTime>> {
        self.audit.flush().await.map_err(Fault::from)?;
        Ok(self
            .store
            .last_used(owner, only)
            .await?
            .into_iter()
            .collect())
    }

    /// Fallback URLs a stored bridge has beyond the maximum (never tried). Sealed bridges cannot
    /// be opened by the server and report none.
    fn unused_fallbacks(&self, record: &Record) -> OwnerResult<usize> {
        if record.kind != RecordKind::Bridge || record.sealed {
            return Ok(0);
        }
        let dek = self
            .vault
            .open_with_server(record)
            .map_err(OwnerError::from_vault)?;
        let plain = self
            .vault
            .decrypt(record, &dek)
            .map_err(OwnerError::from_vault)?;
        let secrets: BridgeSecrets = serde_json::from_str(&plain).map_err(|_| {
            Fault::Store(brine_store::StoreError::Corrupt(format!(
                "bridge {}: unreadable upstream",
                record.uuid
            )))
        })?;
        Ok(secrets.unused_fallbacks())
    }

    /// The value, for its owner (audited on channel `owner`; refused for sealed records).
    pub async fn reveal(
        &self,
        owner: Uuid,
        uuid: Uuid,
        client: &ClientInfo,
    ) -> OwnerResult<(RecordKind, Zeroizing<String>)> {
        let mut attempt = Try::FIRST;
        let opened = loop {
            let opened = self.reveal_once(owner, uuid, client, attempt).await;
            match attempt.after(&opened) {
                Some(next) => attempt = next,
                None => break opened,
            }
        };
        opened.map_err(|e| match e {
            GateError::Refused(Refusal::Sealed) => sealed(),
            GateError::Refused(_) => OwnerError::NotFound,
            GateError::Fault(f) => OwnerError::Fault(f),
        })
    }

    async fn reveal_once(
        &self,
        owner: Uuid,
        uuid: Uuid,
        client: &ClientInfo,
        attempt: Try,
    ) -> Result<(RecordKind, Zeroizing<String>), GateError> {
        let found = self.gate.find_any(uuid, client, attempt).await?;
        if found.record().owner_id != owner {
            return Err(Refusal::NotFound.into());
        }
        let found = found.via(Channel::Owner);
        if found.record().sealed {
            return Err(found
                .refuse(Outcome::Forbidden, Refusal::Sealed, None)
                .await);
        }
        let kind = found.record().kind;
        let charged = found
            .admit()
            .await?
            .unlock(Credential::Server)
            .await?
            .charge()
            .await?;
        let value = charged.value()?;
        charged.finish(Outcome::Ok).await?;
        Ok((kind, value))
    }

    /// Who opened a record, when and from where: newest first. Everything queued for the audit
    /// log before this call is in the answer.
    pub async fn events(
        &self,
        owner: Uuid,
        uuid: Uuid,
        query: EventQuery,
    ) -> OwnerResult<EventList> {
        self.history_owned(owner, uuid).await?;
        self.audit.flush().await.map_err(Fault::from)?;
        let limit = query.limit.unwrap_or(100).clamp(1, 500);
        let filter = EventFilter {
            before: query.before,
            channel: filter_text("channel", query.channel.as_deref())?,
            outcome: filter_text("outcome", query.outcome.as_deref())?,
            client_ip: filter_text("client_ip", query.client_ip.as_deref())?,
            text: filter_text("q", query.q.as_deref())?,
            from: None,
            to: None,
        };
        let events = self.store.events(uuid, limit, &filter).await?;
        Ok(EventList {
            events: events.into_iter().map(event_view).collect(),
        })
    }
}

/// A filter's text: blank means no filter; past 200 characters it is refused.
pub(super) fn filter_text<'a>(name: &str, value: Option<&'a str>) -> OwnerResult<Option<&'a str>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > 200 => Err(OwnerError::invalid(format!(
            "{name}: at most 200 characters."
        ))),
        Some(v) => Ok(Some(v)),
    }
}
