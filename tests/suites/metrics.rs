//! `/metrics` as Prometheus reads it: scraped from a live gateway after real calls and parsed
//! with the official Python client's text parser (`prometheus_client`), not with our own code.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::backend::{Mode, TestBackend};
use crate::common::{TestDb, TestGateway};
use serde_json::{json, Value};

const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

fn parser_available() -> bool {
    let ok = Command::new("python3").args(["-c", "import prometheus_client"]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must install prometheus_client (pip)");
        eprintln!("python3 prometheus_client is not installed: skipping the scrape test");
    }
    ok
}

fn parse(text: &str) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Prometheus parser refused /metrics: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn value(samples: &[Value], name: &str, labels: Value) -> Option<f64> {
    let want = labels.as_object().unwrap();
    samples
        .iter()
        .find(|s| s["name"] == name && want.iter().all(|(k, v)| &s["labels"][k] == v))
        .map(|s| s["value"].as_f64().unwrap())
}

#[actix_web::test]
async fn metrics_scrape_cleanly_with_latency_histograms_per_route_tool_and_backend() {
    if !parser_available() {
        return;
    }
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &echo.url)
        .tool("admin_only", &echo.url)
        .tool("down", "http://127.0.0.1:9/mcp")
        .start()
        .await;
    let dev = gw.token("m", &["developer"]);
    assert_eq!(gw.invoke(&dev, "echo", json!({"a": 1})).await.0, 200);
    assert_eq!(gw.invoke(&dev, "echo", json!({"a": 2})).await.0, 200);
    assert_eq!(gw.invoke(&dev, "admin_only", json!({})).await.0, 403);
    assert_eq!(gw.invoke(&dev, "down", json!({})).await.0, 502);
    assert_eq!(gw.post_invoke(None, b"{}".to_vec()).await.0, 401);
    // A path nobody routes must not become a label value.
    assert_eq!(gw.get("/no/such/path/123", None).await.0, 404);

    let text = gw.metrics().await;
    let samples = parse(&text);
    let calls = |tool: &str, decision: &str| {
        value(&samples, "mcpgw_tool_call_duration_seconds_count", json!({"tool": tool, "decision": decision}))
    };
    assert_eq!(calls("echo", "allowed"), Some(2.0), "{text}");
    assert_eq!(calls("admin_only", "denied"), Some(1.0));
    assert_eq!(value(&samples, "mcpgw_backend_duration_seconds_count", json!({"tool": "echo"})), Some(2.0));
    assert_eq!(
        value(&samples, "mcpgw_backend_errors_total", json!({"tool": "down", "kind": "backend_unavailable"})),
        Some(1.0),
        "{text}"
    );
    let requests = |status: &str| {
        value(
            &samples,
            "mcpgw_http_requests_total",
            json!({"route": "/mcp/invoke", "method": "POST", "status": status}),
        )
    };
    assert_eq!(
        (requests("200"), requests("403"), requests("502"), requests("401")),
        (Some(2.0), Some(1.0), Some(1.0), Some(1.0))
    );
    assert!(value(&samples, "mcpgw_http_requests_total", json!({"route": "unmatched", "status": "404"})).is_some());
    assert!(!text.contains("/no/such/path"), "raw paths are never labels");
    // Buckets are cumulative and end at the count.
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|s| s["name"] == "mcpgw_http_request_duration_seconds_bucket" && s["labels"]["route"] == "/mcp/invoke")
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert!(buckets.len() > 10 && buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(
        buckets.last(),
        value(&samples, "mcpgw_http_request_duration_seconds_count", json!({"route": "/mcp/invoke"})).as_ref()
    );
    assert!(value(&samples, "mcpgw_actor_handled_total", json!({"actor": "audit_writer"})).is_some(), "{text}");
    // The audit rows of the calls above were written in batches (flushed every 20 ms here).
    assert!(value(&samples, "mcpgw_audit_batches_total", json!({})).unwrap() >= 1.0, "{text}");
    assert!(value(&samples, "mcpgw_audit_batch_rows_total", json!({})).unwrap() >= 1.0);
    // Queue depth and spool size are exported (no outage here: the spool is empty).
    assert!(value(&samples, "mcpgw_audit_backlog", json!({})).is_some(), "{text}");
    assert_eq!(value(&samples, "mcpgw_audit_spooled", json!({})), Some(0.0), "{text}");
    // A job submitted and finished shows in the jobs family.
    let (status, job) = crate::common::client()
        .post(format!("{}/mcp/jobs", gw.base))
        .bearer_auth(&dev)
        .send_json(&json!({"tool_name": "echo", "arguments": {}}))
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!((status, job), (202, ()));
    let started = std::time::Instant::now();
    loop {
        let samples = parse(&gw.metrics().await);
        if value(&samples, "mcpgw_jobs", json!({"status": "succeeded"})) == Some(1.0) {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the job shows as succeeded");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(value(&samples, "mcpgw_actor_restarts_total", json!({"actor": "policy"})).is_some(), "{text}");
    gw.stop().await;
}
