//! mcp-gateway: a secure gateway for the Model Context Protocol.
//!
//! Agents call the gateway, never the tools: every call is authenticated (Bearer JWT),
//! authorised (roles and workspaces from `policy.yaml`), proxied to the tool's MCP backend, and
//! audited. The actors themselves live in the `gateway-actors` crate.
//!
//! | module | role |
//! |---|---|
//! | [`bundled`] | the three tool servers run in-process for `cargo run` |
//! | [`cli`] | the `mcp-gateway` commands: `serve`, `token`, `check-config`, `migrate` |
//! | [`config`] | typed settings from the environment |
//! | [`config_files`] | `tools.yaml` and `policy.yaml` loading and validation |
//! | [`app`] | wiring: actors, database, HTTP server, graceful shutdown |
//! | [`auth`] | JWT verification and minting |
//! | [`http`] | the REST routes, one file per group |
//! | [`jobs`] | asynchronous jobs and MCP tasks: dispatcher, runner, JSON |
//! | [`mcp`] | the MCP front door: Streamable HTTP `/mcp`, legacy SSE `/sse` |
//! | [`schema`] | argument validation against tools' JSON Schemas |
//! | [`ratelimit`] | rate-limit cells in Redis, shared by replicas |
//! | [`pinning`] | tool-definition pinning (drift detection) |
//! | [`pipeline`] | the one path of a tool call: registry, policy, backend, audit |
//! | [`backend`] | the MCP Streamable HTTP client to tool servers |
//! | [`db`] | pool, migrations, audit sink, tool sync, audit queries |
//! | [`error`] | the one error type and its mapping to HTTP and JSON-RPC |
//! | [`telemetry`] | JSON logs and the per-request log line |

pub mod app;
pub mod audit;
pub mod auth;
pub mod backend;
pub mod bundled;
pub mod cli;
pub mod clients;
pub mod closing;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod jobs;
pub mod mcp;
pub mod number_literals;
pub mod pipeline;
pub mod policies;
pub mod ratelimit;
pub mod registry;
pub mod routes;
pub mod state;
pub mod telemetry;

/// Install the process-wide rustls crypto provider (awc needs one before any TLS connection).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
