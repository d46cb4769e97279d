//! MCP's answers to failures: the gateway's [`GatewayError`]s projected onto JSON-RPC error
//! objects inside HTTP 200, and the refusals only MCP has (an unknown method, a bad cursor, an
//! unknown task). MCP asks some failures to come back as tool results the model can act on
//! (`isError: true`) rather than as errors; that choice is made here too.

use std::fmt::Display;

use mcp_protocol::{code, RpcError};
use serde_json::{json, Value};

use super::GatewayError;

/// Bad params of an MCP request (`params.name is required`, an invalid cursor, an unknown task).
pub fn invalid_params(message: impl Into<String>) -> RpcError {
    RpcError::new(code::INVALID_PARAMS, message)
}

/// A request that is valid JSON-RPC but may not be sent here (`initialize` inside a batch).
pub fn invalid_request(message: impl Into<String>) -> RpcError {
    RpcError::new(code::INVALID_REQUEST, message)
}

/// A method the gateway does not serve.
pub fn method_not_found(method: &str) -> RpcError {
    RpcError::new(code::METHOD_NOT_FOUND, format!("Method not found: {}", super::echo(method)))
}

/// The gateway failed while answering (its database or an actor).
pub fn internal(e: impl Display) -> RpcError {
    RpcError::new(code::INTERNAL_ERROR, format!("internal error: {e}"))
}

/// The error's code and message, without `data` (what MCP answers when the audit path or a
/// task submission fails).
pub fn plain(e: &GatewayError) -> RpcError {
    RpcError::new(e.code(), e.to_string())
}

/// A caller holding too many `tasks/result` long polls at once.
pub fn too_many_waiting() -> RpcError {
    RpcError::new(code::RATE_LIMITED, "too many tasks/result requests waiting; poll tasks/get")
}

/// `tasks/result` of a task that was cancelled.
pub fn task_cancelled() -> RpcError {
    RpcError::new(code::REQUEST_CANCELLED, "task cancelled")
}

/// `tasks/result` of a task that failed: the stored error's code and message when there is one.
pub fn task_failed(stored: Option<&Value>) -> RpcError {
    match stored {
        Some(e) => RpcError::new(
            e.get("code").and_then(Value::as_i64).and_then(|c| i32::try_from(c).ok()).unwrap_or(code::INTERNAL_ERROR),
            e.get("message").and_then(Value::as_str).unwrap_or("task failed").to_owned(),
        ),
        None => RpcError::new(code::INTERNAL_ERROR, "task failed"),
    }
}

/// `tasks/result` that waited its longest and the task is still working.
pub fn task_still_working() -> RpcError {
    RpcError::new(code::INTERNAL_ERROR, "task still working; poll tasks/get")
}

/// The stored `error` of a job that failed or ended without an answer: what `tasks/result` and
/// `GET /mcp/jobs/{id}` show.
pub fn stored_failure(e: &GatewayError, message: &str) -> String {
    json!({ "code": e.code(), "message": message }).to_string()
}

fn unknown_tool(name: &str) -> RpcError {
    // Denied and unknown look the same, so a tool's existence does not leak.
    invalid_params(format!("Unknown tool: {}", super::echo(name)))
}

/// A `tools/call`'s answer for its outcome. Bad arguments and backend failures are tool results
/// the model can act on (2025-11-25); a denied tool looks unknown; a tool whose `taskSupport`
/// refuses the way it was called is -32601.
pub fn tool_call(name: &str, outcome: &Result<Value, GatewayError>) -> Result<Value, RpcError> {
    let tool_error = |text: String| Ok(json!({ "content": [{ "type": "text", "text": text }], "isError": true }));
    match outcome {
        Ok(result) => Ok(result.clone()),
        Err(GatewayError::UnknownTool(_) | GatewayError::Forbidden(_)) => Err(unknown_tool(name)),
        Err(GatewayError::InvalidArguments(m)) => tool_error(m.clone()),
        Err(GatewayError::InvalidRequest(m)) => Err(invalid_params(m.clone())),
        Err(GatewayError::NotFound(m)) => Err(RpcError::new(code::METHOD_NOT_FOUND, m.clone())),
        Err(e @ GatewayError::RateLimited { .. }) => Err(e.to_rpc()),
        Err(
            e @ (GatewayError::BackendTimeout(_)
            | GatewayError::BackendUnavailable(_)
            | GatewayError::BackendBadReply(_)),
        ) => tool_error(e.to_string()),
        Err(e) => Err(RpcError::new(code::INTERNAL_ERROR, e.to_string())),
    }
}

/// The answer to a `tools/call` with `params.task` that could not create its task.
pub fn task_creation_refused(name: &str, e: &GatewayError) -> RpcError {
    match e {
        GatewayError::UnknownTool(_) | GatewayError::Forbidden(_) => unknown_tool(name),
        GatewayError::NotFound(m) => RpcError::new(code::METHOD_NOT_FOUND, m.clone()),
        e => plain(e),
    }
}

/// The answer to a request that failed once its outcome was known (the audit row could not be
/// made durable in strict mode).
pub fn after_the_call(e: &GatewayError) -> RpcError {
    RpcError::new(code::INTERNAL_ERROR, e.to_string())
}

/// `MCP-Protocol-Version` names a revision the gateway does not speak: the revisions it does,
/// and the one asked for when it is shaped like one (anything else is not repeated).
pub fn unsupported_version(requested: &str) -> RpcError {
    let mut supported = vec![mcp_protocol::version::STATELESS_VERSION];
    supported.extend(mcp_protocol::version::SESSION_VERSIONS);
    RpcError {
        code: code::UNSUPPORTED_PROTOCOL_VERSION,
        message: "unsupported MCP-Protocol-Version".into(),
        data: Some(json!({ "requested": requested, "supported": supported })),
    }
}

/// A request dropped because the client cancelled it (`notifications/cancelled`).
pub fn request_cancelled() -> RpcError {
    RpcError::new(code::REQUEST_CANCELLED, "request cancelled")
}

/// A body that could not be split into messages: a parse error as every other (-32700, with
/// `data`), an empty or too long batch as JSON-RPC says (-32600).
pub fn unreadable_body(e: &mcp_protocol::BodyError) -> Result<GatewayError, RpcError> {
    if e.is_parse_error() {
        Ok(GatewayError::Parse(e.to_string()))
    } else {
        Err(e.error())
    }
}

/// The error recorded for a message that is not valid JSON-RPC, with the code the client is
/// answered with (-32602 for params that are not an object, else -32600). `why` is the fixed
/// text of the refusal (nothing the client sent).
pub fn invalid_message(invalid: &mcp_protocol::Invalid, why: &str) -> GatewayError {
    if invalid.error.code == code::INVALID_PARAMS {
        GatewayError::InvalidArguments(invalid.why.clone())
    } else {
        GatewayError::InvalidRequest(why.to_owned())
    }
}
