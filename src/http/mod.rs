//! The HTTP layer: one file per route group, all errors through [`crate::error`].

pub mod admin;
pub mod context;
pub mod health;
pub mod invoke;
pub mod jobs;
pub mod metrics;
pub mod policy;
pub mod tools;

use actix_web::web;

use crate::error::{json_error, query_error, GatewayError};
use crate::mcp;

/// Mount every route of the gateway.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().error_handler(json_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .route("/health", web::get().to(health::live))
        .route("/health/ready", web::get().to(health::ready))
        .route("/health/actors", web::get().to(health::actors))
        .route("/mcp/tools", web::get().to(tools::list))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/mcp/invoke", web::post().to(invoke::invoke))
        .route("/mcp/jobs", web::post().to(jobs::post))
        .route("/mcp/jobs", web::get().to(jobs::list))
        .route("/mcp/jobs", web::delete().to(jobs::purge))
        .route("/mcp/jobs/{id}", web::get().to(jobs::get))
        .route("/mcp/jobs/{id}", web::delete().to(jobs::delete))
        .route("/admin/audit-logs", web::get().to(admin::audit_logs))
        .route("/admin/policy/explain", web::post().to(policy::explain))
        .route("/admin/tools", web::get().to(policy::tools))
        .route("/mcp", web::post().to(mcp::streamable::post))
        .route("/mcp", web::get().to(mcp::streamable::get))
        .route("/mcp", web::delete().to(mcp::streamable::delete))
        .route("/sse", web::get().to(mcp::sse::open))
        .route("/messages", web::post().to(mcp::sse::message))
        .route("/.well-known/oauth-protected-resource", web::get().to(mcp::wellknown::metadata))
        .route("/.well-known/oauth-protected-resource/mcp", web::get().to(mcp::wellknown::metadata))
        .default_service(web::to(not_found));
}

async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    GatewayError::NotFound(format!("no route for {} {}", req.method(), req.path())).to_response(serde_json::Value::Null)
}
