//! Budgets shared by every node, in Redis. One Lua script reads and writes all of a request's
//! keys atomically, on Redis's clock (so nodes with skewed clocks still agree).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{Decision, LimitError, Limiter, Rule, decide};

/// KEYS: one per rule. ARGV: emission and window (microseconds) per rule.
/// Returns `{admitted (0/1), lead_1, ..., lead_n}`: each TAT's lead over now, after admission
/// when admitted, as found otherwise (the same numbers as the in-memory limiter computes).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local leads, nexts, admitted = {}, {}, 1
for i, key in ipairs(KEYS) do
  local emission, window = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  local lead = math.max(tat - now, 0)
  leads[i], nexts[i] = lead, lead + emission
  if nexts[i] > window then admitted = 0 end
end
if admitted == 0 then
  table.insert(leads, 1, 0)
  return leads
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', now + nexts[i]), 'PX', math.ceil(nexts[i] / 1000))
end
table.insert(nexts, 1, 1)
return nexts
";

/// How long a request may wait for Redis before the record's failure mode applies.
const ANSWER_WITHIN: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct RedisLimiter {
    connection: ConnectionManager,
    script: redis::Script,
}

impl RedisLimiter {
    /// Connects lazily: a server starts even while Redis is down, and each request then gets
    /// [`LimitError::Unavailable`] until it is back.
    pub fn new(url: &str) -> Result<Self, LimitError> {
        let client =
            redis::Client::open(url).map_err(|e| LimitError::Unavailable(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(250)))
            .set_response_timeout(Some(ANSWER_WITHIN))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| LimitError::Unavailable(e.to_string()))?;
        Ok(Self {
            connection,
            script: redis::Script::new(GCRA),
        })
    }

    /// Whether Redis answers now (for start-up logs and health checks).
    pub async fn ping(&self) -> Result<(), LimitError> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        match tokio::time::timeout(ANSWER_WITHIN, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(LimitError::Unavailable(e.to_string())),
            Err(_) => Err(LimitError::Unavailable("no answer in time".into())),
        }
    }
}

#[async_trait::async_trait]
impl Limiter for RedisLimiter {
    async fn acquire(&self, rules: &[Rule]) -> Result<Option<Decision>, LimitError> {
        if rules.is_empty() {
            return Ok(None);
        }
        let mut invocation = self.script.prepare_invoke();
        for rule in rules {
            invocation
                .key(rule.key.to_string())
                .arg(rule.rate.emission_us())
                .arg(rule.rate.window_us());
        }
        let mut connection = self.connection.clone();
        let reply = tokio::time::timeout(
            ANSWER_WITHIN,
            invocation.invoke_async::<Vec<u64>>(&mut connection),
        )
        .await
        .map_err(|_| LimitError::Unavailable("no answer in time".into()))?
        .map_err(|e| LimitError::Unavailable(e.to_string()))?;
        match reply.split_first() {
            Some((admitted, leads)) if leads.len() == rules.len() => {
                Ok(decide(rules, leads, *admitted == 1))
            }
            _ => Err(LimitError::Unavailable(
                "unexpected reply from the rate-limit script".into(),
            )),
        }
    }
}
