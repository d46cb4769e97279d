//! MCP sessions in PostgreSQL, shared by every replica when no Redis is configured: the
//! `mcp_sessions` table (keyed by the SHA-256 of the id, never the id), with the same contract
//! as [`RedisSessions`](super::redis_sessions::RedisSessions) — bound to the subject, expiring
//! after the idle timeout (every use extends it), at most `max_per_user` live per subject — and
//! the same per-replica cache ([`SessionCache`]). Each operation is one statement (creation: one
//! short transaction holding the subject's advisory lock, so two replicas cannot both fill a
//! subject's last slot).

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::cache::SessionCache;
use super::session::SessionView;
use crate::db::DbError;

/// Sessions in PostgreSQL, with this replica's short-lived cache of the ones it served.
pub struct PgSessions {
    pool: Pool<AsyncPgConnection>,
    idle_ms: i64,
    max_per_user: i64,
    cache: SessionCache,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Text)]
    holder: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl PgSessions {
    /// Sessions through `pool`, expiring after `idle`, at most `max_per_user` per subject.
    pub fn new(pool: Pool<AsyncPgConnection>, idle: Duration, max_per_user: usize) -> Self {
        Self {
            pool,
            idle_ms: idle.as_millis().clamp(1000, i64::MAX as u128) as i64,
            max_per_user: max_per_user as i64,
            cache: SessionCache::default(),
        }
    }

    async fn conn(&self) -> Result<diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>, DbError> {
        self.pool.get().await.map_err(DbError::from_display)
    }

    /// Store a new session under `key`; `Ok(false)` when the subject holds too many.
    pub async fn create(
        &self,
        key: &str,
        user_id: &str,
        version: &str,
        holder: Option<&str>,
        client: &str,
    ) -> Result<bool, DbError> {
        let transport = if holder.is_some() { "sse" } else { "streamable_http" };
        let (idle, max) = (self.idle_ms, self.max_per_user);
        let mut conn = self.conn().await?;
        let created = conn
            .transaction::<bool, diesel::result::Error, _>(async |conn| {
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 5713))")
                    .bind::<Text, _>(user_id)
                    .execute(conn)
                    .await?;
                diesel::sql_query("DELETE FROM mcp_sessions WHERE user_id = $1 AND expires_at <= now()")
                    .bind::<Text, _>(user_id)
                    .execute(conn)
                    .await?;
                let live = diesel::sql_query("SELECT count(*) AS n FROM mcp_sessions WHERE user_id = $1")
                    .bind::<Text, _>(user_id)
                    .get_result::<Count>(conn)
                    .await?;
                if live.n >= max {
                    return Ok(false);
                }
                diesel::sql_query(
                    "INSERT INTO mcp_sessions (key, user_id, version, transport, holder, client, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, now() + $7 * interval '1 millisecond')",
                )
                .bind::<Text, _>(key)
                .bind::<Text, _>(user_id)
                .bind::<Text, _>(version)
                .bind::<Text, _>(transport)
                .bind::<Text, _>(holder.unwrap_or(""))
                .bind::<Text, _>(client)
                .bind::<BigInt, _>(idle)
                .execute(conn)
                .await?;
                Ok(true)
            })
            .await
            .map_err(DbError::from_display)?;
        if created {
            let view = SessionView { version: version.into(), holder: holder.map(Into::into) };
            self.cache.remember(key, user_id, view);
        }
        Ok(created)
    }

    /// The session under `key` if it is live and `user_id`'s (using it extends it).
    pub async fn get(&self, key: &str, user_id: &str) -> Result<Option<SessionView>, DbError> {
        if let Some(answer) = self.cache.fresh(key, user_id) {
            return Ok(answer);
        }
        self.refresh(key, user_id).await
    }

    /// Read (and extend) the session in the database, whatever the cache says.
    pub async fn refresh(&self, key: &str, user_id: &str) -> Result<Option<SessionView>, DbError> {
        let mut conn = self.conn().await?;
        let found = diesel::sql_query(
            "UPDATE mcp_sessions SET last_used_at = now(), expires_at = now() + $3 * interval '1 millisecond' \
             WHERE key = $1 AND user_id = $2 AND expires_at > now() RETURNING version, holder",
        )
        .bind::<Text, _>(key)
        .bind::<Text, _>(user_id)
        .bind::<BigInt, _>(self.idle_ms)
        .get_results::<Found>(&mut *conn)
        .await
        .map_err(DbError::from_display)?;
        let Some(Found { version, holder }) = found.into_iter().next() else {
            self.cache.forget(key);
            return Ok(None);
        };
        let holder = (!holder.is_empty()).then(|| Arc::<str>::from(holder));
        let view = SessionView { version: version.into(), holder };
        self.cache.remember(key, user_id, view.clone());
        Ok(Some(view))
    }

    /// End the session under `key` if it is `user_id`'s; whether it was.
    pub async fn remove(&self, key: &str, user_id: &str) -> Result<bool, DbError> {
        self.cache.forget(key);
        let mut conn = self.conn().await?;
        let n = diesel::sql_query("DELETE FROM mcp_sessions WHERE key = $1 AND user_id = $2")
            .bind::<Text, _>(key)
            .bind::<Text, _>(user_id)
            .execute(&mut *conn)
            .await
            .map_err(DbError::from_display)?;
        Ok(n == 1)
    }

    /// Delete expired sessions (any replica may; the statement is idempotent).
    pub async fn expire(&self) -> Result<usize, DbError> {
        let mut conn = self.conn().await?;
        diesel::sql_query("DELETE FROM mcp_sessions WHERE expires_at <= now()")
            .execute(&mut *conn)
            .await
            .map_err(DbError::from_display)
    }

    /// This replica's copies.
    pub fn cache(&self) -> &SessionCache {
        &self.cache
    }
}
