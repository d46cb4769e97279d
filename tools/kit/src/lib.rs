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

/// What a tool call produced: a result, or why there is none.
pub type CallOutcome = Result<Value, ToolError>;

/// Why a tool call has no result. Every kind reaches the model as the tool's error text
/// (`isError: true`, see [`tool_error`]); they differ in whose fault it is and in what the
/// server keeps: a failure of what the tool works on keeps the library's error as its source,
/// for the server's log.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments cannot be served as given; the message tells the model how to fix them.
    #[error("{0}")]
    Invalid(String),
    /// What the tool works on (a repository, a font, an archive) failed; the message says
    /// what in words fit for the model, the source is the library's own error.
    #[error("{message}")]
    Failed {
        /// What failed, for the model.
        message: String,
        /// The library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ToolError {
    /// `source` failed; `message` says what, for the model.
    pub fn failed(message: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Failed { message: message.into(), source: source.into() }
    }
}

/// Input errors are written as messages: `Err(format!(…))?` and `.ok_or("…")?` make them.
impl From<String> for ToolError {
    fn from(message: String) -> Self {
        Self::Invalid(message)
    }
}

impl From<&str> for ToolError {
    fn from(message: &str) -> Self {
        Self::Invalid(message.to_owned())
    }
}

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

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::ToolError;

    #[test]
    fn a_failure_keeps_the_library_error_and_says_only_its_message() {
        let io = std::io::Error::other("disk on fire");
        let e = ToolError::failed("the archive could not be written", io);
        assert_eq!(e.to_string(), "the archive could not be written");
        let source = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk on fire"));
        let invalid: ToolError = format!("x must be {}", 1).into();
        assert!(matches!(&invalid, ToolError::Invalid(m) if m == "x must be 1") && invalid.source().is_none());
    }
}
