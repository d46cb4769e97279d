//! Upstream servers' prompts and resources through `/mcp` and `/sse`: `prompts/list`,
//! `resources/list` and `resources/templates/list` filtered by the caller's roles;
//! `prompts/get`, `resources/read` and `completion/complete` authorised, rate-limited, forwarded
//! to the owning server and audited like a tool call (the row's tool is `prompt:<name>` or
//! `resource:<uri>`).

use std::collections::HashSet;
use std::sync::Arc;

use gateway_actors::{FilterTools, Tool};
use mcp_protocol::{code, RpcError};
use serde_json::{json, Value};

use super::{Ctx, Unanswered};
use crate::error::{mcp as errors, GatewayError};
use crate::pipeline::{self, Attempt};
use crate::registry::offerings::Offered;

/// MCP's code for a resource that does not exist (2025-06-18 and later).
const RESOURCE_NOT_FOUND: i32 = -32002;

/// The entries of `offered` the caller may use.
async fn visible(ctx: &Ctx, offered: Vec<Offered>) -> Result<Vec<Value>, RpcError> {
    let subjects: Vec<Arc<Tool>> = offered.iter().map(|o| o.subject.clone()).collect();
    let allowed = ctx
        .worker
        .policy
        .ask(FilterTools { caller: ctx.caller.clone(), tools: subjects })
        .await
        .map_err(errors::internal)?;
    let allowed: HashSet<&str> = allowed.iter().map(|t| t.name.as_str()).collect();
    Ok(offered.iter().filter(|o| allowed.contains(o.subject.name.as_str())).map(|o| o.entry.clone()).collect())
}

/// `prompts/list`, `resources/list` or `resources/templates/list` for the caller.
pub async fn list(ctx: &Ctx, method: &str) -> Result<Value, RpcError> {
    let offerings = ctx.shared.registry.offerings();
    Ok(match method {
        "prompts/list" => json!({ "prompts": visible(ctx, offerings.prompts().cloned().collect()).await? }),
        "resources/list" => json!({ "resources": visible(ctx, offerings.resources()).await? }),
        _ => json!({ "resourceTemplates": visible(ctx, offerings.templates()).await? }),
    })
}

/// `prompts/get`, `resources/read` or `completion/complete`: find the subject, authorise,
/// forward with the server's own name, audit.
pub async fn forward(ctx: &Ctx, method: &str, mut params: Value) -> Result<Value, RpcError> {
    let offerings = ctx.shared.registry.offerings();
    let asked: String;
    let (subject, not_found): (Option<Arc<Tool>>, RpcError) = match method {
        "prompts/get" => {
            let name = params
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| errors::invalid_params("params.name is required"))?;
            let unknown = errors::invalid_params(format!("Unknown prompt: {}", crate::error::echo(name)));
            asked = format!("prompt:{name}");
            (offerings.prompt(name).map(|o| o.subject.clone()), unknown)
        }
        "resources/read" => {
            let uri = params
                .get("uri")
                .and_then(Value::as_str)
                .ok_or_else(|| errors::invalid_params("params.uri is required"))?;
            asked = format!("resource:{uri}");
            (offerings.resource(uri), RpcError::new(RESOURCE_NOT_FOUND, "Resource not found"))
        }
        _ => {
            let reference = params.get("ref").cloned().unwrap_or(Value::Null);
            match reference.get("type").and_then(Value::as_str) {
                Some("ref/prompt") => {
                    let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
                    asked = format!("prompt:{name}");
                    (offerings.prompt(name).map(|o| o.subject.clone()), errors::invalid_params("Unknown prompt"))
                }
                Some("ref/resource") => {
                    let uri = reference.get("uri").and_then(Value::as_str).unwrap_or("");
                    asked = format!("resource:{uri}");
                    (offerings.resource(uri), RpcError::new(RESOURCE_NOT_FOUND, "Resource not found"))
                }
                _ => return Err(errors::invalid_params("params.ref must be a ref/prompt or a ref/resource")),
            }
        }
    };
    let kind = match method {
        "prompts/get" => "prompts/get",
        "resources/read" => "resources/read",
        _ => "completion/complete",
    };
    let Some(subject) = subject else {
        // Unknown (or not routable) leaves its row too, under what was asked (cut to 256
        // characters: a caller's text, not a registered name).
        let mut attempt = Attempt::new(ctx.transport);
        attempt.kind = kind;
        attempt.caller = Some(ctx.caller.clone());
        attempt.tool_name = Some(asked.chars().take(256).collect());
        let unknown = GatewayError::UnknownTool("not found".into());
        attempt.refused(&ctx.shared, crate::http::context::origin(&ctx.req), &unknown, 200);
        return Err(not_found);
    };
    // The server's own name replaces the published one; a resource's URI is its own.
    match method {
        "prompts/get" => params["name"] = json!(subject.backend_name()),
        "completion/complete" if params["ref"]["type"] == "ref/prompt" => {
            params["ref"]["name"] = json!(subject.backend_name())
        }
        _ => {}
    }
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(a) if a.is_object() => a.clone(),
        Some(_) => return Err(errors::invalid_params("params.arguments must be an object")),
    };
    if let Some(meta) = params.as_object_mut() {
        // The client's `_meta` (progress tokens, its own keys) is not the upstream's business.
        meta.remove("_meta");
    }
    let mut guard = Unanswered { ctx, attempt: Some(Attempt::new(ctx.transport)) };
    let outcome = async {
        let attempt = guard.attempt.get_or_insert_with(|| Attempt::new(ctx.transport));
        attempt.kind = kind;
        attempt.tool_name = Some(subject.name.clone());
        attempt.arguments_sha256 = Some(pipeline::digest(&arguments));
        let arguments = Arc::new(arguments);
        let subject = pipeline::authorize_subject(
            &ctx.shared,
            &ctx.worker,
            attempt,
            ctx.caller.clone(),
            subject.clone(),
            &arguments,
        )
        .await?;
        pipeline::forward(&ctx.shared, &ctx.worker, &subject, method, params, &super::client_of(ctx)).await
    }
    .await;
    let answer = match &outcome {
        Ok(result) => Ok(result.clone()),
        // Denied looks like unknown: what exists is not revealed to who may not use it.
        Err(GatewayError::Forbidden(_) | GatewayError::UnknownTool(_)) => Err(not_found),
        Err(e @ GatewayError::RateLimited { .. }) => Err(e.to_rpc()),
        Err(GatewayError::InvalidArguments(m)) => Err(RpcError::new(code::INVALID_PARAMS, m.clone())),
        Err(e) => Err(errors::plain(e)),
    };
    let attempt = guard.attempt.take().unwrap_or_else(|| Attempt::new(ctx.transport));
    match attempt.finish(&ctx.shared, crate::http::context::origin(&ctx.req), outcome.as_ref(), 200).await {
        Ok(()) => answer,
        Err(e) => Err(errors::after_the_call(&e)),
    }
}
