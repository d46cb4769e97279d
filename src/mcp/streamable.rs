//! Streamable HTTP on `/mcp`: `POST` carries JSON-RPC messages (answered as JSON, 202 for
//! notifications), `DELETE` ends a session, `GET` (no server-initiated stream) answers 405.
//!
//! `initialize` creates a session bound to the caller's subject and returns `Mcp-Session-Id`;
//! later requests must send it (400 when missing, 404 when unknown, expired or another
//! subject's). Requests of the stateless 2026-07-28 revision (version in `_meta` or in
//! `MCP-Protocol-Version`) need no session.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::{
    caller, check_origin, dispatch, initialize_result, meta_version, negotiate, response, supported, Ctx, RpcError,
};
use crate::clients::session::SessionError;
use crate::error::mcp as errors;
use crate::error::GatewayError;
use crate::http::invoke::read_body;
use crate::state::{Shared, Worker};
use gateway_actors::Caller;
use mcp_protocol::{Body, Message};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn rpc_failure(status: StatusCode, error: RpcError) -> HttpResponse {
    HttpResponse::build(status).json(response(Value::Null, Err(error)))
}

/// The answer to a request whose session is missing or unknown (400 / 404, -32600), audited.
fn session_failure(shared: &Shared, req: &HttpRequest, caller: &Arc<Caller>, e: SessionError) -> HttpResponse {
    let (status, message) = match e {
        SessionError::Missing => (StatusCode::BAD_REQUEST, "Mcp-Session-Id header is required"),
        SessionError::Unknown => (StatusCode::NOT_FOUND, "session not found; initialize again"),
        SessionError::Full => {
            return super::refuse(shared, req, TRANSPORT, Some(caller.clone()), crate::clients::session::too_many())
        }
        SessionError::Unavailable => {
            let error = GatewayError::Unavailable("session store unreachable; retry shortly".into());
            return super::refuse(shared, req, TRANSPORT, Some(caller.clone()), error);
        }
    };
    let error = GatewayError::InvalidRequest(message.into());
    super::audit_refusal(shared, req, TRANSPORT, Some(caller.clone()), &error, status.as_u16());
    rpc_failure(status, errors::invalid_request(message))
}

const TRANSPORT: &str = "streamable_http";

/// Origin/Host, authentication and the protocol-version header, shared by every method; a
/// refusal is audited.
async fn admit(req: &HttpRequest, shared: &Shared) -> Result<Arc<Caller>, Box<HttpResponse>> {
    let caller = admit_caller(req, shared).await?;
    check_version(req, shared, &caller, Value::Null)?;
    Ok(caller)
}

/// Origin/Host and authentication (the version header is checked once the body's id is known).
async fn admit_caller(req: &HttpRequest, shared: &Shared) -> Result<Arc<Caller>, Box<HttpResponse>> {
    let refuse = |caller, e| Box::new(super::refuse(shared, req, TRANSPORT, caller, e));
    check_origin(req, shared).map_err(|e| refuse(None, e))?;
    let caller = Arc::new(caller(req, shared).await.map_err(|e| refuse(None, e))?);
    Ok(caller)
}

/// The `MCP-Protocol-Version` header, if sent, names a revision the gateway speaks; else 400,
/// -32022 and the revisions it does speak, answered to request `id` (audited).
fn check_version(req: &HttpRequest, shared: &Shared, caller: &Arc<Caller>, id: Value) -> Result<(), Box<HttpResponse>> {
    // Present but not text (non-ASCII bytes) is unsupported too, never taken for absent.
    if let Some(v) = req.headers().get(VERSION_HEADER) {
        if !v.to_str().is_ok_and(supported) {
            // The header's value is not echoed: it is whatever the client sent.
            let error = GatewayError::InvalidRequest("unsupported MCP-Protocol-Version".into());
            super::audit_refusal(shared, req, TRANSPORT, Some(caller.clone()), &error, 400);
            // -32022 with the versions spoken (2026-07-28's UnsupportedProtocolVersionError), so
            // a client can pick one. `requested` is echoed only when it is shaped like a version
            // (YYYY-MM-DD); anything else a client sent is not repeated.
            let requested = v.to_str().ok().filter(|r| looks_like_version(r)).unwrap_or("");
            return Err(Box::new(
                HttpResponse::BadRequest().json(response(id, Err(errors::unsupported_version(requested)))),
            ));
        }
    }
    Ok(())
}

/// Whether `value` is shaped like a protocol revision (`YYYY-MM-DD`), and so safe to repeat.
fn looks_like_version(value: &str) -> bool {
    value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() })
}

/// Most messages in one JSON-RPC batch; a longer batch is refused whole (400, -32600) while it
/// is parsed, before its items are even built, so a 1 MiB body of tiny items costs no more than
/// a 1 MiB string.
pub const MAX_BATCH: usize = 100;

/// Splits a POST body into its messages: `(is_batch, messages)`. Invalid JSON is -32700, an
/// empty batch or one longer than [`MAX_BATCH`] -32600. Public so the fuzz target exercises
/// exactly what `POST /mcp` runs.
pub fn split_body(body: &[u8]) -> Result<(bool, Vec<Value>), Box<HttpResponse>> {
    match mcp_protocol::split(body, MAX_BATCH) {
        Ok(Body::Single(message)) => Ok((false, vec![message])),
        Ok(Body::Batch(messages)) => Ok((true, messages)),
        Err(e) => Err(Box::new(match errors::unreadable_body(&e) {
            Ok(parse_error) => parse_error.to_response(Value::Null),
            Err(invalid) => rpc_failure(StatusCode::BAD_REQUEST, invalid),
        })),
    }
}

/// One `POST /mcp` once its caller and messages are known.
struct Post {
    req: HttpRequest,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
    caller: Arc<Caller>,
    batch: bool,
    session_id: Option<String>,
    header_version: Option<String>,
    /// Cancellation and in-flight requests are scoped to the subject and its session.
    scope: String,
    /// The key of the session the request names (hashed once per POST).
    session_key: Option<String>,
    wants_stream: bool,
}

/// What one message of a POST comes to.
enum Step {
    /// Nothing to answer (a notification, a client's response).
    Nothing,
    /// An answer for the response body.
    Answer(Value),
    /// The whole HTTP response (a refusal, or a call answered as a stream).
    Respond(HttpResponse),
}

/// `POST /mcp`.
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> HttpResponse {
    let (caller, batch, messages) = match read_messages(&req, payload, &shared).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let session_id = header(&req, SESSION_HEADER).map(str::to_owned);
    let session_key = session_id.as_deref().map(crate::clients::session::session_key);
    let post = Post {
        scope: super::scope(&caller.user_id, session_key.as_deref().unwrap_or("")),
        session_key,
        session_id,
        header_version: header(&req, VERSION_HEADER).map(str::to_owned),
        wants_stream: header(&req, "accept").is_some_and(|a| a.contains("text/event-stream")),
        req,
        shared,
        worker,
        caller,
        batch,
    };
    if let Some(response) = post.initialize(&messages).await {
        return response;
    }
    // A session id is checked against its subject before anything in the body acts on it
    // (another user's session id may not even cancel a call).
    if let Err(response) = post.check_session().await {
        return *response;
    }
    let mut answers = Vec::new();
    for msg in messages {
        match post.one(msg).await {
            Step::Nothing => {}
            Step::Answer(answer) => answers.push(answer),
            Step::Respond(response) => return response,
        }
    }
    if answers.is_empty() {
        // Notifications and responses only.
        return match post.check_session().await {
            Ok(()) => HttpResponse::Accepted().finish(),
            Err(response) => *response,
        };
    }
    if batch {
        HttpResponse::Ok().json(Value::Array(answers))
    } else {
        HttpResponse::Ok().json(answers.swap_remove(0))
    }
}

/// Admit the caller, read the body and split it into messages; a refusal is audited. The
/// version header is checked against the request's own id (2026-07-28 requires one).
async fn read_messages(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &web::Data<Shared>,
) -> Result<(Arc<Caller>, bool, Vec<Value>), HttpResponse> {
    let caller = match admit_caller(req, shared).await {
        Ok(c) => c,
        Err(resp) => {
            crate::http::invoke::discard_body(req, payload).await;
            return Err(*resp);
        }
    };
    let body = match read_body(req, payload, shared.settings.max_payload_bytes).await {
        Ok(b) => b,
        Err(e) => return Err(super::refuse(shared, req, TRANSPORT, Some(caller), e)),
    };
    let (batch, messages) = match split_body(&body) {
        Ok(split) => split,
        Err(response) => {
            let error = match response.status() {
                StatusCode::PAYLOAD_TOO_LARGE => GatewayError::InvalidRequest("batch too long".into()),
                StatusCode::BAD_REQUEST if body.first() == Some(&b'[') => {
                    GatewayError::InvalidRequest("bad batch".into())
                }
                _ => GatewayError::Parse("not JSON".into()),
            };
            super::audit_refusal(shared, req, TRANSPORT, Some(caller), &error, response.status().as_u16());
            return Err(*response);
        }
    };
    let first_id = messages
        .first()
        .filter(|_| !batch)
        .and_then(|m| m.get("id"))
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64())
        .cloned()
        .unwrap_or(Value::Null);
    check_version(req, shared, &caller, first_id).map_err(|response| *response)?;
    Ok((caller, batch, messages))
}

impl Post {
    fn stateless_header(&self) -> bool {
        self.header_version.as_deref() == Some(super::STATELESS_VERSION)
    }

    /// The request's session belongs to the caller (when it names one and is not stateless).
    async fn check_session(&self) -> Result<(), Box<HttpResponse>> {
        if self.session_id.is_some() && !self.stateless_header() {
            self.session().await?;
        }
        Ok(())
    }

    async fn session(&self) -> Result<(), Box<HttpResponse>> {
        match self.shared.clients.session(self.session_id.as_deref(), &self.caller.user_id).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Box::new(session_failure(&self.shared, &self.req, &self.caller, e))),
        }
    }

    /// `initialize` (never inside a batch) opens a session.
    async fn initialize(&self, messages: &[Value]) -> Option<HttpResponse> {
        let [msg] = messages else { return None };
        let Ok(Message::Request { id, method, params }) = mcp_protocol::classify(msg) else { return None };
        if method != "initialize" || self.batch {
            return None;
        }
        let version = negotiate(params.get("protocolVersion").and_then(Value::as_str));
        let sid = match self.shared.clients.open_session(&self.caller.user_id, version, &params, None).await {
            Ok(sid) => sid,
            Err(e) => return Some(session_failure(&self.shared, &self.req, &self.caller, e)),
        };
        Some(
            HttpResponse::Ok()
                .insert_header(("Mcp-Session-Id", sid))
                .json(response(id, Ok(initialize_result(version)))),
        )
    }

    fn refused(&self, error: &GatewayError) {
        super::audit_refusal(&self.shared, &self.req, TRANSPORT, Some(self.caller.clone()), error, 200);
    }

    /// One message of the body.
    async fn one(&self, msg: Value) -> Step {
        let (id, method, params) = match mcp_protocol::classify(&msg) {
            Ok(Message::Request { id, method, params }) => (id, method, params),
            Ok(Message::Notification { method, params }) => {
                if method == "notifications/cancelled" {
                    super::cancel(&self.shared, &self.worker, &self.caller, &self.scope, &params).await;
                }
                return Step::Nothing;
            }
            // A client's answer to a request an upstream made of it (its own scope only).
            Ok(Message::Response { id, .. }) => {
                self.shared.clients.asks.answered(&self.scope, &id, &msg);
                return Step::Nothing;
            }
            Err(invalid) => {
                self.refused(&errors::invalid_message(&invalid, "not a JSON-RPC 2.0 message"));
                // Only an id of a valid type is echoed back.
                return Step::Answer(response(invalid.id, Err(invalid.error)));
            }
        };
        let stateless = self.stateless_header() || meta_version(&params) == Some(super::STATELESS_VERSION);
        if !stateless && method != "server/discover" {
            if let Err(response) = self.session().await {
                return Step::Respond(*response);
            }
        }
        // A batch's other messages, and every task poll (a database read), count against the
        // caller's own limits; tool calls are counted by their own pipeline.
        // Forwarded prompts and resources are charged by their own pipeline too.
        let own_pipeline =
            matches!(method.as_str(), "tools/call" | "prompts/get" | "resources/read" | "completion/complete");
        if (self.batch && !own_pipeline) || method.starts_with("tasks/") {
            if let Err(e) = crate::pipeline::charge(&self.shared, &self.worker, &self.caller).await {
                self.refused(&e);
                return Step::Answer(response(id, Err(e.to_rpc())));
            }
        }
        if method == "initialize" {
            return Step::Answer(response(id, Err(errors::invalid_request("initialize may not be batched"))));
        }
        let ctx = Ctx {
            shared: self.shared.clone(),
            worker: self.worker.clone(),
            req: self.req.clone(),
            caller: self.caller.clone(),
            transport: TRANSPORT,
            stateless,
            events: None,
            session_key: self.session_key.clone(),
            in_batch: self.batch,
        };
        if method != "tools/call" {
            return Step::Answer(response(id, dispatch(&ctx, &method, params).await));
        }
        if let Some(refusal) = self.lacks_scopes(&id, &params) {
            return Step::Respond(refusal);
        }
        self.call(ctx, id, params).await
    }

    /// A token lacking the scopes of the tool it calls gets HTTP 403 with the scopes in
    /// `WWW-Authenticate` (MCP step-up: the client asks its provider for them and retries),
    /// not a tool error inside a 200; audited as the attempt it is.
    fn lacks_scopes(&self, id: &Value, params: &Value) -> Option<HttpResponse> {
        if self.batch {
            return None;
        }
        let name = params.get("name").and_then(Value::as_str)?;
        let tool = self.shared.registry.snapshot().get(name)?;
        let missing = self.caller.missing_scopes(&tool.required_scopes);
        if missing.is_empty() {
            return None;
        }
        let error = GatewayError::InsufficientScope(missing.into_iter().map(str::to_owned).collect());
        let mut attempt = crate::pipeline::Attempt::new(TRANSPORT);
        attempt.caller = Some(self.caller.clone());
        attempt.tool_name = Some(tool.name.clone());
        attempt.refused(&self.shared, crate::http::context::origin(&self.req), &error, 403);
        Some(error.to_response(id.clone()))
    }

    /// A tool call runs as its own task so `notifications/cancelled` (or the client leaving)
    /// can stop it; with a progress token and an SSE-capable client, the reply is a stream.
    async fn call(&self, mut ctx: Ctx, id: Value, params: Value) -> Step {
        let progress = params.get("_meta").and_then(|m| m.get("progressToken")).is_some();
        let key = super::inflight_key(&self.scope, &id);
        let shared = &self.shared;
        if progress && self.wants_stream && !self.batch {
            let (tx, rx) = crate::clients::stream::channel();
            ctx.events = Some(crate::clients::EventSink::Local(tx.clone()));
            let (registry, task_key) = (shared.clone(), key.clone());
            let task = actix_web::rt::spawn(async move {
                let answer = response(id, dispatch(&ctx, "tools/call", params).await);
                let _ = tx.send(super::sse_message(&answer));
                registry.clients.ended(&task_key);
            });
            shared.clients.running(key, task.abort_handle());
            let period = shared.settings.sse_keepalive;
            let stream = ReplyStream {
                rx,
                keepalive: tokio::time::interval_at(tokio::time::Instant::now() + period, period),
                keepalive_bytes: b": keep-alive\n\n",
                unanswered: None,
                _abort: super::AbortOnDrop(task.abort_handle()),
            };
            return Step::Respond(
                HttpResponse::Ok()
                    .content_type("text/event-stream")
                    .insert_header(("Cache-Control", "no-cache"))
                    .streaming(stream),
            );
        }
        if !self.batch {
            return Step::Respond(self.call_as_json(ctx, id, params, key));
        }
        let task = actix_web::rt::spawn(async move { dispatch(&ctx, "tools/call", params).await });
        shared.clients.running(key.clone(), task.abort_handle());
        let _abort = super::AbortOnDrop(task.abort_handle());
        let outcome = task.await;
        shared.clients.ended(&key);
        Step::Answer(response(id, outcome.unwrap_or_else(|_| Err(errors::request_cancelled()))))
    }

    /// One call answered as plain JSON: the body is a stream too, so a client that leaves (or
    /// drops the request) is noticed and its call cancelled at the backend and audited as
    /// cancelled, in every mode. Until the answer is ready a space is written every second (JSON
    /// allows leading whitespace): that write is what reveals a closed connection.
    fn call_as_json(&self, ctx: Ctx, id: Value, params: Value, key: String) -> HttpResponse {
        let (tx, rx) = crate::clients::stream::channel();
        let (registry, task_key) = (self.shared.clone(), key.clone());
        let cancelled = response(id.clone(), Err(errors::request_cancelled()));
        let task = actix_web::rt::spawn(async move {
            let answer = response(id, dispatch(&ctx, "tools/call", params).await);
            let _ = tx.send(actix_web::web::Bytes::from(answer.to_string()));
            registry.clients.ended(&task_key);
        });
        self.shared.clients.running(key, task.abort_handle());
        let stream = ReplyStream {
            rx,
            keepalive: tokio::time::interval_at(tokio::time::Instant::now() + JSON_KEEPALIVE, JSON_KEEPALIVE),
            keepalive_bytes: b" ",
            // Cancelled by `notifications/cancelled` on another request: say so.
            unanswered: Some(actix_web::web::Bytes::from(cancelled.to_string())),
            _abort: super::AbortOnDrop(task.abort_handle()),
        };
        HttpResponse::Ok().content_type("application/json").streaming(stream)
    }
}

/// The SSE reply of one request: progress notifications, then the response. Keep-alive
/// comments both hold proxies open and reveal a departed client; dropping the stream (the
/// client left) aborts the request, which cancels it at the backend.
struct ReplyStream {
    rx: crate::clients::stream::StreamRx,
    keepalive: tokio::time::Interval,
    /// What a keep-alive writes: an SSE comment, or a space before a JSON body.
    keepalive_bytes: &'static [u8],
    /// Written if the request ends without its answer (cancelled from elsewhere); taken once
    /// anything else is sent.
    unanswered: Option<actix_web::web::Bytes>,
    _abort: super::AbortOnDrop,
}

/// How often a plain-JSON reply still being computed writes a space (see [`ReplyStream`]).
const JSON_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(1);

impl futures_util::Stream for ReplyStream {
    type Item = Result<actix_web::web::Bytes, actix_web::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            std::task::Poll::Ready(Some(item)) => {
                self.unanswered = None;
                return std::task::Poll::Ready(Some(Ok(item)));
            }
            std::task::Poll::Ready(None) => return std::task::Poll::Ready(self.unanswered.take().map(Ok)),
            std::task::Poll::Pending => {}
        }
        if self.keepalive.poll_tick(cx).is_ready() {
            return std::task::Poll::Ready(Some(Ok(actix_web::web::Bytes::from_static(self.keepalive_bytes))));
        }
        std::task::Poll::Pending
    }
}

/// `GET /mcp`: the session's server-to-client stream (`notifications/tools/list_changed`).
pub async fn get(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let caller = match admit(&req, &shared).await {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    if !header(&req, "accept").is_some_and(|a| a.contains("text/event-stream")) {
        return HttpResponse::MethodNotAllowed().insert_header(("Allow", "POST, DELETE")).finish();
    }
    let sid = header(&req, SESSION_HEADER).map(str::to_owned);
    if let Err(e) = shared.clients.session(sid.as_deref(), &caller.user_id).await {
        return session_failure(&shared, &req, &caller, e);
    }
    let sid = sid.unwrap_or_default();
    let (tx, rx) = crate::clients::stream::channel();
    // A new stream for the session replaces an older one.
    shared.clients.open_stream(&sid, tx.clone());
    let registry = shared.clone();
    let (alive, alive_id, user) = (shared.clients.clone(), sid.clone(), caller.user_id.clone());
    let on_drop = Box::new(move || registry.clients.close_stream(&sid, &tx));
    super::sse::EventStream::new(&shared, None, rx, on_drop)
        .on_keepalive(Box::new(move || alive.keepalive(&alive_id, &user)))
        .respond()
}

/// `DELETE /mcp`: end the caller's session.
pub async fn delete(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let caller = match admit(&req, &shared).await {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    let Some(id) = header(&req, SESSION_HEADER) else {
        return session_failure(&shared, &req, &caller, SessionError::Missing);
    };
    match shared.clients.end_session(id, &caller.user_id).await {
        Ok(true) => HttpResponse::Ok().finish(),
        Ok(false) => session_failure(&shared, &req, &caller, SessionError::Unknown),
        Err(e) => session_failure(&shared, &req, &caller, e),
    }
}
