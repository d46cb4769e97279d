//! The gateway's integration tests, one binary: every suite links the gateway once.
//!
//! Each suite starts what it needs for real (the gateway in-process or as its binary, tool
//! backends, PostgreSQL or SQLite databases, Redis, third-party MCP clients and servers) from
//! [`common`]. Run one suite with `cargo test --test main <suite>::`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

#[path = "suites/approvals.rs"]
mod approvals;
#[path = "suites/audit.rs"]
mod audit;
#[path = "suites/audit_integrity.rs"]
mod audit_integrity;
#[path = "suites/auth.rs"]
mod auth;
#[path = "suites/console.rs"]
mod console;
#[path = "suites/deploy.rs"]
mod deploy;
#[path = "suites/harness.rs"]
mod harness;
#[path = "suites/hostile.rs"]
mod hostile;
#[path = "suites/identity.rs"]
mod identity;
#[path = "suites/invoke.rs"]
mod invoke;
#[path = "suites/jobs.rs"]
mod jobs;
#[path = "suites/mcp.rs"]
mod mcp;
#[path = "suites/mcp_2026.rs"]
mod mcp_2026;
#[path = "suites/metrics.rs"]
mod metrics;
#[path = "suites/openapi.rs"]
mod openapi;
#[path = "suites/otlp.rs"]
mod otlp;
#[path = "suites/policy.rs"]
mod policy;
#[path = "suites/process.rs"]
mod process;
#[path = "suites/protection.rs"]
mod protection;
#[path = "suites/ratelimit.rs"]
mod ratelimit;
#[path = "suites/reload.rs"]
mod reload;
#[path = "suites/replicas.rs"]
mod replicas;
#[path = "suites/tools.rs"]
mod tools;
#[path = "suites/upstreams.rs"]
mod upstreams;
