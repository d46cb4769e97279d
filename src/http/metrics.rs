//! `GET /metrics` (roles `admin` or `operator`): Prometheus text exposition of the counters the
//! gateway keeps — tool calls by outcome, rate-limit rejections, circuit breakers, sessions and
//! the audit backlog. Counters are atomics in a map, written on the hot path without locks held
//! across an await.

use actix_web::{web, HttpResponse};

use super::context::{require_role, Authenticated};
use crate::error::GatewayError;
use crate::state::Shared;
use crate::telemetry::metrics::label;

/// Render every metric in the Prometheus text format (0.0.4).
pub fn render(shared: &Shared) -> String {
    let mut out = String::new();
    shared.telemetry.metrics().render(&mut out);
    render_actors(shared, &mut out);
    render_registry(shared, &mut out);
    render_clients_and_audit(shared, &mut out);
    render_identity(shared, &mut out);
    out
}

/// Each actor kind's backlog, messages handled and restarts.
fn render_actors(shared: &Shared, out: &mut String) {
    out.push_str("# HELP mcpgw_actor_backlog Messages queued for each actor kind and not yet handled.\n");
    out.push_str("# TYPE mcpgw_actor_backlog gauge\n");
    let actors = shared.telemetry.board().snapshot();
    for a in &actors {
        out.push_str(&format!("mcpgw_actor_backlog{{actor=\"{}\"}} {}\n", label(&a.name), a.backlog));
    }
    out.push_str("# HELP mcpgw_actor_handled_total Messages handled by each actor kind.\n");
    out.push_str("# TYPE mcpgw_actor_handled_total counter\n");
    for a in &actors {
        out.push_str(&format!("mcpgw_actor_handled_total{{actor=\"{}\"}} {}\n", label(&a.name), a.handled));
    }
    out.push_str("# HELP mcpgw_actor_restarts_total Supervisor restarts of each actor kind.\n");
    out.push_str("# TYPE mcpgw_actor_restarts_total counter\n");
    for a in &actors {
        out.push_str(&format!("mcpgw_actor_restarts_total{{actor=\"{}\"}} {}\n", label(&a.name), a.restarts));
    }
}

/// Circuit breakers not closed, and tools whose definition drifted from its pin.
fn render_registry(shared: &Shared, out: &mut String) {
    out.push_str("# HELP mcpgw_circuit_breaker_open Backends whose circuit is not closed (1 open, 0.5 half-open).\n");
    out.push_str("# TYPE mcpgw_circuit_breaker_open gauge\n");
    for b in shared.registry.protection().report() {
        let value = if b["state"] == "open" { "1" } else { "0.5" };
        out.push_str(&format!(
            "mcpgw_circuit_breaker_open{{backend=\"{}\"}} {value}\n",
            label(b["backend"].as_str().unwrap_or(""))
        ));
    }
    out.push_str("# HELP mcpgw_tool_definition_drift Tools whose backend definition differs from its pin.\n");
    out.push_str("# TYPE mcpgw_tool_definition_drift gauge\n");
    for drift in shared.registry.drift() {
        out.push_str(&format!("mcpgw_tool_definition_drift{{tool=\"{}\"}} 1\n", label(&drift.tool)));
    }
    let processes = shared.registry.processes();
    type Read = fn(&crate::registry::processes::ProcessStatus) -> u64;
    let gauges: [(&str, &str, &str, Read); 3] = [
        (
            "mcpgw_upstream_process_up",
            "gauge",
            "stdio servers' programs running and initialised (1) or not (0).",
            |p| u64::from(p.is_up()),
        ),
        (
            "mcpgw_upstream_process_restarts_total",
            "counter",
            "Restarts of stdio servers' programs after they exited.",
            |p| p.restarts(),
        ),
        ("mcpgw_upstream_process_pending_calls", "gauge", "Requests waiting for a stdio server's answer.", |p| {
            p.pending() as u64
        }),
    ];
    for (name, kind, help, value) in gauges {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (server, status) in &processes {
            out.push_str(&format!("{name}{{server=\"{}\"}} {}\n", label(server), value(status)));
        }
    }
}

/// Identity providers' keys: how many, whether stale, and the requests made for them.
fn render_identity(shared: &Shared, out: &mut String) {
    out.push_str("# HELP mcpgw_identity_provider_keys Signing keys trusted from each identity provider.\n");
    out.push_str("# TYPE mcpgw_identity_provider_keys gauge\n");
    out.push_str("# HELP mcpgw_identity_provider_keys_stale 1 when the last refresh of a provider's keys failed (the last good keys are in use).\n");
    out.push_str("# TYPE mcpgw_identity_provider_keys_stale gauge\n");
    out.push_str("# HELP mcpgw_identity_provider_fetches_total Requests made to a provider for discovery and keys.\n");
    out.push_str("# TYPE mcpgw_identity_provider_fetches_total counter\n");
    for provider in shared.auth.providers.iter() {
        let snapshot = provider.keys.load();
        let issuer = label(&provider.config.issuer);
        out.push_str(&format!("mcpgw_identity_provider_keys{{issuer=\"{issuer}\"}} {}\n", snapshot.keys.len()));
        out.push_str(&format!(
            "mcpgw_identity_provider_keys_stale{{issuer=\"{issuer}\"}} {}\n",
            u8::from(snapshot.stale)
        ));
        out.push_str(&format!("mcpgw_identity_provider_fetches_total{{issuer=\"{issuer}\"}} {}\n", snapshot.fetches));
    }
}

/// Live MCP sessions, the audit trail's backlog, batches, spool and set-aside rows, and spans.
fn render_clients_and_audit(shared: &Shared, out: &mut String) {
    out.push_str("# HELP mcpgw_mcp_sessions MCP client sessions live on this replica (in-process store) or served by it in the last seconds (Redis store).\n");
    out.push_str("# TYPE mcpgw_mcp_sessions gauge\n");
    out.push_str(&format!("mcpgw_mcp_sessions {}\n", shared.clients.session_count()));
    out.push_str(
        "# HELP mcpgw_replica_bus_dropped_total Messages to other replicas lost (queue full or Redis unreachable).\n",
    );
    out.push_str("# TYPE mcpgw_replica_bus_dropped_total counter\n");
    out.push_str(&format!("mcpgw_replica_bus_dropped_total {}\n", shared.clients.bus_dropped()));
    out.push_str("# HELP mcpgw_audit_backlog Audit rows not yet stored.\n");
    out.push_str("# TYPE mcpgw_audit_backlog gauge\n");
    let health = shared.audit.health();
    out.push_str(&format!("mcpgw_audit_backlog {}\n", health.backlog.max(0)));
    let w = shared.audit.writes();
    for (name, kind, help, value) in [
        ("mcpgw_audit_batches_total", "counter", "Audit batches written.", w.batches as f64),
        (
            "mcpgw_audit_batch_rows_total",
            "counter",
            "Rows in the audit batches written (rows/batches = mean batch size).",
            w.rows as f64,
        ),
        (
            "mcpgw_audit_batch_failures_total",
            "counter",
            "Audit batch writes that failed (rows kept and retried or spooled).",
            w.failures as f64,
        ),
        (
            "mcpgw_audit_write_seconds_total",
            "counter",
            "Time spent writing audit batches.",
            w.write_micros as f64 / 1e6,
        ),
        (
            "mcpgw_audit_last_write_seconds",
            "gauge",
            "How long the latest audit batch write took.",
            w.last_write_micros as f64 / 1e6,
        ),
    ] {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
    }
    if let Some(otlp) = shared.telemetry.spans() {
        let (exported, dropped) = otlp.counts();
        out.push_str("# HELP mcpgw_otlp_spans_total Request spans exported over OTLP, or dropped (queue full or export failed).\n");
        out.push_str("# TYPE mcpgw_otlp_spans_total counter\n");
        out.push_str(&format!("mcpgw_otlp_spans_total{{result=\"exported\"}} {exported}\n"));
        out.push_str(&format!("mcpgw_otlp_spans_total{{result=\"dropped\"}} {dropped}\n"));
    }
    out.push_str("# HELP mcpgw_audit_spooled Audit rows in the local spool, waiting for the database.\n");
    out.push_str("# TYPE mcpgw_audit_spooled gauge\n");
    out.push_str(&format!("mcpgw_audit_spooled {}\n", health.spooled));
    out.push_str(
        "# HELP mcpgw_audit_rows_set_aside_total Audit rows the database refused, kept alone in audit_set_aside.\n",
    );
    out.push_str("# TYPE mcpgw_audit_rows_set_aside_total counter\n");
    out.push_str(&format!("mcpgw_audit_rows_set_aside_total {}\n", health.set_aside));
}

/// `GET /metrics`.
pub async fn metrics(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin", "operator"])?;
    let mut text = render(&shared);
    // Jobs live in the shared store: one grouped query per scrape, never on a call's path. A
    // database that does not answer leaves the family empty rather than failing the scrape.
    text.push_str("# HELP mcpgw_jobs Asynchronous jobs by status (all replicas).\n# TYPE mcpgw_jobs gauge\n");
    let db = shared.db.clone();
    let count = async move { crate::db::jobs::count_by_status(&db).await };
    if let Some(Ok(counts)) = shared.db.within(std::time::Duration::from_secs(2), count).await {
        for (status, n) in counts {
            text.push_str(&format!("mcpgw_jobs{{status=\"{}\"}} {n}\n", label(&status)));
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text))
}
