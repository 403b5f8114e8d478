//! The Logs page: the account's requests and errors over a range (chart), per secret (a
//! sortable table), and its event log (searchable, paged).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use brine_proto::{
    EventView, LogQuery, RecordUsageView, SeriesQuery, SummaryQuery, Timestamp, UsageSummary,
};
use serde::Deserialize;
use time::{Date, Duration, OffsetDateTime, Time};

use super::chart::{Chart, chart};
use super::records::owner_fault;
use super::session::Signed;
use super::view::{When, event_line, when};
use super::{Chrome, Nav, PageResult, render};
use crate::clock::now_ms;
use crate::forms::FormGuard;
use crate::owner::{OwnerError, Owners};

/// The ranges offered without picking dates.
const PRESETS: &[(&str, &str, Duration)] = &[
    ("1h", "Last hour", Duration::hours(1)),
    ("24h", "Last 24 hours", Duration::hours(24)),
    ("7d", "Last 7 days", Duration::days(7)),
    ("30d", "Last 30 days", Duration::days(30)),
];

/// What the event log can be narrowed to.
const OUTCOMES: &[(&str, &str)] = &[
    ("", "Everything"),
    ("ok", "Used"),
    ("opened", "Opened"),
    ("revealed", "Revealed"),
    ("denied", "Refused: key, password or rules"),
    ("rate_limited", "Refused: over a limit"),
    ("gone", "Refused: expired, used up or disabled"),
    ("timeout", "Upstream timed out"),
    ("unreachable", "Upstream unreachable"),
];

/// The table's sortable columns: (sort key, heading).
const COLUMNS: &[(&str, &str)] = &[
    ("name", "Secret"),
    ("requests", "Requests"),
    ("errors", "Errors"),
    ("p95", "p95 latency"),
    ("bytes", "Bytes"),
    ("last_seen", "Last seen"),
];

const EVENTS_PER_PAGE: u32 = 50;

#[derive(Deserialize, Default, Clone)]
pub struct LogsParams {
    #[serde(default)]
    range: String,
    /// Custom dates (UTC days, both included), which win over the preset.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    record: String,
    before: Option<i64>,
}

pub struct UsageRow {
    pub href: String,
    pub name: String,
    pub kind: String,
    pub deleted: bool,
    pub requests: i64,
    pub errors: i64,
    pub error_detail: String,
    pub p95: String,
    pub bytes: String,
    pub last_seen: Option<When>,
}

pub struct LogLine {
    pub what: String,
    pub when: When,
    pub record: String,
    pub record_href: Option<String>,
    pub client: String,
    pub answered: String,
}

pub struct Heading {
    pub label: &'static str,
    pub href: String,
    /// `ascending`, `descending` or `none` (for `aria-sort`).
    pub sorted: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard/logs.html")]
struct LogsPage {
    chrome: Chrome,
    params: LogsParams,
    presets: Vec<(&'static str, &'static str)>,
    outcomes: &'static [(&'static str, &'static str)],
    records: Vec<(String, String)>,
    notice: Option<String>,
    range_label: String,
    chart: Chart,
    summary: UsageSummary,
    headings: Vec<Heading>,
    rows: Vec<UsageRow>,
    events: Vec<LogLine>,
    older: Option<String>,
    export: String,
}

pub async fn show(
    State(forms): State<FormGuard>,
    State(owners): State<Owners>,
    Signed(owner): Signed,
    Query(mut params): Query<LogsParams>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let owner = owner.account;
    let now = now_ms();
    let (mut from, mut to, mut range_label) = resolve(&params, now);
    let mut notice = None;
    let summary_query = |from, to, params: &LogsParams| SummaryQuery {
        from: Some(Timestamp(from)),
        to: Some(Timestamp(to)),
        sort: Some(params.sort.clone()).filter(|s| !s.is_empty()),
        order: Some(params.order.clone()).filter(|s| !s.is_empty()),
    };
    let summary = match owners
        .usage_summary(owner, summary_query(from, to, &params))
        .await
    {
        Ok(summary) => summary,
        Err(OwnerError::Invalid { message, .. }) => {
            // A range or sort the page cannot show: say so, and show the last 24 hours.
            notice = Some(message);
            params = LogsParams::default();
            (from, to, range_label) = resolve(&params, now);
            owners
                .usage_summary(owner, summary_query(from, to, &params))
                .await
                .map_err(owner_fault)?
        }
        Err(e) => return Err(owner_fault(e)),
    };
    let series = owners
        .usage_series(
            owner,
            SeriesQuery {
                from: Some(Timestamp(from)),
                to: Some(Timestamp(to)),
                ..SeriesQuery::default()
            },
        )
        .await
        .map_err(owner_fault)?;
    let labels = owners.record_labels(owner).await.map_err(owner_fault)?;
    let record = params
        .record
        .parse()
        .ok()
        .filter(|r| labels.contains_key(r));
    let query = LogQuery {
        from: Some(Timestamp(from)),
        to: Some(Timestamp(to)),
        limit: Some(EVENTS_PER_PAGE),
        before: params.before,
        record,
        outcome: Some(params.outcome.clone()),
        q: Some(params.q.clone()),
        ..LogQuery::default()
    };
    let log = owners
        .log_events(owner, &query)
        .await
        .map_err(owner_fault)?;
    let mut records: Vec<(String, String)> = labels
        .iter()
        .map(|(uuid, label)| {
            let name = if label.deleted {
                format!("{} (deleted)", label.name)
            } else {
                label.name.clone()
            };
            (uuid.to_string(), name)
        })
        .collect();
    records.sort_by_key(|(_, name)| name.to_lowercase());
    let older = log.next_before.map(|id| {
        link(&LogsParams {
            before: Some(id),
            ..params.clone()
        })
    });
    let page = LogsPage {
        chrome: Chrome::new(&forms, &headers, true, Nav::Logs)?,
        presets: PRESETS.iter().map(|(v, l, _)| (*v, *l)).collect(),
        outcomes: OUTCOMES,
        records,
        notice,
        range_label,
        chart: chart(&series.total, &series.bucket),
        headings: headings(&params),
        rows: summary.records.iter().map(|r| usage_row(r, now)).collect(),
        events: log.events.iter().map(|e| log_line(e, now)).collect(),
        older,
        export: link(&LogsParams {
            before: None,
            ..params.clone()
        })
        .replacen("/logs?", "/logs/export?", 1),
        summary,
        params,
    };
    render(&page, &page.chrome, StatusCode::OK)
}

/// The event log of the page's range and filters as a CSV download.
pub async fn export(
    State(owners): State<Owners>,
    Signed(owner): Signed,
    Query(params): Query<LogsParams>,
) -> PageResult<Response> {
    let (from, to, _) = resolve(&params, now_ms());
    let query = LogQuery {
        from: Some(Timestamp(from)),
        to: Some(Timestamp(to)),
        record: params.record.parse().ok(),
        outcome: Some(params.outcome.clone()),
        q: Some(params.q.clone()),
        format: Some("csv".into()),
        ..LogQuery::default()
    };
    crate::routes::logs::export_events(owners, owner.account, query)
        .await
        .map_err(owner_fault)
}

/// The range asked for: custom dates when both parse, else the preset (24 hours by default).
fn resolve(params: &LogsParams, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime, String) {
    let day = |text: &str| {
        Date::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .ok()
    };
    if let (Some(first), Some(last)) = (day(&params.from), day(&params.to)) {
        let from = first.with_time(Time::MIDNIGHT).assume_utc();
        let to = last.with_time(Time::MIDNIGHT).assume_utc() + Duration::days(1);
        return (from, to, format!("{first} to {last} (UTC)"));
    }
    let (_, label, length) = PRESETS
        .iter()
        .find(|(value, _, _)| *value == params.range)
        .unwrap_or(&PRESETS[1]);
    (now - *length, now, (*label).to_owned())
}

/// The page's address with these parameters (empty ones left out).
fn link(params: &LogsParams) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("range", &params.range),
        ("from", &params.from),
        ("to", &params.to),
        ("sort", &params.sort),
        ("order", &params.order),
        ("q", &params.q),
        ("outcome", &params.outcome),
        ("record", &params.record),
    ] {
        if !value.is_empty() {
            query.append_pair(name, value);
        }
    }
    if let Some(before) = params.before {
        query.append_pair("before", &before.to_string());
    }
    format!("/logs?{}", query.finish())
}

/// Column headings that sort the table: a second click on the sorted column turns it round.
fn headings(params: &LogsParams) -> Vec<Heading> {
    let current = if params.sort.is_empty() {
        "requests"
    } else {
        params.sort.as_str()
    };
    let descending = match params.order.as_str() {
        "asc" => false,
        "desc" => true,
        _ => current != "name",
    };
    COLUMNS
        .iter()
        .map(|(key, label)| {
            let here = *key == current;
            let order = match (here, descending) {
                (true, true) => "asc",
                (true, false) => "desc",
                (false, _) if *key == "name" => "asc",
                (false, _) => "desc",
            };
            Heading {
                label,
                href: link(&LogsParams {
                    sort: (*key).to_owned(),
                    order: order.to_owned(),
                    before: None,
                    ..params.clone()
                }),
                sorted: match (here, descending) {
                    (false, _) => "none",
                    (true, true) => "descending",
                    (true, false) => "ascending",
                },
            }
        })
        .collect()
}

fn usage_row(r: &RecordUsageView, now: OffsetDateTime) -> UsageRow {
    let e = &r.errors;
    let parts: Vec<String> = [
        (e.denied, "refused"),
        (e.limited, "over a limit"),
        (e.gone, "gone"),
        (e.invalid, "bad input"),
        (e.upstream_4xx, "upstream 4xx"),
        (e.upstream_5xx, "upstream 5xx or timeout"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    UsageRow {
        href: format!("/records/{}", r.uuid),
        name: r.name.clone(),
        kind: if r.kind == "bridge" {
            "Bridge"
        } else {
            "Credential"
        }
        .to_owned(),
        deleted: r.deleted,
        requests: r.requests,
        errors: r.errors_total,
        error_detail: parts.join(", "),
        p95: r.p95_ms.map_or_else(String::new, |ms| format!("≤ {ms} ms")),
        bytes: if r.bytes > 0 {
            bytes(r.bytes)
        } else {
            String::new()
        },
        last_seen: r.last_seen.map(|at| when(at, now)),
    }
}

fn log_line(e: &EventView, now: OffsetDateTime) -> LogLine {
    let line = event_line(e, now);
    let name = e.record_name.clone().unwrap_or_else(|| "(deleted)".into());
    LogLine {
        what: line.what,
        when: line.when,
        record: if e.record_deleted {
            format!("{name} (deleted)")
        } else {
            name
        },
        record_href: (!e.record_deleted).then(|| format!("/records/{}", e.record)),
        client: line.client,
        answered: match (e.status, &e.error) {
            (Some(status), Some(error)) => format!("{status} {error}"),
            (None, Some(error)) => error.clone(),
            _ => String::new(),
        },
    }
}

/// A byte count as people read it.
fn bytes(n: i64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1_000 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1_000.0 {
            break;
        }
        value /= 1_000.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}
