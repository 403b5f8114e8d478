//! A bridge's key, tested: before a new URL, header or fallback is stored, brine sends the
//! bridge's probe with the new values and refuses the change unless the upstream accepts them
//! (so a typo never takes an app down); the owner can also send it with the stored key at any
//! time. Both are audited with the request and the upstream's status, never a value.

use brine_core::{BridgePolicy, Probe, RecordKind, SecretValue};
use brine_proto::KeyTestResult;
use brine_store::Record;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{OwnerError, OwnerResult, Owners};
use crate::audit::{Channel, Event, Outcome};
use crate::extract::ClientInfo;
use crate::fault::Fault;
use crate::proxy::cache;
use crate::proxy::upstream::Failure;

/// Why a bridge's new key was not stored.
#[derive(Debug)]
pub enum KeyCheckFailure {
    /// The upstream answered the probe with a status that is not an accepted one.
    Rejected { request: String, status: u16 },
    /// The probe got no answer (unreachable, timed out, not allowed, a missing parameter).
    NotSent { request: String, failure: Failure },
}

impl Owners {
    /// Sends the bridge's probe with its stored key and says whether the upstream accepted it.
    /// Audited as `key_tested`.
    pub async fn test_key(
        &self,
        owner: Uuid,
        uuid: Uuid,
        client: &ClientInfo,
    ) -> OwnerResult<KeyTestResult> {
        let record = self.owned(owner, uuid).await?;
        if record.kind != RecordKind::Bridge {
            return Err(OwnerError::invalid(
                "Only a bridge has a key to test: a credential's value is never sent anywhere.",
            ));
        }
        let probe = stored_probe(&record)?;
        let dek = self
            .vault
            .open_with_server(&record)
            .map_err(OwnerError::from_vault)?;
        let compiled = cache::compile(&record, &self.vault, &dek)?;
        let request = probe.request_line();
        match self.proxy.probe(compiled, &probe).await {
            Ok(answer) => {
                let accepted = probe.accepts(answer.status);
                let detail = json!({"request": request, "status": answer.status,
                                    "accepted": accepted});
                self.audit_detail(uuid, Outcome::KeyTested, detail, client)
                    .await?;
                Ok(KeyTestResult {
                    request,
                    status: answer.status,
                    accepted,
                    hop: answer.hop,
                    duration_ms: answer.duration_ms,
                    excerpt: answer.excerpt,
                })
            }
            Err(failure) => {
                let detail = json!({"request": request, "error": failure.outcome().as_str()});
                self.audit_detail(uuid, Outcome::KeyTested, detail, client)
                    .await?;
                Err(OwnerError::Upstream(failure))
            }
        }
    }

    /// Sends the probe of `policy` with the bridge's new secret part (`plain`, as it will be
    /// sealed). Returns the detail of the change's `updated` event; a refusal is audited as
    /// `key_refused` and changes nothing.
    pub(super) async fn check_new_key(
        &self,
        record: &Record,
        plain: &SecretValue,
        policy: &BridgePolicy,
        probe: &Probe,
        client: &ClientInfo,
    ) -> OwnerResult<Value> {
        let text = std::str::from_utf8(plain.as_bytes())
            .map_err(|_| OwnerError::invalid("The bridge cannot be stored."))?;
        let compiled = cache::compile_plain(record.uuid, text, policy)?;
        let request = probe.request_line();
        let failure = match self.proxy.probe(compiled, probe).await {
            Ok(answer) if probe.accepts(answer.status) => {
                return Ok(json!({"key_check": "accepted", "request": request,
                                 "status": answer.status}));
            }
            Ok(answer) => {
                let detail = json!({"request": request, "status": answer.status});
                self.audit_detail(record.uuid, Outcome::KeyRefused, detail, client)
                    .await?;
                KeyCheckFailure::Rejected {
                    request,
                    status: answer.status,
                }
            }
            Err(failure) => {
                let detail = json!({"request": request, "error": failure.outcome().as_str()});
                self.audit_detail(record.uuid, Outcome::KeyRefused, detail, client)
                    .await?;
                KeyCheckFailure::NotSent { request, failure }
            }
        };
        tracing::info!(record = %record.uuid, "a bridge's new key was refused by its probe");
        Err(OwnerError::KeyCheck(failure))
    }

    /// Records an owner's action on a record, with details (never a secret).
    pub(super) async fn audit_detail(
        &self,
        uuid: Uuid,
        outcome: Outcome,
        detail: Value,
        client: &ClientInfo,
    ) -> OwnerResult<()> {
        let event = Event::new(uuid, Channel::Owner, outcome, client).detail(detail.to_string());
        self.audit.append(event).await.map_err(Fault::from)?;
        Ok(())
    }
}

/// The bridge's probe, or the conflict of a bridge without one.
fn stored_probe(record: &Record) -> OwnerResult<Probe> {
    record
        .policy
        .bridge()
        .and_then(|b| b.probe.as_deref().cloned())
        .ok_or(OwnerError::Conflict {
            error: "No probe",
            message: "This bridge has no probe to test its key with: set one first (a method, \
                      a path and the statuses that mean the key was accepted).",
        })
}
