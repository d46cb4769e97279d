//! Structured logs: JSON lines by default, one line per request with its request id, user,
//! tool, status and latency. Tokens and raw arguments are never logged.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::HttpMessage;
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global subscriber (once per process; later calls are ignored).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The request id of this request: the client's `X-Request-ID` if sane, else a fresh UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who called and which tool, filled in by handlers for the request's log line.
#[derive(Debug, Clone, Default)]
pub struct LogFields {
    /// The caller's `sub`.
    pub user_id: Option<String>,
    /// The tool asked for.
    pub tool: Option<String>,
}

struct Started(Instant);

/// A client-supplied request id is kept if it is short printable ASCII.
pub fn sane_request_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Builds each request's root span and writes its log line when the response is ready.
pub struct GatewaySpans;

impl RootSpanBuilder for GatewaySpans {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| sane_request_id(v))
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.path());
        request.extensions_mut().insert(RequestId(id));
        request.extensions_mut().insert(Started(Instant::now()));
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        let Ok(response) = outcome else {
            span.in_scope(|| tracing::warn!("request failed before a response was built"));
            return;
        };
        // The fields below cost allocations; skip them when the line would not be written.
        if !tracing::enabled!(tracing::Level::INFO) {
            return;
        }
        let request = response.request();
        let ext = request.extensions();
        let id = ext.get::<RequestId>().map(|r| r.0.as_str()).unwrap_or("");
        let latency_ms = ext.get::<Started>().map(|s| s.0.elapsed().as_secs_f64() * 1000.0).unwrap_or(0.0);
        let fields = ext.get::<LogFields>().cloned().unwrap_or_default();
        let status = response.status().as_u16();
        tracing::info!(
            request_id = id,
            method = %request.method(),
            path = request.path(),
            status,
            latency_ms,
            user_id = fields.user_id.as_deref(),
            tool = fields.tool.as_deref(),
            "request"
        );
    }
}
