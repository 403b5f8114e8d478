//! Handoffs: one value handed to someone until an end date, as SaltingIO's contractor guide
//! recommends — two ordinary records made by the owner services (a secure page with a generated
//! password for the person; a private record with its own X-API-Key for their code), tied
//! together by a `handoffs` row.
//!
//! The end is enforced twice. Each record's own expiry is the end date, so the gate refuses both
//! from that millisecond on every node, with no extra work on the `/r` path. The end task
//! ([`sweep`]) then disables both (audited in each record's timeline) and raises the owner's
//! to-do, "rotate the upstream key at the provider", since whoever saw the key may have kept a
//! copy. "End now" does the same at once.

mod sweep;

use std::collections::HashMap;
use std::sync::Arc;

use brine_core::{Access, RecordName, ValidationError};
use brine_proto::{
    CreateHandoff, CreateRecord, HandoffRecord, HandoffState, HandoffTodo, HandoffView, RecordView,
    SecurePageBody, Timestamp,
};
use brine_store::{Handoff, Store};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

pub use self::sweep::EVERY as SWEEP_EVERY;
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::owner::{OwnerError, OwnerResult, Owners};

/// The to-do an ended handoff leaves its owner.
pub const TODO: &str = "Rotate the upstream key at the provider";
/// Longest name (for whom); the records are named after it.
const MAX_NAME: usize = 120;
/// How far away an end date may be: a handoff is meant to end.
const LONGEST: Duration = Duration::days(400);

/// Who ended a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// Its end date came (the end task).
    Schedule,
    /// Its owner ended it early.
    Owner,
}

impl EndedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Schedule => "schedule",
            EndedBy::Owner => "owner",
        }
    }
}

/// A new handoff and what to send, once: the page password and the code's X-API-Key.
pub struct Created {
    pub view: HandoffView,
    pub page_password: Zeroizing<String>,
    pub api_key: brine_crypto::ApiKey,
}

/// Cheap to clone: one reference count.
#[derive(Clone)]
pub struct Handoffs(Arc<Parts>);

struct Parts {
    store: Arc<dyn Store>,
    owners: Owners,
}

impl Handoffs {
    pub fn new(store: Arc<dyn Store>, owners: Owners) -> Self {
        Self(Arc::new(Parts { store, owners }))
    }

    /// Makes the two records and the handoff tying them. Nothing is left behind on failure.
    pub async fn create(&self, owner: Uuid, body: CreateHandoff) -> OwnerResult<Created> {
        let now = now_ms();
        let name = parse_name(&body.name)?;
        let ends_at = body.ends_at.0;
        brine_core::future("ends_at", "The end date", Some(ends_at), now)?;
        if ends_at - now > LONGEST {
            return Err(ValidationError::new(
                "ends_at",
                "The end date must be at most 400 days away: a handoff is meant to end.",
            )
            .into());
        }
        let page_password = brine_crypto::generate_passphrase()?;
        let page = record_body(
            format!("{name} · secure page"),
            body.data.clone(),
            ends_at,
            Some(SecurePageBody {
                enabled: true,
                password: Some(page_password.to_string()),
                expires_at: None,
                max_views: None,
                label: None,
            }),
        );
        let (page, _) = self.0.owners.create(owner, page).await?;
        let code = record_body(format!("{name} · code"), body.data, ends_at, None);
        let (code, key) = match self.0.owners.create(owner, code).await {
            Ok((code, Some(key))) => (code, key),
            Ok((code, None)) => {
                self.undo(owner, &[page.uuid, code.uuid]).await;
                return Err(OwnerError::Fault(crate::fault::Fault::Internal(
                    "a private record was made without an X-API-Key",
                )));
            }
            Err(e) => {
                self.undo(owner, &[page.uuid]).await;
                return Err(e);
            }
        };
        let handoff = Handoff {
            id: Uuid::new_v4(),
            owner_id: owner,
            name,
            page_record: Some(page.uuid),
            code_record: Some(code.uuid),
            created_at: now,
            ends_at,
            ended_at: None,
            ended_by: None,
            todo_done_at: None,
        };
        if let Err(e) = self.0.store.insert_handoff(&handoff).await {
            self.undo(owner, &[page.uuid, code.uuid]).await;
            return Err(e.into());
        }
        tracing::info!(handoff = %handoff.id, "handoff created");
        let view = self.show(owner, handoff.id).await?;
        Ok(Created {
            view,
            page_password,
            api_key: key,
        })
    }

    /// Deletes records made for a handoff that could not be completed.
    async fn undo(&self, owner: Uuid, records: &[Uuid]) {
        for uuid in records {
            if let Err(e) = self.0.owners.delete(owner, *uuid).await {
                tracing::error!(record = %uuid, error = ?e, "cannot delete a half-made handoff's record");
            }
        }
    }

    /// The owner's handoffs, newest first.
    pub async fn list(&self, owner: Uuid) -> OwnerResult<Vec<HandoffView>> {
        let handoffs = self.0.store.handoffs_of(owner).await?;
        self.views(owner, handoffs).await
    }

    /// The owner's ended handoffs whose to-do is still open, newest first. Cheap when there are
    /// none (the Secrets page asks on every load).
    pub async fn open_todos(&self, owner: Uuid) -> OwnerResult<Vec<HandoffView>> {
        let mut handoffs = self.0.store.handoffs_of(owner).await?;
        handoffs.retain(|h| h.ended_at.is_some() && h.todo_done_at.is_none());
        self.views(owner, handoffs).await
    }

    async fn views(&self, owner: Uuid, handoffs: Vec<Handoff>) -> OwnerResult<Vec<HandoffView>> {
        if handoffs.is_empty() {
            return Ok(Vec::new());
        }
        let records: HashMap<Uuid, RecordView> = self
            .0
            .owners
            .list(owner)
            .await?
            .into_iter()
            .map(|r| (r.uuid, r))
            .collect();
        Ok(handoffs.iter().map(|h| view(h, &records)).collect())
    }

    /// One handoff of the owner's (another account's is `NotFound`, like a missing one).
    pub async fn show(&self, owner: Uuid, id: Uuid) -> OwnerResult<HandoffView> {
        let handoff = self.owned(owner, id).await?;
        let mut records = HashMap::new();
        for uuid in [handoff.page_record, handoff.code_record]
            .into_iter()
            .flatten()
        {
            match self.0.owners.show(owner, uuid).await {
                Ok(record) => {
                    records.insert(uuid, record);
                }
                // Deleted meanwhile: shown as gone.
                Err(OwnerError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(view(&handoff, &records))
    }

    async fn owned(&self, owner: Uuid, id: Uuid) -> OwnerResult<Handoff> {
        self.0
            .store
            .handoff(owner, id)
            .await?
            .ok_or(OwnerError::NotFound)
    }

    /// "End now": both records are disabled at once, then the handoff is marked ended and its
    /// to-do raised. Ending an ended handoff changes nothing.
    pub async fn end(
        &self,
        owner: Uuid,
        id: Uuid,
        client: &ClientInfo,
    ) -> OwnerResult<HandoffView> {
        let handoff = self.owned(owner, id).await?;
        if handoff.ended_at.is_none() {
            // Disabled first: if this request fails half-way, the handoff still shows as running
            // and ending it again finishes the job.
            self.disable_records(&handoff, EndedBy::Owner, client)
                .await?;
            if self
                .0
                .store
                .end_handoff(id, now_ms(), EndedBy::Owner.as_str())
                .await?
            {
                tracing::info!(handoff = %id, "handoff ended by its owner");
            }
        }
        self.show(owner, id).await
    }

    /// Ticks the to-do of an ended handoff. A running handoff has no to-do yet.
    pub async fn done(&self, owner: Uuid, id: Uuid) -> OwnerResult<HandoffView> {
        let handoff = self.owned(owner, id).await?;
        if handoff.ended_at.is_none() {
            return Err(OwnerError::Conflict {
                error: "Handoff still running",
                message: "The to-do comes when the handoff ends: end it first, then rotate the \
                          upstream key and tick it.",
            });
        }
        if handoff.todo_done_at.is_none() {
            self.0.store.tick_handoff(owner, id, now_ms()).await?;
        }
        self.show(owner, id).await
    }

    /// Ends every handoff whose end date has passed at `now`: one node wins each (the
    /// conditional UPDATE), then disables its records. Returns how many this call ended.
    pub async fn end_due(&self, now: OffsetDateTime) -> OwnerResult<usize> {
        let mut ended = 0;
        loop {
            let due = self.0.store.due_handoffs(now, sweep::BATCH).await?;
            let full = due.len() == sweep::BATCH as usize;
            for handoff in due {
                // The records already refuse every caller (their expiry is the end date), so
                // a node that dies between these two steps leaves nothing open.
                if !self
                    .0
                    .store
                    .end_handoff(handoff.id, now, EndedBy::Schedule.as_str())
                    .await?
                {
                    continue; // another node ended it
                }
                self.disable_records(&handoff, EndedBy::Schedule, &ClientInfo::default())
                    .await?;
                tracing::info!(handoff = %handoff.id, "handoff ended on its end date");
                ended += 1;
            }
            if !full {
                break;
            }
        }
        Ok(ended)
    }

    /// Disables both records through the owner service, each audited in its own timeline with
    /// the handoff named in the event's detail.
    async fn disable_records(
        &self,
        handoff: &Handoff,
        by: EndedBy,
        client: &ClientInfo,
    ) -> OwnerResult<()> {
        let detail =
            serde_json::json!({"handoff": handoff.id, "ended_by": by.as_str()}).to_string();
        for uuid in [handoff.page_record, handoff.code_record]
            .into_iter()
            .flatten()
        {
            match self
                .0
                .owners
                .set_enabled_because(handoff.owner_id, uuid, false, client, Some(&detail))
                .await
            {
                Ok(_) | Err(OwnerError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// For whom: trimmed, 1 to 120 characters, no control characters.
fn parse_name(input: &str) -> Result<String, ValidationError> {
    let name = input.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ValidationError::new(
            "name",
            format!("Name whom the handoff is for, in 1 to {MAX_NAME} characters."),
        ));
    }
    // The records are named after it, so it follows their rules too.
    RecordName::parse(name)?;
    Ok(name.to_owned())
}

/// One of the two records: private, expiring at the end date.
fn record_body(
    name: String,
    data: String,
    ends_at: OffsetDateTime,
    page: Option<SecurePageBody>,
) -> CreateRecord {
    let for_person = page.is_some();
    CreateRecord {
        name,
        kind: None,
        access: Access::Private,
        data: Some(data),
        bridge: None,
        params: None,
        password: None,
        sealed: false,
        expires_at: Some(Timestamp(ends_at)),
        max_reads: None,
        // The person's record opens only on its page; the code's only with its key. Each can be
        // rotated or revoked without touching the other.
        api_key: Some(!for_person),
        secure_page: page,
        rate_limit: None,
        quota: None,
    }
}

fn view(handoff: &Handoff, records: &HashMap<Uuid, RecordView>) -> HandoffView {
    let record = |uuid: Option<Uuid>, page: bool| {
        let r = records.get(&uuid?)?;
        Some(HandoffRecord {
            uuid: r.uuid,
            name: r.name.clone(),
            path: if page {
                format!("/secure/{}", r.uuid)
            } else {
                r.path.clone()
            },
            status: r.status,
            last_used_at: r.last_used_at,
        })
    };
    HandoffView {
        id: handoff.id,
        name: handoff.name.clone(),
        state: if handoff.ended_at.is_some() {
            HandoffState::Ended
        } else {
            HandoffState::Active
        },
        created_at: handoff.created_at,
        ends_at: handoff.ends_at,
        ended_at: handoff.ended_at,
        ended_by: handoff.ended_by.clone(),
        page_record: record(handoff.page_record, true),
        code_record: record(handoff.code_record, false),
        todo: handoff.ended_at.map(|_| HandoffTodo {
            task: TODO.to_owned(),
            done_at: handoff.todo_done_at,
        }),
    }
}

/// Whether a handoff's to-do still waits for its owner.
pub fn todo_open(view: &HandoffView) -> bool {
    view.todo.as_ref().is_some_and(|t| t.done_at.is_none())
}
