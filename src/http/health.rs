//! Health endpoints: liveness (`/health`), readiness (`/health/ready`: the database answers,
//! the actors answer and audit rows reach the database), and per-actor state (`/health/actors`, for operators).

use std::time::Duration;

use actix::{Actor, Handler};
use actix_web::{web, HttpResponse};
use gateway_actors::{ActorReport, GetHealth, Mailbox};
use serde_json::json;

use super::context::{require_role, Authenticated};
use crate::error::GatewayError;
use crate::state::{Shared, Worker};

const ACTOR_DEADLINE: Duration = Duration::from_secs(2);

/// `GET /health`: the process serves HTTP.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ask one actor for its report; a dead or stuck actor is reported as not alive.
async fn ask<A>(mailbox: &Mailbox<A>, name: &str) -> ActorReport
where
    A: Actor + Handler<GetHealth>,
    A::Context: actix::dev::ToEnvelope<A, GetHealth>,
{
    match tokio::time::timeout(ACTOR_DEADLINE, mailbox.probe()).await {
        Ok(Ok(report)) => report,
        _ => mailbox.stats().report(name, false),
    }
}

/// Every actor's report (dead or stuck ones as not alive).
pub async fn reports(shared: &Shared, worker: &Worker) -> Vec<ActorReport> {
    let audit = match tokio::time::timeout(ACTOR_DEADLINE, shared.audit.probe()).await {
        Ok(Ok(report)) => report,
        _ => shared.audit.report(false),
    };
    vec![
        ask(&worker.registry, "registry").await,
        ask(&worker.policy, "policy").await,
        audit,
        ask(&worker.limiter, "rate_limiter").await,
    ]
}

/// Whether the database answers within the deadline: `ok`, `error` or `timed out`. Shown to
/// public probes and operators alike: the database's own words (hosts, users) stay in the log.
pub async fn database_status(shared: &Shared) -> &'static str {
    let db = shared.db.clone();
    match shared.db.within(ACTOR_DEADLINE, async move { db.ping().await }).await {
        Some(Ok(())) => "ok",
        Some(Err(e)) => {
            tracing::warn!(error = %e, "the database does not answer");
            "error"
        }
        None => "timed out",
    }
}

/// Each stdio upstream's program, as operators see it (`/health/actors`, `/admin/tools`).
pub fn upstream_processes(shared: &Shared) -> Vec<serde_json::Value> {
    shared
        .registry
        .processes()
        .iter()
        .map(|(server, p)| {
            let mut report = p.report();
            report["server"] = json!(server);
            report
        })
        .collect()
}

/// `GET /health/ready`: 200 when the database and every actor answer, else 503.
pub async fn ready(shared: web::Data<Shared>, worker: web::Data<Worker>) -> HttpResponse {
    let database = database_status(&shared).await;
    let actors = reports(&shared, &worker).await;
    // Rows held in the spool are safe on disk but not where auditors read them: a replica
    // whose audit rows do not reach the database is not ready. Rows set aside (refused by the
    // database, kept alone) do not stop the others: reported, not failing.
    let crate::audit::Health { spooled, set_aside, .. } = shared.audit.health();
    let audit = match (spooled, set_aside) {
        (0, 0) => "ok",
        (0, _) => "rows_set_aside",
        _ => "not_reaching_database",
    };
    let ok = database == "ok" && actors.iter().all(|a| a.alive) && spooled == 0;
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "database": { "backend": shared.db.backend_name(), "status": database },
        "audit": { "status": audit, "spooled": spooled, "set_aside": set_aside },
        "actors": actors.iter().map(|a| json!({ "name": a.name, "alive": a.alive })).collect::<Vec<_>>(),
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /health/actors` (roles `admin` or `operator`): each actor's counters and last error.
pub async fn actors(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin", "operator"])?;
    Ok(HttpResponse::Ok().json(json!({
        "actors": reports(&shared, &worker).await,
        "circuit_breakers": shared.registry.protection().report(),
        "tool_drift": shared.registry.drift().iter().map(|d| json!({ "tool": d.tool, "pinned": d.pinned, "observed": d.observed })).collect::<Vec<_>>(),
        "upstream_processes": upstream_processes(&shared),
        "identity_providers": shared.auth.providers.iter().map(|p| p.report()).collect::<Vec<_>>(),
        "mcp_sessions": shared.clients.session_count(),
        "audit_spooled": shared.audit.health().spooled,
    })))
}
