//! The gateway's one middleware, around every route: a declared body over the limit is refused
//! before anything else runs (auth included, audited on tool-call endpoints); then each request
//! is measured (`/metrics`), exported as a span when OTLP is on, answered with its
//! `X-Request-Id`, and a 401 points to the protected-resource metadata.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, HttpMessage, HttpResponse};
use futures_util::future::LocalBoxFuture;

use crate::error::GatewayError;
use crate::state::Shared;
use crate::telemetry::otlp::{now_nanos, Span};
use crate::telemetry::tracecontext::TraceContext;
use crate::telemetry::RequestId;

/// What a span needs from the start of a request: its start time and trace ids.
type SpanStart = (u64, String, String, Option<String>);

/// The middleware (for `App::wrap_fn`).
pub fn observe<S, B>(req: ServiceRequest, srv: &S) -> LocalBoxFuture<'static, Result<ServiceResponse, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    if let Some(refusal) = refuse_declared_oversize(&req) {
        let res = req.into_response(refusal).map_into_boxed_body();
        return Box::pin(async move { Ok(res) });
    }
    let started = std::time::Instant::now();
    let trace = TraceContext::from_header(req.headers().get("traceparent").and_then(|v| v.to_str().ok()));
    // Span bookkeeping only when spans are exported.
    let exporting = req.app_data::<web::Data<Shared>>().is_some_and(|s| s.telemetry.spans().is_some());
    let span: Option<SpanStart> =
        exporting.then(|| (now_nanos(), trace.trace_id.clone(), trace.span_id.clone(), trace.parent_id.clone()));
    let fut = trace.scope(srv.call(req));
    Box::pin(async move {
        let mut res = fut.await?.map_into_boxed_body();
        if let Some(shared) = res.request().app_data::<web::Data<Shared>>() {
            measure(shared, &res, started, span);
        }
        let scope_challenge = res.status() == actix_web::http::StatusCode::FORBIDDEN
            && res.headers().contains_key(actix_web::http::header::WWW_AUTHENTICATE);
        if res.status() == actix_web::http::StatusCode::UNAUTHORIZED || scope_challenge {
            crate::mcp::wellknown::point_to_metadata(&mut res);
        }
        let id = res.request().extensions().get::<RequestId>().map(|r| r.0.clone());
        if let Some(value) = id.and_then(|id| actix_web::http::header::HeaderValue::from_str(&id).ok()) {
            res.headers_mut().insert(actix_web::http::header::HeaderName::from_static("x-request-id"), value);
        }
        Ok(res)
    })
}

/// A declared body over `MAX_PAYLOAD_BYTES`: the refusal (413), audited on every route.
fn refuse_declared_oversize(req: &ServiceRequest) -> Option<HttpResponse> {
    let shared = req.app_data::<web::Data<Shared>>()?;
    let limit = shared.settings.max_payload_bytes;
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_none_or(|n| n <= limit) {
        return None;
    }
    let error = GatewayError::PayloadTooLarge { limit };
    // Every refused attempt has its row, whichever endpoint it was sent to.
    let transport = match req.path() {
        "/mcp" => "streamable_http",
        "/messages" => "sse",
        p if p.starts_with("/mcp/") => "rest",
        _ => "admin",
    };
    let origin = crate::http::context::origin(req.request());
    crate::pipeline::Attempt::new(transport).refused(shared, origin, &error, 413);
    Some(error.to_response(serde_json::Value::Null))
}

/// Count the request in `/metrics` and export its span.
fn measure(shared: &Shared, res: &ServiceResponse<BoxBody>, started: std::time::Instant, span: Option<SpanStart>) {
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    // Known methods only: a client must not be able to mint label values.
    let method = match res.request().method().as_str() {
        m @ ("GET" | "POST" | "DELETE" | "PUT" | "PATCH" | "HEAD" | "OPTIONS") => m,
        _ => "OTHER",
    }
    .to_owned();
    let status = res.status().as_u16();
    shared.telemetry.metrics().request(&route, &method, status, started.elapsed().as_secs_f64());
    if let (Some(otlp), Some((start_unix_nanos, trace_id, span_id, parent_span_id))) = (shared.telemetry.spans(), span)
    {
        otlp.record(Span {
            trace_id,
            span_id,
            parent_span_id,
            name: format!("{method} {route}"),
            start_unix_nanos,
            end_unix_nanos: now_nanos(),
            status,
            method,
            route,
        });
    }
}
