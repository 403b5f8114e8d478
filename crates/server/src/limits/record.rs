//! What an owner sets on a record: its rate limits and its quota.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, Time};
use utoipa::ToSchema;

use brine_limits::Rate;

use crate::error::{ApiError, ApiResult};

/// A record's limits, as its owner sets them; stored as JSON beside the record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}

/// Requests per period, as `N/second`, `N/minute`, `N/hour` or `N/day` (also `N/15min`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// For each client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "60/min")]
    pub per_ip: Option<Rate>,
    /// For all clients together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "1000/hour")]
    pub total: Option<Rate>,
    /// When the shared limit store (Redis) does not answer: `closed` refuses with 503, `open`
    /// serves within this node's own count. Default: closed for bridges, open for credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<FailMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    Open,
    Closed,
}

/// A usage budget per calendar period (UTC), beyond any rate: counted in the database, so exact
/// across nodes and restarts. A request takes its place before it is served.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    #[schema(minimum = 1, example = 10000)]
    pub requests: u32,
    pub per: QuotaPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    Hour,
    Day,
    Month,
}

impl QuotaPeriod {
    /// The period that contains `now`: its start and the start of the next.
    pub fn bounds(self, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
        let now = now.to_offset(time::UtcOffset::UTC);
        let day = now.date();
        match self {
            Self::Hour => {
                let start =
                    now.replace_time(Time::from_hms(now.hour(), 0, 0).unwrap_or(Time::MIDNIGHT));
                (start, start + time::Duration::HOUR)
            }
            Self::Day => {
                let start = day.midnight().assume_utc();
                (start, start + time::Duration::DAY)
            }
            Self::Month => {
                let first = day.replace_day(1).unwrap_or(day);
                let (year, month) = match first.month() {
                    time::Month::December => (first.year() + 1, time::Month::January),
                    month => (first.year(), month.next()),
                };
                let next = Date::from_calendar_date(year, month, 1).unwrap_or(first);
                (first.midnight().assume_utc(), next.midnight().assume_utc())
            }
        }
    }
}

impl RecordLimits {
    /// Limits from an owner's `rate_limit` and `quota` fields, read here rather than with the
    /// rest of the body so that a mistake gets a message that says what is wrong: these fields
    /// hold nothing secret, so unlike other body errors, the message may quote what was sent.
    pub fn from_fields(
        rate_limit: Option<serde_json::Value>,
        quota: Option<serde_json::Value>,
    ) -> ApiResult<Self> {
        Ok(Self {
            rate_limit: rate_limit.map(|v| field("rate_limit", v)).transpose()?,
            quota: quota.map(|v| field("quota", v)).transpose()?,
        })
    }

    /// Parses what is stored; limits that cannot be read are treated as absent (and logged),
    /// since they were checked when stored.
    pub fn of(record: &brine_store::Record) -> Option<Self> {
        let text = record.limits.as_deref()?;
        serde_json::from_str(text)
            .map_err(|e| tracing::error!(record = %record.uuid, error = %e, "unreadable limits"))
            .ok()
    }

    pub fn validate(&self) -> ApiResult<()> {
        if let Some(quota) = &self.quota
            && quota.requests == 0
        {
            return Err(ApiError::bad_request("quota.requests must be at least 1."));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.rate_limit.is_none() && self.quota.is_none()
    }
}

fn field<T: serde::de::DeserializeOwned>(name: &str, value: serde_json::Value) -> ApiResult<T> {
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("{name}: {e}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn quota_periods_are_calendar_periods_in_utc() {
        let t = at("2026-12-31T23:59:59.5Z");
        assert_eq!(
            QuotaPeriod::Hour.bounds(t),
            (at("2026-12-31T23:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            QuotaPeriod::Day.bounds(t),
            (at("2026-12-31T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            QuotaPeriod::Month.bounds(t),
            (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            QuotaPeriod::Month.bounds(at("2028-02-29T12:00:00Z")),
            (at("2028-02-01T00:00:00Z"), at("2028-03-01T00:00:00Z"))
        );
    }

    #[test]
    fn limits_parse_and_refuse_nonsense() {
        let parsed: RecordLimits = serde_json::from_str(
            r#"{"rate_limit": {"per_ip": "60/min", "total": "1000/hour", "fail": "open"},
                "quota": {"requests": 5, "per": "month"}}"#,
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let rate = parsed.rate_limit.as_ref().unwrap_or_else(|| unreachable!());
        assert_eq!(rate.per_ip.map(|r| r.to_string()), Some("60/min".into()));
        assert_eq!(rate.fail, Some(FailMode::Open));
        assert!(parsed.validate().is_ok());
        for bad in [
            r#"{"rate_limit": {"per_ip": "60/fortnight"}}"#,
            r#"{"rate_limit": {"per_ip": "0/min"}}"#,
            r#"{"rate_limit": {"fail": "maybe"}}"#,
            r#"{"quota": {"requests": 5, "per": "year"}}"#,
            r#"{"quota": {"requests": -1, "per": "day"}}"#,
            r#"{"speed": 1}"#,
        ] {
            assert!(serde_json::from_str::<RecordLimits>(bad).is_err(), "{bad}");
        }
        let zero: RecordLimits =
            serde_json::from_str(r#"{"quota": {"requests": 0, "per": "day"}}"#)
                .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(zero.validate().is_err());
    }
}
