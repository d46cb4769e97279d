//! Traces as an operator sees them in their collector: with `OTEL_EXPORTER_OTLP_ENDPOINT` set,
//! each request becomes a server span (OTLP/HTTP JSON) in the caller's trace, and the backend
//! call's `traceparent` names that span as its parent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::backend::{Mode, TestBackend};
use crate::common::{TestDb, TestGateway};
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// A stand-in OTLP collector: stores every `/v1/traces` body it receives.
async fn collector() -> (String, Arc<Mutex<Vec<Value>>>, actix_web::dev::ServerHandle) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let server = HttpServer::new(move || {
        let store = store.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes| {
                let store = store.clone();
                async move {
                    store.lock().unwrap().push(serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null));
                    HttpResponse::Ok().json(json!({}))
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), received, handle)
}

#[actix_web::test]
async fn request_spans_reach_the_collector_in_the_callers_trace() {
    let (endpoint, received, handle) = collector().await;
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &backend.url)
        .var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .start()
        .await;
    let token = gw.token("t", &["developer"]);
    let resp = crate::common::client()
        .post(format!("{}/mcp/invoke", gw.base))
        .bearer_auth(&token)
        .insert_header(("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        .send_json(&json!({"tool_name": "echo", "arguments": {}}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let started = Instant::now();
    let span = loop {
        let found = received.lock().unwrap().iter().find_map(|body| {
            body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .and_then(|spans| spans.iter().find(|s| s["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736").cloned())
        });
        if let Some(span) = found {
            break span;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no span reached the collector");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(span["name"], "POST /mcp/invoke");
    assert_eq!(span["parentSpanId"], "00f067aa0ba902b7", "a child of the caller's span");
    let attributes = span["attributes"].as_array().unwrap();
    assert!(attributes.contains(&json!({"key": "http.response.status_code", "value": {"intValue": "200"}})), "{span}");
    let backend_parent = backend.with("tools/call").pop().unwrap().traceparent.unwrap();
    assert_eq!(
        backend_parent.split('-').nth(2).unwrap(),
        span["spanId"],
        "the backend call's parent is the gateway's span"
    );
    let metrics = gw.metrics().await;
    assert!(metrics.contains("mcpgw_otlp_spans_total{result=\"exported\"}"), "{metrics}");
    gw.stop().await;
    handle.stop(true).await;
}
