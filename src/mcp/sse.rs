//! The legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens a stream whose first event
//! names the endpoint (`/messages?session_id=…`); each `POST /messages` is answered 202 and its
//! JSON-RPC response arrives on the stream as a `message` event. Keep-alive comments keep
//! proxies from closing an idle stream; closing the stream ends the session.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::clients::session::{session_key, SessionError};
use crate::clients::stream::StreamRx;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::Stream;
use mcp_protocol::Message;
use serde::Deserialize;
use serde_json::Value;

use super::{caller, check_origin, dispatch, initialize_result, negotiate, response, Ctx};
use crate::error::GatewayError;
use crate::http::invoke::read_body;
use crate::state::{Shared, Worker};

/// A long-lived event stream: an optional first event, then whatever arrives on `rx`, with
/// keep-alive comments; it ends when the gateway shuts down, and runs `on_drop` when the client
/// goes away.
pub struct EventStream {
    first: Option<Bytes>,
    rx: StreamRx,
    keepalive: tokio::time::Interval,
    closing: Pin<Box<dyn std::future::Future<Output = ()>>>,
    on_drop: Option<Box<dyn FnOnce()>>,
    on_keepalive: Option<Box<dyn Fn()>>,
}

impl EventStream {
    /// A stream reading `rx`, ending when `shared` starts shutting down.
    pub fn new(shared: &Shared, first: Option<Bytes>, rx: StreamRx, on_drop: Box<dyn FnOnce()>) -> Self {
        let period = shared.settings.sse_keepalive;
        Self {
            first,
            rx,
            keepalive: tokio::time::interval_at(tokio::time::Instant::now() + period, period),
            closing: Box::pin(shared.closing.closed()),
            on_drop: Some(on_drop),
            on_keepalive: None,
        }
    }

    /// Run `f` at every keep-alive: the session of a connected stream stays alive while the
    /// client listens, whether or not it sends requests.
    pub fn on_keepalive(mut self, f: Box<dyn Fn()>) -> Self {
        self.on_keepalive = Some(f);
        self
    }

    /// As an HTTP response.
    pub fn respond(self) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header(("Cache-Control", "no-cache"))
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(self)
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        if self.closing.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(bytes)) => return Poll::Ready(Some(Ok(bytes))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if self.keepalive.poll_tick(cx).is_ready() {
            if let Some(f) = &self.on_keepalive {
                f();
            }
            return Poll::Ready(Some(Ok(Bytes::from_static(b": keep-alive\n\n"))));
        }
        Poll::Pending
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

const TRANSPORT: &str = "sse";

/// `GET /sse`: open a session and its event stream.
pub async fn open(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    if let Err(e) = check_origin(&req, &shared) {
        return super::refuse(&shared, &req, TRANSPORT, None, e);
    }
    let caller = match caller(&req, &shared).await {
        Ok(c) => c,
        Err(e) => return super::refuse(&shared, &req, TRANSPORT, None, e),
    };
    let (tx, rx) = crate::clients::stream::channel();
    let id = match shared.clients.open_session(&caller.user_id, "2024-11-05", &Value::Null, Some(tx)).await {
        Ok(id) => id,
        Err(SessionError::Unavailable) => {
            let error = GatewayError::Unavailable("session store unreachable; retry shortly".into());
            return super::refuse(&shared, &req, TRANSPORT, Some(Arc::new(caller)), error);
        }
        Err(_) => {
            return super::refuse(&shared, &req, TRANSPORT, Some(Arc::new(caller)), crate::clients::session::too_many())
        }
    };
    let first = Bytes::from(format!("event: endpoint\ndata: /messages?session_id={id}\n\n"));
    let (alive, alive_id, alive_user) = (shared.clients.clone(), id.clone(), caller.user_id.clone());
    let registry = shared.clone();
    let scope = super::scope(&caller.user_id, &session_key(&id));
    let user = caller.user_id;
    // The client left: its session ends (on every replica) and its calls still running here
    // are cancelled at their backends (their tasks are aborted; each leaves a `cancelled`
    // audit row).
    let on_drop = move || {
        registry.clients.stream_gone(&id, &user);
        let prefix = super::inflight_prefix(&scope);
        registry.clients.cancel_all(&prefix);
    };
    EventStream::new(&shared, Some(first), rx, Box::new(on_drop))
        .on_keepalive(Box::new(move || alive.keepalive(&alive_id, &alive_user)))
        .respond()
}

/// Query of `POST /messages`.
#[derive(Debug, Deserialize)]
pub struct MessageQuery {
    session_id: String,
}

/// `POST /messages?session_id=…`: 202 now, the response on the session's stream.
pub async fn message(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> HttpResponse {
    if let Err(e) = check_origin(&req, &shared) {
        return super::refuse(&shared, &req, TRANSPORT, None, e);
    }
    let caller = match caller(&req, &shared).await {
        Ok(c) => Arc::new(c),
        Err(e) => return super::refuse(&shared, &req, TRANSPORT, None, e),
    };
    let refuse = |e| super::refuse(&shared, &req, TRANSPORT, Some(caller.clone()), e);
    let Ok(query) = web::Query::<MessageQuery>::from_query(req.query_string()) else {
        return refuse(GatewayError::InvalidRequest("the session_id query parameter is required".into()));
    };
    let session = match shared.clients.session(Some(&query.session_id), &caller.user_id).await {
        Ok(s) => s,
        Err(SessionError::Unavailable) => {
            return refuse(GatewayError::Unavailable("session store unreachable; retry shortly".into()))
        }
        Err(_) => return refuse(GatewayError::NotFound("session not found".into())),
    };
    // The session's stream, here or on the replica holding it.
    let Some(stream) = shared.clients.sink(&query.session_id, &session) else {
        return refuse(GatewayError::NotFound("session not found".into()));
    };
    let body = match read_body(&req, payload, shared.settings.max_payload_bytes).await {
        Ok(b) => b,
        Err(e) => return refuse(e),
    };
    let msg = match mcp_protocol::split(&body, 0) {
        Ok(mcp_protocol::Body::Single(msg)) => msg,
        // One message per POST on this transport: a batch is not a JSON-RPC message here.
        Ok(mcp_protocol::Body::Batch(_)) => {
            return refuse(GatewayError::InvalidRequest("expected a JSON-RPC object".into()))
        }
        Err(e) => match crate::error::mcp::unreadable_body(&e) {
            Ok(parse_error) => return refuse(parse_error),
            Err(_) => return refuse(GatewayError::InvalidRequest("expected a JSON-RPC object".into())),
        },
    };
    let held_key = session_key(&query.session_id);
    let scope = super::scope(&caller.user_id, &held_key);
    let (id, method, params) = match mcp_protocol::classify(&msg) {
        Ok(Message::Request { id, method, params }) => (id, method, params),
        // Notifications and client responses need no answer.
        Ok(Message::Notification { method, params }) => {
            if method == "notifications/cancelled" {
                super::cancel(&shared, &worker, &caller, &scope, &params).await;
            }
            return HttpResponse::Accepted().finish();
        }
        Ok(Message::Response { id, .. }) => {
            shared.clients.asks.answered(&scope, &id, &msg);
            return HttpResponse::Accepted().finish();
        }
        Err(invalid) => return refuse(crate::error::mcp::invalid_message(&invalid, &invalid.why)),
    };
    let key = super::inflight_key(&scope, &id);
    let ctx = Ctx {
        shared: shared.clone(),
        worker,
        req: req.clone(),
        caller,
        transport: "sse",
        // A client that negotiated 2026-07-28 by `server/discover` on this stream names it in
        // each request's `_meta`: its results take that revision's shape here too.
        stateless: super::meta_version(&params) == Some(super::STATELESS_VERSION),
        events: Some(stream.clone()),
        session_key: Some(held_key),
        in_batch: false,
    };
    let (registry, task_key) = (shared.clone(), key.clone());
    let task = actix_web::rt::spawn(async move {
        let answer = if method == "initialize" {
            response(id, Ok(initialize_result(negotiate(params.get("protocolVersion").and_then(Value::as_str)))))
        } else {
            response(id, dispatch(&ctx, &method, params).await)
        };
        let _ = stream.send(super::sse_message(&answer));
        registry.clients.ended(&task_key);
    });
    shared.clients.running(key, task.abort_handle());
    HttpResponse::Accepted().finish()
}
