//! Brute-force lockout for password unlocks (secure pages, record passwords).
//!
//! Every attempt is written to the audit log as `attempt` *before* the password is checked, then
//! settled (`denied`, `revealed`, ...). Counting unsettled and denied attempts in a sliding window
//! therefore also counts attempts still in flight, so a burst of parallel guesses cannot slip
//! past the limit, and the count is shared by every node that uses the same database. Failures
//! count only since the password was set, so a new password starts with a clean count.

use std::sync::Arc;

use brine_store::{RecentFailures, Store};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::audit::{AuditLog, Channel, Event, Outcome};
use crate::clock::now_ms;
use crate::extract::ClientInfo;
use crate::fault::Fault;
use crate::metrics::{DbCall, Locked, Metrics};

/// Failures allowed in a sliding window before unlocking is refused.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutSettings {
    /// Per record and client address.
    pub per_client: u32,
    /// Per record, whoever tries.
    pub per_record: u32,
    pub window_secs: u32,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        Self {
            per_client: 5,
            per_record: 20,
            window_secs: 600,
        }
    }
}

/// An attempt that was let through, stored as an `attempt` event; its outcome settles it.
#[must_use]
#[derive(Debug)]
pub struct Attempt {
    pub id: i64,
}

/// Whether an attempt may go on.
#[derive(Debug)]
pub enum Admission {
    Go(Attempt),
    /// Refused (and audited); retry after this many seconds.
    Locked(u64),
}

#[derive(Clone)]
pub struct Lockout {
    store: Arc<dyn Store>,
    audit: AuditLog,
    settings: LockoutSettings,
    metrics: Metrics,
}

impl Lockout {
    pub fn new(
        store: Arc<dyn Store>,
        audit: AuditLog,
        settings: LockoutSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            audit,
            settings,
            metrics,
        }
    }

    /// Records an attempt on `record` and decides whether it may go on. `password_set` is when
    /// the password being tried was set; `expect_version` guards the attempt event like any
    /// other (see `audit::Event`).
    pub async fn admit(
        &self,
        record: Uuid,
        channel: Channel,
        client: &ClientInfo,
        password_set: Option<OffsetDateTime>,
        expect_version: Option<i64>,
    ) -> Result<Admission, Fault> {
        let event =
            Event::new(record, channel, Outcome::Attempt, client).expect_version(expect_version);
        let id = self.audit.append(event).await?;
        let now = now_ms();
        let window = Duration::seconds(i64::from(self.settings.window_secs));
        let since = password_set.map_or(now - window, |set| set.max(now - window));
        let client_ip = client.addr.map(|ip| ip.to_string());
        // Both tiers in one query; this attempt is among the failures counted, so a tier is over
        // its limit when it has more than `limit` of them.
        self.metrics.db(DbCall::Failures);
        let edges = self
            .store
            .recent_failures(&RecentFailures {
                record,
                channel: channel.as_str(),
                outcomes: [Outcome::Attempt.as_str(), Outcome::Denied.as_str()],
                since,
                client_ip: client_ip.as_deref(),
                per_client: i64::from(self.settings.per_client),
                per_record: i64::from(self.settings.per_record),
            })
            .await?;
        let retry_after = [edges.client, edges.record]
            .into_iter()
            .flatten()
            .map(|oldest_that_matters| {
                let free_at = oldest_that_matters + window;
                (free_at - now).whole_seconds().max(1) as u64
            })
            .max();
        match retry_after {
            Some(wait) => {
                self.metrics.lockout(match channel {
                    Channel::SecurePage => Locked::SecurePage,
                    _ => Locked::RecordPassword,
                });
                self.audit.settle(id, Outcome::RateLimited, None).await;
                Ok(Admission::Locked(wait))
            }
            None => Ok(Admission::Go(Attempt { id })),
        }
    }

    /// Records how an attempt ended.
    pub async fn settle(&self, attempt: Attempt, outcome: Outcome) {
        self.audit.settle(attempt.id, outcome, None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::test_support::temp_store;

    #[tokio::test]
    async fn failures_count_per_client_and_per_record_and_only_since_the_password() {
        let t = temp_store().await;
        let metrics = Metrics::default();
        let audit = AuditLog::start(t.store.clone(), metrics.clone());
        let settings = LockoutSettings {
            per_client: 2,
            per_record: 3,
            window_secs: 600,
        };
        let lockout = Lockout::new(t.store.clone(), audit, settings, metrics);
        let from = |n: u8| ClientInfo {
            addr: Some(std::net::IpAddr::from([192, 0, 2, n])),
            user_agent: None,
        };
        let try_once = async |client: &ClientInfo, password_set| {
            let admission = lockout
                .admit(t.record, Channel::Password, client, password_set, None)
                .await
                .unwrap();
            match admission {
                Admission::Go(attempt) => {
                    lockout.settle(attempt, Outcome::Denied).await;
                    true
                }
                Admission::Locked(wait) => {
                    assert!((1..=600).contains(&wait), "{wait}");
                    false
                }
            }
        };
        // Two failures from one client, then that client is locked out, not another.
        assert!(try_once(&from(1), None).await);
        assert!(try_once(&from(1), None).await);
        assert!(!try_once(&from(1), None).await);
        assert!(
            try_once(&from(2), None).await,
            "another client still may try"
        );
        // The record has had three failures in all: everyone is locked out now.
        assert!(!try_once(&from(3), None).await);
        // A password set now counts only what comes after it.
        let set = now_ms();
        assert!(try_once(&from(1), Some(set)).await);
    }
}
