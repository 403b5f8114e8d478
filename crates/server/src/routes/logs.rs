//! The account's usage logs: summary, series, event log and export.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use brine_proto::{
    EventView, LogEventList, LogQuery, SeriesQuery, SummaryQuery, UsageSeries, UsageSummary,
};

use uuid::Uuid;

use crate::auth::Owner;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::owner::{OwnerError, Owners};

/// Per record over a range: requests, errors by class, bytes, bridge latency, last seen.
///
/// Counts are exact over the answered `from`..`to`, which is the asked range widened to whole
/// minutes (ranges up to 48 hours within the last 48 hours) or whole hours. Latency percentiles
/// come from a histogram of fixed buckets and are exact to a bucket.
#[utoipa::path(get, path = "/api/v1/logs/summary", tag = "logs",
    params(SummaryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Usage per record", body = UsageSummary),
        (status = 400, description = "Invalid range, sort or order", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn summary(
    State(owners): State<Owners>,
    owner: Owner,
    ApiQuery(query): ApiQuery<SummaryQuery>,
) -> ApiResult<Json<UsageSummary>> {
    Ok(Json(owners.usage_summary(owner.account, query).await?))
}

/// Requests and errors per bucket of time (minute, hour or day), in total and per record.
#[utoipa::path(get, path = "/api/v1/logs/series", tag = "logs",
    params(SeriesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Requests and errors over time", body = UsageSeries),
        (status = 400, description = "Invalid range or bucket", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
    ))]
pub async fn series(
    State(owners): State<Owners>,
    owner: Owner,
    ApiQuery(query): ApiQuery<SeriesQuery>,
) -> ApiResult<Json<UsageSeries>> {
    Ok(Json(owners.usage_series(owner.account, query).await?))
}

/// The account's event log across records (deleted ones included), newest first.
#[utoipa::path(get, path = "/api/v1/logs/events", tag = "logs",
    params(LogQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Events, newest first", body = LogEventList),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
    ))]
pub async fn events(
    State(owners): State<Owners>,
    owner: Owner,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> ApiResult<Json<LogEventList>> {
    Ok(Json(owners.log_events(owner.account, &query).await?))
}

/// Events read per page of an export.
const EXPORT_PAGE: u32 = 1_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    JsonLines,
    Csv,
}

/// Every event matching the filters, newest first, streamed as JSON lines or CSV (any size).
#[utoipa::path(get, path = "/api/v1/logs/export", tag = "logs",
    params(LogQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "JSON lines (application/x-ndjson), one event a line, or CSV with a header row", content_type = "application/x-ndjson"),
        (status = 400, description = "Invalid format or filter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such record of yours", body = ErrorBody),
    ))]
pub async fn export(
    State(owners): State<Owners>,
    owner: Owner,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> ApiResult<Response> {
    Ok(export_events(owners, owner.account, query).await?)
}

/// The export's answer (for the API and the dashboard's download).
pub async fn export_events(
    owners: Owners,
    owner: Uuid,
    query: LogQuery,
) -> Result<Response, OwnerError> {
    let format = match query.format.as_deref() {
        None | Some("jsonl") => Format::JsonLines,
        Some("csv") => Format::Csv,
        Some(_) => return Err(OwnerError::invalid("format: jsonl or csv.")),
    };
    let labels = std::sync::Arc::new(owners.record_labels(owner).await?);
    // The first page is read before answering, so that a bad filter is a 400, not a cut body.
    let first = owners.log_page(owner, &query, EXPORT_PAGE, &labels).await?;
    let head = (format == Format::Csv).then(|| Bytes::from_static(CSV_HEADER.as_bytes()));
    let state = (Some(first), query);
    let pages = futures_util::stream::unfold(state, move |(page, mut query)| {
        let (owners, labels) = (owners.clone(), labels.clone());
        async move {
            let page = match page {
                Some(page) => page,
                None => match owners.log_page(owner, &query, EXPORT_PAGE, &labels).await {
                    Ok(page) => page,
                    Err(_) => {
                        tracing::error!("an export stopped: the log could not be read");
                        let failed = std::io::Error::other("the log could not be read");
                        return Some((Err(failed), (Some(Vec::new()), query)));
                    }
                },
            };
            if page.is_empty() {
                return None;
            }
            query.before = page.last().map(|e| e.id);
            let full = page.len() == EXPORT_PAGE as usize;
            let chunk = encode(&page, format);
            // A short page is the last: the next state ends the stream.
            let next = if full { None } else { Some(Vec::new()) };
            Some((Ok::<_, std::io::Error>(chunk), (next, query)))
        }
    });
    let body = futures_util::StreamExt::chain(futures_util::stream::iter(head.map(Ok)), pages);
    let (content_type, file) = match format {
        Format::JsonLines => ("application/x-ndjson", "brine-events.jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "brine-events.csv"),
    };
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

const CSV_HEADER: &str = "id,at,record,record_name,record_deleted,channel,outcome,status,error,\
client_ip,country,city,user_agent,detail\r\n";

fn encode(events: &[EventView], format: Format) -> Bytes {
    let mut out = String::with_capacity(events.len() * 256);
    for e in events {
        match format {
            Format::JsonLines => {
                if let Ok(line) = serde_json::to_string(e) {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            Format::Csv => csv_row(&mut out, e),
        }
    }
    Bytes::from(out)
}

fn csv_row(out: &mut String, e: &EventView) {
    let at =
        e.at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
    let detail = e.detail.as_ref().map(ToString::to_string);
    let fields: [&str; 14] = [
        &e.id.to_string(),
        &at,
        &e.record.to_string(),
        e.record_name.as_deref().unwrap_or(""),
        if e.record_deleted { "true" } else { "false" },
        &e.channel,
        &e.outcome,
        &e.status.map(|s| s.to_string()).unwrap_or_default(),
        e.error.as_deref().unwrap_or(""),
        e.client_ip.as_deref().unwrap_or(""),
        e.country.as_deref().unwrap_or(""),
        e.city.as_deref().unwrap_or(""),
        e.user_agent.as_deref().unwrap_or(""),
        detail.as_deref().unwrap_or(""),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, field);
    }
    out.push_str("\r\n");
}

/// One CSV field (RFC 4180 quoting). Text that a spreadsheet would run as a formula (a user
/// agent is the caller's to choose) is prefixed with `'`, as OWASP advises.
fn csv_field(out: &mut String, field: &str) {
    let formula = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = formula || field.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in field.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        for field in ["plain", "a,b", "say \"hi\"", "=HYPERLINK(\"x\")", "-1"] {
            csv_field(&mut out, field);
            out.push('|');
        }
        assert_eq!(
            out,
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"'=HYPERLINK(\"\"x\"\")\"|\"'-1\"|"
        );
    }
}
