//! `GET /mcp/tools`: the tools the caller may call (others are not even named).

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use gateway_actors::{FilterTools, ListTools};
use serde_json::{json, Value};

use super::context::Authenticated;
use crate::error::GatewayError;
use crate::state::Worker;

/// `GET /mcp/tools`.
pub async fn list(
    Authenticated(caller): Authenticated,
    worker: web::Data<Worker>,
) -> Result<HttpResponse, GatewayError> {
    let tools = worker.registry.ask(ListTools).await.map_err(|e| GatewayError::Internal(format!("registry: {e}")))?;
    let allowed = worker
        .policy
        .ask(FilterTools { caller: Arc::new(caller), tools })
        .await
        .map_err(|e| GatewayError::Internal(format!("policy: {e}")))?;
    let tools: Vec<Value> = allowed
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "description": t.description,
                "risk_level": t.risk_level,
                "inputSchema": t.input_schema.clone().unwrap_or_else(|| json!({"type": "object"})),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "tools": tools })))
}
