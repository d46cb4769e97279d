//! The REST handlers, one file per route group, all errors through [`crate::error`]; the route
//! table that mounts them (and the MCP front doors) is [`crate::routes`].

pub mod admin;
pub mod approvals;
pub mod context;
pub mod health;
pub mod invoke;
pub mod jobs;
pub mod metrics;
pub mod overview;
pub mod policy;
pub mod tools;
