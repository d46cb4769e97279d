//! Asynchronous jobs: the dispatcher that claims pending jobs for this replica and starts one
//! `JobActor` per job, the runner that gives a job actor its backend call and its row in the
//! store, and the JSON a client sees. REST jobs (`/mcp/jobs`) and MCP tasks share all of it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context};
use actix_web::web;
use futures_util::future::LocalBoxFuture;
use gateway_actors::job::{JobActor, JobOutcome, JobRunner};
use gateway_actors::{Caller, Tool};
use serde_json::{json, Value};

use crate::backend::{McpClient, Observer};
use crate::db::jobs::{self, JobRow};
use crate::error::GatewayError;
use crate::pipeline::{self, Attempt};
use crate::state::Shared;

fn ttl(shared: &Shared) -> chrono::Duration {
    chrono::Duration::from_std(shared.settings.job_result_ttl).unwrap_or(chrono::Duration::days(1))
}

/// What a new job is: an authorised call and where it came from.
pub struct Submission<'a> {
    /// The authorised tool.
    pub tool: &'a Tool,
    /// Its arguments.
    pub arguments: &'a Value,
    /// The submission's request id.
    pub request_id: &'a str,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// `rest` or `mcp_task`.
    pub transport: &'a str,
    /// The client's address.
    pub client_ip: Option<String>,
}

/// Create a pending job for an authorised call (or return the existing one for a repeated
/// `Idempotency-Key`).
pub async fn submit(shared: &Shared, caller: &Caller, s: Submission<'_>) -> Result<JobRow, GatewayError> {
    store(shared, caller, s, "pending").await
}

/// Create a job held for approval (`awaiting_approval`: no replica claims it until it is
/// approved). See [`crate::approvals::hold`].
pub async fn submit_held(shared: &Shared, caller: &Caller, s: Submission<'_>) -> Result<JobRow, GatewayError> {
    store(shared, caller, s, "awaiting_approval").await
}

async fn store(shared: &Shared, caller: &Caller, s: Submission<'_>, status: &str) -> Result<JobRow, GatewayError> {
    let Submission { tool, arguments, request_id, idempotency_key, transport, client_ip } = s;
    let now = chrono::Utc::now().naive_utc();
    let row = JobRow {
        id: uuid::Uuid::now_v7().to_string(),
        owner: caller.user_id.clone(),
        roles: serde_json::to_string(&caller.roles).unwrap_or_else(|_| "[]".into()),
        workspace: caller.workspace.clone(),
        tool_name: tool.name.clone(),
        arguments: Some(arguments.to_string()),
        status: status.into(),
        request_id: request_id.to_owned(),
        idempotency_key,
        transport: transport.to_owned(),
        claimed_by: None,
        progress: None,
        result: None,
        error: None,
        client_ip,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
        heartbeat_at: None,
        expires_at: None,
    };
    jobs::insert(&shared.db, &row).await.map_err(|e| GatewayError::Unavailable(e.to_string()))
}

/// Whether `caller` may see job `row` (its owner, or an admin).
pub fn visible(row: &JobRow, caller: &Caller) -> bool {
    row.owner == caller.user_id || caller.has_role("admin")
}

/// Cancel a job: in the store, and on this replica if it runs here (others notice on their
/// next heartbeat). Returns whether it was still cancellable; a cancellation is audited under
/// the submission's request id, like any other end of a job.
pub async fn cancel(shared: &Shared, row: &JobRow) -> Result<bool, GatewayError> {
    // A held call's request is withdrawn first: a decision racing the cancel then finds it no
    // longer pending (or, decided first, leaves a job this cancel finds ended or pending).
    if row.status == "awaiting_approval" {
        crate::approvals::withdraw(shared, &row.id).await;
    }
    let cancelled =
        jobs::cancel(&shared.db, &row.id, ttl(shared)).await.map_err(|e| GatewayError::Unavailable(e.to_string()))?;
    shared.jobs.stop(&row.id);
    if cancelled {
        audit_end(shared, row, Err(&GatewayError::Cancelled("the job was cancelled".into()))).await;
    }
    Ok(cancelled)
}

/// The audit row of a job's end (succeeded, failed, timed out, cancelled), under the
/// submission's request id so both rows of one job are found together.
/// It takes the path every call's row takes, so `AUDIT_MODE=strict` holds for jobs too; a row
/// that cannot be made durable is logged (the job's end is already stored).
async fn audit_end(shared: &Shared, row: &JobRow, result: Result<&Value, &GatewayError>) {
    let mut attempt = Attempt::new("job");
    attempt.caller = Some(Arc::new(Caller {
        user_id: row.owner.clone(),
        roles: serde_json::from_str(&row.roles).unwrap_or_default(),
        workspace: row.workspace.clone(),
        scopes: Vec::new(),
    }));
    attempt.tool_name = Some(row.tool_name.clone());
    attempt.allowed = true;
    let origin = crate::pipeline::Origin { client_ip: row.client_ip.clone(), request_id: row.request_id.clone() };
    if let Err(e) = attempt.finish(shared, origin, result, 200).await {
        tracing::error!(job = %row.id, error = %e, "a job's end row could not be made durable");
    }
}

fn parse(text: &Option<String>) -> Value {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null)
}

fn time(t: Option<chrono::NaiveDateTime>) -> Value {
    t.map_or(Value::Null, |t| json!(t.and_utc().to_rfc3339()))
}

/// A job as REST clients see it.
pub fn job_json(row: &JobRow) -> Value {
    json!({
        "id": row.id,
        "status": row.status,
        "tool_name": row.tool_name,
        "owner": row.owner,
        "created_at": time(Some(row.created_at)),
        "updated_at": time(Some(row.updated_at)),
        "started_at": time(row.started_at),
        "finished_at": time(row.finished_at),
        "progress": parse(&row.progress),
        "result": parse(&row.result),
        "error": parse(&row.error),
        "links": { "self": format!("/mcp/jobs/{}", row.id) },
    })
}

/// A job's time limit when its tool sets no `job_timeout_seconds`.
const DEFAULT_JOB_TIMEOUT_SECONDS: u64 = 3600;

/// Runs one claimed job on this replica.
struct Runner {
    shared: web::Data<Shared>,
    backend: Rc<McpClient>,
    row: JobRow,
    tool: Arc<Tool>,
    progress: Rc<RefCell<Option<String>>>,
    db_trouble: Rc<std::cell::Cell<Option<std::time::Instant>>>,
}

impl JobRunner for Runner {
    fn run(&self) -> LocalBoxFuture<'static, JobOutcome> {
        let (shared, backend, tool, progress) =
            (self.shared.clone(), self.backend.clone(), self.tool.clone(), self.progress.clone());
        let owner = self.row.owner.clone();
        let arguments =
            self.row.arguments.as_deref().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_else(|| json!({}));
        Box::pin(async move {
            let token = json!(format!("job-{}", uuid::Uuid::new_v4().simple()));
            let mine = token.clone();
            let observer = Observer::new(move |message: Value| {
                let params = message.get("params");
                if message.get("method").and_then(Value::as_str) == Some("notifications/progress")
                    && params.and_then(|p| p.get("progressToken")) == Some(&mine)
                {
                    let mut p = params.cloned().unwrap_or(Value::Null);
                    if let Some(obj) = p.as_object_mut() {
                        obj.remove("progressToken");
                    }
                    *progress.borrow_mut() = Some(p.to_string());
                }
            });
            let watch = Some((&observer, Some(json!({ "progressToken": token }))));
            // The job's own time limit, not the interactive call's: the actor enforces it too.
            let limit = Duration::from_secs(tool.job_timeout_seconds.unwrap_or(DEFAULT_JOB_TIMEOUT_SECONDS));
            match pipeline::call_backend(&shared, &backend, &tool, arguments, watch, Some(limit), &owner).await {
                Ok(result) => JobOutcome::Succeeded(result),
                Err(GatewayError::BackendTimeout(_)) => JobOutcome::TimedOut,
                Err(e) => JobOutcome::Failed { code: e.code(), message: e.to_string() },
            }
        })
    }

    fn heartbeat(&self) -> LocalBoxFuture<'static, Result<Option<String>, gateway_actors::IoFailure>> {
        let (shared, id, progress) = (self.shared.clone(), self.row.id.clone(), self.progress.borrow_mut().take());
        let trouble = self.db_trouble.clone();
        Box::pin(async move {
            let beat = jobs::heartbeat(&shared.db, &id, shared.jobs.replica_id(), progress).await;
            if beat.is_err() {
                trouble.set(Some(std::time::Instant::now()));
            }
            beat.map_err(gateway_actors::IoFailure::new)
        })
    }

    fn finish(&self, outcome: JobOutcome) -> LocalBoxFuture<'static, ()> {
        let (shared, row, trouble) = (self.shared.clone(), self.row.clone(), self.db_trouble.clone());
        Box::pin(async move {
            let (status, result, error, audit): (&str, Option<String>, Option<String>, Result<Value, GatewayError>) =
                match &outcome {
                    JobOutcome::Succeeded(r) => ("succeeded", Some(r.to_string()), None, Ok(r.clone())),
                    JobOutcome::TimedOut => {
                        let e = GatewayError::BackendTimeout(0);
                        ("timed_out", None, Some(crate::error::mcp::stored_failure(&e, "the job timed out")), Err(e))
                    }
                    JobOutcome::Failed { code, message } => (
                        "failed",
                        None,
                        Some(json!({"code": code, "message": message}).to_string()),
                        Err(GatewayError::BackendUnavailable(message.clone())),
                    ),
                };
            let ttl = ttl(&shared);
            // The backend answered: that answer is kept until the store takes it. While the
            // database is away the job stays here (its slot taken, its heartbeat beating, so
            // no recovery re-runs or fails it) and its end is written when the database
            // returns, as the audit spool does for rows.
            let mut wait = Duration::from_millis(100);
            loop {
                match jobs::finish(
                    &shared.db,
                    &row.id,
                    shared.jobs.replica_id(),
                    status,
                    result.clone(),
                    error.clone(),
                    ttl,
                )
                .await
                {
                    Ok(true) => break,
                    Ok(false) => return, // cancelled or taken over meanwhile: that stands
                    Err(e) => {
                        trouble.set(Some(std::time::Instant::now()));
                        tracing::warn!(job = %row.id, error = %e, "a job's end waits for the database");
                    }
                }
                actix_web::rt::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            audit_end(&shared, &row, audit.as_ref()).await;
        })
    }
}

/// Claims pending jobs for this replica (up to `JOB_MAX_CONCURRENT` running), starts their
/// actors, and recovers jobs whose replica died.
pub struct JobDispatcher {
    shared: web::Data<Shared>,
    backend: Rc<McpClient>,
    claiming: bool,
    /// When this replica last failed to reach the database (claims, heartbeats, job ends).
    /// Recovery waits until the database has answered for a whole `JOB_STALE_SECONDS` since:
    /// during an outage nobody's heartbeats land, so a stale heartbeat then says nothing about
    /// whether its replica stopped.
    db_trouble: Rc<std::cell::Cell<Option<std::time::Instant>>>,
    /// When approval requests past their deadline were last looked for (each second, on the
    /// claim's own connection: no second connection for it).
    last_expiry: std::time::Instant,
}

impl JobDispatcher {
    /// A dispatcher for this replica.
    pub fn new(shared: web::Data<Shared>) -> Self {
        let backend = Rc::new(shared.registry.client(shared.settings.max_response_bytes));
        Self { shared, backend, claiming: false, db_trouble: Rc::default(), last_expiry: std::time::Instant::now() }
    }

    fn claim(&mut self, ctx: &mut Context<Self>) {
        let free = self.shared.settings.job_max_concurrent.saturating_sub(self.shared.jobs.running());
        if self.claiming {
            return;
        }
        // Approval requests past their deadline are denied within a second (any replica).
        let expire = self.last_expiry.elapsed() >= Duration::from_secs(1);
        if expire {
            self.last_expiry = std::time::Instant::now();
        }
        if free == 0 && !expire {
            return;
        }
        self.claiming = true;
        let shared = self.shared.clone();
        let (per_user, per_tool) = (self.shared.settings.job_max_per_user, self.shared.settings.job_max_per_tool);
        let claim = async move {
            let claimed = if free == 0 {
                Ok(Vec::new())
            } else {
                jobs::claim(&shared.db, shared.jobs.replica_id(), free as i64, per_user, per_tool).await
            };
            if expire {
                crate::approvals::expire_overdue(&shared).await;
            }
            claimed
        };
        ctx.spawn(actix::fut::wrap_future::<_, Self>(claim).map(|claimed, act, _| {
            act.claiming = false;
            match claimed {
                Ok(rows) => rows.into_iter().for_each(|row| act.start_job(row)),
                Err(e) => {
                    act.db_trouble.set(Some(std::time::Instant::now()));
                    tracing::warn!(error = %e, "claiming jobs failed")
                }
            }
        }));
    }

    fn start_job(&self, row: JobRow) {
        let shared = self.shared.clone();
        let Some(tool) = shared.registry.snapshot().get(&row.tool_name) else {
            actix_web::rt::spawn(async move {
                let gone = GatewayError::UnknownTool(row.tool_name.clone());
                let error = crate::error::mcp::stored_failure(&gone, "the tool is no longer registered");
                let ended = jobs::finish(
                    &shared.db,
                    &row.id,
                    shared.jobs.replica_id(),
                    "failed",
                    None,
                    Some(error),
                    ttl(&shared),
                )
                .await;
                if matches!(ended, Ok(true)) {
                    audit_end(&shared, &row, Err(&gone)).await;
                }
            });
            return;
        };
        let timeout = Duration::from_secs(tool.job_timeout_seconds.unwrap_or(DEFAULT_JOB_TIMEOUT_SECONDS));
        let heartbeat = (shared.settings.job_stale / 3).max(Duration::from_millis(100));
        let id = row.id.clone();
        let runner = Rc::new(Runner {
            shared: shared.clone(),
            backend: self.backend.clone(),
            row,
            tool,
            progress: Rc::default(),
            db_trouble: self.db_trouble.clone(),
        });
        let (registry, key) = (shared.clone(), id.clone());
        let actor = JobActor::new(
            runner,
            timeout,
            heartbeat,
            Box::new(move || {
                registry.jobs.ended(&key);
            }),
        )
        .start();
        shared.jobs.started(id, actor);
    }

    fn recover(&self, ctx: &mut Context<Self>) {
        let shared = self.shared.clone();
        if self.db_trouble.get().is_some_and(|t| t.elapsed() < shared.settings.job_stale) {
            return; // the database was away lately: give every live replica time to beat first
        }
        let trouble = self.db_trouble.clone();
        let recovery = async move {
            if shared.db.ping().await.is_err() {
                trouble.set(Some(std::time::Instant::now()));
                return;
            }
            let stale = chrono::Duration::from_std(shared.settings.job_stale).unwrap_or(chrono::Duration::seconds(30));
            let before = chrono::Utc::now().naive_utc() - stale;
            let idempotent: Vec<String> =
                shared.registry.snapshot().all().iter().filter(|t| t.idempotent).map(|t| t.name.clone()).collect();
            let stopped = GatewayError::Unavailable("the gateway running this job stopped before it finished".into());
            let failure =
                crate::error::mcp::stored_failure(&stopped, "the gateway running this job stopped before it finished");
            match jobs::recover(&shared.db, before, &idempotent, &failure, ttl(&shared)).await {
                Ok((0, failed)) if failed.is_empty() => {}
                Ok((requeued, failed)) => {
                    tracing::warn!(requeued, failed = failed.len(), "recovered jobs left by a stopped replica");
                    // A job failed by recovery ended too: audited like any other end.
                    for row in &failed {
                        audit_end(&shared, row, Err(&stopped)).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "job recovery failed"),
            }
            if let Err(e) = jobs::purge(&shared.db, None).await {
                tracing::warn!(error = %e, "purging expired jobs failed");
            }
            // Decided approval requests go when their jobs' results would.
            if let Err(e) = crate::db::approvals::purge(&shared.db, chrono::Utc::now().naive_utc() - ttl(&shared)).await
            {
                tracing::warn!(error = %e, "purging decided approval requests failed");
            }
        };
        ctx.spawn(actix::fut::wrap_future(recovery));
    }
}

impl Actor for JobDispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.recover(ctx);
        ctx.run_interval(self.shared.settings.job_poll, |act, ctx| act.claim(ctx));
        let every = (self.shared.settings.job_stale / 2).max(Duration::from_millis(500));
        ctx.run_interval(every, |act, ctx| act.recover(ctx));
    }
}

use actix::ActorFutureExt as _;
