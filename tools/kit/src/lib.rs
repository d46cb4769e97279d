//! The skeleton every bundled tool server shares: `GET /health`, `POST /mcp` (MCP over
//! JSON-RPC 2.0, answered as JSON), body limits, the JSON-RPC error mapping and graceful
//! shutdown. A tool server supplies only its tool specs and a pure `call` function.
//!
//! | module | role |
//! |---|---|
//! | [`rpc`] | one request per POST, through [`mcp_protocol`], and its error bodies |
//! | [`server`] | the actix-web service and the binary entry point |
//! | [`cancel`] | telling a running call that nobody waits for its answer any more |

pub mod cancel;
pub mod rpc;
pub mod server;

use serde_json::{json, Value};

/// One tool as published by `tools/list`.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// The tool's name.
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// JSON Schema of `arguments`.
    pub input_schema: Value,
    /// JSON Schema of `structuredContent`, when the tool publishes one.
    pub output_schema: Option<Value>,
}

impl ToolSpec {
    /// The `tools/list` entry.
    pub fn listing(&self) -> Value {
        let mut v = json!({ "name": self.name, "description": self.description, "inputSchema": self.input_schema });
        if let Some(schema) = &self.output_schema {
            v["outputSchema"] = schema.clone();
        }
        v
    }
}

/// What a tool call produced: a result, or an input error the model can act on.
pub type CallOutcome = Result<Value, String>;

/// The function answering `tools/call` (no IO beyond what the tool is for; runs on the
/// blocking pool).
pub type CallFn = std::sync::Arc<dyn Fn(&str, Value) -> CallOutcome + Send + Sync>;

/// A tool server's identity and behaviour.
#[derive(Clone)]
pub struct ToolServer {
    /// Server name reported at `initialize`.
    pub name: &'static str,
    /// Server version reported at `initialize`.
    pub version: &'static str,
    /// The tools it serves.
    pub tools: Vec<ToolSpec>,
    /// Answers `tools/call` for one of `tools`.
    pub call: CallFn,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Longest a `tools/call` may take before the caller gets an error.
    pub call_timeout: std::time::Duration,
}

/// A successful `tools/call` result with `structuredContent` and the same result as text.
pub fn tool_result(text: impl Into<String>, structured: Value) -> Value {
    json!({
        "content": [{ "type": "text", "text": text.into() }],
        "structuredContent": structured,
        "isError": false,
    })
}

/// A failed `tools/call` (bad input): `isError: true` and a message the model can act on.
pub fn tool_error(message: &str) -> Value {
    json!({ "content": [{ "type": "text", "text": message }], "isError": true })
}
