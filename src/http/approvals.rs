//! The approval queue over HTTP: `GET /admin/approvals` (pending, or filtered), `GET
//! /admin/approvals/{id}`, `POST /admin/approvals/{id}/approve` and `…/deny` with a required
//! reason. Only callers holding an approver role named in `policy.yaml` reach them, and each
//! sees and decides only the requests of the roles they hold; the requester never decides their
//! own (see [`crate::approvals`]).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::context::{self, require_role, Authenticated};
use crate::approvals::{approval_json, decide, Decision};
use crate::error::GatewayError;
use crate::state::Shared;

/// The approver roles of the policy in force that `caller` holds; refused (and audited) when
/// none.
fn approver_roles(
    req: &HttpRequest,
    shared: &Shared,
    caller: &gateway_actors::Caller,
) -> Result<Vec<String>, GatewayError> {
    let policy = shared.policies.snapshot();
    let all = policy.approver_roles();
    if all.is_empty() {
        let refused = GatewayError::Forbidden("no tool needs approval in the policy in force".into());
        require_role(req, caller, &[]).map_err(|_| refused)?;
        return Ok(Vec::new());
    }
    require_role(req, caller, &all)?;
    Ok(all.into_iter().filter(|r| caller.has_role(r)).map(str::to_owned).collect())
}

/// Query of `GET /admin/approvals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `pending` (default), `approved`, `denied`, `expired`, `withdrawn` or `all`.
    status: Option<String>,
    tool: Option<String>,
    limit: Option<i64>,
}

/// `GET /admin/approvals` (approver roles): requests newest first, pending by default.
pub async fn list(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    let roles = approver_roles(&req, &shared, &caller)?;
    let q = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| GatewayError::InvalidRequest(e.to_string()))?
        .into_inner();
    let limit = q.limit.unwrap_or(100);
    if !(1..=200).contains(&limit) {
        return Err(GatewayError::InvalidRequest("limit must be between 1 and 200".into()));
    }
    let status = match q.status.as_deref() {
        None => Some("pending"),
        Some("all") => None,
        Some(s @ ("pending" | "approved" | "denied" | "expired" | "withdrawn")) => Some(s),
        Some(other) => {
            return Err(GatewayError::InvalidRequest(format!(
                "status {:?} is not one of pending, approved, denied, expired, withdrawn, all",
                crate::error::echo(other)
            )))
        }
    };
    let rows = crate::db::approvals::list(&shared.db, &roles, status, q.tool.as_deref(), limit)
        .await
        .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    // A page stays bounded: long arguments are left to the request's own page.
    const LISTED_ARGUMENTS_MAX: usize = 16 * 1024;
    let listed: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut a = approval_json(r);
            if r.arguments.len() > LISTED_ARGUMENTS_MAX {
                a["arguments"] = json!(format!("{} bytes: see GET /admin/approvals/{}", r.arguments.len(), r.id));
                a["arguments_truncated"] = json!(true);
            }
            a
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "approvals": listed,
        "you": { "sub": caller.user_id, "approver_roles": roles },
    })))
}

/// `GET /admin/approvals/{id}` (its approver role).
pub async fn get(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    approver_roles(&req, &shared, &caller)?;
    let row = crate::db::approvals::get(&shared.db, &id).await.map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    match row.filter(|r| caller.has_role(&r.approver_role)) {
        Some(row) => Ok(HttpResponse::Ok().json(approval_json(&row))),
        None => Err(GatewayError::NotFound("no such approval request for your roles".into())),
    }
}

/// Body of `POST /admin/approvals/{id}/approve|deny`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Why (required; kept in the request and in the audit trail).
    reason: String,
}

async fn decided(
    req: HttpRequest,
    caller: gateway_actors::Caller,
    id: &str,
    payload: web::Payload,
    shared: &Shared,
    decision: Decision,
) -> Result<HttpResponse, GatewayError> {
    approver_roles(&req, shared, &caller)?;
    let outcome = async {
        let body = context::admin_body(&req, payload).await?;
        let body: DecisionBody =
            serde_json::from_slice(&body).map_err(|e| GatewayError::InvalidRequest(format!("body: {e}")))?;
        decide(shared, &caller, context::client_ip(&req), id, decision, &body.reason).await
    }
    .await;
    match outcome {
        Ok(row) => Ok(HttpResponse::Ok().json(approval_json(&row))),
        // A refused decision leaves its row too (the decision's own row is written by `decide`).
        Err(e) => {
            let verb = if decision == Decision::Approve { "approve" } else { "deny" };
            context::audit_admin_outcome(shared, &req, &caller, &format!("approval/{verb} refused"), Err(&e)).await?;
            Err(e)
        }
    }
}

/// `POST /admin/approvals/{id}/approve` (its approver role, not the requester).
pub async fn approve(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    decided(req, caller, &id, payload, &shared, Decision::Approve).await
}

/// `POST /admin/approvals/{id}/deny` (its approver role, not the requester).
pub async fn deny(
    req: HttpRequest,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, GatewayError> {
    decided(req, caller, &id, payload, &shared, Decision::Deny).await
}
