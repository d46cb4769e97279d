//! What the console asks first: `GET /admin/me` (who the token is, and which console pages its
//! roles open) and `GET /admin/overview` (operators: this replica's uptime, version, trends,
//! actors, and the state of the database, Redis, identity providers and the audit trail).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::context::{require_role, Authenticated};
use crate::error::GatewayError;
use crate::state::{Shared, Worker};

/// The console's pages and the roles that open each (the endpoints behind them check the same
/// roles; this list only spares a user links that would answer 403).
pub const PAGES: &[(&str, &[&str])] = &[
    ("overview", &["admin", "operator"]),
    ("tools", &["admin", "operator"]),
    ("jobs", &["admin", "operator"]),
    ("audit", &["admin", "auditor"]),
    ("policy", &["admin", "auditor"]),
];

const PROBE_DEADLINE: Duration = Duration::from_secs(2);

/// `GET /admin/me` (any valid token): the caller as the gateway sees it and the console pages
/// their roles open (`approvals` for holders of an approver role of the policy in force).
pub async fn me(Authenticated(caller): Authenticated, shared: web::Data<Shared>) -> HttpResponse {
    let mut pages: Vec<&str> =
        PAGES.iter().filter(|(_, roles)| roles.iter().any(|r| caller.has_role(r))).map(|(page, _)| *page).collect();
    if shared.policies.snapshot().approver_roles().iter().any(|r| caller.has_role(r)) {
        pages.push("approvals");
    }
    HttpResponse::Ok().json(json!({
        "sub": caller.user_id,
        "roles": caller.roles,
        "workspace": caller.workspace,
        "pages": pages,
        "admin": caller.has_role("admin"),
    }))
}

/// `GET /admin/overview` (roles `admin`, `operator`).
pub async fn overview(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin", "operator"])?;
    let trends = shared
        .telemetry
        .trends()
        .send(crate::telemetry::trends::GetTrends)
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let database = match super::health::database_status(&shared).await {
        "error" => "error (see the gateway's log)",
        other => other,
    };
    let redis = match &shared.settings.redis_url {
        None => json!({ "configured": false, "status": "not used (limits kept in this process)" }),
        Some(_) => {
            let status = match tokio::time::timeout(PROBE_DEADLINE, shared.limits.store().ping()).await {
                Ok(Ok(())) => "ok".to_owned(),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "overview: Redis does not answer");
                    "error (see the gateway's log)".to_owned()
                }
                Err(_) => "timed out".to_owned(),
            };
            json!({ "configured": true, "status": status })
        }
    };
    let audit = shared.audit.health();
    let uptime = shared.telemetry.started_at().elapsed().as_secs();
    Ok(HttpResponse::Ok().json(json!({
        "replica": shared.jobs.replica_id(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": uptime,
        "trends": trends,
        "actors": super::health::reports(&shared, &worker).await,
        "database": { "backend": shared.db.backend_name(), "status": database },
        "redis": redis,
        "identity_providers": shared.auth.providers.iter().map(|p| p.report()).collect::<Vec<_>>(),
        "audit": { "backlog": audit.backlog, "spooled": audit.spooled, "set_aside": audit.set_aside },
        "mcp_sessions": shared.clients.session_count(),
        "jobs_running": shared.jobs.running(),
        "approvals_pending": crate::db::approvals::pending_count(&shared.db).await.ok(),
    })))
}
