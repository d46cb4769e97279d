//! Hostile input, as an attacker would send it: every request gets its documented error (HTTP
//! status + JSON-RPC code), nothing panics, and the gateway keeps serving normal calls after.

use std::io::{Read, Write};

use crate::common::backend::{Mode, TestBackend};
use crate::common::{TestDb, TestGateway};
use serde_json::{json, Value};

/// POST raw bytes to `path`; the status and the JSON-RPC error code of the answer.
async fn raw_post(
    gw: &TestGateway,
    path: &str,
    token: &str,
    session: Option<&str>,
    body: Vec<u8>,
) -> (u16, Option<i64>) {
    let mut req = crate::common::client()
        .post(format!("{}{path}", gw.base))
        .bearer_auth(token)
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Accept", "application/json, text/event-stream"));
    if let Some(s) = session {
        req = req.insert_header(("Mcp-Session-Id", s)).insert_header(("MCP-Protocol-Version", "2025-06-18"));
    }
    let mut resp = req.send_body(body).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.body().limit(1 << 20).await.unwrap_or_default();
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json["error"]["code"].as_i64())
}

#[actix_web::test]
async fn malformed_envelopes_deep_nesting_huge_batches_and_headers_get_their_errors() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).start().await;
    let token = gw.token("h", &["developer"]);

    // REST: not JSON; JSON nested 10,000 deep (past the parser's depth limit).
    assert_eq!(raw_post(&gw, "/mcp/invoke", &token, None, b"{\"tool_name\": ".to_vec()).await, (400, Some(-32700)));
    let deep = format!(r#"{{"tool_name":"echo","arguments":{{"a":{}{}}}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(raw_post(&gw, "/mcp/invoke", &token, None, deep.clone().into_bytes()).await, (400, Some(-32700)));

    // MCP: a session, then envelopes that are wrong in each way.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}}});
    let opened = crate::common::client()
        .post(format!("{}/mcp", gw.base))
        .bearer_auth(&token)
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_json(&init)
        .await
        .unwrap();
    let session = opened.headers().get("mcp-session-id").unwrap().to_str().unwrap().to_owned();
    let mcp = |body: Vec<u8>| raw_post(&gw, "/mcp", &token, Some(&session), body);
    let (_, code) = mcp(b"{not json".to_vec()).await;
    assert_eq!(code, Some(-32700), "invalid JSON");
    let (_, code) = mcp(br#"{"jsonrpc":"1.0","id":2,"method":"ping"}"#.to_vec()).await;
    assert_eq!(code, Some(-32600), "wrong jsonrpc version");
    let (_, code) = mcp(br#"{"jsonrpc":"2.0","id":3}"#.to_vec()).await;
    assert_eq!(code, Some(-32600), "missing method");
    let (_, code) = mcp(br#"{"jsonrpc":"2.0","id":4,"method":"no/such/method"}"#.to_vec()).await;
    assert_eq!(code, Some(-32601), "unknown method");
    let (_, code) = mcp(deep.into_bytes()).await;
    assert_eq!(code, Some(-32700), "10,000-deep nesting");
    // 100,000 requests in one batch: refused whole, before any is run.
    let batch: Vec<Value> = (0..100_000).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "ping"})).collect();
    let (status, code) = mcp(serde_json::to_vec(&batch).unwrap()).await;
    assert!(matches!((status, code), (413, Some(-32005)) | (400, Some(-32600))), "batch: {status} {code:?}");
    assert_eq!(echo.count("ping"), 0, "nothing of the batch reached a backend");

    // Big headers: 64 KiB is within actix's bounded header buffer and answered normally; 256 KiB
    // is refused at the HTTP layer (431, or the connection closed) without buffering more.
    let header_probe = |size: usize| {
        let addr = gw.base.trim_start_matches("http://").to_owned();
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            let request =
                format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(size));
            let _ = s.write_all(request.as_bytes());
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        })
    };
    let answer = header_probe(64 * 1024).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{}", &answer[..answer.len().min(200)]);
    let answer = header_probe(256 * 1024).await.unwrap();
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "{}", &answer[..answer.len().min(200)]);

    // Still serving, and every attempt at a tool call was audited.
    assert_eq!(gw.get("/health", None).await.0, 200);
    assert_eq!(gw.invoke(&token, "echo", json!({"ok": true})).await.0, 200);
    gw.stop().await;
}

/// A backend that answers every request with 50 MiB of JSON string.
async fn flooding_backend() -> (String, actix_web::dev::ServerHandle) {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let server = HttpServer::new(|| {
        App::new().route(
            "/mcp",
            web::post().to(|| async {
                let mut body = Vec::with_capacity(50 << 20);
                body.extend_from_slice(br#"{"jsonrpc":"2.0","id":1,"result":{"x":""#);
                body.resize(50 << 20, b'a');
                body.extend_from_slice(br#""}}"#);
                HttpResponse::Ok().content_type("application/json").body(body)
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
    (format!("http://{addr}/mcp"), handle)
}

#[actix_web::test]
async fn a_backend_replying_50_mib_gets_a_bad_gateway_not_an_out_of_memory() {
    let (url, handle) = flooding_backend().await;
    let db = TestDb::sqlite().await;
    let gw = TestGateway::builder(&db).tool("flood", &url).start().await;
    let token = gw.token("h", &["developer"]);
    let (status, body) = gw.invoke(&token, "flood", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], -32004);
    assert_eq!(gw.get("/health", None).await.0, 200);
    gw.stop().await;
    handle.stop(false).await;
}

/// Before: `{"x": 1e-400}` was read as 0.0 by the gateway's JSON reader and forwarded as a zero
/// the caller never sent (the calculator then answered for 0, marked exact). Now a body with a
/// literal a float reads as zero is a parse error (-32700) on every transport, and nothing
/// reaches the backend; numbers a float holds, and the same digits in a string, pass.
#[actix_web::test]
async fn number_literals_that_would_arrive_as_zero_are_refused_not_forwarded() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).start().await;
    let token = gw.token("n", &["developer"]);
    let invoke = |args: &str| format!(r#"{{"tool_name":"echo","arguments":{args}}}"#).into_bytes();
    assert_eq!(raw_post(&gw, "/mcp/invoke", &token, None, invoke(r#"{"x": 1e-400}"#)).await, (400, Some(-32700)));
    assert_eq!(raw_post(&gw, "/mcp/jobs", &token, None, invoke(r#"{"x": -2.5E-999}"#)).await.1, Some(-32700));
    let call = br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"x":1e-400}}}"#;
    let (_, code) = raw_post(&gw, "/mcp", &token, None, call.to_vec()).await;
    assert_eq!(code, Some(-32700), "stateless MCP");
    assert_eq!(echo.count("tools/call"), 0, "nothing reached the backend");
    let (status, code) =
        raw_post(&gw, "/mcp/invoke", &token, None, invoke(r#"{"x": 1e-300, "y": "1e-400", "z": 0e-999}"#)).await;
    assert_eq!((status, code), (200, None));
}

/// The attack (outside review): an unknown tool or method name of 100 KB holding a
/// right-to-left override, NUL and an ANSI escape. Before: the whole name came back in the
/// error, raw (a 100 KB error body; text that reorders or recolours what a console or a log
/// viewer shows). Now unverified names are echoed short and escaped, on REST and on MCP.
#[actix_web::test]
async fn unverified_names_are_not_echoed_back_raw_or_whole() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).start().await;
    let token = gw.token("eve", &["developer"]);
    let name = format!("{}\u{202e}\u{0}\u{1b}[31m", "A".repeat(100_000));
    let raw = |text: &str| text.contains('\u{202e}') || text.contains('\u{1b}') || text.contains('\u{0}');

    let body = serde_json::to_vec(&json!({"tool_name": name, "arguments": {}})).unwrap();
    let (status, _, answer) = gw.post_invoke(Some(&token), body).await;
    let text = answer.to_string();
    assert_eq!(status, 404);
    assert!(
        text.len() < 1024 && !raw(answer["error"]["message"].as_str().unwrap_or_default()),
        "{}",
        &text[..200.min(text.len())]
    );

    let opened = crate::common::mcp::post(&gw, Some(&token), None, &[], crate::common::mcp::init("2025-11-25")).await;
    let sid = opened.session.unwrap();
    let v = [("MCP-Protocol-Version", "2025-11-25")];
    let call = crate::common::mcp::rpc(2, "tools/call", json!({"name": name, "arguments": {}}));
    let answer = crate::common::mcp::post(&gw, Some(&token), Some(&sid), &v, call).await.body;
    let message = answer["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.starts_with("Unknown tool: ") && message.len() < 1024 && !raw(&message),
        "{}",
        &message[..200.min(message.len())]
    );
    let method = crate::common::mcp::rpc(3, &name, json!({}));
    let answer = crate::common::mcp::post(&gw, Some(&token), Some(&sid), &v, method).await.body;
    let message = answer["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.starts_with("Method not found: ") && message.len() < 1024 && !raw(&message),
        "{}",
        &message[..200.min(message.len())]
    );

    // An ordinary name still reads as it did.
    let (_, _, answer) = gw.post_invoke(Some(&token), br#"{"tool_name":"nope","arguments":{}}"#.to_vec()).await;
    assert_eq!(answer["error"]["message"], "unknown tool: nope");
    gw.stop().await;
}
