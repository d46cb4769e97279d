//! `GET /admin/audit-logs` (role `admin`): audit rows newest first, filtered, with a cursor.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::context::{require_role, Authenticated};
use crate::app::Shared;
use crate::db::audit::{query, AuditFilter};
use crate::error::GatewayError;

/// Query parameters of the audit listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    user: Option<String>,
    tool: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn time(name: &str, value: Option<&str>) -> Result<Option<NaiveDateTime>, GatewayError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc).naive_utc())
                .map_err(|e| GatewayError::InvalidRequest(format!("{name}: expected RFC 3339 time: {e}")))
        })
        .transpose()
}

/// `GET /admin/audit-logs`.
pub async fn audit_logs(
    Authenticated(caller): Authenticated,
    params: web::Query<AuditParams>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&caller, &["admin"])?;
    let p = params.into_inner();
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(GatewayError::InvalidRequest("limit must be between 1 and 1000".into()));
    }
    let filter = AuditFilter {
        since: time("since", p.since.as_deref())?,
        until: time("until", p.until.as_deref())?,
        user: p.user,
        tool: p.tool,
        decision: p.decision,
        before_id: p.cursor,
        limit,
    };
    let rows = query(&shared.db, &filter).await.map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    let next_cursor = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id.clone())).flatten();
    Ok(HttpResponse::Ok().json(json!({ "items": rows, "next_cursor": next_cursor })))
}
