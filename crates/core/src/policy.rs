//! What an owner sets on a record besides its secret: a bridge's policy, a credential's declared
//! params, its rate limits and its quota. None of it is secret: it is stored as JSON beside the
//! record, checked when it is written, and decoded once, when the record is read.

use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, Time};
use utoipa::ToSchema;

use crate::{ParamSpec, Probe, Rate, RecordKind, ValidationError};

/// A record's settings that are not secret, by kind.
#[derive(Debug, Clone)]
pub enum Policy {
    Credential(CredentialPolicy),
    Bridge(BridgePolicy),
}

impl Policy {
    pub fn kind(&self) -> RecordKind {
        match self {
            Policy::Credential(_) => RecordKind::Credential,
            Policy::Bridge(_) => RecordKind::Bridge,
        }
    }

    /// The policy as stored: `None` for a credential without declared params.
    pub fn to_stored(&self) -> Option<String> {
        match self {
            Policy::Credential(c) if c.params.is_empty() => None,
            Policy::Credential(c) => serde_json::to_string(c).ok(),
            Policy::Bridge(b) => serde_json::to_string(b).ok(),
        }
    }

    /// Decodes and checks what was stored for a record of `kind`.
    pub fn from_stored(kind: RecordKind, stored: Option<&str>) -> Result<Self, String> {
        match (kind, stored) {
            (RecordKind::Credential, None) => Ok(Policy::Credential(CredentialPolicy::default())),
            (RecordKind::Credential, Some(text)) => {
                let policy: CredentialPolicy =
                    serde_json::from_str(text).map_err(|e| format!("credential policy: {e}"))?;
                CredentialPolicy::new(policy.params)
                    .map(Policy::Credential)
                    .map_err(|e| format!("credential policy: {e}"))
            }
            (RecordKind::Bridge, None) => Err("a bridge without a policy".into()),
            (RecordKind::Bridge, Some(text)) => {
                let policy: BridgePolicy =
                    serde_json::from_str(text).map_err(|e| format!("bridge policy: {e}"))?;
                policy
                    .checked()
                    .map(Policy::Bridge)
                    .map_err(|e| format!("bridge policy: {e}"))
            }
        }
    }

    pub fn bridge(&self) -> Option<&BridgePolicy> {
        match self {
            Policy::Bridge(b) => Some(b),
            Policy::Credential(_) => None,
        }
    }

    pub fn credential(&self) -> Option<&CredentialPolicy> {
        match self {
            Policy::Credential(c) => Some(c),
            Policy::Bridge(_) => None,
        }
    }
}

/// A credential's settings: the names `{{name}}` in its value may be filled with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialPolicy {
    pub params: Vec<String>,
}

impl CredentialPolicy {
    pub fn new(params: Vec<String>) -> Result<Self, ValidationError> {
        for name in &params {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid || name == "select" {
                return Err(ValidationError::new(
                    "params",
                    "params are names of letters, digits, '_' and '-' (and not 'select').",
                ));
            }
        }
        Ok(Self { params })
    }
}

/// The part of a bridge that is not secret (its URL and headers are sealed with the record).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BridgePolicy {
    /// Methods callers may use (default `["GET"]`).
    pub allowed_methods: Vec<String>,
    /// Browser origins allowed to call, exact match (`https://app.example.com`). A request without
    /// `Origin` (curl, a server) is not affected: CORS is browser hygiene, not authentication.
    pub allowed_origins: Vec<String>,
    /// Declared `{{param}}` names, filled from the caller's query parameters.
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<ParamSpec>,
    /// Path prefixes a caller may append: `/r/{uuid}/chat/completions`.
    pub allowed_paths: Vec<String>,
    /// Time to wait for the upstream's answer to start, per hop.
    pub timeout_ms: u64,
    /// Time for the whole call: every hop, and the answer's body.
    pub total_timeout_ms: u64,
    /// Try fallbacks for POST and PATCH too (they may then run twice upstream).
    pub fallback_non_idempotent: bool,
    /// Upstream calls in flight at once through this bridge (on one node); more get 503.
    pub max_concurrent: u32,
    /// Let caller paths under `allowed_paths` carry `;` path parameters (`/files;v=2`). Off by
    /// default: servers such as Tomcat and Spring drop them before routing, so `/public/..;/admin`
    /// would reach `/admin`.
    pub allow_path_params: bool,
    /// The request that tells whether the upstream accepts the bridge's key: sent with a new
    /// key before it is stored (a refused key changes nothing), and on demand.
    #[serde(skip_serializing_if = "Option::is_none")]
    /// (Boxed: most bridges have none, and every policy is kept in memory.)
    pub probe: Option<Box<Probe>>,
    /// `allowed_methods`, parsed by [`Self::checked`].
    #[serde(skip)]
    methods: Vec<Method>,
}

impl Default for BridgePolicy {
    fn default() -> Self {
        Self {
            allowed_methods: vec!["GET".into()],
            allowed_origins: Vec::new(),
            params: Vec::new(),
            allowed_paths: Vec::new(),
            timeout_ms: 30_000,
            total_timeout_ms: 300_000,
            fallback_non_idempotent: false,
            max_concurrent: 64,
            allow_path_params: false,
            probe: None,
            methods: Vec::new(),
        }
    }
}

const MAX_TIMEOUT_MS: u64 = 3_600_000;

impl BridgePolicy {
    /// Checks every field and parses the methods; every stored policy has passed this, and
    /// every policy read back passes it again.
    pub fn checked(mut self) -> Result<Self, ValidationError> {
        let invalid = |message: String| ValidationError::new("bridge", message);
        if self.allowed_methods.is_empty() {
            return Err(invalid(
                "allowed_methods must list at least one method.".into(),
            ));
        }
        let mut methods = Vec::with_capacity(self.allowed_methods.len());
        for m in &self.allowed_methods {
            let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| invalid(format!("'{m}' is not an HTTP method.")))?;
            if method == Method::OPTIONS || method == Method::CONNECT || method == Method::TRACE {
                return Err(invalid(format!(
                    "{method} cannot be forwarded (brine answers OPTIONS preflights itself)."
                )));
            }
            methods.push(method);
        }
        for origin in &self.allowed_origins {
            check_origin(origin)?;
        }
        for path in &self.allowed_paths {
            if !path.starts_with('/')
                || path.contains("//")
                || path.split('/').any(|s| s == "." || s == "..")
                || path.contains(['?', '#', '%', '\\'])
                || path.chars().any(char::is_control)
            {
                return Err(invalid(format!(
                    "allowed_paths entries are plain paths starting with '/': '{path}' is not."
                )));
            }
        }
        if self.max_concurrent == 0 || self.max_concurrent > 10_000 {
            return Err(invalid(
                "max_concurrent must be between 1 and 10000.".into(),
            ));
        }
        for (name, ms) in [
            ("timeout_ms", self.timeout_ms),
            ("total_timeout_ms", self.total_timeout_ms),
        ] {
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                return Err(invalid(format!(
                    "{name} must be between 1 and {MAX_TIMEOUT_MS}."
                )));
            }
        }
        self.probe = match self.probe.take() {
            Some(probe) => Some(Box::new(probe.checked()?)),
            None => None,
        };
        self.methods = methods;
        Ok(self)
    }

    /// The allowed methods (empty until [`Self::checked`]).
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    pub fn per_hop_timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn total_timeout(&self) -> Duration {
        Duration::from_millis(self.total_timeout_ms)
    }
}

/// An origin is `scheme://host[:port]`, nothing more; `null` and wildcards are never allowed.
fn check_origin(origin: &str) -> Result<(), ValidationError> {
    let bad = || {
        ValidationError::new(
            "bridge",
            format!(
                "allowed_origins entries look like https://app.example.com (no path, no \
                 wildcard): '{origin}' is not."
            ),
        )
    };
    let parsed = url::Url::parse(origin).map_err(|_| bad())?;
    let canonical = parsed.origin().ascii_serialization();
    if !matches!(parsed.scheme(), "http" | "https") || canonical != origin {
        return Err(bad());
    }
    Ok(())
}

/// A record's limits, as its owner sets them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}

/// Requests per period, as `N/second`, `N/minute`, `N/hour` or `N/day` (also `N/15min`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    /// Limits from an owner's `rate_limit` and `quota` fields, read on their own rather than with
    /// the rest of a request so that a mistake gets a message that says what is wrong: these
    /// fields hold nothing secret, so unlike other input errors the message may quote them.
    pub fn from_fields(
        rate_limit: Option<serde_json::Value>,
        quota: Option<serde_json::Value>,
    ) -> Result<Self, ValidationError> {
        let limits = Self {
            rate_limit: rate_limit.map(|v| field("rate_limit", v)).transpose()?,
            quota: quota.map(|v| field("quota", v)).transpose()?,
        };
        limits.check()?;
        Ok(limits)
    }

    pub fn check(&self) -> Result<(), ValidationError> {
        if self.quota.is_some_and(|q| q.requests == 0) {
            return Err(ValidationError::new(
                "quota",
                "quota.requests must be at least 1.",
            ));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.rate_limit.is_none() && self.quota.is_none()
    }

    /// The limits as stored: `None` when there are none.
    pub fn to_stored(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        serde_json::to_string(self).ok()
    }

    /// Decodes and checks what was stored.
    pub fn from_stored(stored: Option<&str>) -> Result<Self, String> {
        let Some(text) = stored else {
            return Ok(Self::default());
        };
        let limits: Self = serde_json::from_str(text).map_err(|e| format!("limits: {e}"))?;
        limits.check().map_err(|e| format!("limits: {e}"))?;
        Ok(limits)
    }
}

fn field<T: serde::de::DeserializeOwned>(
    name: &'static str,
    value: serde_json::Value,
) -> Result<T, ValidationError> {
    serde_json::from_value(value).map_err(|e| ValidationError::new(name, format!("{name}: {e}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
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
        let parsed = RecordLimits::from_stored(Some(
            r#"{"rate_limit": {"per_ip": "60/min", "total": "1000/hour", "fail": "open"},
                "quota": {"requests": 5, "per": "month"}}"#,
        ))
        .unwrap();
        let rate = parsed.rate_limit.as_ref().unwrap();
        assert_eq!(rate.per_ip.map(|r| r.to_string()), Some("60/min".into()));
        assert_eq!(rate.fail, Some(FailMode::Open));
        for bad in [
            r#"{"rate_limit": {"per_ip": "60/fortnight"}}"#,
            r#"{"rate_limit": {"per_ip": "0/min"}}"#,
            r#"{"rate_limit": {"fail": "maybe"}}"#,
            r#"{"quota": {"requests": 5, "per": "year"}}"#,
            r#"{"quota": {"requests": -1, "per": "day"}}"#,
            r#"{"quota": {"requests": 0, "per": "day"}}"#,
            r#"{"speed": 1}"#,
        ] {
            assert!(RecordLimits::from_stored(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(RecordLimits::from_stored(None), Ok(RecordLimits::default()));
        assert_eq!(RecordLimits::default().to_stored(), None);
    }

    #[test]
    fn stored_policies_are_checked_when_read() {
        let bridge = Policy::from_stored(
            RecordKind::Bridge,
            Some(r#"{"allowed_methods": ["get", "POST"]}"#),
        )
        .unwrap();
        assert_eq!(
            bridge.bridge().unwrap().methods(),
            [Method::GET, Method::POST]
        );
        for bad in [
            r#"{"allowed_methods": ["TRACE"]}"#,
            r#"{"allowed_methods": []}"#,
            r#"{"max_concurrent": 0}"#,
            r#"{"allowed_paths": ["/a/../b"]}"#,
            "not json",
        ] {
            assert!(
                Policy::from_stored(RecordKind::Bridge, Some(bad)).is_err(),
                "{bad}"
            );
        }
        assert!(Policy::from_stored(RecordKind::Bridge, None).is_err());
        let credential = Policy::from_stored(RecordKind::Credential, Some(r#"{"params":["db"]}"#));
        assert_eq!(credential.unwrap().credential().unwrap().params, ["db"]);
        assert!(
            Policy::from_stored(RecordKind::Credential, Some(r#"{"params":["a b"]}"#)).is_err()
        );
    }

    #[test]
    fn credential_params_are_plain_names() {
        for bad in ["", "a b", "select", "ü"] {
            assert!(CredentialPolicy::new(vec![bad.into()]).is_err(), "{bad}");
        }
        assert!(CredentialPolicy::new(vec!["db_name-2".into()]).is_ok());
    }
}
