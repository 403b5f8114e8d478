//! Budgets kept in this process: for a single node, and as every node's own fallback when the
//! shared store is down.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::{Decision, Key, LimitError, Limiter, Rule, admit, decide};

pub struct MemoryLimiter {
    started: Instant,
    state: Mutex<State>,
}

struct State {
    /// Each key's theoretical arrival time, in microseconds since `started`.
    tats: HashMap<Key, u64>,
    /// Sweep keys whose TAT has passed once the map grows beyond this.
    sweep_above: usize,
}

const MIN_SWEEP: usize = 4096;

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            state: Mutex::new(State {
                tats: HashMap::new(),
                sweep_above: MIN_SWEEP,
            }),
        }
    }
}

impl MemoryLimiter {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Only numbers live here: a panic elsewhere cannot leave them half-written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The synchronous core: one short critical section.
    pub fn acquire_now(&self, rules: &[Rule]) -> Option<Decision> {
        if rules.is_empty() {
            return None;
        }
        let mut state = self.lock();
        let now = self.started.elapsed().as_micros() as u64;
        let leads: Vec<u64> = rules
            .iter()
            .map(|rule| {
                state
                    .tats
                    .get(&rule.key)
                    .map_or(0, |tat| tat.saturating_sub(now))
            })
            .collect();
        let admitted: Option<Vec<u64>> = rules
            .iter()
            .zip(&leads)
            .map(|(rule, lead)| admit(&rule.rate, *lead))
            .collect();
        let Some(after) = admitted else {
            return decide(rules, &leads, false);
        };
        for (rule, lead) in rules.iter().zip(&after) {
            state.tats.insert(rule.key, now + lead);
        }
        if state.tats.len() > state.sweep_above {
            state.tats.retain(|_, tat| *tat > now);
            state.sweep_above = (state.tats.len() * 2).max(MIN_SWEEP);
        }
        decide(rules, &after, true)
    }
}

#[async_trait::async_trait]
impl Limiter for MemoryLimiter {
    async fn acquire(&self, rules: &[Rule]) -> Result<Option<Decision>, LimitError> {
        Ok(self.acquire_now(rules))
    }
}
