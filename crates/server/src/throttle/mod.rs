//! Rate limits and quotas on records (`/r/{uuid}` and batch items), and limits on sign-in. A
//! record's own limits come first, then the server's defaults; an account-wide cap binds every
//! record of an owner together. Budgets live in Redis when one is configured (every node shares
//! them) and in this process otherwise; quotas are counted in the database.

mod logs;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use brine_core::{FailMode, RecordKind};
use brine_limits::{Decision, Key, Limiter, MemoryLimiter, Rate, RedisLimiter, Rule};
use brine_store::{Record, Store};
use hmac::digest::InvalidLength;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use self::logs::{Outage, RefusalLog};
use crate::clock::now_ms;
use crate::fault::Fault;
use crate::metrics::{DbCall, LimitRefusal, Metrics};

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

const LOGIN_PER_IP: Rate = Rate::fixed(30, 60);
const LOGIN_PER_EMAIL: Rate = Rate::fixed(10, 900);

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_ip: None,
            total: None,
            account: None,
            login_per_ip: LOGIN_PER_IP,
            login_per_email: LOGIN_PER_EMAIL,
        }
    }
}

/// Why a call was not let through.
#[derive(Debug, Clone)]
pub enum Limited {
    /// Over a rate: the decision says which budget and when to retry.
    Rate(Decision),
    /// The shared store is down and the record fails closed.
    Unavailable,
}

/// What a limit check decided.
enum Verdict {
    /// Go ahead; the decision (if any rule applied) describes the budget left.
    Pass(Option<Decision>),
    Limited(Decision),
    Unavailable,
}

/// The limiter every request goes through: the shared one when configured, with this node's
/// own as the fallback for records that fail open.
#[derive(Clone)]
pub struct Limits {
    local: Arc<MemoryLimiter>,
    shared: Option<RedisLimiter>,
    settings: Arc<RateLimitSettings>,
    outage: Arc<Outage>,
    refusals: Arc<RefusalLog>,
    store: Arc<dyn Store>,
    metrics: Metrics,
    /// Keys the email digests of sign-in limits, so that the limiter's storage holds nothing a
    /// dictionary could turn back into addresses.
    email_mac: Hmac<Sha256>,
}

impl Limits {
    pub fn new(
        settings: RateLimitSettings,
        shared: Option<RedisLimiter>,
        store: Arc<dyn Store>,
        metrics: Metrics,
        email_key: &[u8],
    ) -> Result<Self, InvalidLength> {
        Ok(Self {
            local: Arc::default(),
            shared,
            settings: Arc::new(settings),
            outage: Arc::default(),
            refusals: Arc::default(),
            store,
            metrics,
            email_mac: <Hmac<Sha256> as KeyInit>::new_from_slice(email_key)?,
        })
    }

    /// Admits a sign-in (`email` given) or sign-up attempt from `client`. Checked before the
    /// email is looked up, so known and unknown emails get the same answers. When Redis is down
    /// this node's own counts apply: sign-in never fails closed.
    pub async fn admit_login(
        &self,
        client: Option<IpAddr>,
        email: Option<&str>,
    ) -> Result<(), Decision> {
        let mut rules = Vec::with_capacity(2);
        if let Some(ip) = client {
            rules.push(Rule {
                key: Key::LoginClient(client_network(ip)),
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
                self.metrics.limit_refusal(LimitRefusal::SignIn);
                Err(decision)
            }
            Verdict::Pass(_) | Verdict::Unavailable => Ok(()),
        }
    }

    /// Checks a call to `record` from `client` against its rate limits. On success the decision
    /// (if any rule applied) describes the budget left, for the answer's headers.
    pub async fn admit_call(
        &self,
        record: &Record,
        client: Option<IpAddr>,
    ) -> Result<Option<Decision>, Limited> {
        let (rules, fail) = self.record_rules(record, client);
        match self.check(&rules, fail).await {
            Verdict::Pass(decision) => Ok(decision),
            Verdict::Limited(decision) => Err(Limited::Rate(decision)),
            Verdict::Unavailable => Err(Limited::Unavailable),
        }
    }

    /// Whether a refusal of `client` on `record` should be written to the audit log: the first
    /// in each second is, with the count of those that were not since; the rest only add to it,
    /// so a flood cannot flood the log too.
    pub fn audit_refusal(&self, record: Uuid, client: Option<IpAddr>) -> Option<u64> {
        self.refusals.admit(record, client.map(client_network))
    }

    /// Takes one request from the record's quota, if it has one. `Err(seconds)` when it is used
    /// up: the time until the next period.
    pub async fn take_quota(&self, record: &Record) -> Result<Result<(), u64>, Fault> {
        let Some(quota) = record.limits.quota else {
            return Ok(Ok(()));
        };
        let now = now_ms();
        let (start, next) = quota.per.bounds(now);
        self.metrics.db(DbCall::Quota);
        if self
            .store
            .take_quota(record.uuid, start, i64::from(quota.requests))
            .await?
        {
            return Ok(Ok(()));
        }
        Ok(Err(u64::try_from((next - now).whole_seconds())
            .unwrap_or(0)
            + 1))
    }

    async fn check(&self, rules: &[Rule], fail: FailMode) -> Verdict {
        if rules.is_empty() {
            return Verdict::Pass(None);
        }
        let decision = match &self.shared {
            None => self.local.acquire_now(rules),
            Some(shared) => {
                let answer = if self.outage.resting() {
                    None
                } else {
                    self.metrics.redis_call();
                    Some(shared.acquire(rules).await)
                };
                match answer {
                    Some(Ok(decision)) => {
                        self.outage.recovered();
                        decision
                    }
                    failure => {
                        self.outage
                            .failed(failure.and_then(Result::err).as_ref(), fail);
                        match fail {
                            FailMode::Closed => return Verdict::Unavailable,
                            FailMode::Open => self.local.acquire_now(rules),
                        }
                    }
                }
            }
        };
        match decision {
            Some(d) if !d.allowed => Verdict::Limited(d),
            d => Verdict::Pass(d),
        }
    }

    /// The rules for a call to `record` from `client`, and what to do if Redis is down.
    fn record_rules(&self, record: &Record, client: Option<IpAddr>) -> (Vec<Rule>, FailMode) {
        let own = record.limits.rate_limit.as_ref();
        let mut rules = Vec::new();
        let per_ip = own.and_then(|r| r.per_ip).or(self.settings.per_ip);
        if let (Some(rate), Some(ip)) = (per_ip, client) {
            rules.push(Rule {
                key: Key::RecordClient(record.uuid, client_network(ip)),
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
}

/// What "one client" is for per-address limits: an IPv4 address, or an IPv6 /64 — the block one
/// subscriber or machine gets, which it could otherwise rotate through for a fresh budget (and a
/// fresh entry in the limiter's memory) with every request.
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
        },
        v4 => v4,
    }
}

/// Whole seconds, rounded up: a client that waits this long is admitted.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `RateLimit-*` headers (IETF draft "RateLimit header fields for HTTP"), describing the budget
/// that binds this request.
pub fn write_headers(decision: &Decision, headers: &mut HeaderMap) {
    let rate = decision.rate;
    headers.insert("ratelimit-limit", HeaderValue::from(rate.count()));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert(
        "ratelimit-reset",
        HeaderValue::from(ceil_secs(decision.reset)),
    );
    let policy = format!("{};w={}", rate.count(), rate.period().as_secs());
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert("ratelimit-policy", policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            client_network(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            client_network(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(client_network(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_network(ip("198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(
            client_network(ip("::ffff:198.51.100.7")),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_default_sign_in_limits_are_what_the_docs_say() {
        let settings = RateLimitSettings::default();
        assert_eq!(settings.login_per_ip.to_string(), "30/min");
        assert_eq!(settings.login_per_email.to_string(), "10/15min");
    }
}
