//! JSON-RPC 2.0 envelopes for MCP: strict parsing of requests, standard error codes.

use serde_json::{json, Value};

/// Standard JSON-RPC error codes.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON is not a valid request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad parameters (including an unknown tool name, as MCP specifies).
    pub const INVALID_PARAMS: i64 = -32602;
    /// The server failed.
    pub const INTERNAL_ERROR: i64 = -32603;
}

/// A JSON-RPC error to send back.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The request id (`null` when unknown).
    pub id: Value,
    /// Standard code.
    pub code: i64,
    /// Human-readable message.
    pub message: String,
}

impl RpcError {
    /// An error answering request `id`.
    pub fn new(id: Value, code: i64, message: impl Into<String>) -> Self {
        Self { id, code, message: message.into() }
    }

    /// The response body.
    pub fn body(&self) -> Value {
        json!({ "jsonrpc": "2.0", "id": self.id, "error": { "code": self.code, "message": self.message } })
    }
}

/// One parsed incoming message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A request expecting a response.
    Request {
        /// Its id (string or number).
        id: Value,
        /// The method.
        method: String,
        /// The params (`null` when absent).
        params: Value,
    },
    /// A notification, or a response from the client: acknowledged with 202.
    Notification,
}

/// Parse a POSTed body into one message; batches are refused (MCP 2025-06-18 removed them).
pub fn parse(body: &[u8]) -> Result<Incoming, RpcError> {
    if let Some(at) = crate::numbers::first_underflow(body) {
        let why = format!(
            "parse error: the number literal at byte {at} is below what a 64-bit float holds and would be read \
             as 0; send numbers this small as strings"
        );
        return Err(RpcError::new(Value::Null, code::PARSE_ERROR, why));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RpcError::new(Value::Null, code::PARSE_ERROR, format!("parse error: {e}")))?;
    let Value::Object(mut map) = value else {
        let what = if value.is_array() { "batches are not supported" } else { "expected a JSON-RPC object" };
        return Err(RpcError::new(Value::Null, code::INVALID_REQUEST, what));
    };
    let id = map.remove("id");
    let bad = |id: Option<&Value>, why: &str| {
        RpcError::new(id.cloned().unwrap_or(Value::Null), code::INVALID_REQUEST, format!("invalid request: {why}"))
    };
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(bad(id.as_ref(), "jsonrpc must be \"2.0\""));
    }
    if let Some(id) = &id {
        if !(id.is_string() || id.is_i64() || id.is_u64()) {
            return Err(bad(None, "id must be a string or an integer"));
        }
    }
    let Some(method) = map.remove("method") else {
        if id.is_some() && (map.contains_key("result") || map.contains_key("error")) {
            return Ok(Incoming::Notification);
        }
        return Err(bad(id.as_ref(), "method is missing"));
    };
    let Value::String(method) = method else {
        return Err(bad(id.as_ref(), "method must be a string"));
    };
    let params = map.remove("params").unwrap_or(Value::Null);
    if !(params.is_null() || params.is_object()) {
        return Err(RpcError::new(id.unwrap_or(Value::Null), code::INVALID_PARAMS, "params must be an object"));
    }
    match id {
        Some(id) => Ok(Incoming::Request { id, method, params }),
        None => Ok(Incoming::Notification),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_read_as_zero_is_a_parse_error() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"exact_compute","arguments":{"x":1e-400}}}"#;
        let err = parse(body).err().map(|e| e.body()).unwrap_or_default();
        assert_eq!(err["error"]["code"], code::PARSE_ERROR, "{err}");
        assert!(err["error"]["message"].as_str().unwrap_or("").contains("as strings"), "{err}");
    }

    #[test]
    fn envelopes_are_parsed_strictly() {
        let ok = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
        assert_eq!(ok, Incoming::Request { id: json!(1), method: "ping".into(), params: Value::Null });
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap(),
            Incoming::Notification
        );
        assert_eq!(parse(b"{").unwrap_err().code, code::PARSE_ERROR);
        assert_eq!(parse(b"[]").unwrap_err().code, code::INVALID_REQUEST);
        assert_eq!(parse(br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).unwrap_err().code, code::INVALID_REQUEST);
        assert_eq!(parse(br#"{"jsonrpc":"2.0","id":1}"#).unwrap_err().id, json!(1));
        assert_eq!(parse(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).unwrap_err().code, code::INVALID_REQUEST);
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#).unwrap_err().code,
            code::INVALID_PARAMS
        );
    }
}
