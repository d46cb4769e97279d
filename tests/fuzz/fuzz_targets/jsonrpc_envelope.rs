//! Any bytes as a `POST /mcp` body and as a `POST /mcp/invoke` body: split, classify, map errors
//! to the wire. Must never panic, whatever arrives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway::http::invoke::parse_invoke_body;
use mcp_gateway::mcp::streamable::split_body;
use mcp_protocol::classify;

fuzz_target!(|data: &[u8]| {
    if let Ok((_batch, messages)) = split_body(data) {
        for message in &messages {
            if let Err(e) = classify(message).map_err(|invalid| invalid.error) {
                let _ = mcp_gateway::mcp::response(serde_json::Value::Null, Err(e));
            }
        }
    }
    match parse_invoke_body(data) {
        Ok(body) => {
            let _ = mcp_gateway::telemetry::sane_request_id(body.request_id.as_deref().unwrap_or(""));
        }
        Err(e) => {
            let _ = e.to_response(serde_json::Value::Null);
        }
    }
});
