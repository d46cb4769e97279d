//! MCP sessions in Redis, shared by every replica: any replica validates and serves a request
//! for any live session, and a session ended on one is gone on all.
//!
//! Each session is a hash under `mcpgw:session:<key>` ([`session_key`](super::session::session_key):
//! the SHA-256 of the id, never the id) holding its subject, negotiated version, transport, the
//! replica holding its legacy SSE stream, creation and last-use times and what the client said
//! of itself ([`client_facts`]); it expires after the idle
//! timeout, and every use extends it. A sorted set per subject (`mcpgw:user-sessions:<sha256 of
//! the subject>`) bounds how many live sessions one subject holds. Each operation is one Lua
//! script: one round trip, atomic, on Redis's clock.
//!
//! Reads are cached on the replica ([`SessionCache`]).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

use super::cache::SessionCache;
use super::session::SessionView;

const CREATE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idle = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) then return 0 end
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'version', ARGV[2], 'transport', ARGV[3], 'holder', ARGV[4],
  'client', ARGV[7], 'created_ms', now, 'last_used_ms', now, 'user_sessions', KEYS[2])
redis.call('PEXPIRE', KEYS[1], idle)
redis.call('ZADD', KEYS[2], now + idle, KEYS[1])
redis.call('PEXPIRE', KEYS[2], idle)
return 1
";

const USE: &str = r"
local s = redis.call('HMGET', KEYS[1], 'user', 'version', 'holder')
if not s[1] or s[1] ~= ARGV[1] then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idle = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'last_used_ms', now)
redis.call('PEXPIRE', KEYS[1], idle)
redis.call('ZADD', KEYS[2], 'XX', now + idle, KEYS[1])
redis.call('PEXPIRE', KEYS[2], idle)
return {s[2], s[3] or ''}
";

const REMOVE: &str = r"
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return 1
";

/// Sessions in Redis, with this replica's short-lived cache of the ones it served.
pub struct RedisSessions {
    manager: ConnectionManager,
    create: redis::Script,
    use_: redis::Script,
    remove: redis::Script,
    idle_ms: u64,
    max_per_user: usize,
    cache: SessionCache,
}

fn session_hash(key: &str) -> String {
    format!("mcpgw:session:{key}")
}

fn user_sessions(user_id: &str) -> String {
    format!("mcpgw:user-sessions:{}", hex::encode(Sha256::digest(user_id.as_bytes())))
}

/// What `initialize` told of the client, as the shared store keeps it: its name and version
/// and the names of the capabilities it declared (at most 16), each escaped and capped
/// ([`storable`](gateway_actors::storable::storable)) — never the raw objects a client sent.
pub fn client_facts(params: &serde_json::Value) -> String {
    use gateway_actors::storable::storable;
    let text = |v: Option<&serde_json::Value>, max| {
        v.and_then(serde_json::Value::as_str).map(|s| storable(s, max).into_owned())
    };
    let info = params.get("clientInfo");
    let capabilities: Vec<String> = params
        .get("capabilities")
        .and_then(serde_json::Value::as_object)
        .map(|o| o.keys().take(16).map(|k| storable(k, 32).into_owned()).collect())
        .unwrap_or_default();
    serde_json::json!({
        "name": text(info.and_then(|i| i.get("name")), 64),
        "version": text(info.and_then(|i| i.get("version")), 32),
        "capabilities": capabilities,
    })
    .to_string()
}

impl RedisSessions {
    /// Sessions through `manager`, expiring after `idle`, at most `max_per_user` per subject.
    pub fn new(manager: ConnectionManager, idle: Duration, max_per_user: usize) -> Self {
        Self {
            manager,
            create: redis::Script::new(CREATE),
            use_: redis::Script::new(USE),
            remove: redis::Script::new(REMOVE),
            idle_ms: idle.as_millis().clamp(1000, u128::from(u32::MAX)) as u64,
            max_per_user,
            cache: SessionCache::default(),
        }
    }

    /// Store a new session under `key`; `Ok(false)` when the subject holds too many.
    pub async fn create(
        &self,
        key: &str,
        user_id: &str,
        version: &str,
        holder: Option<&str>,
        client: &str,
    ) -> redis::RedisResult<bool> {
        let transport = if holder.is_some() { "sse" } else { "streamable_http" };
        let mut invocation = self.create.prepare_invoke();
        invocation
            .key(session_hash(key))
            .key(user_sessions(user_id))
            .arg(user_id)
            .arg(version)
            .arg(transport)
            .arg(holder.unwrap_or(""))
            .arg(self.idle_ms)
            .arg(self.max_per_user)
            .arg(client);
        let created: i64 = invocation.invoke_async(&mut self.manager.clone()).await?;
        if created == 1 {
            let view = SessionView { version: version.into(), holder: holder.map(Into::into) };
            self.cache.remember(key, user_id, view);
        }
        Ok(created == 1)
    }

    /// The session under `key` if it is live and `user_id`'s (using it extends it).
    pub async fn get(&self, key: &str, user_id: &str) -> redis::RedisResult<Option<SessionView>> {
        if let Some(answer) = self.cache.fresh(key, user_id) {
            return Ok(answer);
        }
        self.refresh(key, user_id).await
    }

    /// Read (and extend) the session in Redis, whatever the cache says.
    pub async fn refresh(&self, key: &str, user_id: &str) -> redis::RedisResult<Option<SessionView>> {
        let mut invocation = self.use_.prepare_invoke();
        invocation.key(session_hash(key)).key(user_sessions(user_id)).arg(user_id).arg(self.idle_ms);
        let found: Option<(String, String)> = invocation.invoke_async(&mut self.manager.clone()).await?;
        let Some((version, holder)) = found else {
            self.cache.forget(key);
            return Ok(None);
        };
        let holder = (!holder.is_empty()).then(|| Arc::<str>::from(holder));
        let view = SessionView { version: version.into(), holder };
        self.cache.remember(key, user_id, view.clone());
        Ok(Some(view))
    }

    /// End the session under `key` if it is `user_id`'s; whether it was.
    pub async fn remove(&self, key: &str, user_id: &str) -> redis::RedisResult<bool> {
        self.cache.forget(key);
        let mut invocation = self.remove.prepare_invoke();
        invocation.key(session_hash(key)).key(user_sessions(user_id)).arg(user_id);
        let removed: i64 = invocation.invoke_async(&mut self.manager.clone()).await?;
        Ok(removed == 1)
    }

    /// This replica's copies.
    pub fn cache(&self) -> &SessionCache {
        &self.cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_client_says_of_itself_is_kept_escaped_and_bounded() {
        let params = serde_json::json!({
            "clientInfo": {"name": "<script>\u{202e}evil\u{0}", "version": "9".repeat(1000), "extra": "x".repeat(100_000)},
            "capabilities": (0..100).map(|i| (format!("cap{i}"), serde_json::json!({"big": "y".repeat(1000)}))).collect::<serde_json::Map<_, _>>(),
        });
        let facts = client_facts(&params);
        assert!(facts.len() < 1200, "{} bytes", facts.len());
        assert!(
            !facts.contains('\u{202e}')
                && !facts.contains("\\u0000")
                && !facts.contains("yyyy")
                && !facts.contains("xxxx"),
            "{facts}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&facts).unwrap();
        assert_eq!(parsed["capabilities"].as_array().unwrap().len(), 16);
        assert_eq!(client_facts(&serde_json::Value::Null), r#"{"capabilities":[],"name":null,"version":null}"#);
    }
}
