//! A `tools/call` held for approval, waited for on its request: clients that do not run tasks
//! get the tool's answer once a person approved it and it ran (any replica may run it), or a
//! tool error saying who denied it and why, or that nobody decided in time. Clients that sent a
//! `progressToken` get `notifications/progress` "awaiting approval by <role>" meanwhile. A
//! client that cancels (or goes away) withdraws the request.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Ctx, RpcError};
use crate::clients::{sse_message, EventSink};
use crate::db::jobs::{self, JobRow, TERMINAL};
use crate::error::mcp as errors;

/// How often the held job is looked at (the decision may come from any replica).
const POLL: Duration = Duration::from_millis(250);
/// How often the waiting client hears that the call still waits.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Withdraws the request when the wait ends before the job did (the client cancelled or left).
struct Withdraw {
    shared: actix_web::web::Data<crate::state::Shared>,
    job: Option<JobRow>,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            let shared = self.shared.clone();
            actix_web::rt::spawn(async move {
                // Cancelling the held job withdraws its request (and audits the end).
                if let Ok(Some(row)) = jobs::get(&shared.db, &job.id).await {
                    if !TERMINAL.contains(&row.status.as_str()) {
                        let _ = crate::jobs::cancel(&shared, &row).await;
                    }
                }
            });
        }
    }
}

/// Wait for held job `job` to end; answer as its `tools/call` would have.
pub async fn wait(
    ctx: &Ctx,
    job: JobRow,
    approver_role: &str,
    progress: Option<(Value, EventSink)>,
) -> Result<Value, RpcError> {
    let mut guard = Withdraw { shared: ctx.shared.clone(), job: Some(job.clone()) };
    let started = Instant::now();
    let mut told: Option<Instant> = None;
    let mut step = 0u64;
    loop {
        if let Some((token, events)) = &progress {
            if told.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                step += 1;
                let message = json!({ "jsonrpc": "2.0", "method": "notifications/progress", "params": {
                    "progressToken": token, "progress": step,
                    "message": format!("awaiting approval by {approver_role} ({} s)", started.elapsed().as_secs()) } });
                let _ = events.send(sse_message(&message));
                told = Some(Instant::now());
            }
        }
        let row = jobs::get(&ctx.shared.db, &job.id).await.map_err(errors::internal)?;
        let Some(row) = row else {
            guard.job = None;
            return Err(errors::internal("the held call's job is gone"));
        };
        if TERMINAL.contains(&row.status.as_str()) {
            guard.job = None;
            return Ok(answer(&row));
        }
        actix_web::rt::time::sleep(POLL).await;
    }
}

/// A held call inside a JSON-RPC batch answers at once: the batch's other messages must not
/// wait for a person, and nobody may be left waiting on a connection. The call stays held as
/// a job its caller can follow (`GET /mcp/jobs/{id}`); send it alone to wait for it, or as a task.
pub fn held_in_batch(job: &JobRow, approver_role: &str) -> Value {
    let text = format!(
        "held for approval by {approver_role}: job {} (GET /mcp/jobs/{}); send the call alone to wait for its answer, or as a task",
        job.id, job.id
    );
    json!({ "content": [{ "type": "text", "text": text }], "isError": true, "_meta": { "job": job.id, "status": "awaiting_approval" } })
}

/// The `tools/call` result of an ended job: its tool's result, or a tool error with the reason.
fn answer(row: &JobRow) -> Value {
    let parse = |t: &Option<String>| t.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
    if row.status == "succeeded" {
        if let Some(result) = parse(&row.result) {
            return result;
        }
    }
    let message = parse(&row.error)
        .and_then(|e| e.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| format!("the call ended {}", row.status));
    json!({ "content": [{ "type": "text", "text": message }], "isError": true })
}
