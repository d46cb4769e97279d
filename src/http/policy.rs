//! Admin views of policy and tools: `POST /admin/policy/explain` (the decision for a subject,
//! tool and arguments, with the chain of rules — nothing is called) and `GET /admin/tools`
//! (registered tools with their pinned and observed definition digests).

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use gateway_actors::{Caller, Explain, GetLimits, GetTool};
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::{require_role, Authenticated};
use crate::error::GatewayError;
use crate::state::{Shared, Worker};

/// The subject of an explanation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

/// Body of `POST /admin/policy/explain`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainBody {
    /// Who asks, as claims already mapped…
    #[serde(default)]
    subject: Option<Subject>,
    /// …or as a token (a provider's), verified and mapped here: the answer shows which claim
    /// produced which role.
    #[serde(default)]
    token: Option<String>,
    tool_name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

/// The explanation of a decision, shared by the endpoint and `mcp-gateway policy explain`.
/// Its steps come in the live pipeline's order: policy, definition pinning (`blocked`: the
/// tool's definition drifted and `TOOL_PINNING=block`), input schema.
pub fn explanation(
    explained: Option<gateway_actors::Explanation>,
    tool_name: &str,
    limits: &[gateway_actors::Limit],
    schema: Result<(), crate::registry::input_schemas::SchemaMismatch>,
    drift: bool,
    blocked: bool,
) -> Value {
    let Some(mut e) = explained else {
        return json!({ "allowed": false, "steps": [{ "rule": "tools.yaml", "effect": "deny", "detail": format!("unknown tool '{tool_name}'") }] });
    };
    if e.allowed && drift && blocked {
        e.allowed = false;
        e.steps.push(gateway_actors::policy::Step {
            rule: "tool_pinning".into(),
            effect: "deny",
            detail: format!("the definition of '{tool_name}' changed since it was pinned; awaiting `mcp-gateway tools approve {tool_name}`"),
        });
    }
    if e.allowed {
        if let Err(problem) = schema {
            e.allowed = false;
            e.steps.push(gateway_actors::policy::Step {
                rule: "input_schema".into(),
                effect: "deny",
                detail: problem.to_string(),
            });
        }
    }
    json!({
        "allowed": e.allowed,
        "steps": e.steps,
        "rate_limits": limits.iter().map(|l| json!({ "limit": l.name, "key": l.key,
            "requests_per_minute": l.quota.requests_per_minute, "burst": l.quota.burst })).collect::<Vec<_>>(),
        "definition_drift": drift,
    })
}

/// `POST /admin/policy/explain` (roles `admin`, `auditor`: it calls nothing and changes nothing).
/// The role is checked before the body is read: a caller without it learns nothing of the
/// body's schema.
pub async fn explain(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    payload: web::Payload,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin", "auditor"])?;
    // The row records the outcome (a token that does not verify, a bad body: 400).
    let answer = explained(&req, payload, &shared, &worker).await;
    super::context::audit_admin_outcome(&shared, &req, &caller, "admin/policy-explain", answer.as_ref().map(|_| ()))
        .await?;
    answer
}

async fn explained(
    req: &actix_web::HttpRequest,
    payload: web::Payload,
    shared: &web::Data<Shared>,
    worker: &web::Data<Worker>,
) -> Result<HttpResponse, GatewayError> {
    let body = super::context::admin_body(req, payload).await?;
    let body: ExplainBody = serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => GatewayError::InvalidRequest(e.to_string()),
        _ => GatewayError::Parse(e.to_string()),
    })?;
    let (subject, roles_from) = match (body.subject, body.token) {
        (Some(s), None) => {
            let caller = Caller { user_id: s.sub, roles: s.roles, workspace: s.workspace, scopes: s.scopes };
            (Arc::new(caller), None)
        }
        (None, Some(token)) => {
            // The token is the subject of the question, not the asker's credential: a token
            // that does not verify is a bad request, not a 401.
            let caller = shared
                .auth
                .verify_fetching(token.trim())
                .await
                .map_err(|e| GatewayError::InvalidRequest(format!("the token does not verify: {e}")))?;
            let sources = shared.auth.role_sources(token.trim()).unwrap_or_default();
            (Arc::new(caller), Some(sources))
        }
        _ => return Err(GatewayError::InvalidRequest("give either subject or token".into())),
    };
    let described = json!({
        "sub": subject.user_id, "roles": subject.roles, "workspace": subject.workspace, "scopes": subject.scopes,
        "roles_from": roles_from.map(|r| r.into_iter().map(|(role, claim)| json!({ "role": role, "claim": claim })).collect::<Vec<_>>()),
    });
    let internal = |e: actix::MailboxError| GatewayError::Internal(e.to_string());
    let tool = worker.registry.ask(GetTool(body.tool_name.clone())).await.map_err(internal)?.filter(|t| t.is_active);
    let Some(tool) = tool else {
        let mut answer = explanation(None, &body.tool_name, &[], Ok(()), false, false);
        answer["subject"] = described;
        return Ok(HttpResponse::Ok().json(answer));
    };
    let missing: Vec<String> = subject.missing_scopes(&tool.required_scopes).into_iter().map(str::to_owned).collect();
    // A live call without arguments is checked as `{}`: so is its explanation.
    let arguments = Some(body.arguments.unwrap_or_else(|| json!({})));
    let explained = worker
        .policy
        .ask(Explain { caller: subject.clone(), tool: tool.clone(), arguments: arguments.clone() })
        .await
        .map_err(internal)?;
    let subject_caller = subject.clone();
    let limits = worker.policy.ask(GetLimits { caller: subject, tool: tool.name.clone() }).await.map_err(internal)?;
    let schema = shared.registry.check_arguments(&tool.name, arguments.as_ref().unwrap_or(&Value::Null));
    let drift = shared.registry.drifted(&tool.name);
    let blocked = shared.settings.pinning == crate::config::Pinning::Block;
    let mut answer = explanation(Some(explained), &tool.name, &limits, schema, drift, blocked);
    if !missing.is_empty() {
        answer["allowed"] = json!(false);
        if let Some(steps) = answer["steps"].as_array_mut() {
            steps.insert(
                0,
                json!({ "rule": "required_scopes", "effect": "deny",
                "detail": format!("the token must grant {}", missing.join(" ")) }),
            );
        }
    }
    // An allowed call the policy holds for a person says so (and for whom).
    if answer["allowed"] == json!(true) {
        let held = shared.policies.snapshot().approval(
            &subject_caller,
            &tool.name,
            arguments.as_ref().unwrap_or(&Value::Null),
        );
        if let Some(demand) = held {
            if let Some(steps) = answer["steps"].as_array_mut() {
                steps.push(json!({ "rule": "approval", "effect": "hold", "detail": demand.reasons.join("; ") }));
            }
            answer["approval"] =
                json!({ "approver_role": demand.approver_role, "timeout_seconds": demand.timeout_seconds });
        }
    }
    answer["subject"] = described;
    Ok(HttpResponse::Ok().json(answer))
}

/// A stored definition (canonical JSON) indented for reading and diffing.
fn pretty(definition: Option<&str>) -> Option<String> {
    let value: Value = serde_json::from_str(definition?).ok()?;
    serde_json::to_string_pretty(&value).ok()
}

/// `GET /admin/tools` (roles `admin`, `operator`): every tool with its backend's circuit,
/// concurrency in use, pin state (and both definitions of a drifted one, for a diff), the
/// upstream servers' programs, and the failed calls of the last hour.
pub async fn tools(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin", "operator"])?;
    let unavailable = |e: crate::db::DbError| GatewayError::Unavailable(e.to_string());
    let pins = crate::db::tools::pins(&shared.db).await.map_err(unavailable)?;
    let pins: std::collections::HashMap<&str, &crate::db::tools::Pin> =
        pins.iter().map(|p| (p.name.as_str(), p)).collect();
    let catalog = shared.registry.snapshot();
    let protection = shared.registry.protection();
    let tools: Vec<Value> = catalog
        .all()
        .iter()
        .map(|t| {
            let pin = pins.get(t.name.as_str());
            let drift = shared.registry.drifted(&t.name);
            let (circuit, failures) = protection.circuit(&t.backend_url);
            json!({
                "name": t.name,
                "active": t.is_active,
                "server": t.upstream.as_ref().map(|u| u.server.clone()),
                "backend_url": crate::error::without_credentials(&t.backend_url),
                "risk_level": t.risk_level,
                "required_roles": t.required_roles,
                "circuit": { "state": circuit, "consecutive_failures": failures },
                "concurrency": protection.in_use(t).map(|(in_use, limit)| json!({ "in_use": in_use, "limit": limit })),
                "pinned_digest": pin.and_then(|p| p.pinned.clone()),
                "observed_digest": pin.and_then(|p| p.observed.clone()),
                "drift": drift,
                "pinned_definition": if drift { pin.and_then(|p| pretty(p.pinned_definition.as_deref())) } else { None },
                "observed_definition": if drift { pin.and_then(|p| pretty(p.observed_definition.as_deref())) } else { None },
            })
        })
        .collect();
    let hour_ago = chrono::Utc::now().naive_utc() - chrono::Duration::hours(1);
    let errors = crate::db::audit::export::recent_errors(&shared.db, hour_ago, 20).await.map_err(unavailable)?;
    let errors: Vec<Value> = errors
        .iter()
        .map(|r| {
            json!({ "at": r.created_at, "tool": r.tool_name, "status": r.status, "http_status": r.http_status,
            "error": r.error_message, "request_id": r.request_id })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "tools": tools,
        "pinning": format!("{:?}", shared.settings.pinning).to_lowercase(),
        "upstream_processes": super::health::upstream_processes(&shared),
        "recent_errors": errors,
    })))
}

/// Body of `POST /admin/tools/{name}/approve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// The observed digest the admin reviewed: approved only if it is still the one observed.
    digest: String,
}

/// `POST /admin/tools/{name}/approve` (admin): the drifted definition the admin reviewed becomes
/// the pin (as `mcp-gateway tools approve NAME`). Audited with its outcome.
pub async fn approve(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    name: web::Path<String>,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin"])?;
    let approved = async {
        let body = super::context::admin_body(&req, payload).await?;
        let body: ApproveBody =
            serde_json::from_slice(&body).map_err(|e| GatewayError::InvalidRequest(format!("body: {e}")))?;
        let done = crate::db::tools::approve(&shared.db, &name, Some(&body.digest))
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        if !done {
            return Err(GatewayError::InvalidRequest(
                "not approved: no such tool, or its observed definition is no longer the one reviewed (reload and review again)".into(),
            ));
        }
        // The registry's owner checks the definitions again: the drift clears where the backend
        // still serves the approved one.
        shared.registry.check_definitions().await;
        Ok(())
    }
    .await;
    let action = format!("admin/tools-approve {}", name.as_str());
    super::context::audit_admin_outcome(&shared, &req, &caller, &action, approved.as_ref().copied()).await?;
    approved?;
    Ok(HttpResponse::Ok().json(json!({ "approved": name.as_str() })))
}

/// `GET /admin/policy` (roles `admin`, `auditor`): the policy in force, as data and as YAML.
pub async fn document(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin", "auditor"])?;
    let policy = shared.policies.snapshot();
    let doc = policy.document();
    let yaml = serde_yaml::to_string(doc).map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "policy": doc, "yaml": yaml })))
}

/// Query of `GET /admin/rate-limits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    user: String,
    tool: String,
    /// Comma-separated roles of the user (role limits depend on them).
    #[serde(default)]
    roles: Option<String>,
}

/// `GET /admin/rate-limits?user=U&tool=T[&roles=a,b]` (roles `admin`, `auditor`): every limit
/// that applies to U calling T, and what is left of each now (nothing is consumed).
pub async fn usage(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin", "auditor"])?;
    let q = web::Query::<UsageQuery>::from_query(req.query_string())
        .map_err(|e| GatewayError::InvalidRequest(e.to_string()))?
        .into_inner();
    let roles: Vec<String> =
        q.roles.unwrap_or_default().split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect();
    let subject = Arc::new(Caller { user_id: q.user, roles, workspace: None, scopes: Vec::new() });
    let limits = worker
        .policy
        .ask(GetLimits { caller: subject, tool: q.tool })
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let usage = shared
        .limits
        .store()
        .peek(limits.clone())
        .await
        .map_err(|e| GatewayError::Unavailable(format!("rate-limit store: {e}")))?;
    let rows: Vec<Value> = limits
        .iter()
        .zip(usage)
        .map(|(l, u)| {
            json!({ "limit": l.name, "key": l.key, "requests_per_minute": l.quota.requests_per_minute,
            "burst": l.quota.burst, "available": u.available, "full_in_ms": u.full_in_ms })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "limits": rows })))
}
