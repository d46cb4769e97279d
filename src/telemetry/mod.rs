//! Structured logs: JSON lines by default, one line per request with its request id, user,
//! tool, status and latency. Tokens and raw arguments are never logged.

pub mod metrics;
pub mod otlp;
pub mod tracecontext;
pub mod trends;

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
        // JSON escapes every control character itself; text lines go through [`Escaping`].
        LogFormat::Pretty => builder.with_ansi(false).with_writer(|| Escaping(std::io::stderr())).try_init(),
    };
}

/// A log writer that escapes control characters (a caller's newline or terminal escape inside a
/// logged value would otherwise forge a log line or repaint the operator's terminal). Each event
/// arrives as one write ending in its own newline, which is kept.
pub struct Escaping<W: std::io::Write>(pub W);

impl<W: std::io::Write> std::io::Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let escaped = gateway_actors::storable::storable(body, usize::MAX);
        self.0.write_all(escaped.as_bytes())?;
        self.0.write_all(end.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
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

/// Longest caller-chosen value in a log line (as `MAX_NAME` in an audit row).
const LOGGED_VALUE_MAX: usize = 256;

/// Builds each request's root span and writes its log line when the response is ready.
pub struct GatewaySpans;

impl RootSpanBuilder for GatewaySpans {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let sent = request.headers().get("x-request-id").map(|v| String::from_utf8_lossy(v.as_bytes()));
        let id = sent
            .as_deref()
            .filter(|v| sane_request_id(v))
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let path = gateway_actors::storable::storable(request.path(), LOGGED_VALUE_MAX);
        let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %path);
        if let Some(sent) = sent.filter(|v| !sane_request_id(v)) {
            // The client's own id, replaced: kept beside ours, escaped and cut short.
            let sent = gateway_actors::storable::storable(&sent, 128).into_owned();
            span.in_scope(
                || tracing::debug!(client_request_id = %sent, request_id = %id, "client request id replaced"),
            );
        }
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
        // What the caller chose (path, tool name, subject) is escaped and capped as in the
        // audit row: a 900 KB tool name must not make a 900 KB log line, nor a bidi control
        // character reorder what an operator reads, in either log format.
        let logged = |v: &str| gateway_actors::storable::storable(v, LOGGED_VALUE_MAX).into_owned();
        tracing::info!(
            request_id = id,
            method = %request.method(),
            path = %logged(request.path()),
            status,
            latency_ms,
            user_id = fields.user_id.as_deref().map(logged),
            tool = fields.tool.as_deref().map(logged),
            "request"
        );
    }
}

/// What the gateway tells operators about itself: counters and histograms (`/metrics`), request
/// spans (OTLP, when configured) and each actor kind's counters (`/health/actors`).
pub struct Telemetry {
    metrics: std::sync::Arc<metrics::Metrics>,
    spans: Option<otlp::Exporter>,
    board: std::sync::Arc<gateway_actors::HealthBoard>,
    trends: actix::Addr<trends::TrendsActor>,
    started_at: Instant,
}

impl Telemetry {
    /// Counters from zero; spans exported to `otlp_endpoint` when set; actor counters on `board`.
    /// Starts the trends' owner: call inside the actix system.
    pub fn new(otlp_endpoint: Option<&str>, board: std::sync::Arc<gateway_actors::HealthBoard>) -> Self {
        use actix::Actor as _;
        let metrics: std::sync::Arc<metrics::Metrics> = std::sync::Arc::default();
        let trends = trends::TrendsActor::new(metrics.clone()).start();
        Self { metrics, spans: otlp_endpoint.map(otlp::Exporter::start), board, trends, started_at: Instant::now() }
    }

    /// When this replica started (its uptime).
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// The owner of this replica's trends (the console's overview asks it).
    pub fn trends(&self) -> &actix::Addr<trends::TrendsActor> {
        &self.trends
    }

    /// The counters behind `/metrics`.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The counters, for an owner that outlives a borrow (the policy's owner counts reloads).
    pub fn metrics_handle(&self) -> std::sync::Arc<metrics::Metrics> {
        self.metrics.clone()
    }

    /// The span exporter, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub fn spans(&self) -> Option<&otlp::Exporter> {
        self.spans.as_ref()
    }

    /// Every actor kind's counters.
    pub fn board(&self) -> &gateway_actors::HealthBoard {
        &self.board
    }
}
