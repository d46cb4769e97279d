//! The MCP front door: agents speak MCP to the gateway over Streamable HTTP (`/mcp`, protocol
//! revisions 2025-03-26, 2025-06-18, 2025-11-25 and the stateless 2026-07-28) or the legacy
//! HTTP+SSE transport (`/sse` + `/messages`, 2024-11-05).
//!
//! Whatever the transport, a request is authenticated, checked against the `Origin`/`Host`
//! allow-list, and dispatched here; `tools/call` takes the same [`pipeline`](crate::pipeline)
//! as `/mcp/invoke` and writes the same audit row (with its transport).
//!
//! | module | role |
//! |---|---|
//! | [`crate::clients`] | client sessions (bound to their subject), streams, running requests |
//! | [`listing`] | `tools/list`: the caller's tools with their backends' schemas, paginated |
//! | [`streamable`] | `POST`/`GET`/`DELETE /mcp` (`GET`: the session's notification stream) |
//! | [`sse`] | `GET /sse`, `POST /messages` |
//! | [`tasks`] | MCP tasks (2025-11-25) on the job store |
//! | [`wellknown`] | RFC 9728 protected-resource metadata |

pub mod approval_wait;
pub mod listing;
pub mod offerings;
pub mod sse;
pub mod streamable;
pub mod tasks;
pub mod wellknown;

use std::sync::Arc;

use actix_web::{web, HttpRequest};
use gateway_actors::Caller;
use serde_json::{json, Value};

use crate::backend::Observer;
use crate::error::mcp as errors;
use crate::error::GatewayError;
use crate::pipeline::{self, Attempt};
use crate::state::{Shared, Worker};

pub use mcp_protocol::version::{negotiate, supported, SESSION_VERSIONS, STATELESS_VERSION};

/// The protocol version a request's `_meta` names (2026-07-28 requests carry it).
pub fn meta_version(params: &Value) -> Option<&str> {
    params.get("_meta").and_then(|m| m.get("io.modelcontextprotocol/protocolVersion")).and_then(Value::as_str)
}

pub use mcp_protocol::{response, RpcError};

/// Audits a `tools/call` that is dropped before it answers (the client sent
/// `notifications/cancelled` or went away): such a call may have reached its backend, so it
/// must leave a row like every other attempt.
struct Unanswered<'a> {
    ctx: &'a Ctx,
    attempt: Option<Attempt>,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(attempt) = self.attempt.take() {
            let ctx = self.ctx;
            let cancelled = GatewayError::Cancelled("the client cancelled the call or went away".into());
            attempt.refused(&ctx.shared, crate::http::context::origin(&ctx.req), &cancelled, 499);
        }
    }
}

/// Audit a request an MCP front door refused before any tool call (no or bad token, foreign
/// Origin/Host, a body that is not JSON or not JSON-RPC, an unknown session, too large): every
/// attempt leaves one row, whatever transport it came through.
pub fn audit_refusal(
    shared: &Shared,
    req: &HttpRequest,
    transport: &'static str,
    caller: Option<Arc<Caller>>,
    error: &GatewayError,
    status: u16,
) {
    let mut attempt = Attempt::new(transport);
    attempt.caller = caller;
    attempt.refused(shared, crate::http::context::origin(req), error, status);
}

/// Answer a refused MCP request through the one error mapping, and audit it.
pub fn refuse(
    shared: &Shared,
    req: &HttpRequest,
    transport: &'static str,
    caller: Option<Arc<Caller>>,
    error: GatewayError,
) -> actix_web::HttpResponse {
    let response = error.to_response(Value::Null);
    audit_refusal(shared, req, transport, caller, &error, response.status().as_u16());
    response
}

/// Everything a request needs while it is dispatched.
pub struct Ctx {
    /// App-wide state.
    pub shared: web::Data<Shared>,
    /// This worker's actors and backend client.
    pub worker: web::Data<Worker>,
    /// The HTTP request (for audit facts).
    pub req: HttpRequest,
    /// The authenticated caller.
    pub caller: Arc<Caller>,
    /// `streamable_http` or `sse`.
    pub transport: &'static str,
    /// A 2026-07-28 request: results carry `resultType`.
    pub stateless: bool,
    /// Where progress notifications go, when the client reads a stream for this request.
    pub events: Option<crate::clients::EventSink>,
    /// The key of the client's session ([`crate::clients::session::session_key`]), when the
    /// request names one: hashed once by the transport.
    pub session_key: Option<String>,
    /// A message of a JSON-RPC batch: a call held for approval answers at once (its job),
    /// never holding the batch's other messages behind a person's decision.
    pub in_batch: bool,
}

pub use crate::clients::sse_message;

/// The scope a client's in-flight requests live in: always the authenticated subject, then the
/// session (empty when stateless). Cancellation finds only calls in the caller's own scope, so
/// no id a client sends (`Mcp-Session-Id: user:alice`) reaches another subject's calls. The
/// subject is length-prefixed so no choice of subject and session can spell another's scope.
pub fn scope(subject: &str, session: &str) -> String {
    format!("{}:{subject}\u{1}{session}", subject.len())
}

/// The key of an in-flight request: its [`scope`] and the client's request id.
pub fn inflight_key(scope: &str, id: &Value) -> String {
    format!("{}{id}", inflight_prefix(scope))
}

/// What every in-flight key of `scope` starts with (to cancel a whole session's calls).
pub fn inflight_prefix(scope: &str) -> String {
    format!("{scope}\u{0}")
}

/// `notifications/cancelled`: stop the request it names, if it is still running — here, or
/// (sessions shared) on whichever replica runs it. Asking every replica costs the caller one
/// request of their rate limit, so a flood of cancels cannot fan out unbounded.
pub async fn cancel(shared: &Shared, worker: &Worker, caller: &Arc<Caller>, scope: &str, params: &Value) {
    let Some(request_id) = params.get("requestId") else { return };
    let key = inflight_key(scope, request_id);
    if shared.clients.cancel_here(&key) {
        tracing::info!(request_id = %request_id, "request cancelled by the client");
        return;
    }
    if shared.clients.shared() && crate::pipeline::charge(shared, worker, caller).await.is_ok() {
        shared.clients.cancel_elsewhere(&key);
    }
}

/// Aborts a spawned request when dropped (the client went away); a no-op once it finished.
pub struct AbortOnDrop(pub tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The caller of an MCP request: the Bearer token's subject, or (test set-ups only) the
/// configured anonymous principal when no token was sent.
pub async fn caller(req: &HttpRequest, shared: &Shared) -> Result<Caller, GatewayError> {
    if req.headers().get(actix_web::http::header::AUTHORIZATION).is_none() {
        if let Some((sub, roles)) = &shared.settings.mcp_anonymous_principal {
            return Ok(Caller { user_id: sub.clone(), roles: roles.clone(), workspace: None, scopes: Vec::new() });
        }
    }
    crate::http::context::authenticate(req).await
}

fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { authority })
}

fn loopback_name(host: &str) -> bool {
    matches!(host.to_ascii_lowercase().as_str(), "localhost" | "127.0.0.1" | "::1")
}

/// DNS-rebinding protection: refuse browser origins outside the allow-list and, when bound to
/// loopback, `Host` names that are not loopback.
pub fn check_origin(req: &HttpRequest, shared: &Shared) -> Result<(), GatewayError> {
    let settings = &shared.settings;
    let header = |name| req.headers().get(name).and_then(|v: &actix_web::http::header::HeaderValue| v.to_str().ok());
    if let Some(origin) = header(actix_web::http::header::ORIGIN) {
        let origin = origin.trim_end_matches('/');
        let allowed = if settings.allowed_origins.is_empty() {
            origin
                .split_once("://")
                .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && loopback_name(host_of(rest)))
        } else {
            settings.allowed_origins.iter().any(|o| o == origin)
        };
        if !allowed {
            return Err(GatewayError::Forbidden(format!("origin {origin:?} is not allowed")));
        }
    }
    if settings.binds_loopback() {
        let host = header(actix_web::http::header::HOST).unwrap_or("");
        let name = host_of(host);
        if !(loopback_name(name) || settings.allowed_hosts.iter().any(|h| h == host || h == name)) {
            return Err(GatewayError::Forbidden(format!("host {host:?} is not allowed")));
        }
    }
    Ok(())
}

fn server_info() -> Value {
    json!({ "name": "mcp-gateway", "version": env!("CARGO_PKG_VERSION") })
}

const INSTRUCTIONS: &str = "Tools behind mcp-gateway: every call is authorised for your roles and audited.";

/// The `initialize` result for `version`.
pub fn initialize_result(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

/// What the gateway offers: tools (with list-change notifications), upstream servers' prompts,
/// resources and completions, and tasks on tool calls.
fn capabilities() -> Value {
    json!({
        "tools": { "listChanged": true },
        "prompts": { "listChanged": true },
        "resources": { "listChanged": true, "subscribe": false },
        "completions": {},
        "tasks": { "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } },
    })
}

fn discover() -> Value {
    let mut versions = vec![STATELESS_VERSION];
    versions.extend(SESSION_VERSIONS);
    // Stateless clients hold no session, so no stream can bring them `list_changed`.
    let mut capabilities = capabilities();
    capabilities["tools"]["listChanged"] = json!(false);
    capabilities["prompts"]["listChanged"] = json!(false);
    capabilities["resources"]["listChanged"] = json!(false);
    // 2026-07-28: the server's name goes in `_meta` (added to every stateless result).
    json!({
        "supportedVersions": versions,
        "capabilities": capabilities,
        "instructions": INSTRUCTIONS,
    })
}

/// Where 2026-07-28 puts the server's name and version: in every result's `_meta`.
pub const SERVER_INFO_META: &str = "io.modelcontextprotocol/serverInfo";

/// How long a 2026-07-28 client may reuse a listing or discovery result: 0 ms, stale at once.
/// The honest value: the gateway reloads `tools.yaml` and `policy.yaml` the moment they change
/// (and re-pins backends' definitions), and a stateless client holds no stream on which a
/// `list_changed` could invalidate a cached copy, so no later expiry can be promised.
pub const LIST_TTL_MS: u64 = 0;

/// Complete a result for the 2026-07-28 revision: `resultType`, the cache hints its schema
/// requires (`private` when the content depends on who asks: listings are filtered by role),
/// and the server's info in `_meta`.
fn revision_2026(method: &str, result: &mut Value) {
    let Some(obj) = result.as_object_mut() else { return };
    obj.entry("resultType").or_insert_with(|| json!("complete"));
    let scope = match method {
        // The same answer for every caller.
        "server/discover" => Some("public"),
        // Filtered by the caller's roles.
        "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list" | "resources/read" => {
            Some("private")
        }
        _ => None,
    };
    if let Some(scope) = scope {
        obj.insert("ttlMs".into(), json!(LIST_TTL_MS));
        obj.insert("cacheScope".into(), json!(scope));
    }
    let meta = obj.entry("_meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(SERVER_INFO_META.into(), server_info());
    }
}

async fn call(ctx: &Ctx, params: Value) -> Result<Value, RpcError> {
    let name =
        params.get("name").and_then(Value::as_str).ok_or_else(|| errors::invalid_params("params.name is required"))?;
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(v) => v.clone(),
    };
    let mut guard = Unanswered { ctx, attempt: Some(Attempt::new(ctx.transport)) };
    // Progress: the backend gets a token of ours; its notifications are mapped back to the
    // client's token and streamed to the client.
    let client_token = params.get("_meta").and_then(|m| m.get("progressToken")).cloned();
    let progress = client_token.clone().zip(ctx.events.clone());
    let (meta, observer) = match (client_token, ctx.events.clone()) {
        (Some(token), Some(events)) => {
            let ours = json!(format!("gw-{}", uuid::Uuid::new_v4().simple()));
            let theirs = ours.clone();
            let observer = Observer::new(move |mut message: Value| {
                let is_ours = message.get("params").and_then(|p| p.get("progressToken")) == Some(&theirs);
                if message.get("method").and_then(Value::as_str) == Some("notifications/progress") && is_ours {
                    message["params"]["progressToken"] = token.clone();
                    let _ = events.send(sse_message(&message));
                }
            });
            (Some(json!({ "progressToken": ours })), observer)
        }
        _ => (None, Observer::new(|_| {})),
    };
    let client = client_of(ctx);
    let observer = match asker(ctx) {
        Some(asker) => observer.asking(&client, asker),
        None => observer,
    };
    let watch = Some((&observer, meta));
    let outcome = async {
        let arguments = std::sync::Arc::new(arguments);
        let attempt = guard.attempt.get_or_insert_with(|| Attempt::new(ctx.transport));
        let tool = pipeline::authorize(&ctx.shared, &ctx.worker, attempt, ctx.caller.clone(), name, &arguments).await?;
        if tool.task_support == gateway_actors::model::TaskSupport::Required {
            return Err(GatewayError::NotFound(format!(
                "{name} runs only as a task: send params.task (execution.taskSupport: required)"
            )));
        }
        // A call the policy holds for a person: held as a job, waited for here.
        if let Some(demand) = crate::approvals::demand(&ctx.shared, &ctx.caller, &tool, &arguments) {
            let request_id = crate::http::context::request_id(&ctx.req);
            let submission = crate::jobs::Submission {
                tool: &tool,
                arguments: &arguments,
                request_id: &request_id,
                idempotency_key: None,
                transport: ctx.transport,
                client_ip: crate::http::context::client_ip(&ctx.req),
            };
            let job = crate::approvals::hold(&ctx.shared, &ctx.caller, submission, &demand).await?;
            return Ok(Step::Held(Box::new(job), demand.approver_role));
        }
        pipeline::call_authorized(&ctx.shared, &ctx.worker, &tool, arguments, watch, &client).await.map(Step::Done)
    }
    .await;
    let mut attempt = guard.attempt.take().unwrap_or_else(|| Attempt::new(ctx.transport));
    let outcome = match outcome {
        Ok(Step::Held(job, approver_role)) => {
            // The request's row now; the call's own row comes when its job ends.
            attempt.held = true;
            let held = json!({ "job": job.id });
            let origin = crate::http::context::origin(&ctx.req);
            attempt.finish(&ctx.shared, origin, Ok(&held), 200).await.map_err(|e| errors::after_the_call(&e))?;
            if ctx.in_batch {
                return Ok(crate::mcp::approval_wait::held_in_batch(&job, &approver_role));
            }
            return crate::mcp::approval_wait::wait(ctx, *job, &approver_role, progress).await;
        }
        Ok(Step::Done(value)) => Ok(value),
        Err(e) => Err(e),
    };
    let answer = errors::tool_call(name, &outcome);
    match attempt.finish(&ctx.shared, crate::http::context::origin(&ctx.req), outcome.as_ref(), 200).await {
        Ok(()) => answer,
        Err(e) => Err(errors::after_the_call(&e)),
    }
}

/// How a `tools/call` went past authorisation: answered, or held for approval.
enum Step {
    Done(Value),
    Held(Box<crate::db::jobs::JobRow>, String),
}

/// The client's MCP session id as the request names it (legacy SSE: its `session_id`; none
/// for stateless requests).
fn session_of(ctx: &Ctx) -> String {
    ctx.req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            let query = ctx.req.query_string();
            query.split('&').find_map(|p| p.strip_prefix("session_id=")).map(str::to_owned)
        })
        .unwrap_or_default()
}

/// Who a call comes from, for upstreams that keep a session per client: the subject and its
/// MCP session (legacy SSE: its `session_id`; stateless requests: the subject alone).
fn client_of(ctx: &Ctx) -> String {
    format!("{}\n{}", ctx.caller.user_id, session_of(ctx))
}

/// How to put an upstream's request (sampling, elicitation, roots) to this call's client: on
/// the call's own reply stream, else the session's stream held here. `None` when the client
/// reads no stream here (it cannot be asked; the upstream is told so).
fn asker(ctx: &Ctx) -> Option<crate::backend::Asker> {
    use crate::clients::asks::{error, RELAYED};
    let key = ctx.session_key.as_deref().unwrap_or("");
    let sink = ctx.events.clone().or_else(|| {
        let held = (!key.is_empty()).then(|| ctx.shared.clients.stream_at(key)).flatten();
        held.map(crate::clients::EventSink::Local)
    })?;
    let scope = scope(&ctx.caller.user_id, key);
    let asks = ctx.shared.clients.asks.clone();
    Some(Box::new(move |request: Value| {
        let (sink, asks, scope) = (sink.clone(), asks.clone(), scope.clone());
        Box::pin(async move {
            let method = request.get("method").and_then(Value::as_str).unwrap_or("");
            if !RELAYED.contains(&method) {
                return Err(error(
                    i64::from(mcp_protocol::code::METHOD_NOT_FOUND),
                    "the gateway does not relay this request",
                ));
            }
            let pending =
                asks.expect(&scope).ok_or_else(|| error(-32603, "too many requests are waiting for clients"))?;
            let mut message = json!({ "jsonrpc": "2.0", "id": pending.id(), "method": method });
            if let Some(params) = request.get("params") {
                message["params"] = params.clone();
            }
            if !sink.send(sse_message(&message)) {
                return Err(error(-32603, "the client's stream is closed"));
            }
            pending.answer().await
        })
    }))
}

/// Answer one JSON-RPC request (everything but `initialize`, which the transports own).
pub async fn dispatch(ctx: &Ctx, method: &str, params: Value) -> Result<Value, RpcError> {
    let mut result = match method {
        "ping" => Ok(json!({})),
        "server/discover" => Ok(discover()),
        "tools/list" => listing::list(ctx, &params).await,
        "tools/call" if params.get("task").is_some_and(Value::is_object) => tasks::create(ctx, &params).await,
        "tools/call" => call(ctx, params).await,
        "tasks/get" | "tasks/result" | "tasks/list" | "tasks/cancel" => tasks::handle(ctx, method, &params).await,
        "prompts/list" | "resources/list" | "resources/templates/list" => offerings::list(ctx, method).await,
        "prompts/get" | "resources/read" | "completion/complete" => offerings::forward(ctx, method, params).await,
        other => Err(errors::method_not_found(other)),
    }?;
    if ctx.stateless || method == "server/discover" {
        revision_2026(method, &mut result);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_negotiate_to_a_supported_one() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("2024-11-05")), "2024-11-05");
        assert_eq!(negotiate(Some("2025-03-26")), "2025-03-26");
        assert_eq!(negotiate(Some("2025-11-25")), "2025-11-25");
        assert_eq!(negotiate(Some("2099-01-01")), "2025-11-25");
        assert_eq!(negotiate(Some(STATELESS_VERSION)), "2025-11-25");
        assert!(supported("2026-07-28") && !supported("1999-01-01"));
    }

    #[test]
    fn hosts_are_parsed_with_ports_and_brackets() {
        assert_eq!(host_of("127.0.0.1:8000"), "127.0.0.1");
        assert_eq!(host_of("[::1]:8000"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
        assert_eq!(host_of("evil.example.com"), "evil.example.com");
    }
}
