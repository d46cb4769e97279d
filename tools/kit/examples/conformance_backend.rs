//! A backend with the tools the MCP conformance suite calls by name (`test_simple_text`,
//! `test_error_handling`), so the suite can exercise the gateway's `/mcp` end to end.
//! `CONFORMANCE_BIND` (default 127.0.0.1:8099). Used by `.ci/conformance.sh`; not shipped.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tool_kit::{ToolServer, ToolSpec};

fn main() -> anyhow::Result<()> {
    let empty = json!({ "type": "object", "properties": {} });
    let server = ToolServer {
        name: "conformance-backend",
        version: env!("CARGO_PKG_VERSION"),
        tools: vec![
            ToolSpec {
                name: "test_simple_text",
                description: "Returns a fixed text (conformance scenario tools-call-simple-text).",
                input_schema: empty.clone(),
                output_schema: None,
            },
            ToolSpec {
                name: "test_error_handling",
                description: "Always fails with isError (conformance scenario tools-call-error).",
                input_schema: empty,
                output_schema: None,
            },
        ],
        call: Arc::new(|name, _| match name {
            "test_error_handling" => Err("This tool intentionally returns an error for testing".into()),
            _ => Ok(json!({ "content": [{ "type": "text", "text": "This is a simple text response for testing." }] })),
        }),
        max_body_bytes: 1 << 20,
        call_timeout: Duration::from_secs(10),
    };
    tool_kit::server::run_main(server, "CONFORMANCE_BIND", "127.0.0.1:8099")
}
