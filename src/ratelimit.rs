//! Rate-limit cells shared by every replica through Redis: one Lua script checks and consumes
//! all of a call's limits atomically, in one round trip, on Redis's clock; cells expire by
//! themselves when idle, so memory stays bounded however many keys there are.

use gateway_actors::IoFailure;
use std::time::Duration;

use futures_util::future::BoxFuture;
use gateway_actors::{Limit, RateStore, Usage, Verdict};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// GCRA over KEYS with ARGV = interval and tolerance (µs) per key; all or nothing.
/// Returns {0, tightest_index, remaining} when allowed, {index, retry_after_us} when limited
/// (of the refusing limits, the one whose retry comes last).
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local new = {}
local refused, longest = 0, -1
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local nt = tat + interval
  if nt - now > tolerance and nt - tolerance - now > longest then
    refused, longest = i, nt - tolerance - now
  end
  new[i] = nt
end
if refused > 0 then
  return {refused, longest}
end
local tightest, remaining = 0, -1
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], new[i], 'PX', math.ceil((new[i] - now) / 1000) + 1000)
  local left = math.floor((tonumber(ARGV[2 * i]) - (new[i] - now)) / tonumber(ARGV[2 * i - 1]))
  if remaining < 0 or left < remaining then
    remaining = left
    tightest = i
  end
end
return {0, tightest, remaining}
";

/// Each key's theoretical arrival time against Redis's clock, read only: {tat_us - now_us, …}
/// (negative or zero: the cell is full).
const PEEK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, #KEYS do
  out[i] = tonumber(redis.call('GET', KEYS[i]) or now) - now
end
return out
";

/// `REDIS_URL` was refused by the Redis client (kept as the source).
#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL: {0}")]
pub struct RedisUrlError(#[source] redis::RedisError);

/// Cells in Redis under `mcpgw:rl:`.
pub struct RedisStore {
    manager: ConnectionManager,
    script: redis::Script,
    peek: redis::Script,
}

impl RedisStore {
    /// Connect lazily to `url` (a down Redis at start-up is handled like one that fails later).
    pub fn new(url: &str) -> Result<Self, RedisUrlError> {
        let client = redis::Client::open(url).map_err(RedisUrlError)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, config).map_err(RedisUrlError)?;
        Ok(Self { manager, script: redis::Script::new(SCRIPT), peek: redis::Script::new(PEEK) })
    }
}

impl RateStore for RedisStore {
    fn peek(&self, limits: Vec<Limit>) -> BoxFuture<'static, Result<Vec<Usage>, IoFailure>> {
        let (mut manager, script) = (self.manager.clone(), self.peek.clone());
        Box::pin(async move {
            let mut invocation = script.prepare_invoke();
            for limit in &limits {
                invocation.key(format!("mcpgw:rl:{}", limit.key));
            }
            let ahead_us: Vec<i64> = invocation.invoke_async(&mut manager).await.map_err(IoFailure::new)?;
            Ok(limits
                .iter()
                .zip(ahead_us)
                .map(|(l, ahead)| Usage::of(&l.quota, u64::try_from(ahead).unwrap_or(0).saturating_mul(1000), 0))
                .collect())
        })
    }

    fn ping(&self) -> BoxFuture<'static, Result<(), IoFailure>> {
        let mut manager = self.manager.clone();
        Box::pin(async move {
            let _: String = redis::cmd("PING").query_async(&mut manager).await.map_err(IoFailure::new)?;
            Ok(())
        })
    }

    fn check(&self, limits: Vec<Limit>) -> BoxFuture<'static, Result<Verdict, IoFailure>> {
        let (mut manager, script) = (self.manager.clone(), self.script.clone());
        Box::pin(async move {
            let mut invocation = script.prepare_invoke();
            for limit in &limits {
                invocation.key(format!("mcpgw:rl:{}", limit.key));
                invocation.arg(limit.quota.interval_ns() / 1000).arg(limit.quota.tolerance_ns() / 1000);
            }
            let reply: Vec<i64> = invocation.invoke_async(&mut manager).await.map_err(IoFailure::new)?;
            match reply.as_slice() {
                [0, tightest, remaining] => Ok(Verdict::Allowed {
                    tightest: usize::try_from(*tightest - 1).ok(),
                    remaining: u64::try_from(*remaining).unwrap_or(0),
                }),
                [index, retry_us] => Ok(Verdict::Limited {
                    index: usize::try_from(*index - 1).unwrap_or(0),
                    retry_after: Duration::from_micros(u64::try_from(*retry_us).unwrap_or(0)),
                }),
                other => Err(IoFailure::new(format!("unexpected rate-limit script reply {other:?}"))),
            }
        })
    }
}

/// The rate limits of this gateway: where the cells live (in this process, or Redis shared by
/// replicas) and whether calls pass or fail while that store is unreachable. Each worker's
/// `RateLimiterActor` checks calls against them.
pub struct Limits {
    store: std::sync::Arc<dyn gateway_actors::RateStore>,
    failure: gateway_actors::FailureMode,
}

impl Limits {
    /// Limits kept in `store`, failing `failure` while it is unreachable.
    pub fn new(store: std::sync::Arc<dyn gateway_actors::RateStore>, failure: gateway_actors::FailureMode) -> Self {
        Self { store, failure }
    }

    /// The cells' store (shared by every limiter).
    pub fn store(&self) -> std::sync::Arc<dyn gateway_actors::RateStore> {
        self.store.clone()
    }

    /// Open (calls pass) or closed (calls fail) while the store is unreachable.
    pub fn failure(&self) -> gateway_actors::FailureMode {
        self.failure
    }
}
