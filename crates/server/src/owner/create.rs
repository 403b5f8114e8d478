//! Creating a record: checking what the owner asked for as a whole, sealing the value under a
//! new data key, and wrapping that key into the slots that will open it.

use brine_core::{
    Access, BridgePolicy, CredentialPolicy, NewRecordPolicy, Policy, RecordKind, RecordLimits,
    RecordName, RecordPassword, SecretValue, ValidationError,
};
use brine_crypto::{ApiKey, DataKey};
use brine_proto::{BridgeBody, CreateRecord, SecurePageBody};
use brine_store::{PageLimits, Record, SlotKind};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{OwnerError, OwnerResult, Owners};
use crate::clock::now_ms;
use crate::proxy::compiled::{Bridge, BridgeSecrets};

/// A secure page to enable: its password and its own limits.
pub struct PageSetup {
    pub password: RecordPassword,
    pub expires_at: Option<OffsetDateTime>,
    pub max_views: Option<i64>,
    /// What the page shows before its password, when the owner set it.
    pub label: Option<String>,
}

impl PageSetup {
    /// The page the owner asked for, or `None` to have none.
    pub fn parse(
        body: SecurePageBody,
        now: OffsetDateTime,
    ) -> Result<Option<Self>, ValidationError> {
        let invalid = |message: &str| ValidationError::new("secure_page", message);
        if !body.enabled {
            if body.password.is_some()
                || body.expires_at.is_some()
                || body.max_views.is_some()
                || body.label.is_some()
            {
                return Err(invalid(
                    "A disabled secure page takes no password, limits or label.",
                ));
            }
            return Ok(None);
        }
        let password = body
            .password
            .ok_or_else(|| invalid("Enabling the secure page needs a password."))?;
        let expires_at = body.expires_at.map(|t| t.0);
        brine_core::future("secure_page", "The page's expiry", expires_at, now)?;
        brine_core::at_least_one("max_views", body.max_views)?;
        let label = body
            .label
            .as_deref()
            .map(brine_core::PageLabel::parse)
            .transpose()?
            .map(brine_core::PageLabel::into_string);
        Ok(Some(Self {
            password: RecordPassword::parse(password)?,
            expires_at,
            max_views: body.max_views,
            label,
        }))
    }
}

/// The secret to seal and the policy to keep, for a record of `kind`: a credential takes `data`,
/// a bridge takes `bridge` (checked and compiled here, so a broken bridge is never stored).
pub fn content(
    kind: RecordKind,
    data: Option<String>,
    bridge: Option<BridgeBody>,
    params: Option<Vec<String>>,
) -> Result<(SecretValue, Policy), ValidationError> {
    let invalid = |message: &str| ValidationError::new("data", message);
    match (kind, data, bridge) {
        (RecordKind::Credential, Some(data), None) => {
            let policy = CredentialPolicy::new(params.unwrap_or_default())?;
            Ok((SecretValue::parse(data)?, Policy::Credential(policy)))
        }
        (RecordKind::Bridge, None, Some(body)) => {
            if params.is_some() {
                return Err(invalid("A bridge declares its params inside 'bridge'."));
            }
            let (secrets, policy) = bridge_parts(body)?;
            let sealed = serde_json::to_string(&secrets)
                .map_err(|_| invalid("The bridge cannot be stored."))?;
            Ok((SecretValue::parse(sealed)?, Policy::Bridge(policy)))
        }
        (RecordKind::Credential, None, _) => {
            Err(invalid("A credential needs its value in 'data'."))
        }
        (RecordKind::Credential, Some(_), Some(_)) => {
            Err(invalid("A credential takes 'data', not 'bridge'."))
        }
        (RecordKind::Bridge, _, _) => Err(invalid(
            "A bridge takes its upstream in 'bridge', not 'data'.",
        )),
    }
}

/// A new bridge's secret part and checked policy.
fn bridge_parts(body: BridgeBody) -> Result<(BridgeSecrets, BridgePolicy), ValidationError> {
    let policy = body.policy.checked()?;
    let secrets = BridgeSecrets {
        url: body.url,
        headers: body.headers,
        fallback_urls: body.fallback_urls,
    };
    secrets.check_new()?;
    Bridge::compile(&secrets, policy.clone())?;
    Ok((secrets, policy))
}

impl Owners {
    /// Stores a new record. Returns it and, for a private record, its X-API-Key: the only time
    /// that key exists outside the caller's hands.
    pub async fn create(
        &self,
        owner: Uuid,
        body: CreateRecord,
    ) -> OwnerResult<(Record, Option<ApiKey>)> {
        let now = now_ms();
        let kind = body.kind.unwrap_or(RecordKind::Credential);
        let (data, policy) = content(kind, body.data, body.bridge, body.params)?;
        if kind == RecordKind::Bridge && (body.password.is_some() || body.secure_page.is_some()) {
            return Err(OwnerError::invalid(
                "Bridges open with their X-API-Key (or for anyone, when public); they take no \
                 password or secure page.",
            ));
        }
        let rules = NewRecordPolicy {
            access: body.access,
            sealed: body.sealed,
            has_password: body.password.is_some(),
            expires_at: body.expires_at.map(|t| t.0),
            max_reads: body.max_reads,
        };
        rules.check(now)?;
        let limits = RecordLimits::from_fields(body.rate_limit, body.quota)?;
        let password = body.password.map(RecordPassword::parse).transpose()?;
        let page = match body.secure_page {
            Some(page) => PageSetup::parse(page, now)?,
            None => None,
        };
        if page.is_some() {
            brine_core::private_only(
                body.access,
                "secure_page",
                "Only private records can have a secure page.",
            )?;
        }
        let api_key = body.api_key.unwrap_or(true);
        if body.api_key.is_some() {
            brine_core::private_only(
                body.access,
                "api_key",
                "Only private records have an X-API-Key to turn on or off.",
            )?;
        }
        if body.sealed && !api_key && password.is_none() && page.is_none() {
            return Err(OwnerError::invalid(
                "A sealed record without an X-API-Key, password or secure page could never be \
                 opened.",
            ));
        }

        let uuid = Uuid::new_v4();
        let dek = DataKey::generate()?;
        let vault = &self.vault;
        let payload = vault
            .seal(uuid, 1, &dek, data.as_bytes())
            .map_err(OwnerError::from_vault)?;
        let mut slots = Vec::with_capacity(3);
        if !body.sealed {
            slots.push(
                vault
                    .server_slot(uuid, &dek)
                    .map_err(OwnerError::from_vault)?,
            );
        }
        let key = if body.access == Access::Private && api_key {
            let (slot, key) = vault
                .api_key_slot(uuid, 1, &dek)
                .map_err(OwnerError::from_vault)?;
            slots.push(slot);
            Some(key)
        } else {
            None
        };
        if let Some(password) = password {
            let slot = vault
                .password_slot(SlotKind::Password, uuid, 1, password, &dek)
                .await
                .map_err(OwnerError::from_vault)?;
            slots.push(slot);
        }
        let mut page_limits = PageLimits::default();
        let page_label = page.as_ref().and_then(|p| p.label.clone());
        if let Some(page) = page {
            page_limits = PageLimits {
                expires_at: page.expires_at,
                max_views: page.max_views,
                views: 0,
            };
            let slot = vault
                .password_slot(SlotKind::SecurePage, uuid, 1, page.password, &dek)
                .await
                .map_err(OwnerError::from_vault)?;
            slots.push(slot);
        }
        let record = Record {
            uuid,
            owner_id: owner,
            name: RecordName::parse(&body.name)?.into_string(),
            kind,
            access: body.access,
            sealed: body.sealed,
            payload,
            payload_version: 1,
            expires_at: rules.expires_at,
            max_reads: body.max_reads,
            reads: 0,
            page: page_limits,
            policy,
            limits,
            disabled_at: None,
            page_label,
            version: 1,
            created_at: now,
            updated_at: now,
            slots,
        };
        self.store.insert_record(&record).await?;
        tracing::info!(record = %record.uuid, access = record.access.as_str(), "record created");
        Ok((record, key))
    }
}
