//! The Service tokens page: make a read-only token for CI or a server, scoped to chosen
//! secrets, see what each token reads and when it was last used, revoke one. The same
//! [`ServiceTokens`] operations as the JSON API.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use brine_core::RecordKind;
use time::Duration;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::fields::Fields;
use super::records::owner_fault;
use super::session::Signed;
use super::view::{When, when};
use super::{Chrome, Nav, PageError, PageResult, render, see_other};
use crate::clock::now_ms;
use crate::extract::{ClientInfo, canonical_uuid};
use crate::forms::FormGuard;
use crate::owner::Owners;
use crate::service_tokens::{ServiceTokens, TokenError};

/// The lifetimes offered: (value, label).
const LIFETIMES: &[(&str, &str, i64)] = &[
    ("7", "7 days", 7),
    ("30", "30 days", 30),
    ("90", "90 days", 90),
    ("365", "1 year", 365),
];

pub struct TokenLine {
    pub id: String,
    pub name: String,
    pub reads: String,
    pub expires: When,
    pub expired: bool,
    pub last_used: Option<When>,
}

/// A secret a token can read: one of the owner's credentials with a server slot.
pub struct Choice {
    pub uuid: String,
    pub name: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "dashboard/tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenLine>,
    choices: Vec<Choice>,
    lifetimes: &'static [(&'static str, &'static str, i64)],
    chosen_lifetime: String,
    name: String,
    new_token: Option<Zeroizing<String>>,
    new_token_name: String,
    notice: Option<(String, bool)>,
    form_error: Option<String>,
}

/// What one answer adds to the page.
#[derive(Default)]
struct Extra {
    notice: Option<(String, bool)>,
    form_error: Option<String>,
    new_token: Option<(Zeroizing<String>, String)>,
    /// The form as sent, shown again beside its error.
    name: String,
    chosen: Vec<Uuid>,
    lifetime: String,
}

#[allow(clippy::too_many_arguments)]
async fn page(
    forms: &FormGuard,
    tokens: &ServiceTokens,
    owners: &Owners,
    headers: &HeaderMap,
    account: Uuid,
    extra: Extra,
    status: StatusCode,
) -> PageResult<Response> {
    let records = owners.list(account).await.map_err(owner_fault)?;
    let names: HashMap<Uuid, String> = records.iter().map(|r| (r.uuid, r.name.clone())).collect();
    let choices = records
        .iter()
        .filter(|r| r.kind == RecordKind::Credential && !r.sealed)
        .map(|r| Choice {
            uuid: r.uuid.to_string(),
            name: r.name.clone(),
            checked: extra.chosen.contains(&r.uuid),
        })
        .collect();
    let now = now_ms();
    let lines = tokens
        .list(account)
        .await?
        .into_iter()
        .map(|t| TokenLine {
            id: t.id.to_string(),
            reads: t
                .records
                .iter()
                .filter_map(|uuid| names.get(uuid).cloned())
                .collect::<Vec<_>>()
                .join(", "),
            name: t.name,
            expired: t.expires_at <= now,
            expires: when(t.expires_at, now),
            last_used: t.last_used_at.map(|at| when(at, now)),
        })
        .collect();
    let (new_token, new_token_name) = match extra.new_token {
        Some((token, name)) => (Some(token), name),
        None => (None, String::new()),
    };
    let chrome = Chrome::new(forms, headers, true, Nav::Tokens)?;
    let page = TokensPage {
        chrome,
        tokens: lines,
        choices,
        lifetimes: LIFETIMES,
        chosen_lifetime: if extra.lifetime.is_empty() {
            "90".to_owned()
        } else {
            extra.lifetime
        },
        name: extra.name,
        new_token,
        new_token_name,
        notice: extra.notice,
        form_error: extra.form_error,
    };
    render(&page, &page.chrome, status)
}

pub async fn show(
    State(forms): State<FormGuard>,
    State(tokens): State<ServiceTokens>,
    State(owners): State<Owners>,
    Signed(owner): Signed,
    headers: HeaderMap,
) -> PageResult<Response> {
    let extra = Extra::default();
    page(
        &forms,
        &tokens,
        &owners,
        &headers,
        owner.account,
        extra,
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn create(
    State(forms): State<FormGuard>,
    State(tokens): State<ServiceTokens>,
    State(owners): State<Owners>,
    Signed(owner): Signed,
    client: ClientInfo,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let name = fields.text("name").trim().to_owned();
    let chosen: Vec<Uuid> = fields
        .all("records")
        .into_iter()
        .filter_map(canonical_uuid)
        .collect();
    let lifetime = fields.text("lifetime").to_owned();
    let days = LIFETIMES
        .iter()
        .find(|(value, _, _)| *value == lifetime)
        .map_or(90, |(_, _, days)| *days);
    let made = tokens
        .create(
            owner.account,
            &name,
            &chosen,
            now_ms() + Duration::days(days),
            &client,
        )
        .await;
    let (extra, status) = match made {
        Ok(issued) => (
            Extra {
                notice: Some((
                    format!("Made the service token \u{201c}{name}\u{201d}."),
                    false,
                )),
                new_token: Some((issued.token, name)),
                ..Extra::default()
            },
            StatusCode::CREATED,
        ),
        Err(TokenError::Fault(fault)) => return Err(fault.into()),
        Err(e) => {
            let (message, status) = match e {
                TokenError::Invalid(message) => (message, StatusCode::BAD_REQUEST),
                _ => (
                    "You have a token of that name; choose another name or revoke it first."
                        .to_owned(),
                    StatusCode::CONFLICT,
                ),
            };
            (
                Extra {
                    form_error: Some(message),
                    name,
                    chosen,
                    lifetime,
                    ..Extra::default()
                },
                status,
            )
        }
    };
    page(
        &forms,
        &tokens,
        &owners,
        &headers,
        owner.account,
        extra,
        status,
    )
    .await
}

pub async fn revoke(
    State(forms): State<FormGuard>,
    State(tokens): State<ServiceTokens>,
    Signed(owner): Signed,
    Path(raw): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let id = canonical_uuid(&raw).ok_or(PageError::NotFound)?;
    if !tokens.revoke(owner.account, id, &client).await? {
        return Err(PageError::NotFound);
    }
    Ok(see_other("/tokens"))
}
