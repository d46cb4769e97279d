//! `GET /admin/audit-logs` (roles `admin`, `auditor`): audit rows newest first, filtered, with a cursor.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::context::{require_role, Authenticated};
use crate::db::audit::{query, AuditFilter};
use crate::error::GatewayError;
use crate::state::Shared;

/// Query parameters of the audit listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    user: Option<String>,
    tool: Option<String>,
    decision: Option<String>,
    status: Option<String>,
    role: Option<String>,
    workspace: Option<String>,
    request_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
    /// `json` (default, one page), `csv` or `jsonl` (the whole selection, streamed).
    format: Option<String>,
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
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    // Security teams read the trail with `auditor`, a role that can call no tool. The role is
    // checked before the query is parsed.
    require_role(&req, &caller, &["admin", "auditor"])?;
    let params = web::Query::<AuditParams>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| GatewayError::InvalidRequest(e.to_string()));
    let action = match params.as_ref().ok().and_then(|p| p.format.as_deref()) {
        Some("csv") => "admin/audit-export csv",
        Some("jsonl") => "admin/audit-export jsonl",
        _ => "admin/audit-query",
    };
    // The row records the outcome: a refused query (bad parameter, database away) says so.
    let answer = match params {
        Ok(p) => read_trail(p, &shared).await,
        Err(e) => Err(e),
    };
    super::context::audit_admin_outcome(&shared, &req, &caller, action, answer.as_ref().map(|_| ())).await?;
    answer
}

/// An empty filter (`?user=&tool=x`) is no filter: forms send empty fields.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

async fn read_trail(p: AuditParams, shared: &web::Data<Shared>) -> Result<HttpResponse, GatewayError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(GatewayError::InvalidRequest("limit must be between 1 and 1000".into()));
    }
    let filter = AuditFilter {
        since: time("since", given(p.since).as_deref())?,
        until: time("until", given(p.until).as_deref())?,
        user: given(p.user),
        tool: given(p.tool),
        decision: given(p.decision),
        status: given(p.status),
        role: given(p.role),
        workspace: given(p.workspace),
        request_id: given(p.request_id),
        before_id: given(p.cursor),
        limit,
    };
    match p.format.as_deref() {
        None | Some("json") => {
            let rows = query(&shared.db, &filter).await.map_err(|e| GatewayError::Unavailable(e.to_string()))?;
            let next_cursor = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id.clone())).flatten();
            Ok(HttpResponse::Ok().json(json!({ "items": rows, "next_cursor": next_cursor })))
        }
        Some(format @ ("csv" | "jsonl")) => Ok(export(shared.clone().into_inner(), filter, format == "csv")),
        Some(other) => Err(GatewayError::InvalidRequest(format!(
            "format {:?} is not json, csv or jsonl",
            crate::error::echo(other)
        ))),
    }
}

/// Stream every row of the selection, a page at a time, never holding it all in memory.
fn export(shared: std::sync::Arc<Shared>, filter: AuditFilter, csv: bool) -> HttpResponse {
    struct Cursor {
        filter: AuditFilter,
        first: bool,
        done: bool,
    }
    let start = Cursor { filter: AuditFilter { limit: 1000, ..filter }, first: true, done: false };
    let body = futures_util::stream::unfold((shared, start), move |(shared, mut cursor)| async move {
        if cursor.done {
            return None;
        }
        let mut chunk = String::new();
        if cursor.first && csv {
            chunk.push_str(crate::db::audit::CSV_HEADER);
            chunk.push('\n');
        }
        cursor.first = false;
        let rows = match query(&shared.db, &cursor.filter).await {
            Ok(rows) => rows,
            Err(e) => return Some((Err(actix_web::error::ErrorServiceUnavailable(e.to_string())), (shared, cursor))),
        };
        for r in &rows {
            if csv {
                chunk.push_str(&crate::db::audit::csv_line(r));
            } else {
                chunk.push_str(&serde_json::to_string(r).unwrap_or_default());
            }
            chunk.push('\n');
        }
        cursor.done = (rows.len() as i64) < cursor.filter.limit;
        cursor.filter.before_id = rows.last().map(|r| r.id.clone());
        Some((Ok::<_, actix_web::Error>(actix_web::web::Bytes::from(chunk)), (shared, cursor)))
    });
    HttpResponse::Ok()
        .content_type(if csv { "text/csv; charset=utf-8" } else { "application/x-ndjson" })
        .streaming(body)
}

/// `POST /admin/audit/verify` (roles `admin`, `auditor`): walk every chain as `mcp-gateway audit
/// verify` does, and say in words whether the trail is intact or where and how it breaks.
pub async fn verify(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin", "auditor"])?;
    let Some(_permit) = shared.audit.verification() else {
        let busy = GatewayError::Busy("a verification is already running on this replica; retry when it ends".into());
        super::context::audit_admin_outcome(&shared, &req, &caller, "admin/audit-verify", Err(&busy)).await?;
        return Err(busy);
    };
    let with = crate::db::audit::VerifyWith { key: shared.settings.audit_hmac_key.as_ref(), ..Default::default() };
    let found = crate::db::audit::verify(&shared.db, &with).await.map_err(|e| GatewayError::Unavailable(e.to_string()));
    // The row records that the check ran (and whether it could); its findings are the answer.
    super::context::audit_admin_outcome(&shared, &req, &caller, "admin/audit-verify", found.as_ref().map(|_| ()))
        .await?;
    let mut found = found?;
    let summary = if found.problems.is_empty() {
        format!("intact: {} rows in {} chains checked, every hash and link holds", found.rows, found.chains)
    } else {
        format!(
            "BROKEN: {} problem(s) in {} rows of {} chains; first: {}",
            found.problems.len(),
            found.rows,
            found.chains,
            found.problems.first().map(String::as_str).unwrap_or_default()
        )
    };
    // A trail rewritten wholesale can have a problem per row: the answer stays bounded.
    const SHOWN: usize = 1000;
    let total = found.problems.len();
    if total > SHOWN {
        found.problems.truncate(SHOWN);
        found
            .notes
            .push(format!("{} more problem(s) not shown (mcp-gateway audit verify lists them all)", total - SHOWN));
    }
    Ok(HttpResponse::Ok().json(json!({
        "intact": total == 0,
        "problem_count": total,
        "summary": summary,
        "rows": found.rows,
        "chains": found.chains,
        "problems": found.problems,
        "notes": found.notes,
        "ledger_end": found.ledger_end,
        "with_key": shared.settings.audit_hmac_key.is_some(),
    })))
}
