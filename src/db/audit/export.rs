//! Reading the trail: the filters and queries behind `GET /admin/audit-logs`, and the CSV export
//! (fields quoted, never read as spreadsheet formulas).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::audit_logs;
use crate::db::{Db, DbError};

use super::row::AuditRow;

/// Filters of `GET /admin/audit-logs`.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Only rows of this user.
    pub user: Option<String>,
    /// Only rows for this tool.
    pub tool: Option<String>,
    /// Only rows with this decision.
    pub decision: Option<String>,
    /// Only rows with this status.
    pub status: Option<String>,
    /// Only rows of callers holding this role.
    pub role: Option<String>,
    /// Only rows of this workspace.
    pub workspace: Option<String>,
    /// Only rows of this request id.
    pub request_id: Option<String>,
    /// Only rows at or after this time (UTC).
    pub since: Option<NaiveDateTime>,
    /// Only rows before this time (UTC).
    pub until: Option<NaiveDateTime>,
    /// Only rows older than this row id (the previous page's cursor).
    pub before_id: Option<String>,
    /// Page size.
    pub limit: i64,
}

diesel::define_sql_function! {
    /// SQL `lower()` (ASCII letters alike on PostgreSQL and SQLite).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
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
        if let Some(v) = &f.status {
            q = q.filter(audit_logs::status.eq(v));
        }
        if let Some(v) = &f.role {
            // roles is a JSON array of strings: match the quoted element.
            // Case-insensitive on both databases alike (`LIKE` is not on PostgreSQL): both
            // sides lower-cased.
            let quoted = serde_json::to_string(&v.to_ascii_lowercase()).unwrap_or_default();
            let literal = quoted.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            q = q.filter(lower(audit_logs::roles).like(format!("%{literal}%")).escape('\\'));
        }
        if let Some(v) = &f.workspace {
            q = q.filter(audit_logs::workspace.eq(v));
        }
        if let Some(v) = &f.request_id {
            q = q.filter(audit_logs::request_id.eq(v));
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

/// Failed calls (any outcome but `ok` and `tool_error`) since `since`, newest first, at most
/// `limit`: the console's "recent errors" per tool.
pub async fn recent_errors(db: &Db, since: NaiveDateTime, limit: i64) -> Result<Vec<AuditRow>, DbError> {
    crate::with_conn!(db, |conn| {
        audit_logs::table
            .filter(audit_logs::created_at.ge(since))
            .filter(audit_logs::status.ne_all(["ok", "tool_error"]))
            .order(audit_logs::created_at.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load::<AuditRow>(conn)
            .await
            .map_err(DbError::from_display)
    })
}

/// One audit row as a CSV line (RFC 4180 quoting). A text value a spreadsheet would run as a
/// formula (leading `=`, `+`, `-`, `@`, tab or CR) gets a leading `'` (OWASP's CSV-injection
/// advice); numbers are written as they are.
pub fn csv_line(r: &AuditRow) -> String {
    let field = |v: &str| {
        let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{v}") } else { v.to_owned() };
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v
        }
    };
    let opt = |v: &Option<String>| field(v.as_deref().unwrap_or(""));
    [
        field(&r.id),
        field(&r.created_at.and_utc().to_rfc3339()),
        field(&r.request_id),
        opt(&r.user_id),
        field(&r.roles),
        opt(&r.workspace),
        opt(&r.tool_name),
        field(&r.decision),
        field(&r.status),
        r.http_status.to_string(),
        r.error_code.map(|c| c.to_string()).unwrap_or_default(),
        r.duration_ms.to_string(),
        opt(&r.client_ip),
        opt(&r.arguments_sha256),
        opt(&r.error_message),
        opt(&r.arguments_logged),
        field(&r.transport),
        field(&r.chain_id),
        r.seq.to_string(),
        field(&r.prev_hash),
        field(&r.row_hash),
        field(&r.kind),
    ]
    .join(",")
}

/// The CSV header matching [`csv_line`].
pub const CSV_HEADER: &str = "id,created_at,request_id,user_id,roles,workspace,tool_name,decision,status,http_status,error_code,duration_ms,client_ip,arguments_sha256,error_message,arguments_logged,transport,chain_id,seq,prev_hash,row_hash,kind";
