//! A record's page: how to hand it out, its settings, its key and secure page, its timeline;
//! and the forms that change it. Each form calls the owner operation the JSON API calls.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use brine_bridge::select::Selector;
use brine_core::{Access, RecordKind};
use brine_crypto::ApiKey;
use brine_proto::{
    EventQuery, KeyTestResult, RecordView, SecurePageBody, TryCall, UpdateRecord, WebhookBody,
    WebhookView,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::fields::Fields;
use super::records::{DURATIONS, METHODS, owner_fault, owner_refusal};
use super::session::{Signed, Site};
use super::view::{EventLine, When, event_line, when};
use super::{Chrome, Nav, PageError, PageResult, render, see_other};
use crate::auth::Owner;
use crate::clock::now_ms;
use crate::extract::{ClientInfo, canonical_uuid};
use crate::forms::FormGuard;
use crate::owner::{OwnerError, Owners};
use crate::webhooks::{EventType, Webhooks};

/// What a record page shows besides the record: a key just made, a value just revealed, the
/// outcome of the form just sent.
#[derive(Default)]
pub struct Extra {
    pub new_key: Option<ApiKey>,
    pub revealed: Option<Zeroizing<String>>,
    /// A message for the whole page, and whether it reports an error.
    pub notice: Option<(String, bool)>,
    /// Which form an error belongs to, and the error.
    pub form_error: Option<(&'static str, String)>,
    /// The timeline's page and filters (from the page's address).
    pub before: Option<i64>,
    pub outcome: Option<String>,
    pub q: Option<String>,
    /// A webhook signing secret just issued (shown once).
    pub webhook_secret: Option<String>,
    /// What the bridge's key test just found.
    pub key_test: Option<KeyTestResult>,
}

#[derive(Template)]
#[template(path = "dashboard/record.html")]
struct RecordPage<'a> {
    chrome: Chrome,
    r: &'a RecordView,
    uuid: String,
    read_url: String,
    page_url: String,
    curl: String,
    new_key: Option<&'a str>,
    key_file: String,
    key_file_name: String,
    revealed: Option<&'a str>,
    notice: Option<(&'a str, bool)>,
    form_error: Option<(&'static str, &'a str)>,
    events: Vec<EventLine>,
    /// The address of the timeline's next page, with the same filters.
    older: Option<String>,
    /// Requests and errors over the last 24 hours.
    chart: super::chart::Chart,
    outcomes: &'static [(&'static str, &'static str)],
    outcome: String,
    q: String,
    created: When,
    last_used: Option<When>,
    expires: Option<When>,
    page_expires: Option<When>,
    durations: &'static [(&'static str, &'static str)],
    methods: &'static [&'static str],
    access: &'static str,
    kind: &'static str,
    status: &'static str,
    is_bridge: bool,
    is_private: bool,
    webhook: Option<WebhookView>,
    webhook_secret: Option<&'a str>,
    /// The events a webhook can send: value, label, ticked.
    webhook_events: Vec<(&'static str, &'static str, bool)>,
    key_test: Option<&'a KeyTestResult>,
}

impl RecordPage<'_> {
    /// The error of the form named `form`, if it is the one that failed.
    pub fn error_of(&self, form: &str) -> Option<&str> {
        self.form_error
            .filter(|(f, _)| *f == form)
            .map(|(_, message)| message)
    }

    pub fn allows(&self, method: &str) -> bool {
        self.r.bridge.as_ref().is_some_and(|b| {
            b.allowed_methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method))
        })
    }

    pub fn origins_text(&self) -> String {
        self.r
            .bridge
            .as_ref()
            .map_or_else(String::new, |b| b.allowed_origins.join("\n"))
    }

    pub fn paths_text(&self) -> String {
        self.r
            .bridge
            .as_ref()
            .map_or_else(String::new, |b| b.allowed_paths.join("\n"))
    }

    /// A quota period as the form spells it.
    pub fn period(&self, per: &brine_core::QuotaPeriod) -> &'static str {
        match per {
            brine_core::QuotaPeriod::Hour => "hour",
            brine_core::QuotaPeriod::Day => "day",
            brine_core::QuotaPeriod::Month => "month",
        }
    }

    /// The bridge's key test, when it has one.
    pub fn probe(&self) -> Option<&brine_core::Probe> {
        self.r.bridge.as_ref().and_then(|b| b.probe.as_deref())
    }

    pub fn probe_method_is(&self, method: &str) -> bool {
        self.probe()
            .map_or(method == "GET", |p| p.method.eq_ignore_ascii_case(method))
    }

    pub fn probe_path(&self) -> &str {
        self.probe().map_or("", |p| p.path.as_str())
    }

    pub fn probe_accepted(&self) -> String {
        self.probe().map_or_else(
            || "200".to_owned(),
            |p| {
                p.accepted
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        )
    }

    pub fn probe_params(&self) -> String {
        self.probe().map_or_else(String::new, |p| {
            p.params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    pub fn bridge_params(&self) -> String {
        self.r.bridge.as_ref().map_or_else(String::new, |b| {
            b.params
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// A file name from the record's name: letters, digits and dashes.
pub(super) fn file_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "brine-secret-api-key.txt".into()
    } else {
        format!("{out}-api-key.txt")
    }
}

/// The record page, with whatever `extra` carries.
#[allow(clippy::too_many_arguments)]
pub async fn record_page(
    forms: &FormGuard,
    owners: &Owners,
    webhooks: &Webhooks,
    site: &Site,
    headers: &HeaderMap,
    owner: Owner,
    uuid: Uuid,
    extra: Extra,
    status: StatusCode,
) -> PageResult<Response> {
    let record = owners
        .show(owner.account, uuid)
        .await
        .map_err(owner_fault)?;
    let query = EventQuery {
        limit: Some(50),
        before: extra.before,
        outcome: extra.outcome.clone(),
        q: extra.q.clone(),
        ..EventQuery::default()
    };
    let list = owners
        .events(owner.account, uuid, query)
        .await
        .map_err(owner_fault)?;
    let series = owners
        .usage_series(
            owner.account,
            brine_proto::SeriesQuery {
                bucket: Some("hour".into()),
                record: Some(uuid),
                ..Default::default()
            },
        )
        .await
        .map_err(owner_fault)?;
    let now = now_ms();
    let outcome = extra.outcome.clone().unwrap_or_default();
    let q = extra.q.clone().unwrap_or_default();
    let older = (list.events.len() == 50)
        .then(|| list.events.last().map(|e| e.id))
        .flatten()
        .map(|id| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("before", &id.to_string());
            if !outcome.is_empty() {
                query.append_pair("outcome", &outcome);
            }
            if !q.is_empty() {
                query.append_pair("q", &q);
            }
            format!("/records/{uuid}?{}", query.finish())
        });
    let events = list.events.iter().map(|e| event_line(e, now)).collect();
    let read_url = format!("{}/r/{uuid}", site.base_url);
    let page_url = format!("{}/secure/{uuid}", site.base_url);
    let curl = match record.access {
        Access::Private => format!("curl -H \"X-API-Key: $BRINE_KEY\" {read_url}"),
        _ => format!("curl {read_url}"),
    };
    let key = extra.new_key.as_ref().map(|k| k.expose());
    let key_file = key.map_or_else(String::new, |key| {
        format!(
            "brine X-API-Key for \"{name}\"\n\
             It is shown once: keep this file somewhere safe, or delete it once the key is stored.\n\n\
             X-API-Key: {key}\n\
             Record uuid: {uuid}\n\
             Read it at: {read_url}\n\n\
             curl -H \"X-API-Key: {key}\" {read_url}\n",
            name = record.name
        )
    });
    let webhook = webhooks
        .show(owner.account, uuid)
        .await
        .map_err(owner_fault)?;
    let webhook_events = EventType::ALL
        .iter()
        .map(|e| {
            let ticked = webhook
                .as_ref()
                .is_none_or(|w| w.events.iter().any(|x| x == e.as_str()));
            (e.as_str(), webhook_label(*e), ticked)
        })
        .collect();
    let chrome = Chrome::new(forms, headers, true, Nav::None)?;
    let page = RecordPage {
        chrome,
        uuid: uuid.to_string(),
        read_url,
        page_url,
        curl,
        new_key: key,
        key_file,
        key_file_name: file_name(&record.name),
        revealed: extra.revealed.as_deref().map(String::as_str),
        notice: extra.notice.as_ref().map(|(m, e)| (m.as_str(), *e)),
        form_error: extra.form_error.as_ref().map(|(f, m)| (*f, m.as_str())),
        events,
        older,
        chart: super::chart::chart(&series.total, &series.bucket),
        outcomes: TIMELINE_OUTCOMES,
        outcome,
        q,
        created: when(record.created_at, now),
        last_used: record.last_used_at.map(|at| when(at, now)),
        expires: record.expires_at.map(|at| when(at, now)),
        page_expires: record
            .secure_page
            .as_ref()
            .and_then(|p| p.expires_at)
            .map(|at| when(at, now)),
        durations: &DURATIONS,
        methods: &METHODS,
        access: super::view::access(record.access),
        kind: super::view::kind(record.kind),
        status: super::view::status(record.status),
        is_bridge: record.kind == RecordKind::Bridge,
        is_private: record.access == Access::Private,
        webhook,
        webhook_secret: extra.webhook_secret.as_deref(),
        webhook_events,
        key_test: extra.key_test.as_ref(),
        r: &record,
    };
    render(&page, &page.chrome, status)
}

/// A webhook event in the owner's words.
fn webhook_label(event: EventType) -> &'static str {
    match event {
        EventType::FirstReveal => "The secure page is revealed for the first time",
        EventType::FirstUseAfterRotation => "The first use after the key is rotated",
        EventType::FailedAttemptsBurst => "A burst of failed attempts (10 within 5 minutes)",
        EventType::IntakeReceived => "A value arrives through an intake link",
    }
}

fn parse_uuid(raw: &str) -> PageResult<Uuid> {
    canonical_uuid(raw).ok_or(PageError::NotFound)
}

#[derive(Deserialize)]
pub struct EventsPage {
    before: Option<i64>,
    outcome: Option<String>,
    q: Option<String>,
}

/// What the timeline can be narrowed to, in the words of its lines.
const TIMELINE_OUTCOMES: &[(&str, &str)] = &[
    ("", "Everything"),
    ("ok", "Used (and your views)"),
    ("opened", "Opened"),
    ("revealed", "Revealed"),
    ("denied", "Refused: key, password or rules"),
    ("rate_limited", "Refused: over a limit"),
    ("key_tested", "Key tests"),
    ("key_refused", "New keys refused"),
    ("gone", "Refused: expired, used up or disabled"),
    ("received", "Received through an intake link"),
    ("delivered", "Webhook delivered"),
    ("delivery_failed", "Webhook delivery failed"),
];

#[allow(clippy::too_many_arguments)]
pub async fn show(
    State(forms): State<FormGuard>,
    State(owners): State<Owners>,
    State(webhooks): State<Webhooks>,
    State(site): State<Site>,
    Signed(owner): Signed,
    Path(raw): Path<String>,
    Query(page): Query<EventsPage>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let uuid = parse_uuid(&raw)?;
    let extra = Extra {
        before: page.before,
        outcome: page.outcome.filter(|o| !o.is_empty()),
        q: page.q.filter(|q| !q.trim().is_empty()),
        ..Extra::default()
    };
    record_page(
        &forms,
        &owners,
        &webhooks,
        &site,
        &headers,
        owner,
        uuid,
        extra,
        StatusCode::OK,
    )
    .await
}

/// Everything a record form's handler needs, checked: the owner, the record, the form.
pub struct Posted {
    forms: FormGuard,
    owners: Owners,
    webhooks: Webhooks,
    site: Site,
    headers: HeaderMap,
    owner: Owner,
    uuid: Uuid,
    client: ClientInfo,
    fields: Fields,
}

impl Posted {
    #[allow(clippy::too_many_arguments)]
    fn check(
        forms: FormGuard,
        owners: Owners,
        webhooks: Webhooks,
        site: Site,
        headers: HeaderMap,
        owner: Owner,
        raw: &str,
        client: ClientInfo,
        fields: Fields,
    ) -> PageResult<Self> {
        forms.check(&headers, fields.form_token())?;
        Ok(Self {
            uuid: parse_uuid(raw)?,
            forms,
            owners,
            webhooks,
            site,
            headers,
            owner,
            client,
            fields,
        })
    }

    async fn page(self, extra: Extra, status: StatusCode) -> PageResult<Response> {
        record_page(
            &self.forms,
            &self.owners,
            &self.webhooks,
            &self.site,
            &self.headers,
            self.owner,
            self.uuid,
            extra,
            status,
        )
        .await
    }

    /// The record page again, with the error beside the form that failed.
    async fn failed(self, form: &'static str, e: OwnerError) -> PageResult<Response> {
        let (_, message) = owner_refusal(e)?;
        let extra = Extra {
            form_error: Some((form, message)),
            ..Extra::default()
        };
        self.page(extra, StatusCode::BAD_REQUEST).await
    }

    fn done(&self) -> Response {
        see_other(&format!("/records/{}", self.uuid))
    }
}

macro_rules! posted {
    ($name:ident, |$p:ident| $body:block) => {
        #[allow(clippy::too_many_arguments)]
        pub async fn $name(
            State(forms): State<FormGuard>,
            State(owners): State<Owners>,
            State(webhooks): State<Webhooks>,
            State(site): State<Site>,
            Signed(owner): Signed,
            Path(raw): Path<String>,
            client: ClientInfo,
            headers: HeaderMap,
            fields: Fields,
        ) -> PageResult<Response> {
            let $p = Posted::check(
                forms, owners, webhooks, site, headers, owner, &raw, client, fields,
            )?;
            $body
        }
    };
}

/// A change through the JSON API's `PATCH` body, so that the page follows its rules exactly.
async fn change(p: Posted, form: &'static str, body: Value) -> PageResult<Response> {
    let body: UpdateRecord = match serde_json::from_value(body) {
        Ok(body) => body,
        Err(e) => {
            return p
                .failed(
                    form,
                    OwnerError::invalid(format!("This form could not be read: {e}")),
                )
                .await;
        }
    };
    match p
        .owners
        .change(p.owner.account, p.uuid, body, &p.client)
        .await
    {
        // A record moved back to private gets a new key: shown once, here.
        Ok((_, Some(key))) => {
            let extra = Extra {
                new_key: Some(key),
                notice: Some(("Saved.".into(), false)),
                ..Extra::default()
            };
            p.page(extra, StatusCode::OK).await
        }
        Ok((_, None)) => Ok(p.done()),
        Err(e) => p.failed(form, e).await,
    }
}

posted!(settings, |p| {
    let f = &p.fields;
    let mut body = Map::new();
    body.insert("name".into(), json!(f.text("name").trim()));
    if let Some(access) = f.filled("access") {
        body.insert("access".into(), json!(access));
    }
    match f.text("expires") {
        "keep" | "" => {}
        "never" => {
            body.insert("expires_at".into(), Value::Null);
        }
        choice => {
            if let Some(at) = super::records::expiry_from(choice) {
                body.insert("expires_at".into(), json!(at));
            }
        }
    }
    match f.filled("max_reads") {
        Some(n) => match n.parse::<i64>() {
            Ok(n) => {
                body.insert("max_reads".into(), json!(n));
            }
            Err(_) => {
                return p
                    .failed(
                        "settings",
                        OwnerError::invalid("max_reads: enter a whole number."),
                    )
                    .await;
            }
        },
        None => {
            body.insert("max_reads".into(), Value::Null);
        }
    }
    let mut rate = Map::new();
    if let Some(v) = f.filled("rate_per_ip") {
        rate.insert("per_ip".into(), json!(v));
    }
    if let Some(v) = f.filled("rate_total") {
        rate.insert("total".into(), json!(v));
    }
    body.insert(
        "rate_limit".into(),
        if rate.is_empty() {
            Value::Null
        } else {
            Value::Object(rate)
        },
    );
    match f.filled("quota_requests") {
        Some(n) => match n.parse::<i64>() {
            Ok(n) => {
                body.insert(
                    "quota".into(),
                    json!({"requests": n, "per": f.text("quota_per")}),
                );
            }
            Err(_) => {
                return p
                    .failed(
                        "settings",
                        OwnerError::invalid("quota: enter a whole number."),
                    )
                    .await;
            }
        },
        None => {
            body.insert("quota".into(), Value::Null);
        }
    }
    if f.ticked("remove_password") {
        body.insert("password".into(), Value::Null);
    } else if let Some(password) = f.secret("record_password") {
        body.insert("password".into(), json!(password));
    }
    change(p, "settings", Value::Object(body)).await
});

posted!(replace_value, |p| {
    let body = json!({"data": p.fields.text("data")});
    change(p, "value", body).await
});

posted!(edit_bridge, |p| {
    let patch = match super::bridge_form::merge_patch(&p.fields) {
        Ok(patch) => patch,
        Err(message) => return p.failed("bridge", OwnerError::invalid(message)).await,
    };
    // "Save without testing": the owner's explicit choice, for an upstream that is down.
    let verify = !p.fields.ticked("skip_verify");
    let body = json!({"bridge": patch, "verify": verify});
    change(p, "bridge", body).await
});

posted!(test_key, |p| {
    match p.owners.test_key(p.owner.account, p.uuid, &p.client).await {
        Ok(result) => {
            let extra = Extra {
                key_test: Some(result),
                ..Extra::default()
            };
            p.page(extra, StatusCode::OK).await
        }
        Err(e) => p.failed("key-test", e).await,
    }
});

posted!(reveal, |p| {
    match p.owners.reveal(p.owner.account, p.uuid, &p.client).await {
        Ok((_, value)) => {
            let extra = Extra {
                revealed: Some(value),
                ..Extra::default()
            };
            p.page(extra, StatusCode::OK).await
        }
        Err(e) => p.failed("reveal", e).await,
    }
});

posted!(rotate, |p| {
    let current = p.fields.filled("current_key").map(str::to_owned);
    match p
        .owners
        .rotate_key(p.owner.account, p.uuid, b"", current.as_deref(), &p.client)
        .await
    {
        Ok(key) => {
            let extra = Extra {
                new_key: Some(key),
                notice: Some((
                    "The old X-API-Key stopped working. Copy or download the new one now.".into(),
                    false,
                )),
                ..Extra::default()
            };
            p.page(extra, StatusCode::OK).await
        }
        Err(e) => p.failed("rotate", e).await,
    }
});

posted!(webhook, |p| {
    let f = &p.fields;
    let (account, uuid) = (p.owner.account, p.uuid);
    let extra = match f.text("action") {
        "remove" => match p.webhooks.remove(account, uuid, &p.client).await {
            Ok(_) => return Ok(p.done()),
            Err(e) => return p.failed("webhook", e).await,
        },
        "secret" => match p.webhooks.rotate_secret(account, uuid, &p.client).await {
            Ok(Some(secret)) => Extra {
                webhook_secret: Some(secret.expose().to_owned()),
                notice: Some((
                    "The old signing secret stopped signing. Copy the new one now.".into(),
                    false,
                )),
                ..Extra::default()
            },
            Ok(None) => return Ok(p.done()),
            Err(e) => return p.failed("webhook", e).await,
        },
        _ => {
            let body = WebhookBody {
                url: f.text("url").trim().to_owned(),
                events: f.all("events").into_iter().map(str::to_owned).collect(),
                failed_attempts: None,
            };
            match p.webhooks.put(account, uuid, body, &p.client).await {
                Ok((view, _)) => Extra {
                    notice: Some((
                        match view.secret {
                            Some(_) => {
                                "Webhook set. Copy its signing secret now: it is shown once."
                            }
                            None => "Webhook saved.",
                        }
                        .into(),
                        false,
                    )),
                    webhook_secret: view.secret,
                    ..Extra::default()
                },
                Err(e) => return p.failed("webhook", e).await,
            }
        }
    };
    p.page(extra, StatusCode::OK).await
});

posted!(secure_page, |p| {
    let f = &p.fields;
    let body = if f.text("action") == "disable" {
        SecurePageBody {
            enabled: false,
            password: None,
            expires_at: None,
            max_views: None,
            label: None,
        }
    } else {
        let max_views = match f.filled("page_max_views").map(str::parse::<i64>) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                return p
                    .failed(
                        "page",
                        OwnerError::invalid("max_views: enter a whole number."),
                    )
                    .await;
            }
        };
        let expires_at = super::records::expiry_from(f.text("page_expires"))
            .and_then(|at| serde_json::from_value(json!(at)).ok());
        SecurePageBody {
            enabled: true,
            password: f.secret("page_password"),
            expires_at,
            max_views,
            label: f.filled("page_label").map(str::to_owned),
        }
    };
    let current = f.filled("current_key").map(str::to_owned);
    match p
        .owners
        .set_secure_page(p.owner.account, p.uuid, body, current.as_deref(), &p.client)
        .await
    {
        Ok(_) => Ok(p.done()),
        Err(e) => p.failed("page", e).await,
    }
});

posted!(set_state, |p| {
    let enabled = p.fields.text("state") == "enable";
    match p
        .owners
        .set_enabled(p.owner.account, p.uuid, enabled, &p.client)
        .await
    {
        Ok(_) => Ok(p.done()),
        Err(e) => p.failed("state", e).await,
    }
});

posted!(delete, |p| {
    if !p.fields.ticked("confirm") {
        return p
            .failed(
                "delete",
                OwnerError::invalid("Tick the box to confirm: deleting cannot be undone."),
            )
            .await;
    }
    match p.owners.delete(p.owner.account, p.uuid).await {
        Ok(()) => Ok(see_other("/")),
        Err(e) => p.failed("delete", e).await,
    }
});

/// The playground's call, from the page's script: JSON in and out, with the form token in a
/// header (the page's cookie and token, like any form).
pub async fn try_call(
    State(forms): State<FormGuard>,
    State(owners): State<Owners>,
    Signed(owner): Signed,
    Path(raw): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    crate::extract::ApiJson(call): crate::extract::ApiJson<TryCall>,
) -> Response {
    let token = headers.get("x-form-token").and_then(|v| v.to_str().ok());
    if forms.check(&headers, token).is_err() {
        return PageError::CrossSite.json();
    }
    let Ok(uuid) = parse_uuid(&raw) else {
        return PageError::NotFound.json();
    };
    match owners.try_bridge(owner.account, uuid, call, &client).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct SelectPreview {
    body: Value,
    select: String,
}

/// What `select` picks from a JSON answer, worked out by the same code the bridges use, on an
/// answer the page already has (nothing is called).
pub async fn preview_select(
    State(forms): State<FormGuard>,
    Signed(_): Signed,
    headers: HeaderMap,
    crate::extract::ApiJson(preview): crate::extract::ApiJson<SelectPreview>,
) -> Response {
    let token = headers.get("x-form-token").and_then(|v| v.to_str().ok());
    if forms.check(&headers, token).is_err() {
        return PageError::CrossSite.json();
    }
    let selected = Selector::parse(&preview.select).and_then(|selector| {
        let answer = serde_json::to_vec(&preview.body).unwrap_or_default();
        selector.apply(&answer)
    });
    match selected.map(|bytes| serde_json::from_slice::<Value>(&bytes)) {
        Ok(Ok(result)) => Json(json!({"result": result})).into_response(),
        Ok(Err(_)) => crate::error::ApiError::bad_request("select: no JSON result").into_response(),
        Err(e) => crate::error::ApiError::bad_request(format!("select: {e}")).into_response(),
    }
}
