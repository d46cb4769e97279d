//! Every route of the gateway in one table: REST handlers ([`crate::http`]), the MCP front doors
//! ([`crate::mcp`]) and the API document, which [`openapi`] renders from the same table so it
//! cannot drift from what is served.

pub mod console;
pub mod openapi;

use actix_web::web;

use crate::error::{json_error, query_error, GatewayError};
use crate::http::{admin, approvals, health, invoke, jobs, metrics, overview, policy, tools};
use crate::mcp;

/// One route of the gateway: mounted by [`routes`] and described by `/openapi.json` from this
/// same table, so the API document cannot drift from what is served.
pub struct Endpoint {
    /// HTTP method, lower case (as OpenAPI writes it).
    pub method: &'static str,
    /// Path, with `{name}` parameters (the same syntax in actix and OpenAPI).
    pub path: &'static str,
    /// One line on what it is for.
    pub summary: &'static str,
    /// Who may call it: `public`, `token` (any valid token) or the roles it needs.
    pub access: &'static str,
    /// The request body's schema in `components.schemas`, if it takes one.
    pub body: Option<&'static str>,
    /// The success status and what it returns.
    pub ok: (u16, &'static str),
    /// Part of the API document (the docs page's own assets are not).
    pub documented: bool,
    route: fn() -> actix_web::Route,
}

macro_rules! endpoint {
    ($method:ident $path:literal, $handler:path, $summary:literal, $access:literal, $body:expr, $ok:expr) => {
        Endpoint {
            method: stringify!($method),
            path: $path,
            summary: $summary,
            access: $access,
            body: $body,
            ok: $ok,
            documented: true,
            route: || web::$method().to($handler),
        }
    };
}

/// Every route of the gateway, in mounting order.
pub static ENDPOINTS: &[Endpoint] = &[
    endpoint!(get "/health", health::live, "Liveness: the process answers.", "public", None, (200, "alive")),
    endpoint!(get "/health/ready", health::ready, "Readiness: database and audit writer usable.", "public", None, (200, "ready (503 when not)")),
    endpoint!(get "/health/actors", health::actors, "Per actor: alive, backlog, handled, restarts, last error.", "admin, operator", None, (200, "actor reports")),
    endpoint!(get "/mcp/tools", tools::list, "The tools the caller may call.", "token", None, (200, "tool list")),
    endpoint!(get "/metrics", metrics::metrics, "Prometheus text exposition.", "admin, operator", None, (200, "metrics (text/plain)")),
    endpoint!(post "/mcp/invoke", invoke::invoke, "Call a tool (REST): authenticated, authorised, rate-limited, audited.", "token", Some("InvokeRequest"), (200, "JSON-RPC 2.0 response with the tool's result")),
    endpoint!(post "/mcp/jobs", jobs::post, "Submit a tool call as an asynchronous job (Idempotency-Key honoured).", "token", Some("InvokeRequest"), (202, "the job, with a Location header")),
    endpoint!(get "/mcp/jobs", jobs::list, "The caller's jobs (status, limit, cursor; all=true for admins).", "token", None, (200, "a page of jobs")),
    endpoint!(delete "/mcp/jobs", jobs::purge, "Delete finished jobs older than `hours`.", "admin", None, (200, "how many were deleted")),
    endpoint!(get "/mcp/jobs/{id}", jobs::get, "One job: status, progress, result or error.", "token (owner or admin)", None, (200, "the job")),
    endpoint!(delete "/mcp/jobs/{id}", jobs::delete, "Cancel a job (the backend is told).", "token (owner or admin)", None, (200, "the cancelled job")),
    endpoint!(get "/admin/audit-logs", admin::audit_logs, "Audit rows, newest first, filtered; format=csv|jsonl streams an export.", "admin, auditor", None, (200, "a page of audit rows")),
    endpoint!(post "/admin/audit/verify", admin::verify, "Walk every hash chain: intact, or where and how it breaks.", "admin, auditor", None, (200, "the verification, in words")),
    endpoint!(post "/admin/policy/explain", policy::explain, "Why a call would be allowed or denied.", "admin, auditor", Some("ExplainRequest"), (200, "the decision and its rules")),
    endpoint!(get "/admin/policy", policy::document, "The policy in force (as data and YAML).", "admin, auditor", None, (200, "the policy")),
    endpoint!(get "/admin/rate-limits", policy::usage, "What is left of each limit for a user calling a tool (user, tool, roles).", "admin, auditor", None, (200, "limits and usage")),
    endpoint!(get "/admin/tools", policy::tools, "Tools: circuit, concurrency, pins (drifted definitions in full), upstream programs, recent errors.", "admin, operator", None, (200, "tools")),
    endpoint!(post "/admin/tools/{name}/approve", policy::approve, "Approve a drifted tool definition (the reviewed digest).", "admin", Some("ApproveRequest"), (200, "approved")),
    endpoint!(get "/admin/overview", overview::overview, "This replica: uptime, version, trends, actors, dependencies, audit backlog.", "admin, operator", None, (200, "the overview")),
    endpoint!(get "/admin/approvals", approvals::list, "Calls waiting for approval (status, tool, limit), for the approver roles you hold.", "an approver role of the policy", None, (200, "approval requests")),
    endpoint!(get "/admin/approvals/{id}", approvals::get, "One approval request.", "its approver role", None, (200, "the request")),
    endpoint!(post "/admin/approvals/{id}/approve", approvals::approve, "Approve a held call (never your own): it runs.", "its approver role", Some("DecisionRequest"), (200, "the decided request")),
    endpoint!(post "/admin/approvals/{id}/deny", approvals::deny, "Deny a held call: it ends denied.", "its approver role", Some("DecisionRequest"), (200, "the decided request")),
    endpoint!(get "/admin/me", overview::me, "The caller as the gateway sees it, and the console pages their roles open.", "token", None, (200, "the caller")),
    endpoint!(post "/mcp", mcp::streamable::post, "MCP Streamable HTTP: JSON-RPC requests, notifications and responses.", "token", Some("JsonRpcRequest"), (200, "JSON or an SSE stream")),
    endpoint!(get "/mcp", mcp::streamable::get, "MCP Streamable HTTP: the session's server-to-client SSE stream.", "token", None, (200, "text/event-stream")),
    endpoint!(delete "/mcp", mcp::streamable::delete, "End an MCP session.", "token", None, (200, "session ended")),
    endpoint!(get "/sse", mcp::sse::open, "Legacy MCP SSE transport: opens the stream (first event names the POST endpoint).", "token", None, (200, "text/event-stream")),
    endpoint!(post "/messages", mcp::sse::message, "Legacy MCP SSE transport: a client message for a session.", "token", Some("JsonRpcRequest"), (202, "accepted; the answer arrives on the stream")),
    endpoint!(get "/.well-known/oauth-protected-resource", mcp::wellknown::metadata, "OAuth protected resource metadata (RFC 9728).", "public", None, (200, "metadata")),
    endpoint!(get "/.well-known/oauth-protected-resource/mcp", mcp::wellknown::metadata, "OAuth protected resource metadata for /mcp (RFC 9728).", "public", None, (200, "metadata")),
    endpoint!(get "/openapi.json", openapi::document, "This API document (OpenAPI 3.1).", "public", None, (200, "the document")),
    Endpoint {
        documented: false,
        ..endpoint!(get "/console", console::page, "The console (offline, strict CSP).", "public (its data needs a token)", None, (200, "HTML"))
    },
    Endpoint {
        documented: false,
        ..endpoint!(get "/console/{asset}", console::asset, "The console's assets.", "public", None, (200, "asset"))
    },
    Endpoint {
        documented: false,
        ..endpoint!(get "/docs", openapi::page, "Swagger UI (offline).", "public", None, (200, "HTML"))
    },
    Endpoint {
        documented: false,
        ..endpoint!(get "/docs/{asset}", openapi::asset, "Swagger UI assets.", "public", None, (200, "asset"))
    },
];

/// Mount every route of the gateway.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().error_handler(json_error))
        .app_data(web::QueryConfig::default().error_handler(query_error));
    for e in ENDPOINTS {
        cfg.route(e.path, (e.route)());
    }
    cfg.default_service(web::to(not_found));
}

async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    if takes_the_gateway_for_an_authorization_server(req.path()) {
        return not_an_authorization_server();
    }
    GatewayError::NotFound(format!("no route for {} {}", req.method(), req.path())).to_response(serde_json::Value::Null)
}

/// Where an OAuth client looks when it takes the gateway for its authorization server: an MCP
/// client answering a 401 (an expired token, say) with no authorization server named in the
/// RFC 9728 metadata falls back to the gateway's own origin (the MCP authorization spec's
/// default), then to dynamic client registration at `/register`.
fn takes_the_gateway_for_an_authorization_server(path: &str) -> bool {
    matches!(path, "/register" | "/authorize" | "/token")
        || path.starts_with("/.well-known/oauth-authorization-server")
        || path.starts_with("/.well-known/openid-configuration")
}

/// 404 in OAuth's error shape, saying what is really going on: clients such as `mcp-remote`
/// show this body as their error ("Dynamic Client Registration rejected (HTTP 404): …"), so it
/// is the one place where the user learns that their token was refused, not that OAuth failed.
pub fn not_an_authorization_server() -> actix_web::HttpResponse {
    actix_web::HttpResponse::NotFound().json(serde_json::json!({
        "error": "not_an_authorization_server",
        "error_description": "mcp-gateway is not an OAuth authorization server and issues no tokens. Your client came \
    here because /mcp refused its Bearer token (the 401's WWW-Authenticate error_description says why, e.g. \
    \"invalid token: expired\"). Get a new token from your identity provider, or for a local gateway: \
    mcp-gateway token --sub <you> --roles <role> --ttl <seconds> (at most JWT_MAX_TTL_SECONDS), and pass it \
    as the Authorization: Bearer header.",
    }))
}
