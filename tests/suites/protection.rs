//! Backend protection and connection hygiene: concurrency limits, retries only when nothing
//! reached the backend, circuit breakers, and limits that hold against slow or huge requests.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::backend::{Mode, TestBackend};
use crate::common::{TestDb, TestGateway};
use serde_json::json;

#[actix_web::test]
async fn a_tool_at_its_concurrency_limit_answers_503_or_queues() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Slow(Duration::from_millis(600))).await;
    let gw = TestGateway::builder(&db)
        .tool_with("strict", &backend.url, "max_concurrency: 1")
        .tool_with("queued", &backend.url, "max_concurrency: 1\nqueue_timeout_ms: 5000")
        .tool_with("brief", &backend.url, "max_concurrency: 1\nqueue_timeout_ms: 100")
        .start()
        .await;
    let token = gw.token("c", &["developer"]);
    let both = |tool: &'static str| {
        let (gw, token) = (&gw, &token);
        async move {
            let (a, b) = tokio::join!(gw.invoke(token, tool, json!({})), gw.invoke(token, tool, json!({})));
            let mut statuses = [a.0, b.0];
            statuses.sort();
            (statuses, if a.0 == 503 { a.1 } else { b.1 })
        }
    };
    let (statuses, refused) = both("strict").await;
    assert_eq!(statuses, [200, 503]);
    assert_eq!(refused["error"]["code"], -32007);
    assert_eq!(both("queued").await.0, [200, 200], "the second call waited for the slot");
    let started = Instant::now();
    assert_eq!(both("brief").await.0, [200, 503], "waited 100 ms for the slot, then refused");
    assert!(started.elapsed() < Duration::from_millis(1500));
    gw.stop().await;
}

#[actix_web::test]
async fn retries_only_when_safe_and_never_after_a_timeout() {
    let db = TestDb::sqlite().await;
    let flaky = TestBackend::start(Mode::FailFirst(2)).await;
    let once = TestBackend::start(Mode::FailFirst(1)).await;
    let slow = TestBackend::start(Mode::Slow(Duration::from_secs(3))).await;
    let gw = TestGateway::builder(&db)
        .tool_with("flaky", &flaky.url, "idempotent: true")
        .tool("once", &once.url)
        .tool_with("slow", &slow.url, "timeout_seconds: 1")
        .start()
        .await;
    let token = gw.token("r", &["developer"]);
    assert_eq!(gw.invoke(&token, "flaky", json!({})).await.0, 200);
    assert_eq!(flaky.count("tools/call"), 3, "an idempotent tool: two 503s, then success");
    assert_eq!(gw.invoke(&token, "once", json!({})).await.0, 502);
    assert_eq!(once.count("tools/call"), 1, "a 503 may come after the work: a non-idempotent call is not resent");
    assert_eq!(gw.invoke(&token, "slow", json!({})).await.0, 504);
    assert_eq!(slow.count("tools/call"), 1, "a timed-out call is never sent twice");
    gw.stop().await;
}

#[actix_web::test]
async fn a_failing_backends_circuit_opens_fails_fast_and_half_opens_after_the_cooldown() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Garbage).await;
    let gw = TestGateway::builder(&db)
        .tool("broken", &backend.url)
        .var("BREAKER_FAILURES", "3")
        .var("BREAKER_COOLDOWN_SECONDS", "1")
        .start()
        .await;
    let token = gw.token("b", &["developer"]);
    for _ in 0..3 {
        assert_eq!(gw.invoke(&token, "broken", json!({})).await.0, 502);
    }
    assert_eq!(backend.count("tools/call"), 3);
    let started = Instant::now();
    let (status, body) = gw.invoke(&token, "broken", json!({})).await;
    assert_eq!(status, 502);
    assert!(body["error"]["message"].as_str().unwrap().contains("circuit open"), "{body}");
    assert!(started.elapsed() < Duration::from_millis(200), "fails fast");
    assert_eq!(backend.count("tools/call"), 3, "an open circuit spares the backend");
    let (_, health) = gw.get("/health/actors", Some(&gw.token("ops", &["operator"]))).await;
    assert_eq!(health["circuit_breakers"][0]["state"], "open", "{health}");
    let metrics = gw.metrics().await;
    assert!(metrics.contains(&format!("mcpgw_circuit_breaker_open{{backend=\"{}\"}} 1", backend.url)), "{metrics}");
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(gw.invoke(&token, "broken", json!({})).await.0, 502);
    assert_eq!(backend.count("tools/call"), 4, "one trial call after the cool-down");
    gw.invoke(&token, "broken", json!({})).await;
    assert_eq!(backend.count("tools/call"), 4, "the failed trial opened the circuit again");
    gw.stop().await;
}

fn raw(gw: &TestGateway) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(gw.gateway.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn status_line(stream: &mut std::net::TcpStream) -> String {
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned()
}

#[actix_web::test]
async fn huge_slow_and_stalled_requests_are_refused_without_hurting_others() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &backend.url)
        .var("HEADER_TIMEOUT_MS", "500")
        .var("BODY_TIMEOUT_MS", "500")
        .start()
        .await;
    let gw = std::sync::Arc::new(gw);
    let (huge, slowloris, slow_body) = {
        let gw = gw.clone();
        tokio::task::spawn_blocking(move || {
            // 20 MiB declared, nothing sent, no token: 413 before authentication and buffering.
            let mut s = raw(&gw);
            s.write_all(b"POST /mcp/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 20971520\r\n\r\n").unwrap();
            let huge = status_line(&mut s);
            // Headers that never finish: the connection is closed by the header timeout.
            let mut s = raw(&gw);
            s.write_all(b"POST /mcp/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
            let started = Instant::now();
            let slowloris = (status_line(&mut s), started.elapsed());
            // A body that stalls: 408.
            let mut s = raw(&gw);
            let token = gw.token("s", &["developer"]);
            s.write_all(format!("POST /mcp/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"tool").as_bytes()).unwrap();
            let slow_body = status_line(&mut s);
            (huge, slowloris, slow_body)
        })
        .await
        .unwrap()
    };
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    assert!(slowloris.1 < Duration::from_secs(3), "closed after {:?}", slowloris.1);
    assert!(slowloris.0.is_empty() || slowloris.0.starts_with("HTTP/1.1 408"), "{}", slowloris.0);
    assert!(slow_body.starts_with("HTTP/1.1 408"), "{slow_body}");
    // Normal traffic is unaffected.
    assert_eq!(gw.invoke(&gw.token("n", &["developer"]), "echo", json!({})).await.0, 200);
}
