//! Human approval of high-risk calls (policy `tools.<name>.approval`): a held call becomes a
//! job in status `awaiting_approval` with a request in the approval store; a person holding the
//! approver role — never the requester, whatever roles they hold — approves (the job runs on
//! whichever replica claims it) or denies it with a reason; nobody deciding in time denies it;
//! the caller cancelling withdraws it. Everything lives in the database, so any replica
//! decides and a restart loses nothing. The trail tells the whole story under the call's
//! request id: the request row (`awaiting_approval`), the decision row (who, why), and the
//! call's own row when it ends.

use std::sync::Arc;
use std::time::Duration;

use gateway_actors::policy::ApprovalDemand;
use gateway_actors::{Caller, Tool};
use serde_json::{json, Value};

use crate::db::approvals::{self, ApprovalRow, Ending};
use crate::db::jobs::JobRow;
use crate::error::GatewayError;
use crate::jobs::Submission;
use crate::pipeline::{Attempt, Origin};
use crate::state::Shared;

/// Webhook deliveries in flight at once, per replica.
static DELIVERIES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(16);

/// Longest reason an approver may give.
pub const MAX_REASON_CHARS: usize = 1000;

fn unavailable(e: crate::db::DbError) -> GatewayError {
    GatewayError::Unavailable(e.to_string())
}

fn ttl(shared: &Shared) -> chrono::Duration {
    chrono::Duration::from_std(shared.settings.job_result_ttl).unwrap_or(chrono::Duration::days(1))
}

/// Hold an authorised call for approval: store its job (`awaiting_approval`) and its request,
/// and tell the webhook (if configured). Returns the job.
pub async fn hold(
    shared: &Shared,
    caller: &Caller,
    submission: Submission<'_>,
    demand: &ApprovalDemand,
) -> Result<JobRow, GatewayError> {
    let (tool, arguments, request_id) = (submission.tool, submission.arguments, submission.request_id.to_owned());
    let keyed = submission.idempotency_key.is_some();
    let job = crate::jobs::submit_held(shared, caller, submission).await?;
    // A repeated Idempotency-Key answers with the job it already made (and its request).
    if job.status != "awaiting_approval"
        || (keyed && approvals::get(&shared.db, &job.id).await.map_err(unavailable)?.is_some())
    {
        return Ok(job);
    }
    let shown = shared.policies.snapshot().arguments_for_approvers(&tool.name, arguments, demand.show);
    let now = chrono::Utc::now().naive_utc();
    let timeout =
        chrono::Duration::seconds(i64::try_from(demand.timeout_seconds).unwrap_or(i64::MAX / 1000).min(86_400 * 30));
    let row = ApprovalRow {
        id: job.id.clone(),
        tool_name: tool.name.clone(),
        requester: caller.user_id.clone(),
        requester_roles: serde_json::to_string(&caller.roles).unwrap_or_else(|_| "[]".into()),
        workspace: caller.workspace.clone(),
        approver_role: demand.approver_role.clone(),
        arguments: shown.to_string(),
        reasons: serde_json::to_string(&demand.reasons).unwrap_or_else(|_| "[]".into()),
        request_id,
        status: "pending".into(),
        decided_by: None,
        reason: None,
        created_at: now,
        expires_at: now + timeout,
        decided_at: None,
    };
    // One caller cannot bury the approvers' queue (counted and recorded in one step).
    let cap = shared.settings.approval_max_pending_per_user;
    match approvals::insert_capped(&shared.db, &row, cap).await {
        Ok(true) => {}
        outcome => {
            // The job must not wait for a request nobody can see.
            let _ = crate::db::jobs::cancel(&shared.db, &job.id, ttl(shared)).await;
            return Err(match outcome {
                Err(e) => unavailable(e),
                _ => GatewayError::Busy(format!(
                    "{cap} of your calls already wait for approval (APPROVAL_MAX_PENDING_PER_USER); wait for a decision or cancel one"
                )),
            });
        }
    }
    notify(shared, &row);
    Ok(job)
}

/// A request as approvers see it.
pub fn approval_json(row: &ApprovalRow) -> Value {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    json!({
        "id": row.id,
        "tool_name": row.tool_name,
        "requester": row.requester,
        "requester_roles": parse(&row.requester_roles),
        "workspace": row.workspace,
        "approver_role": row.approver_role,
        "arguments": parse(&row.arguments),
        "reasons": parse(&row.reasons),
        "request_id": row.request_id,
        "status": row.status,
        "decided_by": row.decided_by,
        "reason": row.reason,
        "created_at": row.created_at.and_utc().to_rfc3339(),
        "expires_at": row.expires_at.and_utc().to_rfc3339(),
        "decided_at": row.decided_at.map(|t| t.and_utc().to_rfc3339()),
        "links": { "job": format!("/mcp/jobs/{}", row.id) },
    })
}

/// What an approver decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run the call.
    Approve,
    /// Refuse it.
    Deny,
}

/// Decide request `id` as `approver` with `reason`: they must hold its approver role and must
/// not be its requester (four eyes, by subject); the request must still be pending. The
/// decision is audited under the call's request id; a denial also ends the call (its row).
pub async fn decide(
    shared: &Shared,
    approver: &Caller,
    origin_ip: Option<String>,
    id: &str,
    decision: Decision,
    reason: &str,
) -> Result<ApprovalRow, GatewayError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(GatewayError::InvalidRequest("a reason is required".into()));
    }
    if reason.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(GatewayError::InvalidRequest("the reason may not hold control characters".into()));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(GatewayError::InvalidRequest(format!("the reason is longer than {MAX_REASON_CHARS} characters")));
    }
    let row = approvals::get(&shared.db, id).await.map_err(unavailable)?;
    // Requests of other approver roles are as good as absent.
    let Some(row) = row.filter(|r| approver.has_role(&r.approver_role)) else {
        return Err(GatewayError::NotFound("no such approval request for your roles".into()));
    };
    if row.requester == approver.user_id {
        return Err(GatewayError::Forbidden(
            "four eyes: the requester cannot decide their own request, whatever roles they hold".into(),
        ));
    }
    // Approved calls are authorised again, as the policy and the registry are now: a role
    // revoked or a tool withdrawn while the call waited is not overridden by an approval.
    if decision == Decision::Approve {
        if let Err(why) = still_allowed(shared, &row).await? {
            let reason = format!("{reason} [refused on approval: {why}]");
            let message = format!("the policy no longer allows this call: {why}");
            return finish(shared, approver, origin_ip, id, Decision::Deny, &reason, &message).await;
        }
    }
    let message = match decision {
        Decision::Approve => String::new(),
        Decision::Deny => format!("approval denied by {}: {reason}", approver.user_id),
    };
    finish(shared, approver, origin_ip, id, decision, reason, &message).await
}

/// Whether the held call would still pass: its tool active, the policy allowing its requester.
async fn still_allowed(shared: &Shared, row: &ApprovalRow) -> Result<Result<(), String>, GatewayError> {
    let Some(tool) = shared.registry.snapshot().get(&row.tool_name).filter(|t| t.is_active) else {
        return Ok(Err(format!("the tool {} is no longer registered or active", row.tool_name)));
    };
    let job = crate::db::jobs::get(&shared.db, &row.id).await.map_err(unavailable)?;
    let arguments: Value =
        job.and_then(|j| j.arguments).and_then(|a| serde_json::from_str(&a).ok()).unwrap_or_else(|| json!({}));
    Ok(shared.policies.snapshot().check_call(&requester(row), &tool, &arguments).map_err(|d| d.0))
}

/// The held call's caller, as stored with its request.
fn requester(row: &ApprovalRow) -> Caller {
    Caller {
        user_id: row.requester.clone(),
        roles: serde_json::from_str(&row.requester_roles).unwrap_or_default(),
        workspace: row.workspace.clone(),
        scopes: Vec::new(),
    }
}

/// End request `id` as decided (`message`: the held call's error when denied), audit the
/// decision and, for a denial, the call's end.
async fn finish(
    shared: &Shared,
    approver: &Caller,
    origin_ip: Option<String>,
    id: &str,
    decision: Decision,
    reason: &str,
    message: &str,
) -> Result<ApprovalRow, GatewayError> {
    let (ending, error) = match decision {
        Decision::Approve => (Ending::Approved, None),
        Decision::Deny => {
            let denied = GatewayError::Forbidden(message.to_owned());
            (Ending::Denied, Some(crate::error::mcp::stored_failure(&denied, &denied.to_string())))
        }
    };
    let ended =
        approvals::end(&shared.db, id, ending, Some(&approver.user_id), Some(reason), error.as_deref(), ttl(shared))
            .await
            .map_err(unavailable)?;
    let Some(decided) = ended else {
        let now = approvals::get(&shared.db, id).await.map_err(unavailable)?;
        let status = now.map(|r| r.status).unwrap_or_else(|| "gone".into());
        return Err(GatewayError::InvalidRequest(format!("the request is no longer pending (it is {status})")));
    };
    audit_decision(shared, approver, origin_ip, &decided).await?;
    if decision == Decision::Deny {
        audit_call_end(shared, &decided, &GatewayError::Forbidden(message.to_owned())).await;
    }
    Ok(decided)
}

/// The decision's row: the approver, the decision and the reason, under the call's request id.
async fn audit_decision(
    shared: &Shared,
    approver: &Caller,
    client_ip: Option<String>,
    row: &ApprovalRow,
) -> Result<(), GatewayError> {
    let mut attempt = Attempt::new("admin");
    attempt.caller = Some(Arc::new(approver.clone()));
    attempt.tool_name = Some(format!("approval/{} {}", row.status, row.tool_name));
    attempt.allowed = true;
    attempt.arguments_logged = Some(
        json!({ "approval": row.id, "decision": row.status, "requester": row.requester, "reason": row.reason })
            .to_string(),
    );
    let origin = Origin { client_ip, request_id: row.request_id.clone() };
    attempt.finish_durable(shared, origin, Ok(&Value::Null), 200).await
}

/// The held call's own row when it ends without running (denied, expired): its requester,
/// its tool, refused.
async fn audit_call_end(shared: &Shared, row: &ApprovalRow, error: &GatewayError) {
    let mut attempt = Attempt::new("job");
    attempt.caller = Some(Arc::new(requester(row)));
    attempt.tool_name = Some(row.tool_name.clone());
    let origin = Origin { client_ip: None, request_id: row.request_id.clone() };
    if let Err(e) = attempt.finish(shared, origin, Err(error), error.status().as_u16()).await {
        tracing::error!(approval = %row.id, error = %e, "a held call's end row could not be made durable");
    }
}

/// Deny every request past its deadline (any replica may; each is ended once). Run by the
/// job dispatcher's periodic sweep.
pub async fn expire_overdue(shared: &Shared) {
    let overdue = match approvals::overdue(&shared.db, 500).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "looking for expired approval requests failed");
            return;
        }
    };
    for id in overdue {
        let timed_out = GatewayError::Forbidden("approval timed out: nobody decided in time".into());
        let error = crate::error::mcp::stored_failure(&timed_out, &timed_out.to_string());
        match approvals::end(&shared.db, &id, Ending::Expired, None, None, Some(&error), ttl(shared)).await {
            Ok(Some(row)) => {
                tracing::info!(approval = %id, tool = %row.tool_name, "approval request expired: the call is denied");
                audit_call_end(shared, &row, &timed_out).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(approval = %id, error = %e, "expiring an approval request failed"),
        }
    }
}

/// The caller cancelled a held call (its job): its request is withdrawn.
pub async fn withdraw(shared: &Shared, id: &str) {
    if let Err(e) = approvals::end(&shared.db, id, Ending::Withdrawn, None, None, None, ttl(shared)).await {
        tracing::warn!(approval = %id, error = %e, "withdrawing an approval request failed");
    }
}

/// Tell `APPROVAL_WEBHOOK_URL` (when set) that a request waits: its id, tool, requester,
/// approver role, reasons and deadline — never its arguments. Retried with back-off
/// (1, 2, 4, 8 s), then given up (logged); the request waits either way.
fn notify(shared: &Shared, row: &ApprovalRow) {
    let Some(url) = shared.settings.approval_webhook_url.clone() else { return };
    // A hook that hangs cannot gather connections: a few deliveries at a time, the rest
    // skipped (logged; the request waits in the queue either way).
    let Ok(permit) = DELIVERIES.try_acquire() else {
        tracing::warn!(approval = %row.id, "approval webhook busy: this request is not announced");
        return;
    };
    let payload = json!({
        "type": "approval.requested",
        "id": row.id,
        "tool_name": row.tool_name,
        "requester": row.requester,
        "approver_role": row.approver_role,
        "reasons": serde_json::from_str::<Value>(&row.reasons).unwrap_or(Value::Null),
        "created_at": row.created_at.and_utc().to_rfc3339(),
        "expires_at": row.expires_at.and_utc().to_rfc3339(),
        "decide": format!("/admin/approvals/{}", row.id),
    });
    actix_web::rt::spawn(async move {
        let _permit = permit;
        let mut wait = Duration::from_secs(1);
        for attempt in 1..=5 {
            let client = awc::Client::builder().timeout(Duration::from_secs(5)).disable_redirects().finish();
            match client.post(url.as_str()).send_json(&payload).await {
                Ok(resp) if resp.status().is_success() => return,
                Ok(resp) => tracing::warn!(status = resp.status().as_u16(), attempt, "approval webhook refused"),
                Err(e) => tracing::warn!(error = %e, attempt, "approval webhook unreachable"),
            }
            actix_web::rt::time::sleep(wait).await;
            wait *= 2;
        }
        tracing::error!("approval webhook: gave up after 5 attempts");
    });
}

/// Whether a call of `tool` with `arguments` by `caller` must wait for a person.
pub fn demand(shared: &Shared, caller: &Caller, tool: &Tool, arguments: &Value) -> Option<ApprovalDemand> {
    shared.policies.approval(caller, &tool.name, arguments)
}
