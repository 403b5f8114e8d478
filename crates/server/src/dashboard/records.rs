//! The secrets list and the Add secret form.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use brine_proto::{CreateRecord, RecordView};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::fields::Fields;
use super::record::{Extra, record_page};
use super::session::{MaybeSigned, Signed, Site};
use super::view::{Row, row};
use super::{Chrome, Nav, PageError, PageResult, render, see_other};
use crate::clock::now_ms;
use crate::forms::FormGuard;
use crate::owner::{OwnerError, Owners};

#[derive(Template)]
#[template(path = "dashboard/list.html")]
struct ListPage {
    chrome: Chrome,
    /// Ended handoffs whose upstream key is still to be rotated.
    todos: Vec<super::handoffs::TodoItem>,
    rows: Vec<Row>,
    /// How many secrets the account has in all (the filters may show fewer).
    total: usize,
    filter: ListFilter,
    base_url: String,
}

#[derive(Deserialize, Default)]
pub struct ListFilter {
    #[serde(default)]
    pub q: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub access: String,
    #[serde(default)]
    pub status: String,
}

impl ListFilter {
    fn admits(&self, record: &RecordView) -> bool {
        let q = self.q.trim().to_lowercase();
        (q.is_empty() || record.name.to_lowercase().contains(&q))
            && (self.kind.is_empty() || as_json_str(&record.kind) == self.kind)
            && (self.access.is_empty() || as_json_str(&record.access) == self.access)
            && (self.status.is_empty() || as_json_str(&record.status) == self.status)
    }

    pub fn any(&self) -> bool {
        !(self.q.trim().is_empty()
            && self.kind.is_empty()
            && self.access.is_empty()
            && self.status.is_empty())
    }

    pub fn is(&self, field: &str, value: &str) -> bool {
        let current = match field {
            "type" => &self.kind,
            "access" => &self.access,
            _ => &self.status,
        };
        current == value
    }
}

/// How a value is spelled in the JSON API (`"owner_only"`), which the filters use too.
fn as_json_str(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// `/`: the secrets list when signed in, else the sign-in page.
pub async fn home(
    State(forms): State<FormGuard>,
    State(owners): State<Owners>,
    State(site): State<Site>,
    State(handoffs): State<crate::handoffs::Handoffs>,
    MaybeSigned(owner): MaybeSigned,
    Query(filter): Query<ListFilter>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let Some(owner) = owner else {
        return Ok(see_other("/signin"));
    };
    let records = owners.list(owner.account).await.map_err(owner_fault)?;
    let now = now_ms();
    let total = records.len();
    let rows = records
        .iter()
        .filter(|r| filter.admits(r))
        .map(|r| row(r, now))
        .collect();
    let chrome = Chrome::new(&forms, &headers, true, Nav::Secrets)?;
    let todos = super::handoffs::todos(&handoffs, owner.account).await?;
    let page = ListPage {
        chrome,
        todos,
        rows,
        total,
        filter,
        base_url: site.base_url.clone(),
    };
    render(&page, &page.chrome, StatusCode::OK)
}

/// What the Add secret form shows again after an error: everything typed except secrets (the
/// value, passwords, a bridge's URLs and header values, which are typed again).
#[derive(Default)]
pub struct Draft {
    pub bridge: bool,
    pub name: String,
    pub access: String,
    pub sealed: bool,
    pub api_key: bool,
    pub params: String,
    pub page: bool,
    pub page_max_views: String,
    pub page_label: String,
    pub page_expires: String,
    pub expires: String,
    pub max_reads: String,
    pub rate_per_ip: String,
    pub rate_total: String,
    pub quota_requests: String,
    pub quota_per: String,
    pub header_names: Vec<String>,
    pub methods: Vec<String>,
    pub origins: String,
    pub bridge_params: String,
    pub paths: String,
    pub timeout_ms: String,
    pub total_timeout_ms: String,
    /// The key test (the bridge's probe).
    pub probe_on: bool,
    pub probe_method: String,
    pub probe_path: String,
    pub probe_accepted: String,
    /// Errors by field name; `""` for those that concern no one field.
    pub errors: Vec<(String, String)>,
}

impl Draft {
    fn fresh() -> Self {
        Self {
            access: "private".into(),
            api_key: true,
            methods: vec!["GET".into()],
            header_names: vec![String::new()],
            quota_per: "day".into(),
            probe_method: "GET".into(),
            probe_accepted: "200".into(),
            ..Self::default()
        }
    }

    fn from_fields(f: &Fields) -> Self {
        let mut header_names: Vec<String> = f
            .all("header_name")
            .into_iter()
            .map(|n| n.trim().to_owned())
            .collect();
        if header_names.is_empty() {
            header_names.push(String::new());
        }
        Self {
            bridge: f.text("kind") == "bridge",
            name: f.text("name").trim().to_owned(),
            access: f.text("access").to_owned(),
            sealed: f.ticked("sealed"),
            api_key: f.ticked("api_key"),
            params: f.text("params").to_owned(),
            page: f.ticked("secure_page"),
            page_max_views: f.text("page_max_views").trim().to_owned(),
            page_label: f.text("page_label").trim().to_owned(),
            page_expires: f.text("page_expires").to_owned(),
            expires: f.text("expires").to_owned(),
            max_reads: f.text("max_reads").trim().to_owned(),
            rate_per_ip: f.text("rate_per_ip").trim().to_owned(),
            rate_total: f.text("rate_total").trim().to_owned(),
            quota_requests: f.text("quota_requests").trim().to_owned(),
            quota_per: f.text("quota_per").to_owned(),
            header_names,
            methods: f.all("methods").into_iter().map(str::to_owned).collect(),
            origins: f.text("origins").to_owned(),
            bridge_params: f.text("bridge_params").to_owned(),
            paths: f.text("paths").to_owned(),
            timeout_ms: f.text("timeout_ms").trim().to_owned(),
            total_timeout_ms: f.text("total_timeout_ms").trim().to_owned(),
            probe_on: f.ticked("probe_on"),
            probe_method: f.text("probe_method").to_owned(),
            probe_path: f.text("probe_path").trim().to_owned(),
            probe_accepted: f.text("probe_accepted").trim().to_owned(),
            errors: Vec::new(),
        }
    }

    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Errors that belong to no field shown on the form.
    pub fn general_errors(&self) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(f, _)| !FORM_FIELDS.contains(&f.as_str()))
            .map(|(_, m)| m.as_str())
            .collect()
    }

    pub fn method(&self, m: &str) -> bool {
        self.methods.iter().any(|x| x == m)
    }

    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push((field.to_owned(), message.into()));
    }
}

/// The fields the form shows errors beside.
const FORM_FIELDS: &[&str] = &[
    "name",
    "access",
    "data",
    "params",
    "password",
    "secure_page",
    "secure_page.password",
    "secure_page.max_views",
    "label",
    "expires_at",
    "max_reads",
    "rate_limit",
    "quota",
    "bridge.url",
    "bridge.headers",
    "bridge",
    "bridge.fallback_urls",
];

#[derive(Template)]
#[template(path = "dashboard/new.html")]
struct NewPage {
    chrome: Chrome,
    draft: Draft,
    durations: &'static [(&'static str, &'static str)],
    methods: &'static [&'static str],
}

pub const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
pub const DURATIONS: [(&str, &str); 7] = [
    ("", "Never"),
    ("1h", "In 1 hour"),
    ("1d", "In 24 hours"),
    ("7d", "In 7 days"),
    ("30d", "In 30 days"),
    ("90d", "In 90 days"),
    ("365d", "In a year"),
];

fn new_page(
    forms: &FormGuard,
    headers: &HeaderMap,
    draft: Draft,
    status: StatusCode,
) -> PageResult<Response> {
    let chrome = Chrome::new(forms, headers, true, Nav::New)?;
    let page = NewPage {
        chrome,
        draft,
        durations: &DURATIONS,
        methods: &METHODS,
    };
    render(&page, &page.chrome, status)
}

pub async fn new(
    State(forms): State<FormGuard>,
    Signed(_): Signed,
    headers: HeaderMap,
) -> PageResult<Response> {
    new_page(&forms, &headers, Draft::fresh(), StatusCode::OK)
}

/// A duration from the form's choices, as a time from now.
fn expiry(choice: &str, now: OffsetDateTime) -> Option<String> {
    let hours = match choice {
        "1h" => 1,
        "1d" => 24,
        "7d" => 24 * 7,
        "30d" => 24 * 30,
        "90d" => 24 * 90,
        "365d" => 24 * 365,
        _ => return None,
    };
    (now + Duration::hours(hours)).format(&Rfc3339).ok()
}

/// A duration from the form's choices, as a time from now (`None` for "never" and unknowns).
pub fn expiry_from(choice: &str) -> Option<String> {
    expiry(choice, now_ms())
}

/// A whole number typed in a field, or an error beside it.
fn number(draft: &mut Draft, field: &str, text: &str) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    match text.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            draft.fail(field, "Enter a whole number.");
            None
        }
    }
}

/// The JSON API's body for this form, so that the form follows exactly the API's rules.
fn request(f: &Fields, draft: &mut Draft) -> Value {
    let now = now_ms();
    let mut body = Map::new();
    body.insert("name".into(), json!(draft.name));
    body.insert("access".into(), json!(draft.access));
    let private = draft.access == "private";
    if draft.bridge {
        body.insert("type".into(), json!("bridge"));
        let mut headers = Map::new();
        for (name, value) in f.all("header_name").iter().zip(f.all("header_value")) {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            headers.insert(name.to_owned(), json!(value));
        }
        let mut bridge = Map::new();
        bridge.insert("url".into(), json!(f.text("bridge_url").trim()));
        bridge.insert("headers".into(), Value::Object(headers));
        bridge.insert("fallback_urls".into(), json!(f.lines("fallbacks")));
        bridge.insert("allowed_methods".into(), json!(draft.methods));
        bridge.insert("allowed_origins".into(), json!(f.lines("origins")));
        bridge.insert("allowed_paths".into(), json!(f.lines("paths")));
        bridge.insert("params".into(), json!(names(&draft.bridge_params)));
        let timeout = draft.timeout_ms.clone();
        if let Some(ms) = number(draft, "bridge", &timeout) {
            bridge.insert("timeout_ms".into(), json!(ms));
        }
        let total = draft.total_timeout_ms.clone();
        if let Some(ms) = number(draft, "bridge", &total) {
            bridge.insert("total_timeout_ms".into(), json!(ms));
        }
        match super::bridge_form::probe(f) {
            Ok(Value::Null) => {}
            Ok(probe) => {
                bridge.insert("probe".into(), probe);
            }
            Err(message) => draft.fail("bridge", message),
        }
        body.insert("bridge".into(), Value::Object(bridge));
    } else {
        body.insert("data".into(), json!(f.text("data")));
        let params = names(&draft.params);
        if !params.is_empty() {
            body.insert("params".into(), json!(params));
        }
        if private && let Some(password) = f.secret("record_password") {
            body.insert("password".into(), json!(password));
        }
        if private && draft.page {
            let mut page = Map::new();
            page.insert("enabled".into(), json!(true));
            page.insert("password".into(), json!(f.text("page_password")));
            let views = draft.page_max_views.clone();
            if let Some(n) = number(draft, "secure_page.max_views", &views) {
                page.insert("max_views".into(), json!(n));
            }
            if let Some(at) = expiry(&draft.page_expires, now) {
                page.insert("expires_at".into(), json!(at));
            }
            if !draft.page_label.is_empty() {
                page.insert("label".into(), json!(draft.page_label));
            }
            body.insert("secure_page".into(), Value::Object(page));
        }
    }
    if private {
        body.insert("sealed".into(), json!(draft.sealed));
        body.insert("api_key".into(), json!(draft.api_key));
    }
    if let Some(at) = expiry(&draft.expires, now) {
        body.insert("expires_at".into(), json!(at));
    }
    let reads = draft.max_reads.clone();
    if let Some(n) = number(draft, "max_reads", &reads) {
        body.insert("max_reads".into(), json!(n));
    }
    let mut rate = Map::new();
    if !draft.rate_per_ip.is_empty() {
        rate.insert("per_ip".into(), json!(draft.rate_per_ip));
    }
    if !draft.rate_total.is_empty() {
        rate.insert("total".into(), json!(draft.rate_total));
    }
    if !rate.is_empty() {
        body.insert("rate_limit".into(), Value::Object(rate));
    }
    let requests = draft.quota_requests.clone();
    if let Some(n) = number(draft, "quota", &requests) {
        body.insert(
            "quota".into(),
            json!({"requests": n, "per": draft.quota_per}),
        );
    }
    Value::Object(body)
}

/// Names typed as a list, separated by commas, spaces or lines.
fn names(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn create(
    State(forms): State<FormGuard>,
    State(owners): State<Owners>,
    State(webhooks): State<crate::webhooks::Webhooks>,
    State(site): State<Site>,
    Signed(owner): Signed,
    headers: HeaderMap,
    fields: Fields,
) -> PageResult<Response> {
    forms.check(&headers, fields.form_token())?;
    let mut draft = Draft::from_fields(&fields);
    let body = request(&fields, &mut draft);
    drop(fields);
    if !draft.errors.is_empty() {
        return new_page(&forms, &headers, draft, StatusCode::BAD_REQUEST);
    }
    let body: CreateRecord = match serde_json::from_value(body) {
        Ok(body) => body,
        Err(e) => {
            // serde names the field, never the value.
            draft.fail("", format!("This form could not be read: {e}"));
            return new_page(&forms, &headers, draft, StatusCode::BAD_REQUEST);
        }
    };
    match owners.create(owner.account, body).await {
        Ok((record, key)) => {
            let extra = Extra {
                new_key: key,
                ..Extra::default()
            };
            let uuid = record.uuid;
            record_page(
                &forms,
                &owners,
                &webhooks,
                &site,
                &headers,
                owner,
                uuid,
                extra,
                StatusCode::CREATED,
            )
            .await
        }
        Err(e) => {
            let (field, message) = owner_refusal(e)?;
            draft.fail(field, message);
            new_page(&forms, &headers, draft, StatusCode::BAD_REQUEST)
        }
    }
}

/// An owner operation's refusal, as a field and a message to show beside it; faults become the
/// error page.
pub fn owner_refusal(e: OwnerError) -> PageResult<(&'static str, String)> {
    match e {
        OwnerError::NotFound => Err(PageError::NotFound),
        OwnerError::Invalid { field, message } => {
            let field = if field.is_empty() {
                field_of(&message)
            } else {
                field
            };
            Ok((field, message))
        }
        OwnerError::Conflict { message, .. } => Ok(("", message.to_owned())),
        OwnerError::KeyRequired => Ok((
            "",
            "This sealed secret needs its current X-API-Key for that.".to_owned(),
        )),
        e @ (OwnerError::Upstream(_) | OwnerError::KeyCheck(_)) => Ok((
            "",
            // The API's words for skipping a bridge key's test, in the form's words.
            crate::error::ApiError::from(e)
                .body
                .message
                .replace("send \"verify\": false", "tick \"Save without testing\""),
        )),
        OwnerError::Fault(fault) => Err(fault.into()),
    }
}

/// The field an API message is about, from the field name it starts with.
fn field_of(message: &str) -> &'static str {
    FORM_FIELDS
        .iter()
        .rev()
        .find(|f| message.starts_with(&format!("{f}:")) || message.starts_with(&format!("{f} ")))
        .copied()
        .unwrap_or("")
}

pub fn owner_fault(e: OwnerError) -> PageError {
    match e {
        OwnerError::NotFound => PageError::NotFound,
        OwnerError::Fault(fault) => fault.into(),
        other => {
            tracing::error!(error = ?other, "an owner operation failed on a page");
            PageError::Internal
        }
    }
}
