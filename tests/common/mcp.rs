//! The one MCP client the suites speak through: raw enough to send what an attacker would (any
//! headers, any body, no token), typed enough that a suite reads as a conversation.

use serde_json::{json, Value};

use super::{client, TestGateway};

/// The stateless revision.
pub const STATELESS: &str = "2026-07-28";

/// An answer to a `POST /mcp`.
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// `Mcp-Session-Id`, when the gateway handed one out.
    pub session: Option<String>,
    /// The JSON body (`null` when there was none or it was not JSON).
    pub body: Value,
    /// Every response header.
    pub headers: awc::http::header::HeaderMap,
}

/// `POST /mcp` with `body`, as the caller with `token` (none: anonymous), in `session`, with
/// `extra` headers.
pub async fn post(
    gw: &TestGateway,
    token: Option<&str>,
    session: Option<&str>,
    extra: &[(&str, &str)],
    body: Value,
) -> Reply {
    post_to(&gw.base, token, session, extra, body).await
}

/// [`post`] to the gateway (or load balancer) at `base`.
pub async fn post_to(
    base: &str,
    token: Option<&str>,
    session: Option<&str>,
    extra: &[(&str, &str)],
    body: Value,
) -> Reply {
    let mut req = client()
        .post(format!("{base}/mcp"))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Accept", "application/json, text/event-stream"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(s) = session {
        req = req.insert_header(("Mcp-Session-Id", s));
    }
    for (k, v) in extra {
        req = req.insert_header((*k, *v));
    }
    let mut resp = req.send_body(body.to_string()).await.unwrap();
    let bytes = resp.body().limit(1 << 20).await.unwrap();
    Reply {
        status: resp.status().as_u16(),
        session: resp.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned()),
        headers: resp.headers().clone(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// An `initialize` request for `version`.
pub fn init(version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
}

/// A request.
pub fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A new 2025-06-18 session for `token`.
pub async fn session(gw: &TestGateway, token: &str) -> String {
    post(gw, Some(token), None, &[], init("2025-06-18")).await.session.unwrap()
}

/// A 2026-07-28 request, as its clients send it: version in `_meta` and in the headers.
pub async fn stateless(gw: &TestGateway, token: &str, id: u64, method: &str, params: Value) -> (u16, Value) {
    stateless_to(&gw.base, token, id, method, params).await
}

/// [`stateless`] to the gateway (or load balancer) at `base`.
pub async fn stateless_to(base: &str, token: &str, id: u64, method: &str, mut params: Value) -> (u16, Value) {
    params["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!(STATELESS);
    params["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({});
    params["_meta"]["io.modelcontextprotocol/clientInfo"] = json!({"name": "test", "version": "1"});
    let name = params.get("name").and_then(Value::as_str).map(str::to_owned);
    let mut extra = vec![("MCP-Protocol-Version", STATELESS), ("Mcp-Method", method)];
    if let Some(name) = name.as_deref() {
        extra.push(("Mcp-Name", name));
    }
    let reply = post_to(base, Some(token), None, &extra, rpc(id, method, params)).await;
    (reply.status, reply.body)
}

/// Wait (up to 10 s) until `done`.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}
