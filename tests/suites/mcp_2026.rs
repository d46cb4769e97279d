//! The 2026-07-28 (stateless) revision as its clients see it: every result validates against
//! the official JSON Schema of that revision (vendored under `tests/fixtures/mcp-schema`), and a
//! client that drops its request cancels the call, in every mode.

use crate::common::backend::{Mode, TestBackend};
use crate::common::mcp::{stateless, wait_until};
use crate::common::{client, TestDb, TestGateway};
use serde_json::{json, Value};

const REVISION: &str = "2026-07-28";

/// A validator for one definition (`$defs/<name>`) of the official 2026-07-28 schema.
fn validator(definition: &str) -> jsonschema::Validator {
    let text = include_str!("../fixtures/mcp-schema/2026-07-28/schema.json");
    let mut schema: Value = serde_json::from_str(text).unwrap();
    schema["$ref"] = json!(format!("#/$defs/{definition}"));
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_valid(definition: &str, value: &Value) {
    let v = validator(definition);
    let errors: Vec<String> = v.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "not a valid {definition}: {errors:?}\n{value:#}");
}

/// Before: `tools/list` and `server/discover` lacked `ttlMs` and `cacheScope` (Python `mcp` 2.x,
/// the TypeScript SDK v2 and rmcp refused them) and the server's name was at the top level.
/// Now every result is a valid 2026-07-28 result, with honest cache hints.
#[actix_web::test]
async fn every_2026_result_validates_against_the_official_schema() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
    let token = gw.token("new", &["developer"]);

    let (status, discover) = stateless(&gw, &token, 1, "server/discover", json!({})).await;
    assert_eq!(status, 200, "{discover}");
    assert_valid("DiscoverResultResponse", &discover);
    let result = &discover["result"];
    assert!(result["supportedVersions"].as_array().unwrap().contains(&json!(REVISION)));
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcp-gateway", "{result}");
    assert!(result.get("serverInfo").is_none(), "the 2026 revision puts it in _meta: {result}");
    assert_eq!(result["cacheScope"], "public", "the same for every caller");

    let (_, list) = stateless(&gw, &token, 2, "tools/list", json!({})).await;
    assert_valid("ListToolsResultResponse", &list);
    assert_eq!(list["result"]["cacheScope"], "private", "filtered by the caller's roles: {list}");
    assert_eq!(list["result"]["ttlMs"], 0);
    assert_eq!(list["result"]["tools"][0]["name"], "echo");

    let (_, call) = stateless(&gw, &token, 3, "tools/call", json!({"name": "echo", "arguments": {"x": 1}})).await;
    assert_valid("CallToolResultResponse", &call);
    assert_eq!(call["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcp-gateway");

    // A refused call is a JSON-RPC error, valid as such.
    let (_, denied) = stateless(&gw, &token, 4, "tools/call", json!({"name": "nope", "arguments": {}})).await;
    assert_valid("JSONRPCErrorResponse", &denied);

    // An unsupported revision: 400, -32022 and the versions spoken (what was asked is repeated
    // only when it looks like a version).
    for (sent, echoed) in [("1999-01-01", "1999-01-01"), ("<script>", "")] {
        let mut resp = client()
            .post(format!("{}/mcp", gw.base))
            .bearer_auth(&token)
            .insert_header(("Accept", "application/json, text/event-stream"))
            .insert_header(("MCP-Protocol-Version", sent))
            .send_json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}}))
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_valid("UnsupportedProtocolVersionError", &body);
        assert_eq!(body["error"]["data"]["requested"], echoed, "{body}");
        assert!(body["error"]["data"]["supported"].as_array().unwrap().contains(&json!(REVISION)));
    }

    // A 2025 session is untouched: its results carry no 2026 fields.
    let mut resp = client()
        .post(format!("{}/mcp", gw.base))
        .bearer_auth(&token)
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}}))
        .await
        .unwrap();
    let init: Value = resp.json().await.unwrap();
    assert_eq!(init["result"]["serverInfo"]["name"], "mcp-gateway", "{init}");
    assert!(init["result"].get("resultType").is_none());
    gw.stop().await;
}

/// Before: a 2026-07-28 `tools/call` without a progress token got a plain JSON reply, and a
/// client that dropped the request left the backend call running, with no `cancelled` row.
/// Now the reply is held open with whitespace until answered: the departure is noticed, the
/// backend gets `notifications/cancelled`, and the row says cancelled (-32800). A 2025 session
/// calling without a progress token is covered the same way.
#[actix_web::test]
async fn a_client_dropping_a_plain_json_call_cancels_it_in_every_mode() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Hang).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
    let token = gw.token("leaver", &["developer"]);
    // 2026-07-28, no session, no progress token.
    let request = client()
        .post(format!("{}/mcp", gw.base))
        .bearer_auth(&token)
        .insert_header(("Accept", "application/json, text/event-stream"))
        .insert_header(("MCP-Protocol-Version", REVISION))
        .insert_header(("Mcp-Method", "tools/call"))
        .insert_header(("Mcp-Name", "echo"))
        .send_json(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "echo",
            "arguments": {}, "_meta": {"io.modelcontextprotocol/protocolVersion": REVISION,
            "io.modelcontextprotocol/clientCapabilities": {}}}}));
    let pending = actix_web::rt::spawn(request);
    wait_until("the backend call", || backend.count("tools/call") == 1).await;
    pending.abort();
    let _ = pending.await;
    wait_until("the backend's cancellation", || backend.count("notifications/cancelled") == 1).await;

    // A 2025 session, plain JSON (no progress token).
    let mut resp = client()
        .post(format!("{}/mcp", gw.base))
        .bearer_auth(&token)
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}}))
        .await
        .unwrap();
    let sid = resp.headers().get("mcp-session-id").unwrap().to_str().unwrap().to_owned();
    let _: Value = resp.json().await.unwrap();
    let request = client()
        .post(format!("{}/mcp", gw.base))
        .bearer_auth(&token)
        .insert_header(("Accept", "application/json, text/event-stream"))
        .insert_header(("Mcp-Session-Id", sid))
        .send_json(
            &json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}),
        );
    let pending = actix_web::rt::spawn(request);
    wait_until("the second backend call", || backend.count("tools/call") == 2).await;
    pending.abort();
    let _ = pending.await;
    wait_until("the second cancellation", || backend.count("notifications/cancelled") == 2).await;
    gw.stop().await;
    let rows = db.wait_for_rows(2).await;
    let cancelled: Vec<_> = rows.iter().filter(|r| r.status == "cancelled" && r.error_code == Some(-32800)).collect();
    assert_eq!(cancelled.len(), 2, "both departed calls are audited as cancelled: {rows:?}");
}

/// An OAuth client that takes the gateway for its authorization server (after a 401 for an
/// expired token, `mcp-remote` registers at `/register`) is told what is going on: a 404 in
/// OAuth's error shape saying the token was refused and how to get another — while the RFC 9728
/// metadata names no authorization server when none is configured.
#[actix_web::test]
async fn a_client_looking_for_an_authorization_server_is_told_there_is_none() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
    for (method, path) in [
        ("POST", "/register"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/openid-configuration"),
        ("POST", "/token"),
    ] {
        let req = client().request(method.parse().unwrap(), format!("{}{path}", gw.base));
        let mut resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "not_an_authorization_server", "{path}: {body}");
        assert!(body["error_description"].as_str().unwrap().contains("mcp-gateway token"), "{body}");
    }
    let (status, metadata) = gw.get("/.well-known/oauth-protected-resource/mcp", None).await;
    assert_eq!(status, 200);
    assert!(metadata.get("authorization_servers").is_none(), "no authorization server to point at: {metadata}");
    gw.stop().await;
}
