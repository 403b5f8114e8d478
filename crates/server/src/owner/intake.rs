//! Intake links, the owner's side: making a link (and, for a new credential, its X-API-Key),
//! listing and revoking links, and storing a submitted value where the link says.
//!
//! A new credential's X-API-Key is issued when the link is made, shown to the owner then, and
//! never stored: the link keeps only the record's data key wrapped under the master key and
//! under that key (the very slots the record gets). When the value arrives, the server opens
//! the data key through its slot, seals the value and inserts the record. So nothing that
//! unlocks is ever stored recoverably, and nobody but the owner ever sees the key.

use brine_core::{
    Access, CredentialPolicy, Policy, RecordKind, RecordLimits, RecordName, RecordPassword,
    SecretValue, ValidationError,
};
use brine_crypto::{ApiKey, DataKey, random_bytes};
use brine_proto::{CreateIntake, IntakeInto};
use brine_store::{IntakeLink, IntakeTarget, KeySlot, PageLimits, Record, RecordChanges, SlotKind};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::create::content;
use super::{OwnerError, OwnerResult, Owners};
use crate::audit::{Channel, Event, Outcome};
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::fault::Fault;

/// Where a template puts the value.
pub const PLACEHOLDER: &str = "{{value}}";

/// A link's state at `now`, as the owner's list shows it.
pub fn state(link: &IntakeLink, now: OffsetDateTime) -> &'static str {
    if link.used_at.is_some() {
        "used"
    } else if link.revoked_at.is_some() {
        "revoked"
    } else if link.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "open"
    }
}

/// The SHA-256 of a link's token: what the database keeps and looks links up by.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new link's token: 256 random bits in base64url (the link's path segment).
fn new_token() -> OwnerResult<Zeroizing<String>> {
    use base64::Engine;
    let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(random_bytes()?);
    Ok(Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_slice()),
    ))
}

/// What the person is asked for: plain text shown on the link's page, 1 to 200 characters.
fn asked_for(text: &str) -> Result<String, ValidationError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 200 {
        return Err(ValidationError::new(
            "asked_for",
            "asked_for: say what is asked for in 1 to 200 characters.",
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "asked_for",
            "asked_for must not contain control characters.",
        ));
    }
    Ok(text.to_owned())
}

/// A template for a header value: `{{value}}` once, at most 1000 characters.
pub(crate) fn template(text: &str) -> Result<String, ValidationError> {
    if text.matches(PLACEHOLDER).count() != 1 || text.len() > 1000 {
        return Err(ValidationError::new(
            "template",
            "template must hold {{value}} exactly once (e.g. \"Bearer {{value}}\"), in at most \
             1000 characters.",
        ));
    }
    Ok(text.to_owned())
}

/// A new link and what is shown only once: its token and, for a credential, the X-API-Key.
pub struct NewIntake {
    pub link: IntakeLink,
    pub token: Zeroizing<String>,
    pub key: Option<ApiKey>,
}

impl Owners {
    /// Makes an intake link.
    pub async fn create_intake(&self, owner: Uuid, body: CreateIntake) -> OwnerResult<NewIntake> {
        let now = now_ms();
        let asked = asked_for(&body.asked_for)?;
        let expires_at = body.expires_at.map(|t| t.0);
        brine_core::future("expires_at", "The link's expiry", expires_at, now)?;
        let password_hash = match body.password {
            Some(password) => {
                let password =
                    RecordPassword::parse(password).map_err(|e| OwnerError::Invalid {
                        field: "password",
                        message: e.message,
                    })?;
                let hash = self
                    .vault
                    .run_kdf(move |settings| {
                        brine_crypto::hash_account_password(password.as_bytes(), settings)
                    })
                    .await
                    .map_err(OwnerError::from_vault)??;
                Some(hash)
            }
            None => None,
        };
        let (record, target, key) = match body.into {
            IntakeInto::Credential { name } => {
                let name = RecordName::parse(name.as_deref().unwrap_or(&asked))?.into_string();
                let uuid = Uuid::new_v4();
                let dek = DataKey::generate()?;
                let server = self
                    .vault
                    .server_slot(uuid, &dek)
                    .map_err(OwnerError::from_vault)?;
                let (key_slot, key) = self
                    .vault
                    .api_key_slot(uuid, 1, &dek)
                    .map_err(OwnerError::from_vault)?;
                let target = IntakeTarget::Credential {
                    name,
                    server_slot: server.wrapped,
                    server_slot_version: server.version,
                    api_key_slot: key_slot.wrapped,
                };
                (uuid, target, Some(key))
            }
            IntakeInto::BridgeHeader {
                bridge,
                header,
                template: text,
            } => {
                let template = template(&text)?;
                let record = self.owned(owner, bridge).await?;
                let header = header.trim().to_owned();
                // Checked now as it will be on arrival, so that a link never asks for a value
                // it could not store.
                self.bridge_with_header(&record, &header, "example")?;
                (
                    record.uuid,
                    IntakeTarget::BridgeHeader { header, template },
                    None,
                )
            }
        };
        let token = new_token()?;
        let link = IntakeLink {
            id: Uuid::new_v4(),
            token_hash: token_hash(&token),
            owner_id: owner,
            asked_for: asked,
            record,
            target,
            password_hash,
            expires_at,
            created_at: now,
            used_at: None,
            revoked_at: None,
        };
        self.store.insert_intake(&link).await?;
        tracing::info!(intake = %link.id, "intake link created");
        Ok(NewIntake { link, token, key })
    }

    /// The owner's links, newest first.
    pub async fn intakes(&self, owner: Uuid) -> OwnerResult<Vec<IntakeLink>> {
        Ok(self.store.intakes_of(owner).await?)
    }

    pub async fn intake(&self, owner: Uuid, id: Uuid) -> OwnerResult<IntakeLink> {
        self.store
            .intake(id, owner)
            .await?
            .ok_or(OwnerError::NotFound)
    }

    /// Revokes an open link: it answers like an unknown one from now on.
    pub async fn revoke_intake(&self, owner: Uuid, id: Uuid) -> OwnerResult<IntakeLink> {
        if !self.store.revoke_intake(id, owner, now_ms()).await? {
            let link = self.intake(owner, id).await?;
            if link.revoked_at.is_none() {
                return Err(OwnerError::Conflict {
                    error: "Already used",
                    message: "This intake link was used already; there is nothing to revoke.",
                });
            }
        }
        tracing::info!(intake = %id, "intake link revoked");
        self.intake(owner, id).await
    }

    /// Stores a submitted value where `link` says (the caller has spent the link), and records
    /// its arrival in the record's timeline.
    pub async fn deliver_intake(
        &self,
        link: &IntakeLink,
        value: Zeroizing<String>,
        client: &ClientInfo,
    ) -> OwnerResult<()> {
        match &link.target {
            IntakeTarget::Credential {
                name,
                server_slot,
                server_slot_version,
                api_key_slot,
            } => {
                let value = SecretValue::parse(value.to_string())?;
                self.insert_credential(
                    link,
                    name,
                    server_slot,
                    *server_slot_version,
                    api_key_slot,
                    &value,
                )
                .await?;
            }
            IntakeTarget::BridgeHeader { header, template } => {
                let record = self.owned(link.owner_id, link.record).await?;
                let rendered = Zeroizing::new(template.replacen(PLACEHOLDER, &value, 1));
                let (data, policy) = self.bridge_with_header(&record, header, &rendered)?;
                let dek = self
                    .vault
                    .open_with_server(&record)
                    .map_err(OwnerError::from_vault)?;
                let version = record.payload_version + 1;
                let payload = self
                    .vault
                    .seal(record.uuid, version, &dek, data.as_bytes())
                    .map_err(OwnerError::from_vault)?;
                let changes = RecordChanges {
                    payload: Some((payload, version)),
                    policy: Some(policy),
                    updated_at: Some(now_ms()),
                    ..RecordChanges::default()
                };
                self.commit(&record, &changes).await?;
            }
        }
        let event = Event::new(link.record, Channel::Intake, Outcome::Received, client)
            .detail(json!({"intake": link.id, "asked_for": link.asked_for}).to_string());
        self.audit.append(event).await.map_err(Fault::from)?;
        tracing::info!(intake = %link.id, record = %link.record, "intake link used");
        Ok(())
    }

    /// The new private credential of a link, with the slots made with the link.
    async fn insert_credential(
        &self,
        link: &IntakeLink,
        name: &str,
        server_slot: &[u8],
        server_slot_version: i64,
        api_key_slot: &[u8],
        value: &SecretValue,
    ) -> OwnerResult<()> {
        let now = now_ms();
        let slot = |kind, version, wrapped: &[u8]| KeySlot {
            kind,
            version,
            wrapped: wrapped.to_vec(),
            kdf: None,
            created_at: link.created_at,
        };
        let mut record = Record {
            uuid: link.record,
            owner_id: link.owner_id,
            name: name.to_owned(),
            kind: RecordKind::Credential,
            access: Access::Private,
            sealed: false,
            payload: Vec::new(),
            payload_version: 1,
            expires_at: None,
            max_reads: None,
            reads: 0,
            page: PageLimits::default(),
            policy: Policy::Credential(CredentialPolicy::default()),
            limits: RecordLimits::default(),
            disabled_at: None,
            page_label: None,
            version: 1,
            created_at: now,
            updated_at: now,
            slots: vec![
                slot(SlotKind::Server, server_slot_version, server_slot),
                slot(SlotKind::ApiKey, 1, api_key_slot),
            ],
        };
        let dek = self
            .vault
            .open_with_server(&record)
            .map_err(OwnerError::from_vault)?;
        record.payload = self
            .vault
            .seal(record.uuid, 1, &dek, value.as_bytes())
            .map_err(OwnerError::from_vault)?;
        self.store.insert_record(&record).await?;
        Ok(())
    }

    /// The bridge's secret part with header `header` set to `value`, checked and compiled like
    /// any bridge, and its policy. Sealed bridges cannot take a value this way: the server
    /// cannot open them to keep their URL and other headers.
    fn bridge_with_header(
        &self,
        record: &Record,
        header: &str,
        value: &str,
    ) -> OwnerResult<(SecretValue, Policy)> {
        if record.kind != RecordKind::Bridge {
            return Err(OwnerError::Invalid {
                field: "bridge",
                message: "That record is not a bridge: choose one of your bridges.".into(),
            });
        }
        if record.sealed {
            return Err(OwnerError::Conflict {
                error: "Sealed bridge",
                message: "A sealed bridge cannot be opened by the server, so an intake link \
                          cannot change its headers.",
            });
        }
        if header.is_empty() || axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            return Err(OwnerError::Invalid {
                field: "header",
                message: "header must be a valid HTTP header name, e.g. Authorization.".into(),
            });
        }
        let mut headers = serde_json::Map::new();
        headers.insert(header.to_owned(), json!(value));
        let patch = json!({ "headers": headers });
        // The bridge's key probe (if any) is not run for a value sent through a link: the
        // person sending it cannot choose to save without testing; the owner tests on demand.
        let (body, _key_changed) = self.patched_bridge(record, patch)?;
        Ok(content(RecordKind::Bridge, None, Some(body), None)?)
    }
}
