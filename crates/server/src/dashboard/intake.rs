//! The Intake links page: the owner's links (open, used, expired, revoked), the form that makes
//! one ("request a secret"), and revoking. A new link's address, its password and, for a new
//! credential, its X-API-Key are shown in the answer to the POST that made them, and never again.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use brine_core::RecordKind;
use brine_proto::{CreateIntake, IntakeInto, Timestamp};
use brine_store::{IntakeLink, IntakeTarget};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::fields::Fields;
use super::records::{DURATIONS, expiry_from, owner_fault, owner_refusal};
use super::session::{Signed, Site};
use super::view::{When, when};
use super::{Chrome, Nav, PageError, PageResult, render, see_other};
use crate::auth::Owner;
use crate::clock::now_ms;
use crate::extract::canonical_uuid;
use crate::forms::FormGuard;
use crate::owner::Owners;
use crate::owner::intake::{NewIntake, state};
use crate::routes::intake::link_url;

/// A link as a row of the list.
pub struct LinkRow {
    pub id: String,
    pub asked_for: String,
    /// Where the value goes, in words.
    pub into: String,
    /// The record it went into, once there is one to open.
    pub record: Option<String>,
    pub state: &'static str,
    pub open: bool,
    pub has_password: bool,
    pub created: When,
    pub expires: Option<When>,
    pub used: Option<When>,
}

fn row(link: &IntakeLink, names: &[(Uuid, String)], now: OffsetDateTime) -> LinkRow {
    let name_of = |uuid: Uuid| {
        names
            .iter()
            .find(|(u, _)| *u == uuid)
            .map(|(_, n)| n.clone())
    };
    let into = match &link.target {
        IntakeTarget::Credential { name, .. } => format!("New credential \"{name}\""),
        IntakeTarget::BridgeHeader { header, .. } => format!(
            "Header {header} of bridge \"{}\"",
            name_of(link.record).unwrap_or_else(|| "(deleted)".into())
        ),
    };
    let state = state(link, now);
    LinkRow {
        id: link.id.to_string(),
        asked_for: link.asked_for.clone(),
        into,
        record: name_of(link.record).map(|_| link.record.to_string()),
        state,
        open: state == "open",
        has_password: link.password_hash.is_some(),
        created: when(link.created_at, now),
        expires: link.expires_at.map(|at| when(at, now)),
        used: link.used_at.map(|at| when(at, now)),
    }
}

/// What the form shows again after an error (the password is typed again).
pub struct Draft {
    pub asked_for: String,
    pub into: String,
    pub name: String,
    pub bridge: String,
    pub header: String,
    pub template: String,
    pub expires: String,
    pub errors: Vec<(String, String)>,
}

impl Draft {
    fn fresh() -> Self {
        Self {
            asked_for: String::new(),
            into: "credential".into(),
            name: String::new(),
            bridge: String::new(),
            header: "Authorization".into(),
            template: "Bearer {{value}}".into(),
            expires: "7d".into(),
            errors: Vec::new(),
        }
    }

    fn from_fields(f: &Fields) -> Self {
        Self {
            asked_for: f.text("asked_for").trim().to_owned(),
            into: f.text("into").to_owned(),
            name: f.text("name").trim().to_owned(),
            bridge: f.text("bridge").to_owned(),
            header: f.text("header").trim().to_owned(),
            template: f.text("template").to_owned(),
            expires: f.text("expires").to_owned(),
            errors: Vec::new(),
        }
    }

    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Errors that belong to no field of the form.
    pub fn general_errors(&self) -> Vec<&str> {
        const FIELDS: [&str; 6] = [
            "asked_for",
            "name",
            "bridge",
            "header",
            "template",
            "password",
        ];
        self.errors
            .iter()
            .filter(|(f, _)| !FIELDS.contains(&f.as_str()))
            .map(|(_, m)| m.as_str())
            .collect()
    }
}

/// A link just made: what is shown once.
pub struct Created {
    pub url: String,
    pub password: Option<String>,
    pub asked_for: String,
    pub record: String,
    pub key: Option<String>,
    pub key_file: String,
    pub key_file_name: String,
}

#[derive(Template)]
#[template(path = "dashboard/intake.html")]
struct IntakePage {
    chrome: Chrome,
    rows: Vec<LinkRow>,
    /// The owner's bridges that can take a value (not sealed): (uuid, name).
    bridges: Vec<(String, String)>,
    draft: Draft,
    durations: &'static [(&'static str, &'static str)],
    created: Option<Created>,
}

#[allow(clippy::too_many_arguments)]
async fn intake_page(
    forms: &FormGuard,
    owners: &Owners,
    headers: &HeaderMap,
    owner: Owner,
    draft: Draft,
    created: Option<Created>,
    status: StatusCode,
) -> PageResult<Response> {
    let now = now_ms();
    let records = owners.list(owner.account).await.map_err(owner_fault)?;
    let names: Vec<(Uuid, String)> = records.iter().map(|r| (r.uuid, r.name.clone())).collect();
    let bridges = records
        .iter()
        .filter(|r| r.kind == RecordKind::Bridge && !r.sealed)
        .map(|r| (r.uuid.to_string(), r.name.clone()))
        .collect();
    let links = owners.intakes(owner.account).await.map_err(owner_fault)?;
    let rows = links.iter().map(|l| row(l, &names, now)).collect();
    let chrome = Chrome::new(forms, headers, true, Nav::Intake)?;
    let page = IntakePage {
        chrome,
        rows,
        bridges,
        draft,
        durations: &DURATIONS,
        created,
    };
    render(&page, &page.chrome, status)
}

pub async fn show(
    State(forms): State<FormGuard>,
    State(owners): State<Owners>,
    Signed(owner): Signed,
    headers: HeaderMap,
) -> PageResult<Response> {
    intake_page(
        &forms,
        &owners,
        &headers,
        owner,
        Draft::fresh(),
        None,
        StatusCode::OK,
    )
    .await
}

/// The API's body for this form, so that the form follows exactly the API's rules.
fn request(f: &Fields, draft: &mut Draft) -> Option<CreateIntake> {
    let into = if draft.into == "bridge_header" {
        let Some(bridge) = canonical_uuid(&draft.bridge) else {
            draft
                .errors
                .push(("bridge".into(), "Choose one of your bridges.".into()));
            return None;
        };
        IntakeInto::BridgeHeader {
            bridge,
            header: draft.header.clone(),
            template: draft.template.clone(),
        }
    } else {
        IntakeInto::Credential {
            name: Some(draft.name.clone()).filter(|n| !n.is_empty()),
        }
    };
    let expires_at = expiry_from(&draft.expires)
        .and_then(|at| OffsetDateTime::parse(&at, &Rfc3339).ok())
        .map(Timestamp);
    Some(CreateIntake {
        asked_for: draft.asked_for.clone(),
        password: f.secret("password"),
        expires_at,
        into,
    })
}

pub async fn create(
    State(forms): State<FormGuard>,
    State(owners): State<Owners>,
    State(site): State<Site>,
    Signed(owner): Signed,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let mut draft = Draft::from_fields(&fields);
    let password = fields.secret("password");
    let body = request(&fields, &mut draft);
    drop(fields);
    let Some(body) = body else {
        return intake_page(
            &forms,
            &owners,
            &headers,
            owner,
            draft,
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    match owners.create_intake(owner.account, body).await {
        Ok(NewIntake { link, token, key }) => {
            let url = link_url(&site, &token);
            let record = link.record.to_string();
            let read_url = format!("{}/r/{record}", site.base_url);
            let key_file = key.as_ref().map_or_else(String::new, |key| {
                format!(
                    "brine X-API-Key for \"{asked}\" (requested through an intake link)\n\
                     It is shown once: keep this file somewhere safe, or delete it once the key \
                     is stored.\n\
                     The value can be read once it has been sent through the link.\n\n\
                     X-API-Key: {key}\n\
                     Record uuid: {record}\n\
                     Read it at: {read_url}\n\n\
                     curl -H \"X-API-Key: {key}\" {read_url}\n",
                    asked = link.asked_for,
                    key = key.expose(),
                )
            });
            let created = Created {
                url,
                password,
                asked_for: link.asked_for.clone(),
                record,
                key: key.as_ref().map(|k| k.expose().to_owned()),
                key_file,
                key_file_name: "brine-intake-api-key.txt".into(),
            };
            intake_page(
                &forms,
                &owners,
                &headers,
                owner,
                Draft::fresh(),
                Some(created),
                StatusCode::CREATED,
            )
            .await
        }
        Err(e) => {
            let (field, message) = owner_refusal(e)?;
            draft.errors.push((field.to_owned(), message));
            intake_page(
                &forms,
                &owners,
                &headers,
                owner,
                draft,
                None,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

pub async fn revoke(
    State(forms): State<FormGuard>,
    State(owners): State<Owners>,
    Signed(owner): Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let id = canonical_uuid(&raw).ok_or(PageError::NotFound)?;
    match owners.revoke_intake(owner.account, id).await {
        // Revoking a link used meanwhile changes nothing; the list shows it as used.
        Ok(_) | Err(crate::owner::OwnerError::Conflict { .. }) => Ok(see_other("/intake-links")),
        Err(e) => Err(owner_fault(e)),
    }
}
