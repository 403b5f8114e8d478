//! The end task: every node looks for handoffs past their end date every [`EVERY`] and ends
//! them. Several nodes may look at once; the conditional UPDATE in `end_handoff` lets one win
//! each handoff, so each record is disabled (and audited) once.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Handoffs;
use crate::clock::now_ms;

/// How often each node looks. The records refuse callers from the end date itself (it is their
/// expiry); this only bounds how late they show as disabled and the to-do appears.
pub const EVERY: Duration = Duration::from_secs(30);
/// Handoffs ended per query.
pub(super) const BATCH: u32 = 100;

impl Handoffs {
    /// Starts the end task on this node. It stops when the handle is aborted, or by itself once
    /// the server has let go of its handoffs.
    pub fn start(&self) -> JoinHandle<()> {
        let weak = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(parts) = weak.upgrade() else { break };
                if let Err(e) = Handoffs(parts).end_due(now_ms()).await {
                    tracing::error!(error = ?e, "cannot end the handoffs past their end date");
                }
            }
        })
    }
}
