//! MCP tasks (protocol 2025-11-25) on the job store: `tools/call` with `params.task` creates a
//! job and answers with the task; `tasks/get`, `tasks/result`, `tasks/list` and `tasks/cancel`
//! read and change the same rows `/mcp/jobs` uses. A task answers only to its owner (and admins).

use std::time::Duration;

use serde_json::{json, Value};

use super::{Ctx, RpcError};
use crate::db::jobs::{self, JobRow, TERMINAL};
use crate::error::mcp as errors;
use crate::error::GatewayError;
use crate::jobs::{cancel, submit, visible, Submission};
use crate::pipeline::{self, Attempt};

const POLL_INTERVAL_MS: u64 = 500;

fn status(row: &JobRow) -> &'static str {
    match row.status.as_str() {
        "succeeded" => "completed",
        "failed" | "timed_out" | "denied" => "failed",
        "cancelled" => "cancelled",
        _ => "working",
    }
}

/// A job as an MCP task.
pub fn task_json(ctx: &Ctx, row: &JobRow) -> Value {
    let mut task = json!({
        "taskId": row.id,
        "status": status(row),
        "createdAt": row.created_at.and_utc().to_rfc3339(),
        "lastUpdatedAt": row.updated_at.and_utc().to_rfc3339(),
        "ttl": ctx.shared.settings.job_result_ttl.as_millis() as u64,
        "pollInterval": POLL_INTERVAL_MS,
    });
    let message = row
        .error
        .as_deref()
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .and_then(|e| e.get("message").and_then(Value::as_str).map(str::to_owned));
    if let Some(m) = message {
        task["statusMessage"] = json!(m);
    } else if row.status == "awaiting_approval" {
        task["statusMessage"] = json!("awaiting approval");
    }
    task
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    errors::internal(e)
}

/// `tools/call` with `params.task`: authorise now, run as a job, answer with the task.
pub async fn create(ctx: &Ctx, params: &Value) -> Result<Value, RpcError> {
    let name =
        params.get("name").and_then(Value::as_str).ok_or_else(|| errors::invalid_params("params.name is required"))?;
    let arguments = std::sync::Arc::new(params.get("arguments").cloned().unwrap_or_else(|| json!({})));
    let mut attempt = Attempt::new(ctx.transport);
    let request_id = crate::http::context::request_id(&ctx.req);
    let outcome = async {
        let tool =
            pipeline::authorize(&ctx.shared, &ctx.worker, &mut attempt, ctx.caller.clone(), name, &arguments).await?;
        if tool.task_support == gateway_actors::model::TaskSupport::Forbidden {
            return Err(GatewayError::NotFound(format!(
                "{name} cannot run as a task: call it without params.task (execution.taskSupport: forbidden)"
            )));
        }
        let submission = Submission {
            tool: &tool,
            arguments: &arguments,
            request_id: &request_id,
            idempotency_key: None,
            transport: "mcp_task",
            client_ip: crate::http::context::client_ip(&ctx.req),
        };
        // A call the policy holds for a person: the task is `working` until it is decided.
        match crate::approvals::demand(&ctx.shared, &ctx.caller, &tool, &arguments) {
            Some(demand) => {
                attempt.held = true;
                crate::approvals::hold(&ctx.shared, &ctx.caller, submission, &demand).await
            }
            None => submit(&ctx.shared, &ctx.caller, submission).await,
        }
    }
    .await;
    let answer = match &outcome {
        Ok(row) => Ok(json!({ "task": task_json(ctx, row) })),
        Err(e) => Err(errors::task_creation_refused(name, e)),
    };
    let audited = outcome.as_ref().map(|row| json!({ "task": row.id }));
    match attempt
        .finish(&ctx.shared, crate::http::context::origin(&ctx.req), audited.as_ref().map_err(|e| *e), 200)
        .await
    {
        Ok(()) => answer,
        Err(e) => Err(errors::plain(&e)),
    }
}

async fn owned(ctx: &Ctx, params: &Value) -> Result<JobRow, RpcError> {
    let id = params
        .get("taskId")
        .and_then(Value::as_str)
        .ok_or_else(|| errors::invalid_params("params.taskId is required"))?;
    match jobs::get(&ctx.shared.db, id).await.map_err(internal)? {
        Some(row) if visible(&row, &ctx.caller) => Ok(row),
        _ => Err(errors::invalid_params("unknown task")),
    }
}

/// `tasks/get`, `tasks/result`, `tasks/list`, `tasks/cancel`.
pub async fn handle(ctx: &Ctx, method: &str, params: &Value) -> Result<Value, RpcError> {
    match method {
        "tasks/get" => Ok(task_json(ctx, &owned(ctx, params).await?)),
        "tasks/cancel" => {
            let row = owned(ctx, params).await?;
            // 2025-11-25: a task already in a terminal status cannot be cancelled.
            if !cancel(&ctx.shared, &row).await.map_err(internal)? {
                return Err(errors::invalid_params("cannot cancel the task: it has already ended"));
            }
            Ok(task_json(ctx, &owned(ctx, params).await?))
        }
        "tasks/list" => {
            let before = params.get("cursor").and_then(Value::as_str);
            let rows =
                jobs::list(&ctx.shared.db, Some(&ctx.caller.user_id), None, before, 100).await.map_err(internal)?;
            let mut result = json!({ "tasks": rows.iter().map(|r| task_json(ctx, r)).collect::<Vec<_>>() });
            if rows.len() == 100 {
                result["nextCursor"] = json!(rows.last().map(|r| r.id.clone()));
            }
            Ok(result)
        }
        "tasks/result" => {
            // Blocks until the task is terminal (bounded: at most `MAX_WAITERS` long polls per
            // subject at once, each at most `LONG_POLL`, polling the store less often as it
            // waits), then answers what the call answered.
            let _slot =
                ctx.shared.clients.wait_slot(&ctx.caller.user_id, MAX_WAITERS).ok_or_else(errors::too_many_waiting)?;
            let deadline = std::time::Instant::now() + LONG_POLL;
            let mut pause = Duration::from_millis(100);
            loop {
                let row = owned(ctx, params).await?;
                if TERMINAL.contains(&row.status.as_str()) {
                    let parse = |t: &Option<String>| t.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
                    return match (row.status.as_str(), parse(&row.result), parse(&row.error)) {
                        ("succeeded", Some(result), _) => Ok(result),
                        ("cancelled", _, _) => Err(errors::task_cancelled()),
                        (_, _, error) => Err(errors::task_failed(error.as_ref())),
                    };
                }
                if std::time::Instant::now() > deadline {
                    return Err(errors::task_still_working());
                }
                actix_web::rt::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
        other => Err(errors::method_not_found(other)),
    }
}

/// Longest one `tasks/result` waits before answering "still working".
const LONG_POLL: Duration = Duration::from_secs(60);

/// Most `tasks/result` long polls one subject may have waiting at once.
const MAX_WAITERS: usize = 8;
