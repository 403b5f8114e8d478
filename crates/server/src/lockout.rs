//! Brute-force lockout for password unlocks (secure pages, record passwords).
//!
//! Every attempt is written to the audit log as `attempt` *before* the password is checked, then
//! settled (`denied`, `revealed`, ...). Counting unsettled and denied attempts in a sliding window
//! therefore also counts attempts still in flight, so a burst of parallel guesses cannot slip
//! past the limit, and the count is shared by every node that uses the same database.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::audit::{Channel, Outcome, record_event};
use crate::clock::now_ms;
use crate::error::ApiResult;
use crate::extract::ClientInfo;
use crate::state::AppState;

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

/// An attempt that was let through; settle it with its outcome.
#[must_use]
pub struct Attempt {
    id: i64,
}

impl Attempt {
    pub async fn settle(self, state: &AppState, outcome: Outcome) -> ApiResult<()> {
        state.audit.settle(self.id, outcome, None).await?;
        Ok(())
    }
}

pub enum Admission {
    Go(Attempt),
    /// Refused; retry after this many seconds.
    Locked(u64),
}

/// Records an attempt on `record` and decides whether it may proceed. Failures count only since
/// `password_set` (when the password tried was set), so a new password starts with a clean count.
pub async fn admit(
    state: &AppState,
    record: Uuid,
    channel: Channel,
    client: &ClientInfo,
    password_set: Option<OffsetDateTime>,
) -> ApiResult<Admission> {
    let id = record_event(state, record, channel, Outcome::Attempt, client).await?;
    let settings = state.lockout;
    let now = now_ms();
    let window = Duration::seconds(i64::from(settings.window_secs));
    let since = password_set.map_or(now - window, |set| set.max(now - window));
    let mut retry_after = 0;
    let client_ip = client.addr.map(|ip| ip.to_string());
    let client_tier = client_ip
        .as_deref()
        .map(|ip| (Some(ip), settings.per_client));
    let record_tier = Some((None, settings.per_record));
    for (client_ip, limit) in client_tier.into_iter().chain(record_tier) {
        let limit = i64::from(limit);
        let recent = state
            .store
            .recent_events(&brine_store::RecentEvents {
                record,
                channel: channel.as_str(),
                outcomes: [Outcome::Attempt.as_str(), Outcome::Denied.as_str()],
                since,
                client_ip,
                limit: limit + 1,
            })
            .await?;
        // `recent` includes this attempt; it is over the limit when more than `limit` count.
        if let Some(oldest_that_matters) = recent.get(limit as usize) {
            let free_at = *oldest_that_matters + window;
            let wait = (free_at - now).whole_seconds().max(1) as u64;
            retry_after = retry_after.max(wait);
        }
    }
    if retry_after > 0 {
        state.audit.settle(id, Outcome::RateLimited, None).await?;
        return Ok(Admission::Locked(retry_after));
    }
    Ok(Admission::Go(Attempt { id }))
}
