//! The request path as an agent meets it: a real gateway, real MCP backends, real HTTP.

use std::time::Duration;

use crate::common::backend::{Mode, TestBackend};
use crate::common::{TestDb, TestGateway};
use serde_json::json;

#[actix_web::test]
async fn happy_path_returns_the_backend_result_as_json_rpc() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
    let body = json!({"tool_name": "echo", "arguments": {"x": 1}, "request_id": "req-42"}).to_string();
    let (status, headers, json) = gw.post_invoke(Some(&gw.token("alice", &["developer"])), body.into_bytes()).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["jsonrpc"], "2.0");
    assert_eq!(json["id"], "req-42");
    assert_eq!(json["result"]["structuredContent"]["echo"], json!({"x": 1}));
    assert_eq!(headers.get("x-request-id").unwrap(), "req-42");
    let rows = db.wait_for_rows(1).await;
    assert_eq!(
        (rows[0].decision.as_str(), rows[0].status.as_str(), rows[0].request_id.as_str()),
        ("allowed", "ok", "req-42")
    );
    gw.stop().await;
    backend.stop().await;
}

#[actix_web::test]
async fn x_request_id_header_is_honoured_and_otherwise_minted() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
    let resp = crate::common::client()
        .post(format!("{}/mcp/invoke", gw.base))
        .bearer_auth(gw.token("alice", &["developer"]))
        .insert_header(("X-Request-ID", "trace-7"))
        .send_json(&json!({"tool_name": "echo", "arguments": {}}))
        .await
        .unwrap();
    assert_eq!(resp.headers().get("x-request-id").unwrap(), "trace-7");
    let (_, headers, json) =
        gw.post_invoke(Some(&gw.token("a", &["developer"])), br#"{"tool_name":"echo"}"#.to_vec()).await;
    let minted = headers.get("x-request-id").unwrap().to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&minted).is_ok());
    assert_eq!(json["id"], minted.as_str());
    gw.stop().await;
    backend.stop().await;
}

#[actix_web::test]
async fn sse_replies_and_tool_errors_are_passed_through_with_200() {
    let db = TestDb::sqlite().await;
    let (sse, failing) = (TestBackend::start(Mode::Sse).await, TestBackend::start(Mode::ToolError).await);
    let gw = TestGateway::builder(&db).tool("sse", &sse.url).tool("failing", &failing.url).start().await;
    let token = gw.token("alice", &["developer"]);
    let (status, json) = gw.invoke(&token, "sse", json!({"k": "v"})).await;
    assert_eq!((status, &json["result"]["structuredContent"]["echo"]), (200, &json!({"k": "v"})));
    let (status, json) = gw.invoke(&token, "failing", json!({})).await;
    assert_eq!((status, &json["result"]["isError"]), (200, &json!(true)));
    let rows = db.wait_for_rows(2).await;
    assert!(rows.iter().any(|r| r.status == "tool_error" && r.decision == "allowed"));
    gw.stop().await;
}

#[actix_web::test]
async fn role_without_the_tool_is_403_and_workspace_deny_beats_role_allow() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).tool("admin_only", &backend.url).start().await;
    let (status, json) = gw.invoke(&gw.token("gus", &["guest"]), "admin_only", json!({})).await;
    assert_eq!((status, json["error"]["code"].as_i64()), (403, Some(-32002)));
    let (status, _) = gw.invoke(&gw.token("nobody", &["no-such-role"]), "echo", json!({})).await;
    assert_eq!(status, 403);
    let (status, json) = gw.invoke(&gw.token_in("dev", &["developer"], "locked"), "echo", json!({})).await;
    assert_eq!((status, json["error"]["code"].as_i64()), (403, Some(-32002)));
    assert_eq!(gw.invoke(&gw.token_in("dev", &["developer"], "open"), "echo", json!({})).await.0, 200);
    assert_eq!(backend.count("tools/call"), 1, "denied calls never reach the backend");
    gw.stop().await;
}

#[actix_web::test]
async fn tool_listing_shows_only_what_the_caller_may_call() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &backend.url)
        .tool("admin_only", &backend.url)
        .tool_with("retired", &backend.url, "is_active: false")
        .start()
        .await;
    let names = |v: serde_json::Value| -> Vec<String> {
        v["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(gw.get("/mcp/tools", Some(&gw.token("g", &["guest"]))).await.1), vec!["echo"]);
    assert_eq!(names(gw.get("/mcp/tools", Some(&gw.token("a", &["admin"]))).await.1), vec!["echo", "admin_only"]);
    assert_eq!(gw.get("/mcp/tools", None).await.0, 401);
    gw.stop().await;
}

#[actix_web::test]
async fn unknown_and_inactive_tools_are_404() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool_with("retired", &backend.url, "is_active: false").start().await;
    let token = gw.token("a", &["admin"]);
    for tool in ["nope", "retired"] {
        let (status, json) = gw.invoke(&token, tool, json!({})).await;
        assert_eq!((status, json["error"]["code"].as_i64()), (404, Some(-32001)), "{tool}");
    }
    let rows = db.wait_for_rows(2).await;
    assert!(rows.iter().all(|r| r.decision == "unknown_tool" && r.http_status == 404));
    gw.stop().await;
}

#[actix_web::test]
async fn oversized_and_malformed_bodies_are_refused_with_json_errors() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
    let token = gw.token("a", &["developer"]);
    let big = format!(r#"{{"tool_name":"echo","arguments":{{"blob":"{}"}}}}"#, "x".repeat(2 << 20));
    let (status, _, json) = gw.post_invoke(Some(&token), big.into_bytes()).await;
    assert_eq!((status, json["error"]["code"].as_i64()), (413, Some(-32005)));
    let (status, _, json) = gw.post_invoke(Some(&token), b"{not json".to_vec()).await;
    assert_eq!((status, json["error"]["code"].as_i64()), (400, Some(-32700)));
    let (status, _, json) = gw.post_invoke(Some(&token), br#"{"arguments":{}}"#.to_vec()).await;
    assert_eq!((status, json["error"]["code"].as_i64()), (400, Some(-32600)));
    let (status, _, json) = gw.post_invoke(Some(&token), br#"{"tool_name":"echo","arguments":[1]}"#.to_vec()).await;
    assert_eq!((status, json["error"]["code"].as_i64()), (400, Some(-32600)));
    assert_eq!(gw.get("/no/such/route", None).await.0, 404);
    let rows = db.wait_for_rows(4).await;
    assert!(rows.iter().any(|r| r.status == "payload_too_large" && r.decision == "rejected" && r.http_status == 413));
    assert_eq!(backend.count("tools/call"), 0);
    gw.stop().await;
}

#[actix_web::test]
async fn slow_backend_is_504_and_down_or_garbage_backends_are_502() {
    let db = TestDb::sqlite().await;
    let slow = TestBackend::start(Mode::Slow(Duration::from_secs(5))).await;
    let garbage = TestBackend::start(Mode::Garbage).await;
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/mcp", l.local_addr().unwrap())
    };
    let gw = TestGateway::builder(&db)
        .tool_with("slow", &slow.url, "timeout_seconds: 1")
        .tool("garbage", &garbage.url)
        .tool("down", &down)
        .start()
        .await;
    let token = gw.token("a", &["developer"]);
    let started = std::time::Instant::now();
    let (status, json) = gw.invoke(&token, "slow", json!({})).await;
    assert_eq!((status, json["error"]["code"].as_i64()), (504, Some(-32003)));
    assert!(started.elapsed() < Duration::from_secs(4), "the timeout fired at ~1 s");
    // The backend is told to stop the call the gateway gave up on.
    let call_id = slow.seen().iter().find(|s| s.method == "tools/call").map(|s| s.id.clone()).unwrap();
    let mut told = false;
    for _ in 0..100 {
        told = slow.seen().iter().any(|s| s.method == "notifications/cancelled" && s.params["requestId"] == call_id);
        if told {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(told, "no notifications/cancelled for {call_id}: {:?}", slow.seen());
    for tool in ["garbage", "down"] {
        let (status, json) = gw.invoke(&token, tool, json!({})).await;
        assert_eq!((status, json["error"]["code"].as_i64()), (502, Some(-32004)), "{tool}: {json}");
    }
    let rows = db.wait_for_rows(3).await;
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert!(
        statuses.contains(&"backend_timeout")
            && statuses.contains(&"backend_bad_reply")
            && statuses.contains(&"backend_unavailable"),
        "{statuses:?}"
    );
    gw.stop().await;
}

#[actix_web::test]
async fn backend_never_sees_the_clients_authorization_header() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
    assert_eq!(gw.invoke(&gw.token("a", &["developer"]), "echo", json!({})).await.0, 200);
    let seen = backend.seen();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|s| s.authorization.is_none()), "{seen:?}");
    gw.stop().await;
}

#[actix_web::test]
async fn backend_session_is_initialised_once_and_renewed_after_a_404() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start_with(Mode::Echo, true).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
    let token = gw.token("a", &["developer"]);
    for _ in 0..5 {
        assert_eq!(gw.invoke(&token, "echo", json!({})).await.0, 200);
    }
    assert_eq!(backend.count("initialize"), 1);
    assert_eq!(backend.count("tools/call"), 5, "one backend request per call in steady state");
    assert!(backend
        .seen()
        .iter()
        .filter(|s| s.method == "tools/call")
        .all(|s| s.session.as_deref() == Some("session-0")));
    backend.forget_sessions();
    assert_eq!(gw.invoke(&token, "echo", json!({})).await.0, 200);
    assert_eq!(backend.count("initialize"), 2);
    gw.stop().await;
}

#[actix_web::test]
async fn health_endpoints_report_database_and_actors() {
    let db = TestDb::sqlite().await;
    let gw = TestGateway::builder(&db).start().await;
    assert_eq!(gw.get("/health", None).await, (200, json!({"status": "ok"})));
    let (status, ready) = gw.get("/health/ready", None).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")), "{ready}");
    assert_eq!(gw.get("/health/actors", None).await.0, 401);
    assert_eq!(gw.get("/health/actors", Some(&gw.token("d", &["developer"]))).await.0, 403);
    let (status, actors) = gw.get("/health/actors", Some(&gw.token("ops", &["operator"]))).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = actors["actors"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["registry", "policy", "audit_writer", "rate_limiter"]);
    assert!(actors["actors"].as_array().unwrap().iter().all(|a| a["alive"] == true));
    gw.stop().await;
}

#[actix_web::test]
async fn the_callers_trace_continues_into_the_backend_call() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
    let token = gw.token("t", &["developer"]);
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let resp = crate::common::client()
        .post(format!("{}/mcp/invoke", gw.base))
        .bearer_auth(&token)
        .insert_header(("traceparent", incoming))
        .send_json(&json!({"tool_name": "echo", "arguments": {}}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let call = backend.with("tools/call").pop().unwrap();
    let sent = call.traceparent.expect("the backend got a traceparent");
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!((parts[0], parts[1], parts[3]), ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01"), "{sent}");
    assert!(parts[2].len() == 16 && parts[2] != "00f067aa0ba902b7", "a new span id for the gateway's call: {sent}");
    // Without (or with a malformed) traceparent, the gateway starts a trace of its own.
    for header in [None, Some("00-nonsense")] {
        let mut req = crate::common::client().post(format!("{}/mcp/invoke", gw.base)).bearer_auth(&token);
        if let Some(h) = header {
            req = req.insert_header(("traceparent", h));
        }
        assert_eq!(req.send_json(&json!({"tool_name": "echo", "arguments": {}})).await.unwrap().status(), 200);
        let sent = backend.with("tools/call").pop().unwrap().traceparent.unwrap();
        let ctx = mcp_gateway::telemetry::tracecontext::TraceContext::parse(&sent).expect("a valid traceparent");
        assert_ne!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }
    gw.stop().await;
}
