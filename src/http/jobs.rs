//! `/mcp/jobs`: asynchronous tool calls over REST. Submission goes through the same checks and
//! audit as `/mcp/invoke`; any replica answers a poll; a job is visible to its owner and to
//! admins only (404 to anyone else, so its existence does not leak).

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::{self, require_role, Authenticated};
use super::invoke::read_body;
use crate::db::jobs;
use crate::error::GatewayError;
use crate::jobs::{cancel, job_json, submit, visible, Submission};
use crate::pipeline::{self, Attempt};
use crate::state::{Shared, Worker};

#[derive(Debug, Deserialize)]
struct JobBody {
    tool_name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

fn unavailable(e: crate::db::DbError) -> GatewayError {
    GatewayError::Unavailable(e.to_string())
}

async fn create(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &Shared,
    worker: &Worker,
    attempt: &mut Attempt,
) -> Result<Value, GatewayError> {
    let (caller, payload) = super::invoke::authenticate(req, payload).await?;
    attempt.caller = Some(caller.clone());
    let bytes = read_body(req, payload, shared.settings.max_payload_bytes).await?;
    crate::number_literals::check(&bytes)?;
    let body: JobBody = serde_json::from_slice(&bytes).map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
    context::note(req, None, Some(&body.tool_name));
    let arguments = Arc::new(body.arguments.unwrap_or_else(|| json!({})));
    let tool = pipeline::authorize(shared, worker, attempt, caller.clone(), &body.tool_name, &arguments).await?;
    let key = req.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(|k| k.chars().take(200).collect());
    let request_id = context::request_id(req);
    let submission = Submission {
        tool: &tool,
        arguments: &arguments,
        request_id: &request_id,
        idempotency_key: key,
        transport: "rest",
        client_ip: context::client_ip(req),
    };
    // A call the policy holds for a person waits as a job too (`awaiting_approval`).
    if let Some(demand) = crate::approvals::demand(shared, &caller, &tool, &arguments) {
        let row = crate::approvals::hold(shared, &caller, submission, &demand).await?;
        attempt.held = true;
        return Ok(job_json(&row));
    }
    let row = submit(shared, &caller, submission).await?;
    Ok(job_json(&row))
}

/// `POST /mcp/jobs`: 202 with the pending job (the same job again for a repeated `Idempotency-Key`).
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> HttpResponse {
    let mut attempt = Attempt::new("rest");
    let result = create(&req, payload, &shared, &worker, &mut attempt).await;
    let request_id = context::request_id(&req);
    let response = match &result {
        Ok(job) => HttpResponse::Accepted()
            .insert_header(("Location", job["links"]["self"].as_str().unwrap_or("").to_owned()))
            .json(job),
        Err(e) => e.to_response(Value::String(request_id.clone())),
    };
    let status = response.status().as_u16();
    match attempt.finish(&shared, context::origin(&req), result.as_ref(), status).await {
        Ok(()) => response,
        Err(e) => e.to_response(Value::String(request_id)),
    }
}

async fn owned(shared: &Shared, id: &str, caller: &gateway_actors::Caller) -> Result<jobs::JobRow, GatewayError> {
    match jobs::get(&shared.db, id).await.map_err(unavailable)? {
        Some(row) if visible(&row, caller) => Ok(row),
        _ => Err(GatewayError::NotFound("job not found".into())),
    }
}

/// `GET /mcp/jobs/{id}`. Each poll is charged against the caller's own rate limit: polling
/// costs a database read, and one user polling without bound must not load it for everyone.
pub async fn get(
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> Result<HttpResponse, GatewayError> {
    pipeline::charge(&shared, &worker, &Arc::new(caller.clone())).await?;
    Ok(HttpResponse::Ok().json(job_json(&owned(&shared, &id, &caller).await?)))
}

/// `DELETE /mcp/jobs/{id}`: cancel (the backend call is cancelled too).
/// The cancellation is audited with its outcome (a job of someone else's is "not found" to the
/// caller and in the row alike).
pub async fn delete(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> Result<HttpResponse, GatewayError> {
    let cancelled = async {
        // Charged like a poll: each cancel costs a database write and an audit row.
        pipeline::charge(&shared, &worker, &Arc::new(caller.clone())).await?;
        let row = owned(&shared, &id, &caller).await?;
        cancel(&shared, &row).await?;
        owned(&shared, &id, &caller).await
    }
    .await;
    let action = format!("job-cancel {}", id.as_str());
    context::audit_admin_outcome(&shared, &req, &caller, &action, cancelled.as_ref().map(|_| ())).await?;
    Ok(HttpResponse::Ok().json(job_json(&cancelled?)))
}

/// Query of `GET /mcp/jobs` and `DELETE /mcp/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
    /// Admins: everyone's jobs.
    all: Option<bool>,
    /// `DELETE`: remove terminal jobs finished more than this many hours ago.
    hours: Option<i64>,
}

/// `GET /mcp/jobs`: the caller's jobs, newest first (charged like a poll).
pub async fn list(
    Authenticated(caller): Authenticated,
    query: web::Query<ListQuery>,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> Result<HttpResponse, GatewayError> {
    pipeline::charge(&shared, &worker, &Arc::new(caller.clone())).await?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(GatewayError::InvalidRequest("limit must be between 1 and 500".into()));
    }
    let everyone = query.all.unwrap_or(false) && caller.has_role("admin");
    let owner = (!everyone).then_some(caller.user_id.as_str());
    let rows = jobs::list(&shared.db, owner, query.status.as_deref(), query.cursor.as_deref(), limit)
        .await
        .map_err(unavailable)?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id.clone())).flatten();
    Ok(HttpResponse::Ok().json(json!({ "jobs": rows.iter().map(job_json).collect::<Vec<_>>(), "next_cursor": next })))
}

/// `DELETE /mcp/jobs?hours=N` (admin): remove terminal jobs older than N hours.
pub async fn purge(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    query: web::Query<ListQuery>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin"])?;
    let hours = query.hours.ok_or_else(|| GatewayError::InvalidRequest("hours is required".into()))?;
    let before = chrono::Utc::now().naive_utc() - chrono::Duration::hours(hours.max(0));
    let deleted = jobs::purge(&shared.db, Some(before)).await.map_err(unavailable);
    context::audit_admin_outcome(&shared, &req, &caller, "jobs-purge", deleted.as_ref().map(|_| ())).await?;
    let deleted = deleted?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": deleted })))
}
