//! The one path every tool call takes, whichever front door it came through (`/mcp/invoke`,
//! `/mcp`, `/sse`): registry lookup, policy check, backend call; then one audit row.

use std::sync::Arc;
use std::time::Instant;

use gateway_actors::{Acquire, Acquired, AuditRecord, AuthorizeCall, Caller, GetTool, Tool, Verdict};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::backend::Observer;
use crate::error::GatewayError;
use crate::state::{Shared, Worker};

/// What is known about one attempt so far, for its audit row.
pub struct Attempt {
    started: Instant,
    /// The authenticated caller, once known.
    pub caller: Option<Arc<Caller>>,
    /// The tool asked for, once known.
    pub tool_name: Option<String>,
    /// SHA-256 of the arguments, once known.
    pub arguments_sha256: Option<String>,
    /// Policy allowed the call.
    pub allowed: bool,
    /// Arguments the policy chose to record, masked.
    pub arguments_logged: Option<String>,
    /// `rest`, `streamable_http` or `sse`.
    pub transport: &'static str,
    /// What is asked: `tools/call`, or an upstream's `prompts/get`, `resources/read`,
    /// `completion/complete` (the row's `kind`).
    pub kind: &'static str,
    /// The call was held for a person's approval (the row's status says so).
    pub held: bool,
}

impl Attempt {
    /// A new attempt through `transport`, timed from now.
    pub fn new(transport: &'static str) -> Self {
        Self {
            started: Instant::now(),
            caller: None,
            tool_name: None,
            arguments_sha256: None,
            arguments_logged: None,
            allowed: false,
            transport,
            kind: gateway_actors::model::TOOL_CALL_KIND,
            held: false,
        }
    }

    fn decision(&self, error: Option<&GatewayError>) -> &'static str {
        match error {
            Some(GatewayError::Unauthenticated { .. }) => "unauthenticated",
            Some(GatewayError::Forbidden(_)) => "denied",
            Some(GatewayError::UnknownTool(_)) => "unknown_tool",
            Some(GatewayError::RateLimited { .. }) => "rate_limited",
            _ if self.allowed => "allowed",
            _ => "rejected",
        }
    }

    /// Audit a refusal that answered before any tool call (no or bad token, foreign origin,
    /// malformed body, too large) or a call dropped unanswered: the row is handed to the writer
    /// at once (never waits — these run where nothing can be awaited, or nobody is waiting).
    pub fn refused(self, shared: &Shared, origin: Origin, error: &GatewayError, http_status: u16) {
        let record = self.row(shared, origin, Err(error), http_status);
        shared.audit.hand_over(record);
    }

    /// The end of every audited call on every transport (REST, `/mcp`, `/sse`, jobs, tasks):
    /// the row is handed over (default), or — with `AUDIT_MODE=strict`, or while more than
    /// `AUDIT_QUEUE_MAX` rows wait — durable (database or spool) before this returns; a row that
    /// cannot be made durable fails the request with 503. `http_status` and `result` are what
    /// the client receives.
    pub async fn finish(
        self,
        shared: &Shared,
        origin: Origin,
        result: Result<&Value, &GatewayError>,
        http_status: u16,
    ) -> Result<(), GatewayError> {
        let durable = shared.settings.audit_strict || shared.audit.overloaded(shared.settings.audit_queue_max);
        let record = self.row(shared, origin, result, http_status);
        if durable {
            make_durable(shared, record).await
        } else {
            shared.audit.hand_over(record);
            Ok(())
        }
    }

    /// [`Attempt::finish`] that always waits for the row to be durable, whatever the mode: an
    /// administrator's action is refused unless the trail shows it.
    pub async fn finish_durable(
        self,
        shared: &Shared,
        origin: Origin,
        result: Result<&Value, &GatewayError>,
        http_status: u16,
    ) -> Result<(), GatewayError> {
        let record = self.row(shared, origin, result, http_status);
        make_durable(shared, record).await
    }

    fn row(
        self,
        shared: &Shared,
        origin: Origin,
        result: Result<&Value, &GatewayError>,
        http_status: u16,
    ) -> AuditRecord {
        let Origin { client_ip, request_id } = origin;
        let error_code = result.err().map(GatewayError::code);
        let (status, message) = match result {
            Ok(_) if self.held => ("awaiting_approval", None),
            Ok(r) if r.get("isError").and_then(Value::as_bool).unwrap_or(false) => ("tool_error", None),
            Ok(_) => ("ok", None),
            Err(e) => (e.kind(), Some(e.to_string())),
        };
        let caller = self.caller.as_deref();
        let decision = self.decision(result.err());
        let registered = self.tool_name.as_deref().filter(|t| shared.registry.knows(t)).unwrap_or("unknown");
        shared.telemetry.metrics().call(registered, decision, status);
        shared.telemetry.metrics().call_latency(registered, decision, self.started.elapsed().as_secs_f64());
        if let Err(GatewayError::RateLimited { limit, .. }) = result {
            shared.telemetry.metrics().rejected(limit);
        }
        AuditRecord {
            id: crate::audit::row_id(),
            // Microseconds: what both databases store, so the row hash verifies after a round trip.
            created_at: {
                let now = chrono::Utc::now();
                chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
            },
            request_id,
            user_id: caller.map(|c| c.user_id.clone()),
            roles: caller.map(|c| c.roles.clone()).unwrap_or_default(),
            workspace: caller.and_then(|c| c.workspace.clone()),
            tool_name: self.tool_name.clone(),
            decision: decision.to_owned(),
            status: status.to_owned(),
            http_status: i32::from(http_status),
            error_code,
            duration_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            client_ip,
            arguments_sha256: self.arguments_sha256,
            error_message: message,
            arguments_logged: self.arguments_logged,
            transport: self.transport.to_owned(),
            kind: self.kind.to_owned(),
            chain_id: String::new(),
            seq: 0,
            prev_hash: String::new(),
            row_hash: String::new(),
        }
    }
}

/// Where an attempt came from, for its row: the client's address (forwarded only from trusted
/// proxies) and the request id the client was told.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The client's address, when known.
    pub client_ip: Option<String>,
    /// The request id (`X-Request-Id`), or the job's submission id.
    pub request_id: String,
}

async fn make_durable(shared: &Shared, record: AuditRecord) -> Result<(), GatewayError> {
    shared.audit.make_durable(record).await.map_err(|e| GatewayError::Unavailable(e.to_string()))
}

/// SHA-256 (hex) of the arguments' JSON (object keys sorted, so equal arguments hash equal).
pub fn digest(arguments: &Value) -> String {
    hex::encode(Sha256::digest(arguments.to_string().as_bytes()))
}

/// Everything before the backend call: look the tool up, check access, apply rate limits.
/// Jobs run this at submission; direct calls run it then [`call_tool`]'s backend call.
pub async fn authorize(
    shared: &Shared,
    worker: &Worker,
    attempt: &mut Attempt,
    caller: Arc<Caller>,
    tool_name: &str,
    arguments: &Arc<Value>,
) -> Result<Arc<Tool>, GatewayError> {
    attempt.caller = Some(caller.clone());
    attempt.tool_name = Some(tool_name.to_owned());
    attempt.arguments_sha256 = Some(digest(arguments));
    if !arguments.is_object() {
        return Err(GatewayError::InvalidRequest("arguments must be a JSON object".into()));
    }
    let tool = worker
        .registry
        .ask(GetTool(tool_name.to_owned()))
        .await
        .map_err(|e| GatewayError::Internal(format!("registry: {e}")))?
        .filter(|t| t.is_active);
    let Some(tool) = tool else {
        // A call naming no tool still costs a row: it is charged to the caller's own limits,
        // so unknown names cannot flood the trail faster than real calls.
        charge(shared, worker, &caller).await?;
        return Err(GatewayError::UnknownTool(crate::error::echo(tool_name).into_owned()));
    };
    authorize_subject(shared, worker, attempt, caller, tool, arguments).await
}

/// [`authorize`] for a subject already found: a tool, or an upstream's prompt or resource
/// (`prompt:<name>`, `resource:<uri>`), which policy, limits and audit treat like a tool.
pub async fn authorize_subject(
    shared: &Shared,
    worker: &Worker,
    attempt: &mut Attempt,
    caller: Arc<Caller>,
    tool: Arc<Tool>,
    arguments: &Arc<Value>,
) -> Result<Arc<Tool>, GatewayError> {
    if shared.settings.audit_strict && shared.audit.not_reaching_database() {
        return Err(GatewayError::Unavailable(
            "audit records cannot be made durable right now (AUDIT_MODE=strict)".into(),
        ));
    }
    attempt.caller = Some(caller.clone());
    if attempt.tool_name.is_none() {
        attempt.tool_name = Some(tool.name.clone());
        attempt.arguments_sha256 = Some(digest(arguments));
    }
    let missing = caller.missing_scopes(&tool.required_scopes);
    if !missing.is_empty() {
        return Err(GatewayError::InsufficientScope(missing.into_iter().map(str::to_owned).collect()));
    }
    let internal = |e: actix::MailboxError| GatewayError::Internal(format!("policy: {e}"));
    let limits = worker
        .policy
        .ask(AuthorizeCall { caller, tool: tool.clone(), arguments: arguments.clone() })
        .await
        .map_err(internal)?
        .map_err(|denied| GatewayError::Forbidden(denied.0))?;
    if shared.settings.pinning == crate::config::Pinning::Block && shared.registry.drifted(&tool.name) {
        return Err(GatewayError::Forbidden(format!(
            "the definition of '{}' changed since it was pinned; an operator must approve it (mcp-gateway tools approve {})",
            tool.name, tool.name
        )));
    }
    shared
        .registry
        .check_arguments(&tool.name, arguments)
        .map_err(|e| GatewayError::InvalidArguments(e.to_string()))?;
    acquire(shared, worker, limits).await?;
    attempt.allowed = true;
    attempt.arguments_logged = shared.policies.snapshot().audit_arguments(&tool.name, arguments);
    Ok(tool)
}

/// Charge one request that calls no tool (a batch's other messages, a job poll) against the
/// caller's own limits (per user and role, not per tool): such requests cost the gateway and
/// its database work too, so a caller cannot send them without bound.
pub async fn charge(shared: &Shared, worker: &Worker, caller: &Arc<Caller>) -> Result<(), GatewayError> {
    let limits = worker
        .policy
        .ask(gateway_actors::GetLimits { caller: caller.clone(), tool: String::new() })
        .await
        .map_err(|e| GatewayError::Internal(format!("policy: {e}")))?;
    let own = limits.into_iter().filter(|l| l.key.starts_with("u:")).collect();
    acquire(shared, worker, own).await
}

/// Take one call's worth of every limit in `limits` (all or nothing), mapping the limiter's
/// verdict to the wire: shared by tool calls and by the messages of an MCP batch.
pub async fn acquire(shared: &Shared, worker: &Worker, limits: Vec<gateway_actors::Limit>) -> Result<(), GatewayError> {
    if limits.is_empty() {
        return Ok(());
    }
    let internal = |e: actix::MailboxError| GatewayError::Internal(format!("rate limiter: {e}"));
    match worker.limiter.ask(Acquire(limits.clone())).await.map_err(internal)? {
        Acquired::Allowed(_) => Ok(()),
        Acquired::FailedOpen(e) => {
            shared.telemetry.metrics().store_error();
            tracing::warn!(error = %e, "rate-limit store unreachable; call allowed (fail-open)");
            Ok(())
        }
        Acquired::Limited(Verdict::Limited { index, retry_after }) => {
            let limit = limits.get(index).ok_or_else(|| GatewayError::Internal("rate limit index".into()))?;
            Err(GatewayError::RateLimited { limit: limit.name.clone(), retry_after, quota: limit.quota })
        }
        Acquired::Limited(other) => Err(GatewayError::Internal(format!("rate limiter answered {other:?}"))),
        Acquired::Unavailable(e) => {
            shared.telemetry.metrics().store_error();
            Err(GatewayError::Unavailable(format!("rate limiter: {e}")))
        }
    }
}

/// Look the tool up, check access, call its backend; returns the backend's `result`. With
/// `watch`, the backend's notifications reach the observer (with `_meta` sent to the backend)
/// and dropping the call cancels it at the backend.
pub async fn call_tool(
    shared: &Shared,
    worker: &Worker,
    attempt: &mut Attempt,
    caller: Arc<Caller>,
    tool_name: &str,
    arguments: Value,
    watch: Option<(&Observer, Option<Value>)>,
) -> Result<Value, GatewayError> {
    let arguments = Arc::new(arguments);
    let client = caller.user_id.clone();
    let tool = authorize(shared, worker, attempt, caller, tool_name, &arguments).await?;
    call_authorized(shared, worker, &tool, arguments, watch, &client).await
}

/// The backend call of a tool call [`authorize`] let through, under the tool's interactive
/// timeout. `client` names the caller's session (its MCP session, else its subject): a
/// `per_client` upstream gives each its own process.
pub async fn call_authorized(
    shared: &Shared,
    worker: &Worker,
    tool: &Tool,
    arguments: Arc<Value>,
    watch: Option<(&Observer, Option<Value>)>,
    client: &str,
) -> Result<Value, GatewayError> {
    // The policy actor has let go of its reference by now: no copy of the arguments is made.
    let arguments = Arc::try_unwrap(arguments).unwrap_or_else(|shared| (*shared).clone());
    call_backend(shared, &worker.backend, tool, arguments, watch, None, client).await
}

/// Forward an authorised request other than `tools/call` (`prompts/get`, `resources/read`,
/// `completion/complete`) to the upstream of `subject`, behind its breaker, under its timeout.
pub async fn forward(
    shared: &Shared,
    worker: &Worker,
    subject: &Tool,
    method: &str,
    params: Value,
    client: &str,
) -> Result<Value, GatewayError> {
    let timeout =
        subject.timeout_seconds.map(std::time::Duration::from_secs).unwrap_or(shared.settings.backend_timeout);
    shared.registry.protection().admit(&subject.backend_url)?;
    let url = shared.registry.route_for(subject, client).await?.unwrap_or_else(|| subject.backend_url.clone());
    let result = worker.backend.request(&url, method, params, timeout, None, true).await;
    let result = result.map_err(|e| shared.registry.scrub(e));
    shared.registry.protection().record(&subject.backend_url, !crate::backend::protect::unhealthy(&result));
    result
}

/// The backend call of an authorised tool call, behind its breaker and concurrency slot.
/// `limit` replaces the tool's interactive timeout (jobs run under their own, longer one).
pub async fn call_backend(
    shared: &Shared,
    backend: &crate::backend::McpClient,
    tool: &Tool,
    arguments: Value,
    watch: Option<(&Observer, Option<Value>)>,
    limit: Option<std::time::Duration>,
    client: &str,
) -> Result<Value, GatewayError> {
    let timeout =
        limit.or(tool.timeout_seconds.map(std::time::Duration::from_secs)).unwrap_or(shared.settings.backend_timeout);
    let breaker = tool.backend_url.as_str();
    shared.registry.protection().admit(breaker)?;
    let _slot = shared.registry.protection().slot(tool).await?;
    // A `per_client` upstream: this client's own program (a copy of the tool routed there).
    let routed;
    let tool = match shared.registry.route_for(tool, client).await? {
        Some(url) => {
            routed = Tool { backend_url: url, ..tool.clone() };
            &routed
        }
        None => tool,
    };
    let started = std::time::Instant::now();
    let result = match watch {
        Some((observer, meta)) => backend.call_tool_observed(tool, arguments, meta, timeout, observer).await,
        None => backend.call_tool(tool, arguments, timeout).await,
    };
    let result = result.map_err(|e| shared.registry.scrub(e));
    shared.registry.protection().record(breaker, !crate::backend::protect::unhealthy(&result));
    shared.telemetry.metrics().backend(
        &tool.name,
        started.elapsed().as_secs_f64(),
        result.as_ref().err().map(GatewayError::kind),
    );
    result
}
