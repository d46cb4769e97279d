//! mcp-gateway: a secure gateway for the Model Context Protocol.
//!
//! Agents call the gateway, never the tools: every call is authenticated (Bearer JWT),
//! authorised (roles and workspaces from `policy.yaml`), proxied to the tool's MCP backend, and
//! audited. The actors themselves live in the `gateway-actors` crate.
//!
//! Every module, by layer (each depends only on those above it in this table):
//!
//! | layer | module | role |
//! |---|---|---|
//! | infrastructure | [`config`] | typed settings; `tools.yaml` / `policy.yaml` loading and watching |
//! | | [`db`] | pool, migrations, the audit tables, jobs, tool sync |
//! | | [`backend`] | the MCP client to tool servers: sessions, streams, slots and breakers |
//! | | [`ratelimit`] | rate-limit cells in Redis, and the limits component |
//! | | [`error`] | the one error type, its REST mapping and its MCP projection |
//! | | [`number_literals`] | number literals a JSON reader would turn into 0, refused |
//! | | [`telemetry`] | logs, metrics, OTLP spans, trace context |
//! | | [`closing`] | the shutdown signal |
//! | services | [`audit`] | the audit trail component (hand-off, durability, health) |
//! | | [`auth`] | JWT verification and minting |
//! | | [`registry`] | the tool registry and its owner actor |
//! | | [`policies`] | the policy in force and its owner actor |
//! | | [`clients`] | connected MCP clients: sessions, streams, running requests |
//! | state | [`state`] | `Shared` (the components) and `Worker` (one HTTP worker's actors) |
//! | call path | [`pipeline`] | the one path of a tool call and its one audited end |
//! | | [`jobs`] | asynchronous jobs and MCP tasks: dispatcher, runner, JSON |
//! | | [`approvals`] | calls held for a person's approval: hold, decide, expire, withdraw |
//! | adapters | [`http`] | the REST handlers |
//! | | [`mcp`] | the MCP front doors: Streamable HTTP `/mcp`, legacy SSE `/sse` |
//! | | [`routes`] | the route table and the API document built from it |
//! | wiring | [`app`] | start the components and actors, serve HTTP, shut down |
//! | | [`cli`] | the `mcp-gateway` commands |
//! | | [`bundled`] | the three tool servers run in-process for `cargo run` |

pub mod app;
pub mod approvals;
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
pub mod identity;
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
