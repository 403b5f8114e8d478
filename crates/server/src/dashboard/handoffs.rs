//! Handoffs on the dashboard: the wizard (for whom, the value, the end), the page it answers
//! with (the link and the password in separate boxes, the code's key in the key modal), each
//! handoff's page (its records, End now, the to-do) and the to-dos shown on the Secrets page.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use brine_proto::{CreateHandoff, HandoffRecord, HandoffState, HandoffView, Timestamp};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fields::Fields;
use super::records::{owner_fault, owner_refusal};
use super::session::{Signed, Site};
use super::view::{When, when};
use super::{Chrome, Nav, PageError, PageResult, render, see_other};
use crate::clock::now_ms;
use crate::extract::{ClientInfo, canonical_uuid};
use crate::forms::FormGuard;
use crate::handoffs::{Created, Handoffs, SWEEP_EVERY, todo_open};
use crate::owner::OwnerError;

/// How long a handoff runs, as the wizard offers it.
pub const LENGTHS: [(&str, &str, i64); 5] = [
    ("1d", "24 hours", 1),
    ("7d", "7 days", 7),
    ("14d", "14 days", 14),
    ("30d", "30 days", 30),
    ("90d", "90 days", 90),
];

/// An ended handoff whose "rotate the upstream key" is still to do, as the dashboard lists it.
pub struct TodoItem {
    pub id: Uuid,
    pub name: String,
    pub ended: When,
    pub page_used: Option<When>,
    pub code_used: Option<When>,
}

/// The to-dos among the owner's handoffs (for the Secrets page and the Handoffs page).
pub async fn todos(handoffs: &Handoffs, owner: Uuid) -> PageResult<Vec<TodoItem>> {
    let open = handoffs.open_todos(owner).await.map_err(owner_fault)?;
    let now = now_ms();
    Ok(open.iter().map(|h| todo(h, now)).collect())
}

fn todo(h: &HandoffView, now: OffsetDateTime) -> TodoItem {
    let used = |r: &Option<HandoffRecord>| {
        r.as_ref()
            .and_then(|r| r.last_used_at)
            .map(|t| when(t, now))
    };
    TodoItem {
        id: h.id,
        name: h.name.clone(),
        ended: when(h.ended_at.unwrap_or(h.ends_at), now),
        page_used: used(&h.page_record),
        code_used: used(&h.code_record),
    }
}

/// A handoff as its rows show it.
pub struct Line {
    pub id: Uuid,
    pub name: String,
    pub active: bool,
    pub ends: When,
    pub todo_open: bool,
}

#[derive(Template)]
#[template(path = "dashboard/handoffs.html")]
struct ListPage {
    chrome: Chrome,
    todos: Vec<TodoItem>,
    lines: Vec<Line>,
}

/// `/handoffs`: the to-dos, then every handoff, newest first.
pub async fn list(
    State(forms): State<FormGuard>,
    State(handoffs): State<Handoffs>,
    Signed(owner): Signed,
    headers: HeaderMap,
) -> PageResult<Response> {
    let all = handoffs.list(owner.account).await.map_err(owner_fault)?;
    let now = now_ms();
    let todos = all
        .iter()
        .filter(|h| todo_open(h))
        .map(|h| todo(h, now))
        .collect();
    let lines = all
        .iter()
        .map(|h| Line {
            id: h.id,
            name: h.name.clone(),
            active: h.state == HandoffState::Active,
            ends: when(h.ended_at.unwrap_or(h.ends_at), now),
            todo_open: todo_open(h),
        })
        .collect();
    let chrome = Chrome::new(&forms, &headers, true, Nav::Handoffs)?;
    let page = ListPage {
        chrome,
        todos,
        lines,
    };
    render(&page, &page.chrome, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "dashboard/handoff_new.html")]
struct NewPage {
    chrome: Chrome,
    name: String,
    length: String,
    lengths: &'static [(&'static str, &'static str, i64)],
    errors: Vec<(&'static str, String)>,
}

impl NewPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    fn general_errors(&self) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(f, _)| !["name", "data", "ends_at"].contains(f))
            .map(|(_, m)| m.as_str())
            .collect()
    }
}

fn new_page(
    forms: &FormGuard,
    headers: &HeaderMap,
    name: String,
    length: String,
    errors: Vec<(&'static str, String)>,
) -> PageResult<Response> {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let chrome = Chrome::new(forms, headers, true, Nav::Handoffs)?;
    let page = NewPage {
        chrome,
        name,
        length,
        lengths: &LENGTHS,
        errors,
    };
    render(&page, &page.chrome, status)
}

/// `/handoffs/new`: the wizard.
pub async fn new(
    State(forms): State<FormGuard>,
    Signed(_): Signed,
    headers: HeaderMap,
) -> PageResult<Response> {
    new_page(&forms, &headers, String::new(), "14d".into(), Vec::new())
}

/// What the page shows for a handoff just made: the secrets sent once.
struct Fresh {
    page_link: String,
    page_password: String,
    key: String,
    key_file: String,
    key_file_name: String,
}

#[derive(Template)]
#[template(path = "dashboard/handoff.html")]
struct HandoffPage {
    chrome: Chrome,
    h: HandoffView,
    active: bool,
    ends: When,
    ended: Option<When>,
    ended_early: bool,
    page: Option<RecordLine>,
    code: Option<RecordLine>,
    todo_open: bool,
    todo_done: Option<When>,
    fresh: Option<Fresh>,
    notice: Option<String>,
    sweep_secs: u64,
}

/// One of the handoff's records, as its page shows it.
struct RecordLine {
    uuid: Uuid,
    name: String,
    url: String,
    status: &'static str,
    active: bool,
    last_used: Option<When>,
}

fn record_line(r: &HandoffRecord, site: &Site, now: OffsetDateTime) -> RecordLine {
    RecordLine {
        uuid: r.uuid,
        name: r.name.clone(),
        url: format!("{}{}", site.base_url, r.path),
        status: super::view::status(r.status),
        active: r.status == brine_core::RecordStatus::Active,
        last_used: r.last_used_at.map(|t| when(t, now)),
    }
}

fn handoff_page(
    forms: &FormGuard,
    site: &Site,
    headers: &HeaderMap,
    h: HandoffView,
    fresh: Option<Fresh>,
    notice: Option<String>,
    status: StatusCode,
) -> PageResult<Response> {
    let now = now_ms();
    let chrome = Chrome::new(forms, headers, true, Nav::Handoffs)?;
    let page = HandoffPage {
        chrome,
        active: h.state == HandoffState::Active,
        ends: when(h.ends_at, now),
        ended: h.ended_at.map(|t| when(t, now)),
        ended_early: h.ended_by.as_deref() == Some("owner"),
        page: h.page_record.as_ref().map(|r| record_line(r, site, now)),
        code: h.code_record.as_ref().map(|r| record_line(r, site, now)),
        todo_open: todo_open(&h),
        todo_done: h
            .todo
            .as_ref()
            .and_then(|t| t.done_at)
            .map(|t| when(t, now)),
        h,
        fresh,
        notice,
        sweep_secs: SWEEP_EVERY.as_secs(),
    };
    render(&page, &page.chrome, status)
}

/// The end the wizard's choice names, from now.
fn ends_at(choice: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    LENGTHS
        .iter()
        .find(|(value, _, _)| *value == choice)
        .map(|(_, _, days)| now + Duration::days(*days))
}

/// POST `/handoffs/new`: makes the handoff and answers with what to send (never stored by the
/// browser: every answer is `no-store`).
pub async fn create(
    State(forms): State<FormGuard>,
    State(handoffs): State<Handoffs>,
    State(site): State<Site>,
    Signed(owner): Signed,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let name = fields.text("name").trim().to_owned();
    let length = fields.text("ends").to_owned();
    let data = fields.text("data").to_owned();
    drop(fields);
    let mut errors = Vec::new();
    if data.is_empty() {
        errors.push(("data", "Enter the value to hand over.".to_owned()));
    }
    let Some(ends) = ends_at(&length, now_ms()) else {
        errors.push(("ends_at", "Choose when the handoff ends.".to_owned()));
        return new_page(&forms, &headers, name, length, errors);
    };
    if !errors.is_empty() {
        return new_page(&forms, &headers, name, length, errors);
    }
    let body = CreateHandoff {
        name: name.clone(),
        data,
        ends_at: Timestamp(ends),
    };
    match handoffs.create(owner.account, body).await {
        Ok(created) => {
            let fresh = fresh(&created, &site);
            handoff_page(
                &forms,
                &site,
                &headers,
                created.view,
                Some(fresh),
                None,
                StatusCode::CREATED,
            )
        }
        Err(e) => {
            let (field, message) = owner_refusal(e)?;
            new_page(&forms, &headers, name, length, vec![(field, message)])
        }
    }
}

fn fresh(created: &Created, site: &Site) -> Fresh {
    let view = &created.view;
    let page_link = view
        .page_record
        .as_ref()
        .map(|r| format!("{}{}", site.base_url, r.path))
        .unwrap_or_default();
    let (code_name, read_url, uuid) = view
        .code_record
        .as_ref()
        .map(|r| {
            (
                r.name.clone(),
                format!("{}{}", site.base_url, r.path),
                r.uuid.to_string(),
            )
        })
        .unwrap_or_default();
    let key = created.api_key.expose().to_owned();
    let key_file = format!(
        "brine X-API-Key for \"{code_name}\"\n\
         It is shown once: keep this file somewhere safe, or delete it once the key is stored.\n\
         It stops working when the handoff ends ({ends}).\n\n\
         X-API-Key: {key}\n\
         Record uuid: {uuid}\n\
         Read it at: {read_url}\n\n\
         curl -H \"X-API-Key: {key}\" {read_url}\n",
        ends = when(view.ends_at, now_ms()).exact,
    );
    Fresh {
        page_link,
        page_password: created.page_password.to_string(),
        key,
        key_file,
        key_file_name: super::record::file_name(&code_name),
    }
}

fn handoff_id(raw: &str) -> PageResult<Uuid> {
    canonical_uuid(raw).ok_or(PageError::NotFound)
}

/// `/handoffs/{id}`.
pub async fn show(
    State(forms): State<FormGuard>,
    State(handoffs): State<Handoffs>,
    State(site): State<Site>,
    Signed(owner): Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let id = handoff_id(&raw)?;
    let h = handoffs
        .show(owner.account, id)
        .await
        .map_err(owner_fault)?;
    handoff_page(&forms, &site, &headers, h, None, None, StatusCode::OK)
}

/// POST `/handoffs/{id}/end`: End now.
pub async fn end(
    State(forms): State<FormGuard>,
    State(handoffs): State<Handoffs>,
    Signed(owner): Signed,
    Path(raw): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let id = handoff_id(&raw)?;
    handoffs
        .end(owner.account, id, &client)
        .await
        .map_err(owner_fault)?;
    Ok(see_other(&format!("/handoffs/{id}")))
}

/// POST `/handoffs/{id}/done`: ticks the to-do; back to where it was ticked.
pub async fn done(
    State(forms): State<FormGuard>,
    State(handoffs): State<Handoffs>,
    Signed(owner): Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let id = handoff_id(&raw)?;
    let back = match fields.text("back") {
        "home" => "/".to_owned(),
        "list" => "/handoffs".to_owned(),
        _ => format!("/handoffs/{id}"),
    };
    match handoffs.done(owner.account, id).await {
        Ok(_) => Ok(see_other(&back)),
        // Still running (a stale page): its own page says so.
        Err(OwnerError::Conflict { .. }) => Ok(see_other(&format!("/handoffs/{id}"))),
        Err(e) => Err(owner_fault(e)),
    }
}
