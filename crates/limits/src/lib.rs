//! Rate limits: GCRA ("generic cell rate algorithm") over any number of rules at once, all or
//! nothing. Two backends behind [`Limiter`]: [`MemoryLimiter`] for one node, [`RedisLimiter`]
//! (one atomic Lua script) for nodes that share their budgets. Both pass [`testing`]'s suite.
//!
//! GCRA keeps one number per key, the "theoretical arrival time" (TAT): each admitted request
//! pushes it one emission interval (`period / count`) further; a request is refused while the
//! TAT is more than a full burst ahead of now. No windows, so no double burst at a boundary.

mod memory;
mod redis;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::time::Duration;

use uuid::Uuid;

pub use crate::memory::MemoryLimiter;
pub use crate::redis::RedisLimiter;
pub use brine_core::Rate;

/// What a budget is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// One record, one client: a keyed digest of its address (limiter storage, Redis included,
    /// never holds addresses).
    RecordClient(Uuid, [u8; 16]),
    /// One record, every client.
    Record(Uuid),
    /// Every record of one account.
    Account(Uuid),
    /// Sign-in attempts from one client (a digest, as above).
    LoginClient([u8; 16]),
    /// Sign-in attempts for one email (a digest: limiter storage never holds addresses).
    LoginEmail([u8; 16]),
}

impl fmt::Display for Key {
    /// The Redis key. One hash tag for all, so that a script's keys share a cluster slot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RecordClient(record, client) => {
                write!(f, "{{brine-rl}}:rec:{record}:client:")?;
                hex(f, client)
            }
            Self::Record(record) => write!(f, "{{brine-rl}}:rec:{record}"),
            Self::Account(account) => write!(f, "{{brine-rl}}:acct:{account}"),
            Self::LoginClient(client) => {
                f.write_str("{brine-rl}:login:client:")?;
                hex(f, client)
            }
            Self::LoginEmail(digest) => {
                f.write_str("{brine-rl}:login:email:")?;
                hex(f, digest)
            }
        }
    }
}

fn hex(f: &mut fmt::Formatter<'_>, digest: &[u8; 16]) -> fmt::Result {
    digest.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// One budget a request must fit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub key: Key,
    pub rate: Rate,
}

/// The answer for a request, described by the rule that binds it: the one with the least room
/// left, or, when refused, the one that makes it wait longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub rate: Rate,
    /// Requests the binding rule still admits right now.
    pub remaining: u32,
    /// Until the binding rule's budget is whole again.
    pub reset: Duration,
    /// Until this request would be admitted; zero when it was.
    pub retry_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// The shared store did not answer; the caller decides whether to fail open or closed.
    #[error("rate-limit store unavailable: {0}")]
    Unavailable(String),
}

/// Admits one request against every rule, or against none.
#[async_trait::async_trait]
pub trait Limiter: Send + Sync {
    /// `None` when there are no rules.
    async fn acquire(&self, rules: &[Rule]) -> Result<Option<Decision>, LimitError>;
}

/// The GCRA step for one rule: `ahead_us` is how far the key's TAT is ahead of now (zero when it
/// is in the past). Returns the TAT lead after admitting one more, or `None` if it does not fit.
fn admit(rate: &Rate, ahead_us: u64) -> Option<u64> {
    let next = ahead_us + rate.emission_us();
    (next <= rate.window_us()).then_some(next)
}

/// Builds the decision from each rule's TAT lead: after admission when `allowed`, else as found.
/// Both backends report leads, so one function gives them the same answers.
fn decide(rules: &[Rule], leads_us: &[u64], allowed: bool) -> Option<Decision> {
    let describe = |(rule, lead): (&Rule, &u64)| {
        let (emission, window) = (rule.rate.emission_us(), rule.rate.window_us());
        let room = window.saturating_sub(*lead) / emission;
        let wait = (lead + emission).saturating_sub(window);
        Decision {
            allowed,
            rate: rule.rate,
            remaining: if allowed {
                u32::try_from(room).unwrap_or(u32::MAX)
            } else {
                0
            },
            reset: Duration::from_micros(*lead),
            retry_after: if allowed {
                Duration::ZERO
            } else {
                Duration::from_micros(wait)
            },
        }
    };
    let decisions = rules.iter().zip(leads_us).map(describe);
    if allowed {
        decisions.min_by_key(|d| (d.remaining, std::cmp::Reverse(d.reset)))
    } else {
        decisions.max_by_key(|d| d.retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(key: Key, text: &str) -> Rule {
        Rule {
            key,
            rate: Rate::parse(text).unwrap(),
        }
    }

    #[test]
    fn gcra_admits_a_burst_of_exactly_count_then_one_per_emission() {
        let rate = Rate::parse("3/min").unwrap();
        let mut lead = 0;
        for _ in 0..3 {
            lead = admit(&rate, lead).expect("burst of 3");
        }
        assert_eq!(admit(&rate, lead), None);
        // 20 s later the lead has shrunk by one emission, and one more fits.
        assert!(admit(&rate, lead - 20_000_000).is_some());
    }

    #[test]
    fn decisions_report_the_binding_rule() {
        let id = Uuid::nil();
        let rules = [
            rule(Key::Record(id), "10/min"),
            rule(Key::Account(id), "2/s"),
        ];
        // Allowed: the account rule has the least room (2/s, one used: 1 left).
        let d = decide(&rules, &[6_000_000, 500_000], true).unwrap();
        assert_eq!((d.allowed, d.remaining, d.rate), (true, 1, rules[1].rate));
        assert_eq!(d.retry_after, Duration::ZERO);
        // Refused: the record rule (full) makes the caller wait one emission, 6 s.
        let d = decide(&rules, &[60_000_000, 0], false).unwrap();
        assert_eq!((d.allowed, d.remaining, d.rate), (false, 0, rules[0].rate));
        assert_eq!(d.retry_after, Duration::from_secs(6));
        assert_eq!(d.reset, Duration::from_secs(60));
        assert_eq!(decide(&[], &[], true), None);
    }

    #[test]
    fn redis_keys_share_one_hash_tag_and_hide_emails() {
        let keys = [
            Key::RecordClient(Uuid::nil(), [0xcd; 16]),
            Key::Record(Uuid::nil()),
            Key::Account(Uuid::nil()),
            Key::LoginClient([0xcd; 16]),
            Key::LoginEmail([0xab; 16]),
        ];
        let shown: Vec<String> = keys.iter().map(Key::to_string).collect();
        assert!(
            shown.iter().all(|k| k.starts_with("{brine-rl}:")),
            "{shown:?}"
        );
        assert_eq!(
            shown[4],
            format!("{{brine-rl}}:login:email:{}", "ab".repeat(16))
        );
        let unique: std::collections::HashSet<_> = shown.iter().collect();
        assert_eq!(unique.len(), keys.len());
    }
}
