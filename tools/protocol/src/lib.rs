//! JSON-RPC 2.0 and MCP on the wire: the one protocol module of mcp-gateway.
//!
//! The gateway's front doors (`/mcp`, `/sse` + `/messages`), its client to backends and the tool
//! servers' kit all read and write messages through this crate, so a message is valid in one
//! place exactly when it is valid in the others, and every error code has one name.
//!
//! | module | holds |
//! |---|---|
//! | [`code`] | every JSON-RPC error code the gateway and the tools answer with, by name |
//! | [`envelope`] | typed messages: request, notification, response, error, batch; strict parsing |
//! | [`version`] | the MCP revisions spoken, and how one is negotiated |
//! | [`numbers`] | number literals a JSON reader would silently turn into 0 |
//!
//! The official Rust SDK's model types (`rmcp::model`) were considered: they deserialise every
//! message into per-method typed params, which costs an allocation per field on the hot path
//! and would refuse extension fields the gateway must pass through untouched to backends. The
//! gateway needs the envelope only (the params travel on as they came), so this crate types the
//! envelope and leaves params as JSON.

pub mod code;
pub mod envelope;
pub mod numbers;
pub mod version;

pub use envelope::{classify, response, split, Body, BodyError, Invalid, Message, RpcError};
