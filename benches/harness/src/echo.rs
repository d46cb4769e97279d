//! The echo MCP backend: a constant `tools/call` reply, no work behind it.
//!
//! It answers `initialize`, `ping`, `tools/list` and `tools/call` (MCP Streamable HTTP, JSON
//! replies, stateless) and counts what it served at `GET /stats`, so the harness can check that
//! the gateway sends exactly one backend request per tool call. Being nearly free, it makes the
//! direct baseline as fast as it can be — the honest way to show what the gateway adds.

use crate::http::{Conn, Message};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::TcpListener;

static TOOL_CALLS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Binds `bind`, prints the bound address on stdout, and serves until the process is killed.
pub async fn serve(bind: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(bind).await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut conn = Conn::new(stream);
            while let Ok(Some(request)) = conn.read().await {
                if conn.send(&respond(&request)).await.is_err() {
                    break;
                }
            }
        });
    }
}

fn respond(request: &Message) -> Vec<u8> {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    let mut parts = request.first_line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match (method, path) {
        ("GET", "/health") => reply("200 OK", r#"{"status":"ok"}"#),
        ("GET", "/stats") => reply(
            "200 OK",
            &json!({"requests": REQUESTS.load(Ordering::Relaxed), "tool_calls": TOOL_CALLS.load(Ordering::Relaxed)})
                .to_string(),
        ),
        ("POST", "/mcp") => rpc(&request.body),
        _ => reply("404 Not Found", r#"{"error":"not found"}"#),
    }
}

fn rpc(body: &[u8]) -> Vec<u8> {
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return reply(
            "400 Bad Request",
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#,
        );
    };
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let result = match message.get("method").and_then(Value::as_str).unwrap_or("") {
        "initialize" => json!({
            "protocolVersion": message.pointer("/params/protocolVersion").cloned().unwrap_or(json!("2025-06-18")),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "echo", "version": "1"}
        }),
        "tools/call" => {
            TOOL_CALLS.fetch_add(1, Ordering::Relaxed);
            json!({"content": [{"type": "text", "text": "ok"}], "isError": false})
        }
        "tools/list" => {
            json!({"tools": [{"name": "echo", "description": "Constant reply.", "inputSchema": {"type": "object"}}]})
        }
        "ping" => json!({}),
        method if method.starts_with("notifications/") => return reply("202 Accepted", ""),
        _ => {
            return reply(
                "200 OK",
                &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}})
                    .to_string(),
            )
        }
    };
    reply("200 OK", &json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
}

fn reply(status: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}
