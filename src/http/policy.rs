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

/// `POST /admin/policy/explain` (admin).
/// The role is checked before the body is read: a caller without it learns nothing of the
/// body's schema.
pub async fn explain(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    body: web::Bytes,
    shared: web::Data<Shared>,
    worker: web::Data<Worker>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin"])?;
    super::context::audit_admin(&shared, &req, &caller, "admin/policy-explain").await?;
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
    answer["subject"] = described;
    Ok(HttpResponse::Ok().json(answer))
}

/// `GET /admin/tools` (admin): tools, their pins, and which drifted.
pub async fn tools(
    req: actix_web::HttpRequest,
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    require_role(&req, &caller, &["admin"])?;
    let pins = crate::db::tools::pins(&shared.db).await.map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    let tools: Vec<Value> = pins
        .iter()
        .map(|p| {
            let tool = shared.registry.snapshot().get(&p.name);
            json!({
                "name": p.name,
                "active": tool.as_ref().is_some_and(|t| t.is_active),
                "backend_url": tool.as_ref().map(|t| t.backend_url.clone()),
                "pinned_digest": p.pinned,
                "observed_digest": p.observed,
                "drift": shared.registry.drifted(&p.name),
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({ "tools": tools, "pinning": format!("{:?}", shared.settings.pinning).to_lowercase() })))
}
