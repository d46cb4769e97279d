//! The tool servers' side of [`mcp_protocol`]: one request per POST (batches are refused, as MCP
//! 2025-06-18 removed them), answered with the request's id.

use mcp_protocol::{Body, BodyError, Message};
use serde_json::Value;

pub use mcp_protocol::code;

/// A JSON-RPC error to send back, with the id it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The request id (`null` when unknown).
    pub id: Value,
    /// The error object.
    pub error: mcp_protocol::RpcError,
}

impl RpcError {
    /// An error answering request `id`.
    pub fn new(id: Value, code: i32, message: impl Into<String>) -> Self {
        Self { id, error: mcp_protocol::RpcError::new(code, message) }
    }

    /// The error's code.
    pub fn code(&self) -> i32 {
        self.error.code
    }

    /// The response body.
    pub fn body(&self) -> Value {
        mcp_protocol::response(self.id.clone(), Err(self.error.clone()))
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
        /// The params (an empty object when absent).
        params: Value,
    },
    /// A notification, or a response from the client: acknowledged with 202.
    Notification,
}

/// Parse a POSTed body into one message.
pub fn parse(body: &[u8]) -> Result<Incoming, RpcError> {
    let single = match mcp_protocol::split(body, 0) {
        Ok(Body::Single(v)) => v,
        Ok(Body::Batch(_)) | Err(BodyError::BatchTooLong(_) | BodyError::EmptyBatch) => {
            return Err(RpcError::new(Value::Null, code::INVALID_REQUEST, "batches are not supported"))
        }
        Err(e) => return Err(RpcError { id: Value::Null, error: e.error() }),
    };
    match mcp_protocol::classify(&single) {
        Ok(Message::Request { id, method, params }) => Ok(Incoming::Request { id, method, params }),
        Ok(Message::Notification { .. } | Message::Response { .. }) => Ok(Incoming::Notification),
        Err(invalid) => Err(RpcError { id: invalid.id, error: invalid.error }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
        assert_eq!(ok, Incoming::Request { id: json!(1), method: "ping".into(), params: json!({}) });
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap(),
            Incoming::Notification
        );
        assert_eq!(parse(b"{").unwrap_err().code(), code::PARSE_ERROR);
        assert_eq!(parse(b"[]").unwrap_err().code(), code::INVALID_REQUEST);
        assert_eq!(parse(b"[{}]").unwrap_err().code(), code::INVALID_REQUEST);
        assert_eq!(parse(br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).unwrap_err().code(), code::INVALID_REQUEST);
        assert_eq!(parse(br#"{"jsonrpc":"2.0","id":1}"#).unwrap_err().id, json!(1));
        assert_eq!(parse(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).unwrap_err().code(), code::INVALID_REQUEST);
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#).unwrap_err().code(),
            code::INVALID_PARAMS
        );
    }
}
