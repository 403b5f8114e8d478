//! Rate limits and quotas on `/r/{uuid}` (and batch items, which go through the same code), and
//! on sign-in. A record's own limits come first, then the server's defaults; an account-wide cap
//! binds every record of an owner together. Budgets live in Redis when one is configured (every
//! node shares them) and in this process otherwise.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use brine_core::RecordKind;
use brine_limits::{Decision, Key, Limiter, MemoryLimiter, Rate, RedisLimiter, Rule};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::{Date, OffsetDateTime, Time};
use utoipa::ToSchema;
use uuid::Uuid;

use brine_store::Record;

use crate::audit::{Channel, Outcome, record_event_with_detail};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::extract::ClientInfo;
use crate::state::AppState;

/// A record's limits, as its owner sets them; stored as JSON beside the record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
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

/// The server's own limits (`[rate_limits]` in the configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Per client address, for records that set no `per_ip` of their own.
    pub per_ip: Option<Rate>,
    /// All clients together, for records that set no `total` of their own.
    pub total: Option<Rate>,
    /// All records of one account together.
    pub account: Option<Rate>,
    /// Sign-in and sign-up attempts from one address.
    pub login_per_ip: Rate,
    /// Sign-in attempts for one email, whether or not it has an account.
    pub login_per_email: Rate,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_ip: None,
            total: None,
            account: None,
            login_per_ip: Rate::new(30, Duration::from_secs(60))
                .unwrap_or_else(|_| unreachable!("a valid constant")),
            login_per_email: Rate::new(10, Duration::from_secs(900))
                .unwrap_or_else(|_| unreachable!("a valid constant")),
        }
    }
}

/// What a limit check decided.
pub enum Verdict {
    /// Go ahead; the decision (if any rule applied) describes the budget left.
    Pass(Option<Decision>),
    Limited(Decision),
    /// The shared store is down and the record fails closed.
    Unavailable,
}

/// The limiter every request goes through: the shared one when configured, with this node's
/// own as the fallback for records that fail open.
#[derive(Clone)]
pub struct Limits {
    local: Arc<MemoryLimiter>,
    shared: Option<RedisLimiter>,
    settings: Arc<RateLimitSettings>,
    outage: Arc<OutageLog>,
    refusals: Arc<RefusalLog>,
    /// Keys the email digests of sign-in limits, so that the limiter's storage holds nothing a
    /// dictionary could turn back into addresses.
    email_mac: Hmac<Sha256>,
}

impl Limits {
    pub fn new(
        settings: RateLimitSettings,
        shared: Option<RedisLimiter>,
        email_key: &[u8],
    ) -> Self {
        Self {
            local: Arc::default(),
            shared,
            settings: Arc::new(settings),
            outage: Arc::default(),
            refusals: Arc::default(),
            email_mac: <Hmac<Sha256> as KeyInit>::new_from_slice(email_key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    /// Admits a sign-in (`email` given) or sign-up attempt from `client`. Checked before the
    /// email is looked up, so known and unknown emails get the same answers. When Redis is down
    /// this node's own counts apply: sign-in never fails closed.
    pub async fn admit_login(&self, client: Option<IpAddr>, email: Option<&str>) -> ApiResult<()> {
        let mut rules = Vec::with_capacity(2);
        if let Some(ip) = client {
            rules.push(Rule {
                key: Key::LoginClient(ip),
                rate: self.settings.login_per_ip,
            });
        }
        if let Some(email) = email {
            let mut mac = self.email_mac.clone();
            mac.update(email.trim().to_lowercase().as_bytes());
            let mut digest = [0u8; 16];
            digest.copy_from_slice(&mac.finalize().into_bytes()[..16]);
            rules.push(Rule {
                key: Key::LoginEmail(digest),
                rate: self.settings.login_per_email,
            });
        }
        match self.check(&rules, FailMode::Open).await {
            Verdict::Limited(decision) => {
                let mut error = ApiError::rate_limited(decision);
                error.body.error = "Too many attempts".into();
                error.body.message =
                    "Too many sign-in attempts; retry after the time in Retry-After.".into();
                Err(error)
            }
            Verdict::Pass(_) | Verdict::Unavailable => Ok(()),
        }
    }

    pub async fn check(&self, rules: &[Rule], fail: FailMode) -> Verdict {
        if rules.is_empty() {
            return Verdict::Pass(None);
        }
        let decision = match &self.shared {
            None => self.local.acquire_now(rules),
            Some(shared) => match shared.acquire(rules).await {
                Ok(decision) => {
                    self.outage.recovered();
                    decision
                }
                Err(e) => {
                    self.outage.failed(&e, fail);
                    match fail {
                        FailMode::Closed => return Verdict::Unavailable,
                        FailMode::Open => self.local.acquire_now(rules),
                    }
                }
            },
        };
        match decision {
            Some(d) if !d.allowed => Verdict::Limited(d),
            d => Verdict::Pass(d),
        }
    }

    /// The rules for a call to `record` from `client`, and what to do if Redis is down.
    pub fn record_rules(
        &self,
        record: &brine_store::Record,
        limits: Option<&RecordLimits>,
        client: Option<IpAddr>,
    ) -> (Vec<Rule>, FailMode) {
        let own = limits.and_then(|l| l.rate_limit.as_ref());
        let mut rules = Vec::new();
        let per_ip = own.and_then(|r| r.per_ip).or(self.settings.per_ip);
        if let (Some(rate), Some(ip)) = (per_ip, client) {
            rules.push(Rule {
                key: Key::RecordClient(record.uuid, ip),
                rate,
            });
        }
        if let Some(rate) = own.and_then(|r| r.total).or(self.settings.total) {
            rules.push(Rule {
                key: Key::Record(record.uuid),
                rate,
            });
        }
        if let Some(rate) = self.settings.account {
            rules.push(Rule {
                key: Key::Account(record.owner_id),
                rate,
            });
        }
        let fail = own.and_then(|r| r.fail).unwrap_or(match record.kind {
            RecordKind::Bridge => FailMode::Closed,
            RecordKind::Credential => FailMode::Open,
        });
        (rules, fail)
    }

    /// Whether a refusal of `client` on `record` should be written to the audit log: the first
    /// in each second is, the rest only add to its count, so a flood cannot flood the log too.
    pub fn audit_refusal(&self, record: Uuid, client: Option<IpAddr>) -> Option<u64> {
        self.refusals.admit(record, client)
    }
}

/// Checks a call to `record` against its rate limits. A refusal is audited as `rate_limited`
/// (boundedly, see [`Limits::audit_refusal`]) and answered 429, or 503 when the shared store is
/// down and the record fails closed. On success, the decision describes the budget left.
pub async fn admit_call(
    state: &AppState,
    record: &Record,
    limits: Option<&RecordLimits>,
    channel: Channel,
    client: &ClientInfo,
) -> ApiResult<Option<Decision>> {
    let (rules, fail) = state.limits.record_rules(record, limits, client.addr);
    let (error, reason) = match state.limits.check(&rules, fail).await {
        Verdict::Pass(decision) => return Ok(decision),
        Verdict::Limited(decision) => (ApiError::rate_limited(decision), "rate limit"),
        Verdict::Unavailable => (ApiError::limits_unavailable(), "rate limits unavailable"),
    };
    if let Some(unlogged) = state.limits.audit_refusal(record.uuid, client.addr) {
        let detail = serde_json::json!({"refused_by": reason, "unlogged_refusals": unlogged});
        record_event_with_detail(
            state,
            record.uuid,
            channel,
            Outcome::RateLimited,
            client,
            Some(&detail.to_string()),
        )
        .await?;
    }
    Err(error)
}

/// Takes one request from the record's quota, if it has one. `Some(answer)` when it is used up:
/// 429, with the time until the next period.
pub async fn take_quota(
    state: &AppState,
    record: &Record,
    limits: Option<&RecordLimits>,
) -> ApiResult<Option<ApiError>> {
    let Some(quota) = limits.and_then(|l| l.quota) else {
        return Ok(None);
    };
    let now = now_ms();
    let (start, next) = quota.per.bounds(now);
    if state
        .store
        .take_quota(record.uuid, start, i64::from(quota.requests))
        .await?
    {
        return Ok(None);
    }
    let wait = u64::try_from((next - now).whole_seconds()).unwrap_or(0) + 1;
    Ok(Some(ApiError::quota_exhausted(wait)))
}

/// Logs the shared store's failures loudly but boundedly: the first failure at once, then at
/// most one line every ten seconds while it lasts, and one line when it recovers.
#[derive(Default)]
struct OutageLog {
    down: AtomicBool,
    last_logged_secs: AtomicU64,
    unlogged: AtomicU64,
}

impl OutageLog {
    fn failed(&self, error: &brine_limits::LimitError, fail: FailMode) {
        let now = unix_secs();
        let first = !self.down.swap(true, Ordering::Relaxed);
        let last = self.last_logged_secs.load(Ordering::Relaxed);
        if first || now >= last + 10 {
            self.last_logged_secs.store(now, Ordering::Relaxed);
            let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
            tracing::error!(
                %error,
                failing = ?fail,
                failures_since_last_report = unlogged,
                "SHARED RATE LIMITS UNAVAILABLE: fail-closed records answer 503, fail-open records \
                 are limited by this node alone"
            );
        } else {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn recovered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::warn!("shared rate limits are available again");
        }
    }
}

/// Node-local memory of recent refusals per record and client, for [`Limits::audit_refusal`].
#[derive(Default)]
struct RefusalLog(Mutex<HashMap<(Uuid, Option<IpAddr>), LastRefusal>>);

/// The second of the last audited refusal, and how many have not been audited since.
type LastRefusal = (u64, u64);

impl RefusalLog {
    /// `Some(refusals not logged since the last logged one)` when this one should be logged.
    fn admit(&self, record: Uuid, client: Option<IpAddr>) -> Option<u64> {
        let now = unix_secs();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (second, _)| *second + 1 >= now);
        }
        let entry = map.entry((record, client)).or_insert((0, 0));
        if entry.0 == now {
            entry.1 += 1;
            return None;
        }
        let unlogged = entry.1;
        *entry = (now, 0);
        Some(unlogged)
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whole seconds, rounded up: a client that waits this long is admitted.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `RateLimit-*` headers (IETF draft "RateLimit header fields for HTTP"), describing the budget
/// that binds this request.
pub fn write_headers(decision: &Decision, headers: &mut HeaderMap) {
    let rate = decision.rate;
    let pairs = [
        ("ratelimit-limit", rate.count().to_string()),
        ("ratelimit-remaining", decision.remaining.to_string()),
        ("ratelimit-reset", ceil_secs(decision.reset).to_string()),
        (
            "ratelimit-policy",
            format!("{};w={}", rate.count(), rate.period().as_secs()),
        ),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

impl ApiError {
    pub fn rate_limited(decision: Decision) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limited",
            "Too many requests for this record; retry after the time in Retry-After.",
        );
        error.retry_after = Some(ceil_secs(decision.retry_after).max(1));
        error.rate = Some(Box::new(decision));
        error
    }

    pub fn quota_exhausted(retry_after: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Quota exhausted",
            "This record's usage quota for the period is used up.",
        );
        error.retry_after = Some(retry_after.max(1));
        error
    }

    pub fn limits_unavailable() -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Rate limits unavailable",
            "This record's rate limits cannot be checked right now; retry shortly.",
        );
        error.retry_after = Some(1);
        error
    }
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

    #[test]
    fn a_flood_of_refusals_is_audited_once_a_second() {
        let log = RefusalLog::default();
        let id = Uuid::new_v4();
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        assert_eq!(log.admit(id, ip), Some(0));
        // Within the same second, the rest are counted, not logged (unless the clock ticked).
        let logged = (0..100).filter(|_| log.admit(id, ip).is_some()).count();
        assert!(logged <= 1, "{logged}");
        assert_eq!(log.admit(Uuid::new_v4(), ip), Some(0), "records apart");
    }
}
