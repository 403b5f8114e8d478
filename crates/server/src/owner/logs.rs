//! The owner's usage logs: sums per record and series over time (from the roll-ups), and the
//! account's event log across records, deleted ones included.

use std::collections::HashMap;

use brine_proto::{
    ErrorCounts, EventView, LogEventList, LogQuery, RecordSeries, RecordUsageView, SeriesPoint,
    SeriesQuery, SummaryQuery, UsageSeries, UsageSummary,
};
use brine_store::usage::{Counts, DAY, HOUR, MINUTE};
use brine_store::{AuditEvent, EventFilter, UsageRange};
use time::OffsetDateTime;
use uuid::Uuid;

use super::view::{event_view, filter_text};
use super::{OwnerError, OwnerResult, Owners};
use crate::clock::now_ms;
use crate::fault::Fault;

/// How long minute roll-ups are kept (hour roll-ups are kept for the audit retention period).
pub const MINUTE_ROLLUPS_KEPT: time::Duration = time::Duration::hours(48);
/// The longest range a summary or series covers.
const LONGEST_RANGE: time::Duration = time::Duration::days(400);
/// The most points a series answers with.
const MOST_POINTS: i64 = 2_000;

/// What the owner calls a record in the logs: its name and kind, and whether it is deleted.
#[derive(Debug, Clone)]
pub struct RecordLabel {
    pub name: String,
    pub kind: String,
    pub deleted: bool,
}

/// A range of time resolved against now, as unix milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: i64,
    pub to: i64,
}

impl Range {
    /// The asked range, by default the last 24 hours; refused when it is empty, reversed or
    /// longer than 400 days.
    pub fn resolve(from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) -> OwnerResult<Self> {
        let to = to.unwrap_or_else(now_ms);
        let from = from.unwrap_or(to - time::Duration::hours(24));
        if from >= to {
            return Err(OwnerError::invalid("from: must be before to."));
        }
        if to - from > LONGEST_RANGE {
            return Err(OwnerError::invalid("The range may span at most 400 days."));
        }
        Ok(Self {
            from: ms(from),
            to: ms(to),
        })
    }

    /// The roll-ups to read: minutes for ranges of up to 48 hours that are still kept, hours
    /// otherwise; the range widened to whole rows.
    fn rollups(self) -> UsageRange {
        let minutes_kept_since = ms(now_ms() - MINUTE_ROLLUPS_KEPT);
        let span = if self.to - self.from <= 48 * HOUR && self.from >= minutes_kept_since {
            MINUTE
        } else {
            HOUR
        };
        self.widened(span)
    }

    fn widened(self, span: i64) -> UsageRange {
        UsageRange {
            span,
            from: self.from.div_euclid(span) * span,
            to: (self.to + span - 1).div_euclid(span) * span,
        }
    }
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn time_of(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn span_name(span: i64) -> &'static str {
    match span {
        MINUTE => "minute",
        HOUR => "hour",
        _ => "day",
    }
}

fn error_counts(c: &Counts) -> ErrorCounts {
    ErrorCounts {
        denied: c.denied,
        limited: c.limited,
        gone: c.gone,
        invalid: c.invalid,
        upstream_4xx: c.upstream_4xx,
        upstream_5xx: c.upstream_5xx,
    }
}

impl Owners {
    /// The owner's records and deleted records, by uuid.
    pub async fn record_labels(&self, owner: Uuid) -> OwnerResult<HashMap<Uuid, RecordLabel>> {
        Ok(self
            .store
            .record_names(owner)
            .await?
            .into_iter()
            .map(|r| {
                let label = RecordLabel {
                    name: r.name,
                    kind: r.kind,
                    deleted: r.deleted,
                };
                (r.uuid, label)
            })
            .collect())
    }

    /// Whether the owner may read this record's history: it is theirs, or was.
    pub async fn history_owned(&self, owner: Uuid, uuid: Uuid) -> OwnerResult<()> {
        if self.owned(owner, uuid).await.is_ok() {
            return Ok(());
        }
        let deleted = self.store.deleted_records(owner).await?;
        if deleted.iter().any(|d| d.uuid == uuid) {
            Ok(())
        } else {
            Err(OwnerError::NotFound)
        }
    }

    /// Per record: requests, errors by class, bytes, latency percentiles, last seen.
    pub async fn usage_summary(
        &self,
        owner: Uuid,
        query: SummaryQuery,
    ) -> OwnerResult<UsageSummary> {
        let range = Range::resolve(query.from.map(|t| t.0), query.to.map(|t| t.0))?.rollups();
        let sort = query.sort.as_deref().unwrap_or("requests");
        let descending = match query.order.as_deref() {
            None => sort != "name",
            Some("desc") => true,
            Some("asc") => false,
            Some(_) => return Err(OwnerError::invalid("order: asc or desc.")),
        };
        self.audit.flush().await.map_err(Fault::from)?;
        let labels = self.record_labels(owner).await?;
        let usage = self.store.usage_summary(owner, range).await?;
        let mut total = Counts::default();
        let mut records: Vec<RecordUsageView> = usage
            .iter()
            .filter(|u| u.counts.requests != 0)
            .map(|u| {
                total.merge(&u.counts);
                let label = labels.get(&u.record);
                RecordUsageView {
                    uuid: u.record,
                    name: label.map_or_else(|| "(deleted)".to_owned(), |l| l.name.clone()),
                    kind: label.map_or_else(String::new, |l| l.kind.clone()),
                    deleted: label.is_none_or(|l| l.deleted),
                    requests: u.counts.requests,
                    errors: error_counts(&u.counts),
                    errors_total: u.counts.errors(),
                    bytes: u.counts.bytes,
                    p50_ms: u.counts.latency_quantile_ms(0.50),
                    p95_ms: u.counts.latency_quantile_ms(0.95),
                    last_seen: u.last_at,
                }
            })
            .collect();
        sort_usage(&mut records, sort)?;
        if descending {
            records.reverse();
        }
        Ok(UsageSummary {
            from: time_of(range.from),
            to: time_of(range.to),
            resolution: span_name(range.span).to_owned(),
            requests: total.requests,
            errors: error_counts(&total),
            errors_total: total.errors(),
            bytes: total.bytes,
            records,
        })
    }

    /// Requests and errors per bucket of time, in total and per record.
    pub async fn usage_series(&self, owner: Uuid, query: SeriesQuery) -> OwnerResult<UsageSeries> {
        let asked = Range::resolve(query.from.map(|t| t.0), query.to.map(|t| t.0))?;
        let length = asked.to - asked.from;
        let bucket = match query.bucket.as_deref() {
            None if length <= 3 * HOUR => MINUTE,
            None if length <= 7 * DAY => HOUR,
            None => DAY,
            Some("minute") => MINUTE,
            Some("hour") => HOUR,
            Some("day") => DAY,
            Some(_) => return Err(OwnerError::invalid("bucket: minute, hour or day.")),
        };
        // Minute buckets need minute roll-ups, which are kept for 48 hours; larger buckets read
        // the hour roll-ups.
        if bucket == MINUTE && asked.rollups().span != MINUTE {
            return Err(OwnerError::invalid(
                "bucket: minutes are kept for 48 hours; choose hour or day for this range.",
            ));
        }
        let points = asked.widened(bucket);
        if (points.to - points.from) / bucket > MOST_POINTS {
            return Err(OwnerError::invalid(
                "bucket: too many points for this range; choose a larger bucket.",
            ));
        }
        let rows = UsageRange {
            span: bucket.min(HOUR),
            ..points
        };
        if let Some(record) = query.record {
            self.history_owned(owner, record).await?;
        }
        self.audit.flush().await.map_err(Fault::from)?;
        let labels = self.record_labels(owner).await?;
        let found = self
            .store
            .usage_series(owner, query.record, rows, bucket)
            .await?;
        let index = |start: i64| ((start - points.from) / bucket) as usize;
        let empty: Vec<SeriesPoint> = (points.from..points.to)
            .step_by(bucket as usize)
            .map(|start| SeriesPoint {
                start: time_of(start),
                requests: 0,
                errors: 0,
            })
            .collect();
        let mut total = empty.clone();
        let mut per_record: HashMap<Uuid, Vec<SeriesPoint>> = HashMap::new();
        for p in found.iter().filter(|p| p.requests != 0) {
            let i = index(p.start);
            let Some(slot) = total.get_mut(i) else {
                continue;
            };
            slot.requests += p.requests;
            slot.errors += p.errors;
            let series = per_record.entry(p.record).or_insert_with(|| empty.clone());
            series[i].requests += p.requests;
            series[i].errors += p.errors;
        }
        let mut records: Vec<RecordSeries> = per_record
            .into_iter()
            .map(|(uuid, points)| {
                let label = labels.get(&uuid);
                RecordSeries {
                    uuid,
                    name: label.map_or_else(|| "(deleted)".to_owned(), |l| l.name.clone()),
                    deleted: label.is_none_or(|l| l.deleted),
                    points,
                }
            })
            .collect();
        records
            .sort_by_key(|r| std::cmp::Reverse(r.points.iter().map(|p| p.requests).sum::<i64>()));
        Ok(UsageSeries {
            from: time_of(points.from),
            to: time_of(points.to),
            bucket: span_name(bucket).to_owned(),
            total,
            records,
        })
    }

    /// The account's events, newest first, with the records' names.
    pub async fn log_events(&self, owner: Uuid, query: &LogQuery) -> OwnerResult<LogEventList> {
        let limit = query.limit.unwrap_or(100).clamp(1, 500);
        self.audit.flush().await.map_err(Fault::from)?;
        let labels = self.record_labels(owner).await?;
        let events = self.log_page(owner, query, limit, &labels).await?;
        let next_before = (events.len() == limit as usize)
            .then(|| events.last().map(|e| e.id))
            .flatten();
        Ok(LogEventList {
            events,
            next_before,
        })
    }

    /// One page of the account's events matching `query` (for the log and the export).
    pub async fn log_page(
        &self,
        owner: Uuid,
        query: &LogQuery,
        limit: u32,
        labels: &HashMap<Uuid, RecordLabel>,
    ) -> OwnerResult<Vec<EventView>> {
        let filter = EventFilter {
            before: query.before,
            channel: filter_text("channel", query.channel.as_deref())?,
            outcome: filter_text("outcome", query.outcome.as_deref())?,
            client_ip: filter_text("client_ip", query.client_ip.as_deref())?,
            text: filter_text("q", query.q.as_deref())?,
            from: query.from.map(|t| t.0),
            to: query.to.map(|t| t.0),
        };
        let events: Vec<AuditEvent> = match query.record {
            // One record's events read its own index, however busy the account's others are.
            Some(record) => {
                if !labels.contains_key(&record) {
                    return Err(OwnerError::NotFound);
                }
                self.store.events(record, limit, &filter).await?
            }
            None => self.store.owner_events(owner, limit, &filter).await?,
        };
        Ok(events
            .into_iter()
            .map(|e| {
                let label = labels.get(&e.record).cloned();
                let mut view = event_view(e);
                if let Some(label) = label {
                    view.record_name = Some(label.name);
                    view.record_deleted = label.deleted;
                } else {
                    view.record_deleted = true;
                }
                view
            })
            .collect())
    }
}

/// Sorts ascending by the named column (ties by name, so the order is stable).
fn sort_usage(records: &mut [RecordUsageView], by: &str) -> OwnerResult<()> {
    let key: fn(&RecordUsageView) -> i64 = match by {
        "requests" => |r| r.requests,
        "errors" => |r| r.errors_total,
        "bytes" => |r| r.bytes,
        "p95" => |r| {
            r.p95_ms
                .map_or(-1, |p| i64::try_from(p).unwrap_or(i64::MAX))
        },
        "last_seen" => |r| r.last_seen.map_or(0, ms),
        "name" => {
            records.sort_by_key(|r| r.name.to_lowercase());
            return Ok(());
        }
        _ => {
            return Err(OwnerError::invalid(
                "sort: requests, errors, bytes, p95, last_seen or name.",
            ));
        }
    };
    records.sort_by(|a, b| {
        key(a)
            .cmp(&key(b))
            .then_with(|| b.name.to_lowercase().cmp(&a.name.to_lowercase()))
    });
    Ok(())
}
