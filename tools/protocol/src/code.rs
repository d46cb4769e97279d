//! Every JSON-RPC error code on the wire, by name. No other file spells one as a number.
//!
//! The standard codes come from JSON-RPC 2.0; `REQUEST_CANCELLED` from LSP (MCP's ancestor);
//! the `-32000..-32099` server-error range holds the gateway's own, documented in the README's
//! error table.

/// The body is not JSON.
pub const PARSE_ERROR: i32 = -32700;
/// The JSON is not a valid JSON-RPC request (or a batch is empty or too long).
pub const INVALID_REQUEST: i32 = -32600;
/// No such method (MCP 2025-11-25 also uses it when a tool's `taskSupport` refuses the call).
pub const METHOD_NOT_FOUND: i32 = -32601;
/// Bad parameters, including an unknown tool name, as MCP specifies.
pub const INVALID_PARAMS: i32 = -32602;
/// The server failed (or a dependency such as the database is unavailable).
pub const INTERNAL_ERROR: i32 = -32603;
/// The caller cancelled the request before it finished.
pub const REQUEST_CANCELLED: i32 = -32800;

/// No token, or a token that failed verification.
pub const UNAUTHENTICATED: i32 = -32000;
/// No such tool, or the tool is inactive.
pub const UNKNOWN_TOOL: i32 = -32001;
/// The caller is authenticated but not allowed.
pub const FORBIDDEN: i32 = -32002;
/// The backend did not answer within the tool's timeout.
pub const BACKEND_TIMEOUT: i32 = -32003;
/// The backend could not be reached, failed, or answered something that is not MCP.
pub const BACKEND_UNAVAILABLE: i32 = -32004;
/// The body is larger than the configured limit.
pub const PAYLOAD_TOO_LARGE: i32 = -32005;
/// A rate limit refused the call.
pub const RATE_LIMITED: i32 = -32006;
/// The tool is at its concurrency limit, or its circuit is open.
pub const BUSY: i32 = -32007;
/// The `MCP-Protocol-Version` a request names is not spoken (2026-07-28's
/// `UnsupportedProtocolVersionError`; `data` lists the revisions that are).
pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;
