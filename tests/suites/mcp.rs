//! The MCP front door as MCP clients meet it: Streamable HTTP, legacy SSE, the stateless
//! revision, sessions bound to their subject, Origin/Host checks, and a client built with the
//! official Python SDK over both transports.

use std::process::Command;

use crate::common::backend::{Mode, TestBackend};
use crate::common::mcp::{init, post, rpc, session, wait_until};
use crate::common::{client, TestDb, TestGateway};
use serde_json::{json, Value};

async fn gateway(db: &TestDb, backend: &TestBackend) -> TestGateway {
    TestGateway::builder(db).tool("echo", &backend.url).tool("admin_only", &backend.url).start().await
}

#[actix_web::test]
async fn streamable_http_session_lifecycle_and_tool_calls() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = gateway(&db, &backend).await;
    let alice = gw.token("alice", &["developer"]);

    let opened = post(&gw, Some(&alice), None, &[], init("2025-06-18")).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(opened.body["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(opened.body["result"]["capabilities"]["tools"]["listChanged"], true);
    let sid = opened.session.unwrap();
    assert_eq!(sid.len(), 64, "256-bit session id");
    let s = Some(sid.as_str());
    let v = [("MCP-Protocol-Version", "2025-06-18")];

    assert_eq!(
        post(&gw, Some(&alice), s, &v, json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await.status,
        202
    );
    assert_eq!(post(&gw, Some(&alice), s, &v, rpc(2, "ping", json!({}))).await.body["result"], json!({}));
    let list = post(&gw, Some(&alice), s, &v, rpc(3, "tools/list", json!({}))).await;
    let names: Vec<&str> =
        list.body["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["echo"], "admin_only is denied to developers and not listed");
    assert!(list.body["result"]["tools"][0]["inputSchema"].is_object());

    let call =
        post(&gw, Some(&alice), s, &v, rpc(4, "tools/call", json!({"name": "echo", "arguments": {"x": 1}}))).await;
    assert_eq!(call.body["result"]["structuredContent"]["echo"], json!({"x": 1}));
    let denied =
        post(&gw, Some(&alice), s, &v, rpc(5, "tools/call", json!({"name": "admin_only", "arguments": {}}))).await;
    let unknown =
        post(&gw, Some(&alice), s, &v, rpc(6, "tools/call", json!({"name": "no_such_tool", "arguments": {}}))).await;
    assert_eq!(denied.body["error"]["code"], -32602);
    assert_eq!(
        denied.body["error"]["message"].as_str().unwrap().replace("admin_only", "X"),
        unknown.body["error"]["message"].as_str().unwrap().replace("no_such_tool", "X"),
        "denied and unknown tools are indistinguishable"
    );
    let bad_cursor = post(&gw, Some(&alice), s, &v, rpc(7, "tools/list", json!({"cursor": "garbage"}))).await;
    assert_eq!(bad_cursor.body["error"]["code"], -32602);
    // Upstream servers' resources are listed (none here); a method the gateway does not serve is -32601.
    assert_eq!(
        post(&gw, Some(&alice), s, &v, rpc(8, "resources/list", json!({}))).await.body["result"]["resources"],
        json!([])
    );
    assert_eq!(
        post(&gw, Some(&alice), s, &v, rpc(8, "resources/subscribe", json!({"uri": "x"}))).await.body["error"]["code"],
        -32601
    );

    // Session rules: missing 400, unknown 404, another subject's 404, bad version 400.
    assert_eq!(post(&gw, Some(&alice), None, &v, rpc(9, "ping", json!({}))).await.status, 400);
    assert_eq!(post(&gw, Some(&alice), Some("0000"), &v, rpc(9, "ping", json!({}))).await.status, 404);
    let mallory = gw.token("mallory", &["developer"]);
    assert_eq!(post(&gw, Some(&mallory), s, &v, rpc(9, "ping", json!({}))).await.status, 404);
    assert_eq!(
        post(&gw, Some(&alice), s, &[("MCP-Protocol-Version", "1999-01-01")], rpc(9, "ping", json!({}))).await.status,
        400
    );
    // A session id is never authentication.
    let anonymous = post(&gw, None, s, &v, rpc(9, "ping", json!({}))).await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.headers.get("www-authenticate").unwrap().to_str().unwrap().contains("resource_metadata="));

    let get = client()
        .get(format!("{}/mcp", gw.base))
        .bearer_auth(&alice)
        .insert_header(("Mcp-Session-Id", sid.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let end = |token: String| {
        let (base, sid) = (gw.base.clone(), sid.clone());
        async move {
            client()
                .delete(format!("{base}/mcp"))
                .bearer_auth(token)
                .insert_header(("Mcp-Session-Id", sid))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(end(mallory.clone()).await, 404, "only the owner ends a session");
    assert_eq!(end(alice.clone()).await, 200);
    assert_eq!(post(&gw, Some(&alice), s, &v, rpc(10, "ping", json!({}))).await.status, 404);

    let rows = db.wait_for_rows(3).await;
    assert!(rows.iter().all(|r| r.transport == "streamable_http"));
    assert_eq!(rows.iter().filter(|r| r.decision == "denied").count(), 1);
    assert_eq!(rows.iter().filter(|r| r.decision == "unknown_tool").count(), 1);
    gw.stop().await;
}

#[actix_web::test]
async fn stateless_2026_07_28_requests_need_no_session() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = gateway(&db, &backend).await;
    let token = gw.token("sam", &["developer"]);
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let v = [("MCP-Protocol-Version", "2026-07-28")];
    let discover = post(&gw, Some(&token), None, &v, rpc(1, "server/discover", json!({"_meta": meta}))).await;
    assert_eq!(discover.status, 200, "{}", discover.body);
    assert_eq!(discover.body["result"]["resultType"], "complete");
    assert!(discover.body["result"]["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")));
    assert_eq!(discover.body["result"]["capabilities"]["tools"]["listChanged"], false, "no stream without a session");
    let list = post(&gw, Some(&token), None, &v, rpc(2, "tools/list", json!({"_meta": meta}))).await;
    assert_eq!(
        (list.body["result"]["resultType"].as_str(), list.body["result"]["tools"][0]["name"].as_str()),
        (Some("complete"), Some("echo"))
    );
    let call = post(
        &gw,
        Some(&token),
        None,
        &v,
        rpc(3, "tools/call", json!({"_meta": meta, "name": "echo", "arguments": {"k": 2}})),
    )
    .await;
    assert_eq!(call.body["result"]["structuredContent"]["echo"], json!({"k": 2}));
    let unknown = post(&gw, Some(&token), None, &v, rpc(4, "sampling/createMessage", json!({"_meta": meta}))).await;
    assert_eq!(unknown.body["error"]["code"], -32601);
    // Old clients probing server/discover without a session get an answer too.
    assert_eq!(post(&gw, Some(&token), None, &[], rpc(5, "server/discover", json!({}))).await.status, 200);
    gw.stop().await;
}

#[actix_web::test]
async fn foreign_origins_and_hosts_are_refused() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = gateway(&db, &backend).await;
    let token = gw.token("o", &["developer"]);
    let evil = post(&gw, Some(&token), None, &[("Origin", "http://evil.example.com")], init("2025-11-25")).await;
    assert_eq!((evil.status, evil.body["error"]["code"].as_i64()), (403, Some(-32002)));
    let rebinding = post(
        &gw,
        Some(&token),
        None,
        &[("Host", "evil.example.com"), ("Origin", "http://evil.example.com")],
        init("2025-11-25"),
    )
    .await;
    assert_eq!(rebinding.status, 403);
    let host_only = post(&gw, Some(&token), None, &[("Host", "evil.example.com:80")], init("2025-11-25")).await;
    assert_eq!(host_only.status, 403);
    let local = post(&gw, Some(&token), None, &[("Origin", "http://localhost:3000")], init("2025-11-25")).await;
    assert_eq!(local.status, 200);
    let meta = client()
        .get(format!("{}/.well-known/oauth-protected-resource/mcp", gw.base))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(meta["resource"], format!("{}/mcp", gw.base));
    let root = client()
        .get(format!("{}/.well-known/oauth-protected-resource", gw.base))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(root["resource"], gw.base.as_str(), "RFC 9728 §3.3: the root form names the origin");
    gw.stop().await;
}

#[actix_web::test]
async fn an_origin_allow_list_admits_exactly_its_origins() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &backend.url)
        .var("ALLOWED_ORIGINS", "https://agents.example.com")
        .start()
        .await;
    let token = gw.token("o", &["developer"]);
    let listed = post(&gw, Some(&token), None, &[("Origin", "https://agents.example.com")], init("2025-11-25")).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    for origin in ["http://localhost:3000", "https://agents.example.com.evil.net", "https://evil.example.com"] {
        assert_eq!(
            post(&gw, Some(&token), None, &[("Origin", origin)], init("2025-11-25")).await.status,
            403,
            "{origin}"
        );
    }
    gw.stop().await;
}

#[actix_web::test]
async fn tools_list_pages_with_opaque_cursors() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let mut builder = TestGateway::builder(&db);
    for i in 0..130 {
        builder = builder.tool(&format!("t{i:03}"), &backend.url);
    }
    let gw = builder.start().await;
    let token = gw.token("p", &["developer"]);
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let v = [("MCP-Protocol-Version", "2026-07-28")];
    let (mut names, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let mut params = json!({"_meta": meta});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let page = post(&gw, Some(&token), None, &v, rpc(pages + 1, "tools/list", params)).await;
        pages += 1;
        for t in page.body["result"]["tools"].as_array().unwrap() {
            names.push(t["name"].as_str().unwrap().to_owned());
        }
        match page.body["result"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(pages >= 2, "more than one page");
    let expected: Vec<String> = (0..130).map(|i| format!("t{i:03}")).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "every tool exactly once across the pages");
    let bad =
        post(&gw, Some(&token), None, &v, rpc(99, "tools/list", json!({"_meta": meta, "cursor": "forged"}))).await;
    assert_eq!(bad.body["error"]["code"], -32602);
    gw.stop().await;
}

async fn next_event<S>(stream: &mut S, buffer: &mut String) -> String
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    use futures_util::StreamExt;
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if !event.starts_with(':') {
                return event;
            }
            continue;
        }
        let chunk = stream.next().await.unwrap().unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[actix_web::test]
async fn legacy_sse_transport_answers_on_the_stream() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = gateway(&db, &backend).await;
    let token = gw.token("lee", &["developer"]);
    let mut stream = client().get(format!("{}/sse", gw.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(stream.headers().get("content-type").unwrap(), "text/event-stream");
    let mut buffer = String::new();
    let endpoint = next_event(&mut stream, &mut buffer).await;
    assert!(endpoint.starts_with("event: endpoint\ndata: /messages?session_id="), "{endpoint}");
    let path = endpoint.lines().nth(1).unwrap().trim_start_matches("data: ").to_owned();
    let send = |body: Value, token: String| {
        let url = format!("{}{path}", gw.base);
        async move { client().post(url).bearer_auth(token).send_json(&body).await.unwrap().status().as_u16() }
    };
    assert_eq!(send(init("2024-11-05"), token.clone()).await, 202);
    let answer = next_event(&mut stream, &mut buffer).await;
    assert!(answer.contains("\"protocolVersion\":\"2024-11-05\""), "{answer}");
    assert_eq!(
        send(rpc(2, "tools/call", json!({"name": "echo", "arguments": {"via": "sse"}})), token.clone()).await,
        202
    );
    let answer = next_event(&mut stream, &mut buffer).await;
    assert!(answer.starts_with("event: message\ndata: ") && answer.contains("\"via\":\"sse\""), "{answer}");
    assert_eq!(
        send(rpc(3, "ping", json!({})), gw.token("mallory", &["developer"])).await,
        404,
        "another subject's session"
    );
    // A session id is never authentication: no token, 401.
    let anonymous = client().post(format!("{}{path}", gw.base)).send_json(&rpc(4, "ping", json!({}))).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let rows = db.wait_for_rows(1).await;
    assert_eq!(rows[0].transport, "sse");
    drop(stream);
    gw.stop().await;
}

fn python_client_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import mcp.client.streamable_http, mcp.client.sse"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must install the Python MCP SDK");
        eprintln!("the Python MCP SDK is not installed: skipping");
    }
    ok
}

#[actix_web::test]
async fn the_official_python_sdk_client_works_over_both_transports() {
    if !python_client_available() {
        return;
    }
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = gateway(&db, &backend).await;
    let token = gw.token("py", &["developer"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python_mcp_client.py");
    for transport in ["streamable", "sse"] {
        let (base, token) = (gw.base.clone(), token.clone());
        let out = tokio::task::spawn_blocking(move || {
            Command::new("python3")
                .args([script, &base, transport, &token, "echo", r#"{"from": "python"}"#])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{transport}: {}", String::from_utf8_lossy(&out.stderr));
        let line: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
        assert_eq!(line["tools"], json!(["echo"]), "{transport}");
        assert_eq!(line["result"]["structuredContent"]["echo"], json!({"from": "python"}), "{transport}");
    }
    let rows = db.wait_for_rows(2).await;
    let mut transports: Vec<&str> = rows.iter().map(|r| r.transport.as_str()).collect();
    transports.sort();
    assert_eq!(transports, vec!["sse", "streamable_http"]);
    gw.stop().await;
}

#[actix_web::test]
async fn progress_notifications_are_streamed_with_the_clients_token() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Progress).await;
    let gw = gateway(&db, &backend).await;
    let token = gw.token("pat", &["developer"]);
    let sid = session(&gw, &token).await;
    let body =
        rpc(5, "tools/call", json!({"name": "echo", "arguments": {"n": 1}, "_meta": {"progressToken": "tok-1"}}));
    let mut resp = client()
        .post(format!("{}/mcp", gw.base))
        .bearer_auth(&token)
        .insert_header(("Mcp-Session-Id", sid.as_str()))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_json(&body)
        .await
        .unwrap();
    assert_eq!(resp.headers().get("content-type").unwrap(), "text/event-stream");
    let text = String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap();
    let messages: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(messages.len(), 4, "{text}");
    for (i, m) in messages[..3].iter().enumerate() {
        assert_eq!(m["method"], "notifications/progress");
        assert_eq!(m["params"]["progressToken"], "tok-1", "mapped back to the client's token");
        assert_eq!(m["params"]["progress"], json!(i * 50));
    }
    assert_eq!(messages[3]["id"], 5);
    assert_eq!(messages[3]["result"]["structuredContent"]["echo"], json!({"n": 1}));
    let sent = &backend.with("tools/call")[0].params["_meta"]["progressToken"];
    assert!(
        sent.as_str().unwrap().starts_with("gw-"),
        "the backend sees the gateway's token, not the client's: {sent}"
    );
    gw.stop().await;
}

#[actix_web::test]
async fn notifications_cancelled_stops_the_call_and_reaches_the_backend() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Hang).await;
    let gw = gateway(&db, &backend).await;
    let token = gw.token("cal", &["developer"]);
    let sid = session(&gw, &token).await;
    let call = {
        let (base, token, sid) = (gw.base.clone(), token.clone(), sid.clone());
        actix_web::rt::spawn(async move {
            let mut resp = client()
                .post(format!("{base}/mcp"))
                .bearer_auth(token)
                .insert_header(("Mcp-Session-Id", sid))
                .insert_header(("Accept", "application/json"))
                .send_json(&rpc(7, "tools/call", json!({"name": "echo", "arguments": {}})))
                .await
                .unwrap();
            resp.json::<Value>().await.unwrap()
        })
    };
    wait_until("the backend call", || backend.count("tools/call") == 1).await;
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7, "reason": "user"}});
    // Another subject holding the session id cannot cancel the call.
    let mallory = gw.token("mallory", &["developer"]);
    assert_eq!(post(&gw, Some(&mallory), Some(&sid), &[], cancel.clone()).await.status, 404);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(backend.count("notifications/cancelled"), 0, "mallory's cancellation had no effect");
    let started = std::time::Instant::now();
    assert_eq!(post(&gw, Some(&token), Some(&sid), &[], cancel).await.status, 202);
    let answer = call.await.unwrap();
    assert_eq!(answer["error"]["code"], -32800, "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    wait_until("the backend's cancellation", || backend.count("notifications/cancelled") == 1).await;
    let backend_id = backend.with("tools/call")[0].id.clone();
    assert_eq!(
        backend.with("notifications/cancelled")[0].params["requestId"],
        backend_id,
        "ids are mapped to the backend's"
    );
    gw.stop().await;
    let rows = db.wait_for_rows(1).await;
    assert_eq!(
        (rows[0].status.as_str(), rows[0].error_code),
        ("cancelled", Some(-32800)),
        "a cancelled call is audited"
    );
}

#[actix_web::test]
async fn a_client_leaving_a_streamed_call_cancels_it_at_the_backend() {
    use futures_util::StreamExt;
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Hang).await;
    // A short keep-alive lets the gateway notice the departed client quickly.
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).var("SSE_KEEPALIVE_SECONDS", "1").start().await;
    let token = gw.token("lea", &["developer"]);
    let sid = session(&gw, &token).await;
    let mut resp = client()
        .post(format!("{}/mcp", gw.base))
        .bearer_auth(&token)
        .insert_header(("Mcp-Session-Id", sid.as_str()))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_json(&rpc(9, "tools/call", json!({"name": "echo", "arguments": {}, "_meta": {"progressToken": 42}})))
        .await
        .unwrap();
    let first = resp.next().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first).unwrap().contains("\"progressToken\":42"));
    drop(resp);
    wait_until("the backend's cancellation", || backend.count("notifications/cancelled") == 1).await;
    gw.stop().await;
    let rows = db.wait_for_rows(1).await;
    assert_eq!(rows[0].status, "cancelled", "a call whose client left is audited");
}

#[actix_web::test]
async fn a_client_leaving_the_legacy_sse_stream_cancels_its_calls() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Hang).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).var("SSE_KEEPALIVE_SECONDS", "1").start().await;
    let token = gw.token("sal", &["developer"]);
    let mut stream = client().get(format!("{}/sse", gw.base)).bearer_auth(&token).send().await.unwrap();
    let mut buffer = String::new();
    let endpoint = next_event(&mut stream, &mut buffer).await;
    let path = endpoint.lines().nth(1).unwrap().trim_start_matches("data: ").to_owned();
    let call = rpc(2, "tools/call", json!({"name": "echo", "arguments": {}}));
    let sent = client().post(format!("{}{path}", gw.base)).bearer_auth(&token).send_json(&call).await.unwrap();
    assert_eq!(sent.status(), 202);
    wait_until("the backend call", || backend.count("tools/call") == 1).await;
    drop(stream);
    wait_until("the backend's cancellation", || backend.count("notifications/cancelled") == 1).await;
    gw.stop().await;
    let rows = db.wait_for_rows(1).await;
    assert_eq!((rows[0].status.as_str(), rows[0].transport.as_str()), ("cancelled", "sse"));
}

#[actix_web::test]
async fn a_backends_list_changed_reaches_connected_clients() {
    use futures_util::StreamExt;
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start_with(Mode::Echo, true).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
    let token = gw.token("lis", &["developer"]);
    let sid = session(&gw, &token).await;
    // A tool call opens the gateway's session with the backend; the listener then holds the
    // backend's notification stream within it.
    let v = [("MCP-Protocol-Version", "2025-06-18")];
    assert!(post(&gw, Some(&token), Some(&sid), &v, rpc(2, "tools/list", json!({}))).await.body["result"]["tools"]
        .is_array());
    wait_until("the gateway to listen to the backend", || backend.streams() == 1).await;
    let mut stream = client()
        .get(format!("{}/mcp", gw.base))
        .bearer_auth(&token)
        .insert_header(("Mcp-Session-Id", sid.as_str()))
        .insert_header(("Accept", "text/event-stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers().get("content-type").unwrap(), "text/event-stream");
    // The GET stream registers when its handler runs; give it a moment before announcing.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    backend.announce_list_changed();
    let mut text = String::new();
    while !text.contains("list_changed") {
        let chunk =
            tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("\"method\":\"notifications/tools/list_changed\""), "{text}");
    let init = post(&gw, Some(&token), None, &[], init("2025-11-25")).await;
    assert_eq!(init.body["result"]["capabilities"]["tools"]["listChanged"], true);
    drop(stream);
    gw.stop().await;
}

#[actix_web::test]
async fn tasks_run_tool_calls_as_jobs_over_mcp() {
    let db = TestDb::sqlite().await;
    let slow = TestBackend::start(Mode::Slow(std::time::Duration::from_millis(200))).await;
    let hang = TestBackend::start(Mode::Hang).await;
    let gw = TestGateway::builder(&db)
        .tool("slow", &slow.url)
        .tool("hang", &hang.url)
        .tool_with("plain", &slow.url, "task_support: forbidden")
        .tool_with("long", &slow.url, "task_support: required")
        .var("JOB_POLL_MS", "20")
        .start()
        .await;
    let token = gw.token("tia", &["developer"]);
    let opened = post(&gw, Some(&token), None, &[], init("2025-11-25")).await;
    assert!(opened.body["result"]["capabilities"]["tasks"]["requests"]["tools"]["call"].is_object());
    let sid = opened.session.unwrap();
    let s = Some(sid.as_str());
    let v = [("MCP-Protocol-Version", "2025-11-25")];
    let list = post(&gw, Some(&token), s, &v, rpc(2, "tools/list", json!({}))).await;
    let support = |name: &str| {
        list.body["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()["execution"]
            ["taskSupport"]
            .clone()
    };
    assert_eq!(
        (support("slow"), support("plain"), support("long")),
        (json!("optional"), json!("forbidden"), json!("required"))
    );
    // Each tool's taskSupport is enforced (-32601, as 2025-11-25 says), before any backend call.
    let as_task = rpc(20, "tools/call", json!({"name": "plain", "arguments": {}, "task": {}}));
    let refused = post(&gw, Some(&token), s, &v, as_task).await;
    assert_eq!(refused.body["error"]["code"], -32601, "{}", refused.body);
    let plain_call = rpc(21, "tools/call", json!({"name": "long", "arguments": {}}));
    let refused = post(&gw, Some(&token), s, &v, plain_call).await;
    assert_eq!(refused.body["error"]["code"], -32601, "{}", refused.body);
    assert_eq!(slow.count("tools/call"), 0, "a refused call never reaches the backend");

    let created = post(
        &gw,
        Some(&token),
        s,
        &v,
        rpc(3, "tools/call", json!({"name": "slow", "arguments": {"t": 1}, "task": {"ttl": 60000}})),
    )
    .await;
    let task = &created.body["result"]["task"];
    assert_eq!(task["status"], "working", "{}", created.body);
    let id = task["taskId"].as_str().unwrap().to_owned();
    let result = post(&gw, Some(&token), s, &v, rpc(4, "tasks/result", json!({"taskId": id}))).await;
    assert_eq!(result.body["result"]["structuredContent"]["echo"], json!({"t": 1}), "{}", result.body);
    let got = post(&gw, Some(&token), s, &v, rpc(5, "tasks/get", json!({"taskId": id}))).await;
    assert_eq!(got.body["result"]["status"], "completed");
    let listed = post(&gw, Some(&token), s, &v, rpc(6, "tasks/list", json!({}))).await;
    assert!(listed.body["result"]["tasks"].as_array().unwrap().iter().any(|t| t["taskId"] == id.as_str()));

    let other = gw.token("mallory", &["developer"]);
    let other_sid = post(&gw, Some(&other), None, &[], init("2025-11-25")).await.session.unwrap();
    let peek = post(&gw, Some(&other), Some(&other_sid), &v, rpc(7, "tasks/get", json!({"taskId": id}))).await;
    assert_eq!(peek.body["error"]["code"], -32602, "another user's task is unknown to them");

    let hung =
        post(&gw, Some(&token), s, &v, rpc(8, "tools/call", json!({"name": "hang", "arguments": {}, "task": {}})))
            .await;
    let hung_id = hung.body["result"]["task"]["taskId"].as_str().unwrap().to_owned();
    wait_until("the hanging call to reach its backend", || hang.count("tools/call") == 1).await;
    let cancelled = post(&gw, Some(&token), s, &v, rpc(9, "tasks/cancel", json!({"taskId": hung_id}))).await;
    assert_eq!(cancelled.body["result"]["status"], "cancelled", "{}", cancelled.body);
    wait_until("the backend's cancellation", || hang.count("notifications/cancelled") == 1).await;
    let again = post(&gw, Some(&token), s, &v, rpc(10, "tasks/cancel", json!({"taskId": hung_id}))).await;
    assert_eq!(again.body["error"]["code"], -32602, "an ended task cannot be cancelled: {}", again.body);
    gw.stop().await;
    // The cancellation is audited under the submission's request id.
    let rows = db.audit_rows().await;
    let cancel_row = rows
        .iter()
        .find(|r| r.status == "cancelled")
        .unwrap_or_else(|| panic!("a row for the cancellation: {rows:#?}"));
    assert_eq!(cancel_row.error_code, Some(-32800));
    assert!(rows.iter().any(|r| r.request_id == cancel_row.request_id && r.transport != "job"));
}

/// The attack: in stateless (2026-07-28) mode the session check is skipped, and an
/// `Mcp-Session-Id` naming another user's scope used to reach her in-flight calls.
#[actix_web::test]
async fn in_stateless_mode_another_user_cannot_cancel_a_call_by_naming_its_scope() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Hang).await;
    let gw = gateway(&db, &backend).await;
    let alice = gw.token("alice", &["developer"]);
    let stateless = [("MCP-Protocol-Version", "2026-07-28")];
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
    let call = {
        let (base, token, meta) = (gw.base.clone(), alice.clone(), meta.clone());
        actix_web::rt::spawn(async move {
            let mut resp = client()
                .post(format!("{base}/mcp"))
                .bearer_auth(token)
                .insert_header(("MCP-Protocol-Version", "2026-07-28"))
                .insert_header(("Accept", "application/json"))
                .send_json(&rpc(7, "tools/call", json!({"name": "echo", "arguments": {}, "_meta": meta})))
                .await
                .unwrap();
            resp.json::<Value>().await.unwrap()
        })
    };
    wait_until("the backend call", || backend.count("tools/call") == 1).await;
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7, "reason": "mallory"}});
    let mallory = gw.token("mallory", &["developer"]);
    for forged in [Some("user:alice"), Some("alice"), None] {
        let reply = post(&gw, Some(&mallory), forged, &stateless, cancel.clone()).await;
        assert_eq!(reply.status, 202, "a notification is accepted whatever it names");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(backend.count("notifications/cancelled"), 0, "mallory reached none of alice's calls");
    assert!(!call.is_finished(), "alice's call still runs");
    assert_eq!(post(&gw, Some(&alice), None, &stateless, cancel).await.status, 202);
    let answer = call.await.unwrap();
    assert_eq!(answer["error"]["code"], -32800, "alice can cancel her own call: {answer}");
    gw.stop().await;
    let rows = db.wait_for_rows(1).await;
    assert_eq!((rows[0].user_id.as_deref(), rows[0].status.as_str()), (Some("alice"), "cancelled"));
}

/// The attack: with `PUBLIC_URL` unset, `X-Forwarded-*` / `Forwarded` from any client chose the
/// RFC 9728 `resource` (`javascript://evil.example.com`, cached an hour by clients). Now they
/// count only from `TRUSTED_PROXIES`, and the scheme must be http or https.
#[actix_web::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let metadata = |gw: &TestGateway, headers: Vec<(&'static str, &'static str)>| {
        let mut req = client().get(format!("{}/.well-known/oauth-protected-resource", gw.base));
        for h in headers {
            req = req.insert_header(h);
        }
        async move { req.send().await.unwrap().json::<Value>().await.unwrap()["resource"].as_str().unwrap().to_owned() }
    };
    let evil = vec![
        ("X-Forwarded-Proto", "javascript"),
        ("X-Forwarded-Host", "evil.example.com"),
        ("Forwarded", "proto=javascript;host=evil.example.com"),
    ];
    let untrusted = gateway(&db, &backend).await;
    let resource = metadata(&untrusted, evil.clone()).await;
    assert_eq!(resource, untrusted.base, "forwarded headers from a client are ignored");
    untrusted.stop().await;

    let trusted =
        TestGateway::builder(&db).tool("echo", &backend.url).var("TRUSTED_PROXIES", "127.0.0.1").start().await;
    let resource = metadata(&trusted, evil).await;
    assert!(resource.starts_with("http://") && !resource.contains("javascript"), "{resource}");
    let resource =
        metadata(&trusted, vec![("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "gw.example.com")]).await;
    assert_eq!(resource, "https://gw.example.com", "a trusted proxy's headers are believed");
    trusted.stop().await;
}

/// Before: creating an MCP task handed its audit row over without waiting (`record`), so with
/// `AUDIT_MODE=strict` the client had its task before the row was durable — a crash then lost
/// the row the README promises. Now task creation takes the same audited path as every call.
async fn a_task_is_answered_only_once_its_row_is_durable_in_strict_mode(kind: crate::common::DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let slow = TestBackend::start(Mode::Slow(std::time::Duration::from_millis(50))).await;
    // The batch timer never fires and no batch fills: only strict commits write.
    let gw = TestGateway::builder(&db)
        .tool("slow", &slow.url)
        .var("AUDIT_MODE", "strict")
        .var("AUDIT_FLUSH_INTERVAL_MS", "3600000")
        .var("AUDIT_BATCH_SIZE", "1000000")
        .var("JOB_POLL_MS", "20")
        .start()
        .await;
    let token = gw.token("tia", &["developer"]);
    let opened = post(&gw, Some(&token), None, &[], init("2025-11-25")).await;
    let sid = opened.session.unwrap();
    let v = [("MCP-Protocol-Version", "2025-11-25")];
    let call = rpc(3, "tools/call", json!({"name": "slow", "arguments": {"t": 1}, "task": {}}));
    let created = post(&gw, Some(&token), Some(&sid), &v, call).await;
    let id = created.body["result"]["task"]["taskId"].as_str().unwrap().to_owned();
    let stored = db.audit_rows().await;
    assert!(
        stored.iter().any(|r| r.tool_name.as_deref() == Some("slow") && r.transport == "streamable_http"),
        "the task creation's row is in the database when the client has the task: {stored:?}"
    );
    // The job's end takes the same path: its row is made durable at once, not left in a batch
    // that no timer flushes.
    let result = post(&gw, Some(&token), Some(&sid), &v, rpc(4, "tasks/result", json!({"taskId": id}))).await;
    assert_eq!(result.body["result"]["structuredContent"]["echo"], json!({"t": 1}), "{}", result.body);
    let mut job_rows = 0;
    for _ in 0..100 {
        job_rows = db.audit_rows().await.iter().filter(|r| r.transport == "job").count();
        if job_rows > 0 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job_rows, 1, "the job's end row is durable while the gateway runs");
    gw.stop().await;
    db.drop_db().await;
}

crate::common::on_both_databases!(a_task_is_answered_only_once_its_row_is_durable_in_strict_mode => a_task_is_answered_only_once_its_row_is_durable_in_strict_mode);

/// Params that are not an object are refused as invalid params (-32602; before, the audit row
/// said -32600), and a peer's answer with a `null` id is accepted, not refused.
#[actix_web::test]
async fn params_that_are_not_an_object_are_invalid_params_and_audited_as_such() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = gateway(&db, &backend).await;
    let token = gw.token("pia", &["developer"]);
    let sid = session(&gw, &token).await;
    let v = [("MCP-Protocol-Version", "2025-06-18")];
    let bad = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": [1]});
    let reply = post(&gw, Some(&token), Some(&sid), &v, bad.clone()).await;
    assert_eq!(
        (reply.body["id"].clone(), reply.body["error"]["code"].clone()),
        (json!(5), json!(-32602)),
        "{}",
        reply.body
    );
    // A peer's answer with a null id (JSON-RPC allows it) is not a refusal.
    let answer = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32603, "message": "x"}});
    assert_eq!(post(&gw, Some(&token), Some(&sid), &v, answer).await.status, 202);
    gw.stop().await;
    let rows = db.audit_rows().await;
    let refused: Vec<_> = rows.iter().filter(|r| r.decision == "rejected" && r.http_status == 200).collect();
    assert_eq!(refused.len(), 1, "{rows:?}");
    assert_eq!(refused[0].error_code, Some(-32602));
}

/// A client that keeps its connection alive (every SDK does) is not made to wait for its own
/// delayed ACK: a tool call answered as a streamed JSON body (headers, then the body) used to
/// sit in Nagle's buffer 40 ms per call. Median of 20 calls on one connection, of the gateway's
/// own binary.
#[actix_web::test]
async fn tool_calls_on_a_kept_alive_connection_do_not_wait_for_delayed_acks() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tools.yaml"),
        format!("tools:\n  - {{name: echo, backend_url: \"{}\"}}\n", backend.url),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "default_action: deny\nroles: {developer: {allowed_tools: ['*']}}\n",
    )
    .unwrap();
    let gw = crate::common::replicas::replica(&db, None, dir.path(), "nodelay", &[]).await;
    let token = crate::common::sign(&crate::common::claims("keepalive", &["developer"], None), crate::common::SECRET);
    let sid = crate::common::mcp::post_to(&gw.base, Some(&token), None, &[], init("2025-06-18")).await.session.unwrap();
    // One client: one pooled, kept-alive connection.
    let http = awc::Client::builder().timeout(std::time::Duration::from_secs(10)).finish();
    let mut took = Vec::new();
    for id in 0..30u64 {
        let started = std::time::Instant::now();
        let mut resp = http
            .post(format!("{}/mcp", gw.base))
            .bearer_auth(&token)
            .insert_header(("Mcp-Session-Id", sid.as_str()))
            .insert_header(("Accept", "application/json, text/event-stream"))
            .send_json(&rpc(id, "tools/call", json!({"name": "echo", "arguments": {}})))
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        assert!(body["result"].is_object(), "{body}");
        took.push(started.elapsed());
    }
    let mut last: Vec<_> = took[10..].to_vec();
    last.sort();
    let median = last[last.len() / 2];
    assert!(
        median < std::time::Duration::from_millis(30),
        "median call {median:?} on a kept-alive connection: {took:?}"
    );
    drop(gw);
    db.drop_db().await;
}
