//! The HTTP side of a tool server: `GET /health`, `POST /mcp`, limits and shutdown.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::rpc::{self, code, Incoming, RpcError};
use crate::ToolServer;

/// Protocol revisions this server speaks, newest first (negotiated by
/// [`mcp_protocol::version::negotiate_among`]).
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

fn error_response(status: StatusCode, err: &RpcError) -> HttpResponse {
    HttpResponse::build(status).json(err.body())
}

async fn read_limited(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, RpcError> {
    let too_large = || RpcError::new(Value::Null, code::INVALID_REQUEST, format!("body exceeds {limit} bytes"));
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| RpcError::new(Value::Null, code::INVALID_REQUEST, format!("cannot read body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn initialize(server: &ToolServer, params: &Value) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = mcp_protocol::version::negotiate_among(SUPPORTED_VERSIONS, asked);
    json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": { "name": server.name, "version": server.version },
    })
}

/// A duration as people write it: whole seconds as `30 s`, anything else in milliseconds.
fn human(d: std::time::Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

async fn call_tool(server: Arc<ToolServer>, id: &Value, params: Value) -> Result<Value, RpcError> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
    if !server.tools.iter().any(|t| t.name == name) {
        return Err(RpcError::new(id.clone(), code::INVALID_PARAMS, format!("Unknown tool: {name:?}")));
    }
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(RpcError::new(id.clone(), code::INVALID_PARAMS, "arguments must be an object")),
    };
    // Tools are CPU-bound and bounded by their own limits; keep them off the I/O threads.
    let timeout = server.call_timeout;
    let call = server.call.clone();
    // Dropped when the answer is sent or the time limit passes: the call sees
    // `cancel::requested()` and stops its work instead of finishing for nobody.
    let (watch, _give_up_on_drop) = crate::cancel::Watch::new();
    let work = web::block(move || watch.run(|| call(&name, arguments)));
    let outcome = match actix_web::rt::time::timeout(timeout, work).await {
        Ok(done) => done.map_err(|e| RpcError::new(id.clone(), code::INTERNAL_ERROR, format!("tool failed: {e}")))?,
        // The caller does not wait for the work: it is told to stop (see `cancel`) and the
        // thread returns to the pool as soon as the tool next checks.
        Err(_) => Err(crate::ToolError::Invalid(format!(
            "the tool did not finish within its time limit of {}; try a smaller input",
            human(timeout)
        ))),
    };
    Ok(outcome.unwrap_or_else(|e| {
        if let crate::ToolError::Failed { source, .. } = &e {
            tracing::warn!(tool = %server.name, error = %e, cause = %source, "a tool call failed");
        }
        crate::tool_error(&e.to_string())
    }))
}

async fn mcp(req: HttpRequest, payload: web::Payload, server: web::Data<ToolServer>) -> HttpResponse {
    let body = match read_limited(&req, payload, server.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return error_response(StatusCode::PAYLOAD_TOO_LARGE, &e),
    };
    let (id, method, params) = match rpc::parse(&body) {
        Ok(Incoming::Request { id, method, params }) => (id, method, params),
        Ok(Incoming::Notification) => return HttpResponse::Accepted().finish(),
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e),
    };
    let result = match method.as_str() {
        "initialize" => Ok(initialize(&server, &params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({ "tools": server.tools.iter().map(|t| t.listing()).collect::<Vec<_>>() })),
        "tools/call" => call_tool(server.into_inner(), &id, params).await,
        other => Err(RpcError::new(id.clone(), code::METHOD_NOT_FOUND, format!("Method not found: {other}"))),
    };
    match result {
        Ok(result) => HttpResponse::Ok().json(json!({ "jsonrpc": "2.0", "id": id, "result": result })),
        Err(e) => HttpResponse::Ok().json(e.body()),
    }
}

async fn health(server: web::Data<ToolServer>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok", "server": server.name, "version": server.version }))
}

async fn no_stream() -> HttpResponse {
    HttpResponse::MethodNotAllowed().insert_header(("Allow", "POST")).finish()
}

/// Mount the tool server's routes (for embedding in tests or other apps).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/mcp", web::post().to(mcp))
        .route("/mcp", web::get().to(no_stream))
        .route("/mcp", web::delete().to(no_stream));
}

/// Serve `server` on `listener` until the returned server is stopped (or a signal, when
/// `handle_signals`).
pub fn serve(
    server: ToolServer,
    listener: TcpListener,
    handle_signals: bool,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(server);
    let mut http = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
        .listen(listener)?
        .shutdown_timeout(10);
    if !handle_signals {
        http = http.disable_signals();
    }
    Ok(http.run())
}

/// The `main` of a tool server binary: JSON logs, bind `$bind_var` (default `default_bind`),
/// serve until SIGINT/SIGTERM.
pub fn run_main(server: ToolServer, bind_var: &str, default_bind: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let bind = std::env::var(bind_var).unwrap_or_else(|_| default_bind.to_owned());
    let listener = TcpListener::bind(&bind).map_err(|e| anyhow::anyhow!("{bind_var}={bind}: cannot bind: {e}"))?;
    tracing::info!(server = server.name, %bind, "tool server listening");
    actix_web::rt::System::new().block_on(async move { serve(server, listener, true)?.await })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Mutex};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::ToolSpec;

    #[actix_web::test]
    async fn a_call_past_the_time_limit_is_a_tool_error_and_its_work_is_told_to_stop() {
        let (release, wait) = mpsc::channel::<()>();
        let wait = Mutex::new(wait);
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let server = ToolServer {
            name: "slow",
            version: "0",
            tools: vec![ToolSpec {
                name: "sleep",
                description: "sleeps",
                input_schema: json!({ "type": "object" }),
                output_schema: None,
            }],
            // Works for up to 30 s, checking whether it was given up, as a tool's loop does.
            call: Arc::new(move |_, _| {
                if let Ok(rx) = wait.lock() {
                    let until = Instant::now() + Duration::from_secs(30);
                    while !crate::cancel::requested() && Instant::now() < until {
                        let _ = rx.recv_timeout(Duration::from_millis(10));
                    }
                }
                done.store(true, Ordering::SeqCst);
                Ok(json!({ "content": [], "isError": false }))
            }),
            max_body_bytes: 1024,
            call_timeout: Duration::from_millis(300),
        };
        let app = actix_web::test::init_service(App::new().app_data(web::Data::new(server)).configure(routes)).await;
        let req = actix_web::test::TestRequest::post()
            .uri("/mcp")
            .insert_header(("Content-Type", "application/json"))
            .set_payload(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"sleep"}}"#)
            .to_request();
        let started = Instant::now();
        let body: Value = actix_web::test::call_and_read_body_json(&app, req).await;
        let took = started.elapsed();
        assert!(!finished.load(Ordering::SeqCst), "the answer came before the work finished");
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(10), "{took:?}");
        assert_eq!(body["id"], 7);
        assert_eq!(body["result"]["isError"], true, "{body}");
        let text = body["result"]["content"][0]["text"].as_str().unwrap_or("");
        assert!(text.contains("time limit of 300 ms"), "{text}");
        // The abandoned work stops at its next check instead of running its 30 s for nobody.
        let given_up = Instant::now();
        while !finished.load(Ordering::SeqCst) && given_up.elapsed() < Duration::from_secs(5) {
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(finished.load(Ordering::SeqCst), "the work went on after the call was given up");
        drop(release);
    }

    #[test]
    fn time_limits_read_naturally() {
        assert_eq!(human(Duration::from_secs(30)), "30 s");
        assert_eq!(human(Duration::from_millis(1500)), "1500 ms");
    }
}
