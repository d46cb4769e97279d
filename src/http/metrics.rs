//! `GET /metrics` (roles `admin` or `operator`): Prometheus text exposition of the counters the
//! gateway keeps — tool calls by outcome, rate-limit rejections, circuit breakers, sessions and
//! the audit backlog. Counters are atomics in a map, written on the hot path without locks held
//! across an await.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{web, HttpResponse};
use dashmap::DashMap;

use super::context::{require_role, Authenticated};
use crate::app::Shared;
use crate::error::GatewayError;

/// Counters by label set.
#[derive(Debug, Default)]
pub struct Metrics {
    calls: DashMap<(String, &'static str, String), AtomicU64>,
    rejections: DashMap<String, AtomicU64>,
    store_errors: AtomicU64,
}

impl Metrics {
    /// One finished tool call (`tool` must be a registered name or `unknown`).
    pub fn call(&self, tool: &str, decision: &'static str, status: &str) {
        let key = (tool.to_owned(), decision, status.to_owned());
        if let Some(c) = self.calls.get(&key) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.calls.entry(key).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// A rate-limit refusal by `limit`.
    pub fn rejected(&self, limit: &str) {
        self.rejections.entry(limit.to_owned()).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// The shared rate-limit store failed (the call passed or failed per the failure mode).
    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }
}

fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Render every metric in the Prometheus text format (0.0.4).
pub fn render(shared: &Shared) -> String {
    let m = &shared.metrics;
    let mut out = String::new();
    out.push_str("# HELP mcpgw_tool_calls_total Tool calls by tool, access decision and outcome.\n");
    out.push_str("# TYPE mcpgw_tool_calls_total counter\n");
    let mut calls: Vec<_> = m.calls.iter().map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed))).collect();
    calls.sort();
    for ((tool, decision, status), n) in calls {
        out.push_str(&format!(
            "mcpgw_tool_calls_total{{tool=\"{}\",decision=\"{decision}\",status=\"{}\"}} {n}\n",
            label(&tool),
            label(&status)
        ));
    }
    out.push_str("# HELP mcpgw_rate_limit_rejections_total Calls refused by a rate limit, by limit.\n");
    out.push_str("# TYPE mcpgw_rate_limit_rejections_total counter\n");
    let mut rejections: Vec<_> =
        m.rejections.iter().map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed))).collect();
    rejections.sort();
    for (limit, n) in rejections {
        out.push_str(&format!("mcpgw_rate_limit_rejections_total{{limit=\"{}\"}} {n}\n", label(&limit)));
    }
    out.push_str("# HELP mcpgw_rate_limit_store_errors_total Failures of the shared rate-limit store (Redis).\n");
    out.push_str("# TYPE mcpgw_rate_limit_store_errors_total counter\n");
    out.push_str(&format!("mcpgw_rate_limit_store_errors_total {}\n", m.store_errors.load(Ordering::Relaxed)));
    out.push_str("# HELP mcpgw_circuit_breaker_open Backends whose circuit is not closed (1 open, 0.5 half-open).\n");
    out.push_str("# TYPE mcpgw_circuit_breaker_open gauge\n");
    for b in shared.protection.report() {
        let value = if b["state"] == "open" { "1" } else { "0.5" };
        out.push_str(&format!(
            "mcpgw_circuit_breaker_open{{backend=\"{}\"}} {value}\n",
            label(b["backend"].as_str().unwrap_or(""))
        ));
    }
    out.push_str("# HELP mcpgw_tool_definition_drift Tools whose backend definition differs from its pin.\n");
    out.push_str("# TYPE mcpgw_tool_definition_drift gauge\n");
    for entry in shared.drift.iter() {
        out.push_str(&format!("mcpgw_tool_definition_drift{{tool=\"{}\"}} 1\n", label(entry.key())));
    }
    out.push_str("# HELP mcpgw_mcp_sessions Live MCP client sessions on this replica.\n");
    out.push_str("# TYPE mcpgw_mcp_sessions gauge\n");
    out.push_str(&format!("mcpgw_mcp_sessions {}\n", shared.sessions.len()));
    out.push_str("# HELP mcpgw_audit_backlog Audit rows not yet stored.\n");
    out.push_str("# TYPE mcpgw_audit_backlog gauge\n");
    out.push_str(&format!("mcpgw_audit_backlog {}\n", shared.audit_stats.report("audit_writer", true).backlog));
    out.push_str("# HELP mcpgw_audit_spooled Audit rows in the local spool, waiting for the database.\n");
    out.push_str("# TYPE mcpgw_audit_spooled gauge\n");
    out.push_str(&format!("mcpgw_audit_spooled {}\n", shared.audit_spooled.load(std::sync::atomic::Ordering::Relaxed)));
    out
}

/// `GET /metrics`.
pub async fn metrics(
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&caller, &["admin", "operator"])?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(render(&shared)))
}
