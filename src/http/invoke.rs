//! `POST /mcp/invoke`: call one tool through the whole pipeline, and audit the attempt.
//!
//! auth → body (size-capped before buffering) → `GetTool` → `AuthorizeCall` → `Acquire` →
//! backend call → JSON-RPC response; whatever happens, one audit row goes to the writer.

use std::sync::Arc;

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::context;
use crate::error::GatewayError;
use crate::pipeline::{self, Attempt};
use crate::state::{Shared, Worker};
use gateway_actors::Caller;

/// The REST invoke body.
#[derive(Debug, Deserialize)]
pub struct InvokeBody {
    /// The tool to call.
    pub tool_name: String,
    /// Its arguments (an empty object when absent).
    #[serde(default)]
    pub arguments: Option<Value>,
    /// The caller's own request id, echoed and audited when sane.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// Parses a REST invoke body; malformed JSON is -32700, well-formed but wrong-shaped -32600.
/// Public so the fuzz target exercises exactly what the handler runs.
pub fn parse_invoke_body(bytes: &[u8]) -> Result<InvokeBody, GatewayError> {
    crate::number_literals::check(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => GatewayError::InvalidRequest(e.to_string()),
        _ => GatewayError::Parse(e.to_string()),
    })
}

/// Largest body [`discard_body`] reads to keep a refused request's connection open.
const DISCARD_MAX: usize = 64 * 1024;

/// Read and drop the body of a request refused before its body was read (no or bad token),
/// when it is small and declared: actix-web closes a keep-alive connection whose body was left
/// unread, and an agent whose token just expired should not pay for a new connection on every
/// refused call. Larger or undeclared bodies are left alone (the connection then closes).
pub async fn discard_body(req: &HttpRequest, mut payload: web::Payload) {
    let declared =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_none_or(|n| n > DISCARD_MAX) {
        return;
    }
    let drain = async { while let Some(Ok(_)) = payload.next().await {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
}

/// Authenticate a REST request whose body is not read yet; when the token is missing or bad,
/// drain a small body first ([`discard_body`]) so the refusal keeps the connection open.
pub async fn authenticate(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(Arc<Caller>, web::Payload), GatewayError> {
    match context::authenticate(req).await {
        Ok(caller) => Ok((Arc::new(caller), payload)),
        Err(e) => {
            discard_body(req, payload).await;
            Err(e)
        }
    }
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
    let timeout = req
        .app_data::<web::Data<crate::state::Shared>>()
        .map_or(std::time::Duration::from_secs(30), |s| s.settings.body_timeout);
    let read = async {
        let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| GatewayError::InvalidRequest(format!("cannot read body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(GatewayError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(GatewayError::RequestTimeout(format!("the body did not arrive within {timeout:?}"))))
}

/// What `/mcp/invoke` answers: the tool's result, or a call held for approval (its job).
enum Answer {
    Result(Value),
    Held(Value),
}

async fn run(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &Shared,
    worker: &Worker,
    attempt: &mut Attempt,
) -> Result<Answer, GatewayError> {
    let (caller, payload) = authenticate(req, payload).await?;
    attempt.caller = Some(caller.clone());
    let bytes = read_body(req, payload, shared.settings.max_payload_bytes).await?;
    let body = parse_invoke_body(&bytes)?;
    if let Some(id) = body.request_id.filter(|id| crate::telemetry::sane_request_id(id)) {
        if req.headers().get("x-request-id").is_none() {
            context::set_request_id(req, id);
        }
    }
    context::note(req, None, Some(&body.tool_name));
    let arguments = Arc::new(body.arguments.unwrap_or_else(|| json!({})));
    let client = caller.user_id.clone();
    let tool = pipeline::authorize(shared, worker, attempt, caller.clone(), &body.tool_name, &arguments).await?;
    // A call the policy holds for a person: 202 and its job (`awaiting_approval`).
    if let Some(demand) = crate::approvals::demand(shared, &caller, &tool, &arguments) {
        let request_id = context::request_id(req);
        let submission = crate::jobs::Submission {
            tool: &tool,
            arguments: &arguments,
            request_id: &request_id,
            idempotency_key: None,
            transport: "rest",
            client_ip: context::client_ip(req),
        };
        let job = crate::approvals::hold(shared, &caller, submission, &demand).await?;
        attempt.held = true;
        let mut answer = crate::jobs::job_json(&job);
        answer["approval"] = json!({ "approver_role": demand.approver_role, "reasons": demand.reasons,
            "timeout_seconds": demand.timeout_seconds });
        return Ok(Answer::Held(answer));
    }
    pipeline::call_authorized(shared, worker, &tool, arguments, None, &client).await.map(Answer::Result)
}

/// `POST /mcp/invoke`.
pub async fn invoke(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> HttpResponse {
    let mut attempt = Attempt::new("rest");
    let result = run(&req, payload, &shared, &worker, &mut attempt).await;
    let request_id = context::request_id(&req);
    let id = Value::String(request_id.clone());
    let response = match &result {
        Ok(Answer::Result(result)) => HttpResponse::Ok().json(json!({ "jsonrpc": "2.0", "id": id, "result": result })),
        Ok(Answer::Held(job)) => HttpResponse::Accepted()
            .insert_header(("Location", job["links"]["self"].as_str().unwrap_or("").to_owned()))
            .json(job),
        Err(e) => e.to_response(id),
    };
    let status = response.status().as_u16();
    let result = result.map(|answer| match answer {
        Answer::Result(v) | Answer::Held(v) => v,
    });
    match attempt.finish(&shared, context::origin(&req), result.as_ref(), status).await {
        Ok(()) => response,
        Err(e) => e.to_response(Value::String(request_id)),
    }
}
