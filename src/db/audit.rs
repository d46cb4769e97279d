//! The audit table: the database side of `AuditWriterActor` and the queries behind
//! `GET /admin/audit-logs`.

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::future::LocalBoxFuture;
use gateway_actors::{AuditRecord, AuditSink};
use serde::Serialize;

use super::schema::audit_logs;
use super::{Db, DbError};

/// Rows per INSERT statement: keeps bind parameters under both backends' limits.
const ROWS_PER_STATEMENT: usize = 1000;

/// An audit row as stored.
#[derive(Debug, Clone, Insertable, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_logs, treat_none_as_default_value = false)]
pub struct AuditRow {
    /// Row id (UUID v7).
    pub id: String,
    /// When the attempt finished (UTC).
    pub created_at: NaiveDateTime,
    /// Request id returned to the client.
    pub request_id: String,
    /// Caller's `sub`.
    pub user_id: Option<String>,
    /// Caller's roles as a JSON array.
    pub roles: String,
    /// Caller's workspace.
    pub workspace: Option<String>,
    /// Tool asked for.
    pub tool_name: Option<String>,
    /// Access decision.
    pub decision: String,
    /// Outcome.
    pub status: String,
    /// HTTP status returned.
    pub http_status: i32,
    /// JSON-RPC error code returned.
    pub error_code: Option<i32>,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// Client address.
    pub client_ip: Option<String>,
    /// SHA-256 of the arguments.
    pub arguments_sha256: Option<String>,
    /// Short error text.
    pub error_message: Option<String>,
    /// The front door the call came through.
    pub transport: String,
}

impl From<&AuditRecord> for AuditRow {
    fn from(r: &AuditRecord) -> Self {
        Self {
            id: r.id.clone(),
            created_at: r.created_at.naive_utc(),
            request_id: r.request_id.clone(),
            user_id: r.user_id.clone(),
            roles: serde_json::to_string(&r.roles).unwrap_or_else(|_| "[]".into()),
            workspace: r.workspace.clone(),
            tool_name: r.tool_name.clone(),
            decision: r.decision.clone(),
            status: r.status.clone(),
            http_status: r.http_status,
            error_code: r.error_code,
            duration_ms: r.duration_ms,
            client_ip: r.client_ip.clone(),
            arguments_sha256: r.arguments_sha256.clone(),
            error_message: r.error_message.clone(),
            transport: r.transport.clone(),
        }
    }
}

/// Insert `rows` in one transaction, as multi-row INSERTs.
pub async fn insert_batch(db: &Db, rows: &[AuditRecord]) -> Result<(), DbError> {
    let rows: Vec<AuditRow> = rows.iter().map(AuditRow::from).collect();
    match db {
        Db::Pg(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    diesel::insert_into(audit_logs::table).values(chunk).execute(conn).await?;
                }
                Ok(())
            })
            .await
            .map_err(DbError::from_display)
        }
        // diesel's multi-row INSERT for SQLite lives in its synchronous API.
        Db::Sqlite(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            conn.spawn_blocking(move |conn| {
                conn.transaction(|conn| {
                    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                        diesel::RunQueryDsl::execute(diesel::insert_into(audit_logs::table).values(chunk), conn)?;
                    }
                    Ok(())
                })
            })
            .await
            .map_err(DbError::from_display)
        }
    }
}

/// The database as the audit writer's sink.
pub struct DbAuditSink(pub Db);

impl AuditSink for DbAuditSink {
    fn write_batch(&self, rows: Arc<[AuditRecord]>) -> LocalBoxFuture<'static, Result<(), String>> {
        let db = self.0.clone();
        Box::pin(async move { insert_batch(&db, &rows).await.map_err(|e| e.to_string()) })
    }
}

/// Filters of `GET /admin/audit-logs`.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Only rows of this user.
    pub user: Option<String>,
    /// Only rows for this tool.
    pub tool: Option<String>,
    /// Only rows with this decision.
    pub decision: Option<String>,
    /// Only rows at or after this time (UTC).
    pub since: Option<NaiveDateTime>,
    /// Only rows before this time (UTC).
    pub until: Option<NaiveDateTime>,
    /// Only rows older than this row id (the previous page's cursor).
    pub before_id: Option<String>,
    /// Page size.
    pub limit: i64,
}

macro_rules! filtered {
    ($conn:expr, $backend:ty, $f:expr) => {{
        let f = $f;
        let mut q = audit_logs::table.into_boxed::<$backend>();
        if let Some(v) = &f.user {
            q = q.filter(audit_logs::user_id.eq(v));
        }
        if let Some(v) = &f.tool {
            q = q.filter(audit_logs::tool_name.eq(v));
        }
        if let Some(v) = &f.decision {
            q = q.filter(audit_logs::decision.eq(v));
        }
        if let Some(v) = f.since {
            q = q.filter(audit_logs::created_at.ge(v));
        }
        if let Some(v) = f.until {
            q = q.filter(audit_logs::created_at.lt(v));
        }
        if let Some(v) = &f.before_id {
            q = q.filter(audit_logs::id.lt(v));
        }
        q.order(audit_logs::id.desc())
            .limit(f.limit)
            .select(AuditRow::as_select())
            .load::<AuditRow>($conn)
            .await
            .map_err(DbError::from_display)
    }};
}

/// Rows matching `filter`, newest first.
pub async fn query(db: &Db, filter: &AuditFilter) -> Result<Vec<AuditRow>, DbError> {
    match db {
        Db::Pg(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            filtered!(&mut *conn, diesel::pg::Pg, filter)
        }
        Db::Sqlite(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            filtered!(&mut *conn, diesel::sqlite::Sqlite, filter)
        }
    }
}
