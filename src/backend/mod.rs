//! The MCP client the gateway uses to reach tool backends (MCP Streamable HTTP).
//!
//! One [`McpClient`] per worker (awc's client is `!Send`) shares one session table with the
//! others. The first call to a backend performs `initialize` and `notifications/initialized`,
//! keeping `Mcp-Session-Id` if the server hands one out; later calls are one pooled keep-alive
//! request each. A 404 on a session means the server forgot it: the client re-initialises once
//! and retries. Replies may be JSON or an SSE stream. The caller's credentials are never sent.

pub mod oauth;
pub mod protect;
pub mod session;
pub mod sse;
pub mod stdio;
pub mod stream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use awc::http::header::{self, HeaderName, HeaderValue};
use dashmap::DashMap;
use serde_json::{json, Value};

use crate::error::GatewayError;
pub use session::{session_table, Session, SessionTable};
use stream::find_in_sse;
pub use stream::Watch;

/// Extra tries for a call that never reached the backend.
const MAX_RETRIES: u32 = 2;

/// Capped exponential back-off with full jitter: up to 50 ms, 100 ms, … at most 800 ms.
fn backoff(attempt: u32) -> Duration {
    let cap = 50u64.saturating_mul(1 << attempt.min(4)).min(800);
    let mut bytes = [0u8; 2];
    let _ = getrandom::fill(&mut bytes);
    let jitter = u64::from(u16::from_le_bytes(bytes)) * cap / u64::from(u16::MAX);
    Duration::from_millis(jitter.max(5))
}

/// Most items the gateway keeps of one backend listing (tools, prompts, resources, templates).
pub const MAX_LISTED_ITEMS: usize = 10_000;

/// The protocol revision the gateway offers to backends.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// The gateway's `initialize` params towards an upstream. It declares sampling and
/// elicitation because it relays those requests to the client whose call caused them (clients
/// that cannot answer say so, and the upstream hears it); not roots, which servers ask for
/// outside any call.
pub fn hello() -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": { "sampling": {}, "elicitation": {} },
        "clientInfo": { "name": "mcp-gateway", "version": env!("CARGO_PKG_VERSION") }
    })
}

/// Headers the gateway itself presents to an upstream (its credentials), by backend URL.
pub type Headers = Arc<DashMap<String, Arc<Vec<(HeaderName, HeaderValue)>>>>;

/// What every worker's client shares: sessions with HTTP backends, the links to running stdio
/// servers, and the gateway's own headers per upstream. The registry owns and fills them.
#[derive(Clone, Default)]
pub struct Routes {
    /// Sessions with HTTP backends, by URL.
    pub sessions: SessionTable,
    /// Running stdio servers, by server name.
    pub links: stdio::Links,
    /// The gateway's credentials per upstream URL.
    pub headers: Headers,
    /// The gateway's OAuth tokens per upstream URL (client credentials).
    pub tokens: oauth::Tokens,
}

/// A per-worker MCP client.
pub struct McpClient {
    http: awc::Client,
    sessions: SessionTable,
    links: stdio::Links,
    headers: Headers,
    tokens: oauth::Tokens,
    max_response_bytes: usize,
    next_id: AtomicU64,
}

/// Puts a request the upstream makes while serving a call (sampling, elicitation, roots) to
/// the client whose call it is: the client's `result`, or a JSON-RPC `error` object.
pub type Asker = Box<dyn Fn(Value) -> futures_util::future::LocalBoxFuture<'static, Result<Value, Value>>>;

/// Lets the caller watch one backend request while it runs: the notifications the backend
/// streams (progress), the requests it makes of the client, and the backend-side request id
/// (to cancel it).
pub struct Observer {
    /// Called with each notification the backend sends on the reply stream.
    pub on_event: Box<dyn Fn(Value)>,
    /// The JSON-RPC id the gateway used towards the backend, once sent.
    pub backend_id: std::cell::Cell<Option<u64>>,
    /// Who the call is from (see `mcp::client_of`) and how to ask them, when they can be asked.
    pub ask: Option<(Arc<str>, Asker)>,
}

impl Observer {
    /// An observer forwarding notifications to `on_event`.
    pub fn new(on_event: impl Fn(Value) + 'static) -> Self {
        Self { on_event: Box::new(on_event), backend_id: std::cell::Cell::new(None), ask: None }
    }

    /// Also relay the upstream's requests to `client` through `asker`.
    pub fn asking(mut self, client: &str, asker: Asker) -> Self {
        self.ask = Some((client.into(), asker));
        self
    }
}

/// The answer to an upstream's request `request` (a JSON-RPC request message).
pub(crate) async fn answer_upstream(observer: Option<&Observer>, request: Value) -> Value {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let outcome = if request.get("method").and_then(Value::as_str) == Some("ping") {
        Ok(json!({}))
    } else {
        match observer.and_then(|o| o.ask.as_ref()) {
            Some((_, ask)) => ask(request).await,
            None => return refusal(&request, "the caller of this call cannot be asked"),
        }
    };
    match outcome {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(error) => json!({ "jsonrpc": "2.0", "id": id, "error": error }),
    }
}

/// A JSON-RPC error answering an upstream's request `request` that the gateway does not relay.
pub(crate) fn refusal(request: &Value, why: &str) -> Value {
    let method: String = request.get("method").and_then(Value::as_str).unwrap_or("").chars().take(64).collect();
    json!({ "jsonrpc": "2.0", "id": request.get("id").cloned().unwrap_or(Value::Null),
        "error": { "code": mcp_protocol::code::METHOD_NOT_FOUND,
            "message": format!("{method} is not available through the gateway: {why}") } })
}

/// Tells the backend to stop a request the gateway gave up on (client cancelled or left).
struct CancelOnDrop<'a> {
    client: &'a McpClient,
    url: &'a str,
    observer: Option<&'a Observer>,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let Some(id) = self.observer.and_then(|o| o.backend_id.get()).filter(|_| self.armed) else { return };
        let Some(session) = self.client.sessions.get(self.url).map(|s| s.clone()) else { return };
        let message = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": { "requestId": id, "reason": "cancelled by the client" } });
        self.client.post_aside(self.url, &session, message);
    }
}

impl McpClient {
    /// POST one message that expects no answer (a cancellation, the answer to the upstream's
    /// own request) in `session`, in the background, with the gateway's credentials.
    pub(super) fn post_aside(&self, url: &str, session: &Session, message: Value) {
        let (http, url) = (self.http.clone(), url.to_owned());
        let headers = self.own_headers(&url);
        let token = self.tokens.get(&url).map(|s| s.clone());
        let (sid, version) = (session.id.clone(), session.protocol_version.clone());
        actix_web::rt::spawn(async move {
            let mut req = http
                .post(&url)
                .timeout(Duration::from_secs(5))
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .insert_header((header::ACCEPT, "application/json, text/event-stream"))
                .insert_header(("MCP-Protocol-Version", version.as_str()));
            if let Some(sid) = &sid {
                req = req.insert_header(("Mcp-Session-Id", sid.as_str()));
            }
            req = with_headers(req, headers.as_deref());
            if let Some(token) = token {
                match token.authorization(&http).await {
                    Ok(value) => req = req.insert_header((header::AUTHORIZATION, value)),
                    Err(_) => return,
                }
            }
            if let Err(e) = req.send_body(message.to_string()).await {
                tracing::debug!(error = %e, "could not send a message to the upstream");
            }
        });
    }
}

enum PostError {
    /// The server does not know our session any more (HTTP 404 with a session id).
    SessionExpired,
    /// Nothing reached the backend (connection refused): safe to send again, even for a call
    /// that is not idempotent.
    Retryable(GatewayError),
    /// HTTP 502/503: a proxy or the backend itself refused, but the server may have acted on
    /// the request first, so only an idempotent call is sent again.
    Overloaded(GatewayError),
    Failed(GatewayError),
}

impl From<GatewayError> for PostError {
    fn from(e: GatewayError) -> Self {
        Self::Failed(e)
    }
}

fn send_error(e: awc::error::SendRequestError) -> GatewayError {
    GatewayError::BackendUnavailable(match e {
        awc::error::SendRequestError::Connect(c) => format!("cannot connect: {c}"),
        other => other.to_string(),
    })
}

impl McpClient {
    /// A client with its own connection pool, sharing `sessions`.
    pub fn new(routes: Routes, max_response_bytes: usize) -> Self {
        // Idle pooled connections are dropped after 4 s: below the 5 s after which common MCP
        // servers (actix-web, uvicorn, Node) close theirs. A longer pool keep-alive reused
        // connections the server had already closed: each such call failed, backed off and
        // retried (p99.9 of 320 ms against the calculator in `mcp-bench --backend calculator`).
        let connector = awc::Connector::new().limit(1024).conn_keep_alive(Duration::from_secs(4));
        let http =
            awc::Client::builder().connector(connector).timeout(Duration::from_secs(3600)).disable_redirects().finish();
        let Routes { sessions, links, headers, tokens } = routes;
        Self { http, sessions, links, headers, tokens, max_response_bytes, next_id: AtomicU64::new(1) }
    }

    /// Call `tool` with `arguments` at its backend, all within `timeout`; returns the JSON-RPC
    /// `result`. A 502/503 answer is retried only for an `idempotent` tool; a call that times
    /// out is cancelled at the backend.
    pub async fn call_tool(
        &self,
        tool: &gateway_actors::Tool,
        arguments: Value,
        timeout: Duration,
    ) -> Result<Value, GatewayError> {
        // Watched too, so a call given up on (timeout, caller gone) is cancelled upstream.
        self.call_tool_observed(tool, arguments, None, timeout, &Observer::new(|_| {})).await
    }

    /// `call_tool` with `_meta` for the backend (a progress token) and an observer that sees the
    /// backend's notifications; if this future is dropped before the reply (the client cancelled
    /// or left), the backend is sent `notifications/cancelled`.
    pub async fn call_tool_observed(
        &self,
        tool: &gateway_actors::Tool,
        arguments: Value,
        meta: Option<Value>,
        timeout: Duration,
        observer: &Observer,
    ) -> Result<Value, GatewayError> {
        let (url, idempotent) = (tool.backend_url.as_str(), tool.idempotent);
        let mut params = json!({ "name": tool.backend_name(), "arguments": arguments });
        if let Some(meta) = meta {
            params["_meta"] = meta;
        }
        let mut guard = CancelOnDrop { client: self, url, observer: Some(observer), armed: true };
        let result = self.request(url, "tools/call", params, timeout, Some(observer), idempotent).await;
        // A call that timed out is still running upstream: the guard tells it to stop.
        guard.armed = matches!(result, Err(GatewayError::BackendTimeout(_)));
        result
    }

    /// Every tool the backend at `url` lists (following `nextCursor`, at most 20 pages).
    pub async fn list_tools(&self, url: &str, timeout: Duration) -> Result<Vec<Value>, GatewayError> {
        self.list_all(url, "tools/list", "tools", timeout).await
    }

    /// Every item of a paginated listing (`method`, items under `key`) of the backend at `url`,
    /// following `nextCursor` for at most 20 pages.
    pub async fn list_all(
        &self,
        url: &str,
        method: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Vec<Value>, GatewayError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let mut page = self.request(url, method, params, timeout, None, true).await?;
            if let Some(Value::Array(page_items)) = page.get_mut(key).map(Value::take) {
                items.extend(page_items);
            }
            if items.len() >= MAX_LISTED_ITEMS {
                tracing::warn!(
                    backend = url,
                    method,
                    "listing holds more than {MAX_LISTED_ITEMS} items; the rest is ignored"
                );
                items.truncate(MAX_LISTED_ITEMS);
                break;
            }
            cursor = page.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(items)
    }

    /// Send one JSON-RPC request to the backend at `url` within `timeout` (initialising a
    /// session first if needed, and once more if the server forgot it). Retries: a request
    /// that never reached the backend always; one answered 502/503 only when `idempotent`.
    pub async fn request(
        &self,
        url: &str,
        method: &str,
        params: Value,
        timeout: Duration,
        observer: Option<&Observer>,
        idempotent: bool,
    ) -> Result<Value, GatewayError> {
        if let Some(server) = crate::config::servers::link_name(url) {
            let link = self.links.get(server).map(|l| l.clone());
            let link = link.ok_or_else(|| {
                GatewayError::BackendUnavailable(format!("upstream {server} is not connected (it is being started)"))
            })?;
            return link.request(method, &params, timeout, observer).await;
        }
        let deadline = Instant::now() + timeout;
        let call = async {
            let mut attempt = 0u32;
            loop {
                match self.attempt(url, method, &params, deadline, observer).await {
                    Err(PostError::Overloaded(e)) if !idempotent => return Err(e),
                    Err(PostError::Retryable(e) | PostError::Overloaded(e)) if attempt < MAX_RETRIES => {
                        attempt += 1;
                        let pause = backoff(attempt);
                        if Instant::now() + pause >= deadline {
                            return Err(e);
                        }
                        tracing::debug!(backend = url, attempt, error = %e, "retrying a call that never reached the backend");
                        tokio::time::sleep(pause).await;
                    }
                    Err(PostError::Retryable(e) | PostError::Overloaded(e) | PostError::Failed(e)) => return Err(e),
                    Err(PostError::SessionExpired) => {
                        return Err(GatewayError::BackendUnavailable("backend rejected a fresh session".into()))
                    }
                    Ok(v) => return Ok(v),
                }
            }
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(Err(GatewayError::BackendTimeout(_))) | Err(_) => Err(GatewayError::BackendTimeout(timeout.as_secs())),
            Ok(result) => result,
        }
    }

    /// One try: with the current session, and once more with a fresh one if it expired.
    async fn attempt(
        &self,
        url: &str,
        method: &str,
        params: &Value,
        deadline: Instant,
        observer: Option<&Observer>,
    ) -> Result<Value, PostError> {
        let session = match self.sessions.get(url).map(|s| s.clone()) {
            Some(s) => s,
            None => self.initialize(url, deadline).await?,
        };
        match self.request_in(url, &session, method, params, deadline, observer).await {
            Err(PostError::SessionExpired) => {
                self.sessions.remove(url);
                let session = self.initialize(url, deadline).await?;
                self.request_in(url, &session, method, params, deadline, observer).await
            }
            other => other,
        }
    }

    async fn request_in(
        &self,
        url: &str,
        session: &Session,
        method: &str,
        params: &Value,
        deadline: Instant,
        observer: Option<&Observer>,
    ) -> Result<Value, PostError> {
        self.post(url, session, method, Some(params), deadline, observer).await.map(|(v, _)| v)
    }

    /// POST one JSON-RPC message. A request (`params` given and method not a notification)
    /// returns its `result` and the response's session id.
    async fn post(
        &self,
        url: &str,
        session: &Session,
        method: &str,
        params: Option<&Value>,
        deadline: Instant,
        observer: Option<&Observer>,
    ) -> Result<(Value, Option<String>), PostError> {
        let is_notification = method.starts_with("notifications/");
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(o) = observer {
            o.backend_id.set(Some(id));
        }
        let message = Outgoing { jsonrpc: "2.0", method, params, id: (!is_notification).then_some(id) };
        let mut req = self
            .http
            .post(url)
            .timeout(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)))
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .insert_header((header::ACCEPT, "application/json, text/event-stream"))
            .insert_header(("traceparent", crate::telemetry::tracecontext::outgoing()));
        if let Some(sid) = &session.id {
            req = req.insert_header(("Mcp-Session-Id", sid.as_str()));
        }
        req = with_headers(req, self.own_headers(url).as_deref());
        if let Some(authorization) = self.oauth_authorization(url).await? {
            req = req.insert_header((header::AUTHORIZATION, authorization));
        }
        if method != "initialize" {
            req = req.insert_header(("MCP-Protocol-Version", session.protocol_version.as_str()));
        }
        let body = serde_json::to_vec(&message).map_err(|e| GatewayError::Internal(e.to_string()))?;
        let mut resp = req.send_body(body).await.map_err(|e| match e {
            awc::error::SendRequestError::Timeout => PostError::Failed(GatewayError::BackendTimeout(0)),
            e @ awc::error::SendRequestError::Connect(_) => PostError::Retryable(send_error(e)),
            other => PostError::Failed(send_error(other)),
        })?;
        let status = resp.status();
        if status == awc::http::StatusCode::NOT_FOUND && session.id.is_some() {
            return Err(PostError::SessionExpired);
        }
        if matches!(status.as_u16(), 502 | 503) {
            let error = format!("backend answered HTTP {}", status.as_u16());
            return Err(PostError::Overloaded(GatewayError::BackendUnavailable(error)));
        }
        if !status.is_success() {
            let error = format!("backend answered HTTP {}", status.as_u16());
            return Err(if status.is_server_error() {
                GatewayError::BackendUnavailable(error)
            } else {
                GatewayError::BackendBadReply(error)
            }
            .into());
        }
        let session_id = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if let (true, false, Some(o)) = (is_sse, is_notification, observer) {
            return Ok((self.read_stream(&mut resp, id, o, (url, session)).await?, session_id));
        }
        let bytes = resp
            .body()
            .limit(self.max_response_bytes)
            .await
            .map_err(|e| GatewayError::BackendBadReply(format!("cannot read reply: {e}")))?;
        if is_notification {
            return Ok((Value::Null, session_id));
        }
        let reply = if is_sse { find_in_sse(&bytes, id)? } else { parse_json(&bytes)? };
        Ok((into_result(reply, id)?, session_id))
    }
}

/// Add the gateway's own headers for an upstream (its credentials) to a request.
fn with_headers(mut req: awc::ClientRequest, headers: Option<&Vec<(HeaderName, HeaderValue)>>) -> awc::ClientRequest {
    for (name, value) in headers.into_iter().flatten() {
        req = req.insert_header((name.clone(), value.clone()));
    }
    req
}

impl McpClient {
    /// The gateway's own headers for the upstream at `url`, if it has any.
    fn own_headers(&self, url: &str) -> Option<Arc<Vec<(HeaderName, HeaderValue)>>> {
        self.headers.get(url).map(|h| h.clone())
    }

    /// The gateway's OAuth access token for the upstream at `url`, when it has a token source.
    async fn oauth_authorization(&self, url: &str) -> Result<Option<HeaderValue>, GatewayError> {
        let Some(source) = self.tokens.get(url).map(|s| s.clone()) else { return Ok(None) };
        source.authorization(&self.http).await.map(Some)
    }
}

/// One JSON-RPC message to a backend, serialised from borrowed parts (the arguments are
/// never copied, however large, nor re-copied on a retry).
#[derive(serde::Serialize)]
struct Outgoing<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
}

fn parse_json(bytes: &[u8]) -> Result<Value, GatewayError> {
    serde_json::from_slice(bytes).map_err(|e| GatewayError::BackendBadReply(format!("reply is not JSON: {e}")))
}

/// Check a JSON-RPC response envelope and take its `result`, mapping an `error` member.
fn into_result(mut reply: Value, id: u64) -> Result<Value, GatewayError> {
    if reply.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(GatewayError::BackendBadReply("reply is not a JSON-RPC 2.0 message".into()));
    }
    if reply.get("id").and_then(Value::as_u64) != Some(id) {
        return Err(GatewayError::BackendBadReply("reply id does not match the request".into()));
    }
    // Past those two, the envelope is read by the same rules as every message the gateway
    // receives: an answer (`result` or `error`), not a request or notification of its own.
    if !matches!(mcp_protocol::classify(&reply), Ok(mcp_protocol::Message::Response { .. })) {
        return Err(GatewayError::BackendBadReply("reply has no result object".into()));
    }
    if let Some(error) = reply.get("error") {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        // The one backend error a caller can fix: its arguments (a tool result, not a failure).
        let message = error.get("message").and_then(Value::as_str).unwrap_or("").chars().take(500).collect::<String>();
        return Err(if code == i64::from(mcp_protocol::code::INVALID_PARAMS) {
            GatewayError::InvalidArguments(message)
        } else {
            GatewayError::BackendBadReply(format!("backend error {code}: {message}"))
        });
    }
    match reply.get_mut("result") {
        Some(result) if result.is_object() => Ok(result.take()),
        _ => Err(GatewayError::BackendBadReply("reply has no result object".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_checks_map_backend_errors() {
        assert!(into_result(json!({"jsonrpc":"2.0","id":1,"result":{"content":[]}}), 1).is_ok());
        assert!(matches!(
            into_result(json!({"jsonrpc":"2.0","id":2,"result":{}}), 1),
            Err(GatewayError::BackendBadReply(_))
        ));
        assert!(matches!(into_result(json!({"id":1,"result":{}}), 1), Err(GatewayError::BackendBadReply(_))));
        assert!(matches!(
            into_result(json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}), 1),
            Err(GatewayError::InvalidArguments(_))
        ));
    }

    #[test]
    fn finds_the_response_among_sse_notifications() {
        let body = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                    event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"ok\":true}}\n\n";
        assert_eq!(find_in_sse(body.as_bytes(), 5).unwrap()["result"]["ok"], json!(true));
        assert!(find_in_sse(body.as_bytes(), 6).is_err());
    }
}
