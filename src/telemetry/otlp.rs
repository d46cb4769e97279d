//! Export of the gateway's request spans over OTLP/HTTP (JSON encoding) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; off by default. One server span per HTTP request,
//! child of the caller's `traceparent` when it sent one; the backend call carries this span as
//! its parent, so a trace reads agent → gateway → tool server. Spans are handed to a bounded
//! queue (never waited on; a full queue drops and counts) and posted in batches once a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Spans waiting for export at most; beyond, new spans are dropped (and counted).
const QUEUE: usize = 8192;
/// Spans per export request at most.
const BATCH: usize = 512;

/// One finished server span.
#[derive(Debug, Clone)]
pub struct Span {
    /// The trace (32 hex digits).
    pub trace_id: String,
    /// This span (16 hex digits).
    pub span_id: String,
    /// The caller's span, when the trace came from the caller.
    pub parent_span_id: Option<String>,
    /// `METHOD route`.
    pub name: String,
    /// Start and end, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End of the span.
    pub end_unix_nanos: u64,
    /// HTTP status returned.
    pub status: u16,
    /// `http.request.method`.
    pub method: String,
    /// `http.route` (the matched pattern).
    pub route: String,
}

/// The exporter's handle: cheap to clone, `record` never blocks.
#[derive(Clone)]
pub struct Exporter {
    tx: tokio::sync::mpsc::Sender<Span>,
    dropped: std::sync::Arc<AtomicU64>,
    exported: std::sync::Arc<AtomicU64>,
}

/// Nanoseconds since the epoch, now.
pub fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

impl Exporter {
    /// Start exporting to `endpoint` (`http://collector:4318`; `/v1/traces` is appended).
    pub fn start(endpoint: &str) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Span>(QUEUE);
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = Self { tx, dropped: Default::default(), exported: Default::default() };
        let exported = exporter.exported.clone();
        actix_web::rt::spawn(async move {
            let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                let first = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
                match first {
                    Ok(Some(span)) => batch.push(span),
                    Ok(None) => break,
                    Err(_) => {}
                }
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(span) => batch.push(span),
                        Err(_) => break,
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let body = encode(&batch);
                match client
                    .post(&url)
                    .insert_header(("Content-Type", "application/json"))
                    .send_body(body.to_string())
                    .await
                {
                    Ok(resp) if resp.status().is_success() => {
                        exported.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    Ok(resp) => {
                        tracing::warn!(status = %resp.status(), spans = batch.len(), "OTLP export refused; spans dropped")
                    }
                    Err(e) => tracing::warn!(error = %e, spans = batch.len(), "OTLP export failed; spans dropped"),
                }
                batch.clear();
            }
        });
        exporter
    }

    /// Queue a finished span (dropped, and counted, if the queue is full).
    pub fn record(&self, span: Span) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Spans exported and dropped so far (for `/metrics`).
    pub fn counts(&self) -> (u64, u64) {
        (self.exported.load(Ordering::Relaxed), self.dropped.load(Ordering::Relaxed))
    }
}

fn attr(key: &str, value: Value) -> Value {
    json!({ "key": key, "value": value })
}

/// The OTLP/JSON `ExportTraceServiceRequest` for `spans`.
pub fn encode(spans: &[Span]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": s.trace_id,
                "spanId": s.span_id,
                "name": s.name,
                "kind": 2,
                "startTimeUnixNano": s.start_unix_nanos.to_string(),
                "endTimeUnixNano": s.end_unix_nanos.to_string(),
                "attributes": [
                    attr("http.request.method", json!({ "stringValue": s.method })),
                    attr("http.route", json!({ "stringValue": s.route })),
                    attr("http.response.status_code", json!({ "intValue": s.status.to_string() })),
                ],
                "status": { "code": if s.status >= 500 { 2 } else { 0 } },
            });
            if let Some(parent) = &s.parent_span_id {
                span["parentSpanId"] = json!(parent);
            }
            span
        })
        .collect();
    json!({ "resourceSpans": [{
        "resource": { "attributes": [attr("service.name", json!({ "stringValue": "mcp-gateway" }))] },
        "scopeSpans": [{ "scope": { "name": "mcp-gateway", "version": env!("CARGO_PKG_VERSION") }, "spans": spans }],
    }] })
}
