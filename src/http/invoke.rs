//! `POST /mcp/invoke`: call one tool through the whole pipeline, and audit the attempt.
//!
//! auth → body (size-capped before buffering) → `GetTool` → `CheckAccess` → backend call →
//! JSON-RPC response; whatever happens, one audit row goes to the writer with `do_send`.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use gateway_actors::policy::CheckAccess;
use gateway_actors::{AuditRecord, Caller, GetTool, Record};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::context;
use crate::app::{Shared, Worker};
use crate::error::GatewayError;

/// The REST invoke body.
#[derive(Debug, Deserialize)]
struct InvokeBody {
    tool_name: String,
    #[serde(default)]
    arguments: Option<Value>,
    #[serde(default)]
    request_id: Option<String>,
}

/// What is known about an attempt so far, for its audit row.
#[derive(Default)]
struct Attempt {
    caller: Option<Arc<Caller>>,
    tool_name: Option<String>,
    arguments_sha256: Option<String>,
    allowed: bool,
}

/// Read the body, refusing it before buffering when `Content-Length` is over the limit and
/// as soon as the streamed bytes pass it otherwise.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, GatewayError> {
    let declared =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| GatewayError::InvalidRequest(format!("cannot read body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(GatewayError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// SHA-256 (hex) of the arguments' JSON (object keys sorted, so equal arguments hash equal).
pub fn digest(arguments: &Value) -> String {
    hex::encode(Sha256::digest(arguments.to_string().as_bytes()))
}

async fn run(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &Shared,
    worker: &Worker,
    attempt: &mut Attempt,
) -> Result<Value, GatewayError> {
    let caller = Arc::new(context::authenticate(req)?);
    attempt.caller = Some(caller.clone());
    let bytes = read_body(req, payload, shared.settings.max_payload_bytes).await?;
    let body: InvokeBody = serde_json::from_slice(&bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => GatewayError::InvalidRequest(e.to_string()),
        _ => GatewayError::Parse(e.to_string()),
    })?;
    if let Some(id) = body.request_id.filter(|id| crate::telemetry::sane_request_id(id)) {
        if req.headers().get("x-request-id").is_none() {
            context::set_request_id(req, id);
        }
    }
    context::note(req, None, Some(&body.tool_name));
    attempt.tool_name = Some(body.tool_name.clone());
    let arguments = body.arguments.unwrap_or_else(|| json!({}));
    attempt.arguments_sha256 = Some(digest(&arguments));
    if !arguments.is_object() {
        return Err(GatewayError::InvalidRequest("arguments must be a JSON object".into()));
    }

    worker.registry_stats.enqueued(1);
    let tool = worker
        .registry
        .send(GetTool(body.tool_name.clone()))
        .await
        .map_err(|e| GatewayError::Internal(format!("registry: {e}")))?
        .filter(|t| t.is_active)
        .ok_or_else(|| GatewayError::UnknownTool(body.tool_name.clone()))?;
    worker.policy_stats.enqueued(1);
    worker
        .policy
        .send(CheckAccess { caller, tool: tool.clone() })
        .await
        .map_err(|e| GatewayError::Internal(format!("policy: {e}")))?
        .map_err(|denied| GatewayError::Forbidden(denied.0))?;
    attempt.allowed = true;

    let timeout = tool.timeout_seconds.map(std::time::Duration::from_secs).unwrap_or(shared.settings.backend_timeout);
    worker.backend.call_tool(&tool.backend_url, &tool.name, arguments, timeout).await
}

fn decision(attempt: &Attempt, error: Option<&GatewayError>) -> &'static str {
    match error {
        Some(GatewayError::Unauthenticated { .. }) => "unauthenticated",
        Some(GatewayError::Forbidden(_)) => "denied",
        Some(GatewayError::UnknownTool(_)) => "unknown_tool",
        _ if attempt.allowed => "allowed",
        _ => "rejected",
    }
}

/// `POST /mcp/invoke`.
pub async fn invoke(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> HttpResponse {
    let started = Instant::now();
    let mut attempt = Attempt::default();
    let result = run(&req, payload, &shared, &worker, &mut attempt).await;
    let request_id = context::request_id(&req);
    let id = Value::String(request_id.clone());
    let (response, status, error_code, error_message) = match &result {
        Ok(result) => {
            let is_error = result.get("isError").and_then(Value::as_bool).unwrap_or(false);
            let body = json!({ "jsonrpc": "2.0", "id": id, "result": result });
            (HttpResponse::Ok().json(body), if is_error { "tool_error" } else { "ok" }, None, None)
        }
        Err(e) => (e.to_response(id), e.kind(), Some(e.code()), Some(e.to_string())),
    };
    let caller = attempt.caller.as_deref();
    let record = AuditRecord {
        id: uuid::Uuid::now_v7().to_string(),
        created_at: chrono::Utc::now(),
        request_id,
        user_id: caller.map(|c| c.user_id.clone()),
        roles: caller.map(|c| c.roles.clone()).unwrap_or_default(),
        workspace: caller.and_then(|c| c.workspace.clone()),
        tool_name: attempt.tool_name.clone(),
        decision: decision(&attempt, result.as_ref().err()).to_owned(),
        status: status.to_owned(),
        http_status: i32::from(response.status().as_u16()),
        error_code,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        client_ip: context::client_ip(&req),
        arguments_sha256: attempt.arguments_sha256.take(),
        error_message,
    };
    shared.audit_stats.enqueued(1);
    shared.audit.do_send(Record(record));
    response
}
