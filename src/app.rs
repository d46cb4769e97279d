//! Wiring: load configuration, open the database, start the actors, serve HTTP, and flush the
//! audit log on the way out.
//!
//! App-wide state ([`Shared`]) is built once. Each HTTP worker gets its own [`Worker`]: a
//! `RegistryActor` and a `PolicyActor` started in the worker's own arbiter (so a lookup is a
//! same-thread message, not a cross-thread wake-up) and its own pooled MCP client. The single
//! `AuditWriterActor` runs on the arbiter that called [`start`].

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix::Supervisor;
use actix_web::{web, App, HttpMessage, HttpServer};
use anyhow::Context as _;
use gateway_actors::ratelimit::SystemClock;
use gateway_actors::{
    AuditWriterActor, BatchConfig, Catalog, FailureMode, HealthBoard, LocalStore, Policy, RateLimiterActor, RateStore,
};
use tracing_actix_web::TracingLogger;

use crate::auth::Authenticator;
use crate::closing::Closing;
use crate::config::Settings;
use crate::db::{self, audit::DbAuditSink, Db};
use crate::state::{Shared, Worker};
use crate::telemetry::{GatewaySpans, RequestId};

/// Check everything `serve` would check, without opening the database or a socket.
pub fn check_config(settings: &Settings) -> anyhow::Result<(Vec<gateway_actors::Tool>, Policy, Authenticator)> {
    let lookup = |name: &str| std::env::var(name).ok();
    let tools = crate::config::files::load_tools(&settings.tools_config, &lookup)?;
    let policy = crate::config::files::load_policy(&settings.policy_config, &lookup)?;
    let auth = Authenticator::from_settings(&settings.jwt, &settings.data_dir)?;
    if settings.mcp_anonymous_principal.is_some() && !settings.binds_loopback() {
        anyhow::bail!(
            "MCP_ANONYMOUS_PRINCIPAL is for local conformance testing only and refuses a non-loopback GATEWAY_HOST"
        );
    }
    if auth.dev_mode && !settings.binds_loopback() {
        anyhow::bail!(
            "JWT_SECRET_KEY is not set (dev mode) and GATEWAY_HOST={} is not a loopback address: \
             set JWT_SECRET_KEY (or an RS256/ES256 key) before exposing the gateway",
            settings.host
        );
    }
    Ok((tools, policy, auth))
}

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    closing: Closing,
    done: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// The bound address (useful when the port was 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, finish in-flight requests, flush the audit log, then return.
    pub async fn stop(self) {
        shut_down(&self.closing, &self.handle).await;
        let _ = self.done.await;
    }

    /// Run until a signal (SIGINT/SIGTERM) stops the server and the audit log is flushed.
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// Graceful stop: end the open event streams (they would hold the drain for its whole
/// timeout), then let in-flight requests finish.
async fn shut_down(closing: &Closing, handle: &actix_web::dev::ServerHandle) {
    closing.begin();
    handle.stop(true).await;
}

/// Wait for SIGINT or SIGTERM.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Load configuration, migrate and sync the database, start the actors and serve on `listener`.
///
/// `handle_signals` installs SIGINT/SIGTERM handlers (the binary); tests stop with [`Gateway::stop`].
pub async fn start(settings: Arc<Settings>, listener: TcpListener, handle_signals: bool) -> anyhow::Result<Gateway> {
    let (tools, policy, auth) = check_config(&settings)?;
    if auth.dev_mode {
        tracing::warn!(
            secret_file = %settings.data_dir.join("jwt-secret").display(),
            "DEV MODE: JWT_SECRET_KEY is not set; using a generated secret. Never run like this in production."
        );
    }
    if let Some((sub, _)) = &settings.mcp_anonymous_principal {
        tracing::warn!(principal = %sub, "TEST MODE: MCP requests without a token run as MCP_ANONYMOUS_PRINCIPAL");
    }
    let migrated = db::migrate(&settings.database_url).await.context("running database migrations")?;
    let db = Db::connect(&settings.database_url, settings.database_pool_size).context("opening the database pool")?;
    let report = db::tools::sync(&db, &tools).await.context("syncing tools.yaml into the tools table")?;
    tracing::info!(backend = db.backend_name(), migrated, ?report, tools = tools.len(), "database ready");

    let board = Arc::new(HealthBoard::default());
    let audit_stats = board.stats("audit_writer");
    let batch = BatchConfig {
        max_events: settings.audit_batch_size,
        timeout: settings.audit_flush_interval,
        ..BatchConfig::default()
    };
    let spool_rows = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let set_aside_rows = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let spool = std::rc::Rc::new(
        crate::db::audit::Spool::open(settings.data_dir.join("audit-spool.jsonl"), spool_rows.clone())
            .counting_set_aside(set_aside_rows.clone())
            .with_evidence(Arc::new(crate::db::audit::Evidence::new(settings.audit_hmac_key.clone()))),
    );
    let (sink_db, sink_spool, stats) = (db.clone(), spool.clone(), audit_stats.clone());
    let audit_writes = Arc::new(gateway_actors::audit::WriteStats::default());
    let writes = audit_writes.clone();
    let audit = Supervisor::start(move |_| {
        AuditWriterActor::new(std::rc::Rc::new(DbAuditSink::new(sink_db, sink_spool)), batch, stats)
            .with_write_stats(writes)
    });
    // Rows spooled during an outage go back to the database as soon as it answers.
    let (replay_db, replay_spool) = (db.clone(), spool.clone());
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            if let Err(e) = replay_spool.replay(&replay_db).await {
                tracing::debug!(error = %e, "audit spool replay deferred");
            }
        }
    });

    if let Some(keep) = settings.audit_retention {
        let (retention_db, key) = (db.clone(), settings.audit_hmac_key.clone());
        actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                let cutoff = (chrono::Utc::now() - keep).naive_utc();
                match crate::db::audit::prune(&retention_db, cutoff, key.as_ref()).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, %cutoff, "audit retention removed old rows"),
                    Err(e) => tracing::warn!(error = %e, "audit retention deferred"),
                }
            }
        });
    }

    let catalog = Catalog::new(tools);
    let rate_store: Arc<dyn RateStore> = match &settings.redis_url {
        Some(url) => Arc::new(crate::ratelimit::RedisStore::new(url).map_err(anyhow::Error::msg)?),
        None => Arc::new(LocalStore::new(Arc::new(SystemClock::default()))),
    };
    let rate_failure = if settings.rate_limit_fail_open { FailureMode::Open } else { FailureMode::Closed };
    // One limiter on this arbiter owns eviction of idle in-process cells.
    let (store, stats) = (rate_store.clone(), board.stats("rate_limiter"));
    let _evictor =
        Supervisor::start(move |_| RateLimiterActor::new(store, rate_failure, stats, Some(Duration::from_secs(30))));
    let shared = web::Data::new(Shared {
        settings: settings.clone(),
        auth: Arc::new(auth),
        db,
        audit: crate::audit::Audit::new(audit, audit_stats, spool_rows, set_aside_rows, audit_writes),
        telemetry: crate::telemetry::Telemetry::new(settings.otel_endpoint.as_deref(), board),
        registry: Arc::new(crate::registry::Registry::new(
            catalog,
            settings.breaker_failures,
            settings.breaker_cooldown,
        )),
        policies: Arc::new(crate::policies::Policies::new(policy)),
        clients: Arc::new(crate::clients::Clients::new(settings.mcp_session_idle)),
        closing: Closing::new(),
        limits: crate::ratelimit::Limits::new(rate_store, rate_failure),
        jobs: crate::state::Jobs::new(),
    });
    let clients = shared.clients.clone();
    let registry_env = crate::registry::owner::Env {
        registry: shared.registry.clone(),
        settings: settings.clone(),
        db: shared.db.clone(),
        metrics: shared.telemetry.metrics_handle(),
        closing: shared.closing.clone(),
        changed: Arc::new(move || clients.tools_changed()),
    };
    crate::registry::owner::RegistryOwner::start(registry_env.clone());
    let clients = shared.clients.clone();
    crate::policies::PolicyOwner::start(
        &shared.policies,
        settings.policy_config.clone(),
        shared.telemetry.metrics_handle(),
        move || clients.tools_changed(),
    );
    crate::registry::listen::spawn(&registry_env);
    let (registry, policies) = (shared.registry.clone(), shared.policies.clone());
    crate::config::watch::spawn(
        settings.tools_config.clone(),
        settings.policy_config.clone(),
        Box::new(move |trigger| {
            let registry = registry.clone();
            Box::pin(async move { registry.reload(trigger).await != crate::registry::owner::Reloaded::Deferred })
        }),
        Box::new(move |trigger| {
            let policies = policies.clone();
            Box::pin(async move { policies.reload(trigger).await })
        }),
    );
    // Backends' definitions are checked (pins, schemas) before the gateway serves.
    shared.registry.check_definitions().await;
    let _jobs = {
        use actix::Actor as _;
        crate::jobs::JobDispatcher::new(shared.clone()).start()
    };
    let sweeper = shared.clients.sessions().clone();
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let removed = sweeper.sweep();
            if removed > 0 {
                tracing::debug!(removed, live = sweeper.len(), "expired MCP sessions removed");
            }
        }
    });

    let addr = listener.local_addr()?;
    let factory_shared = shared.clone();
    let mut server = HttpServer::new(move || {
        let worker = web::Data::new(Worker::start(&factory_shared));
        App::new()
            .app_data(factory_shared.clone())
            .app_data(worker)
            .configure(crate::routes::routes)
            .wrap_fn(|req, srv| {
                use actix_web::dev::Service as _;
                // A declared body over the limit is refused before anything else runs, auth included.
                let limit = req.app_data::<web::Data<Shared>>().map_or(usize::MAX, |s| s.settings.max_payload_bytes);
                let declared = req
                    .headers()
                    .get(actix_web::http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok());
                if declared.is_some_and(|n| n > limit) {
                    let error = crate::error::GatewayError::PayloadTooLarge { limit };
                    let refusal = error.to_response(serde_json::Value::Null);
                    // Tool-call endpoints still get their audit row for the refused attempt.
                    let transport = match req.path() {
                        "/mcp/invoke" | "/mcp/jobs" => Some("rest"),
                        "/mcp" => Some("streamable_http"),
                        "/messages" => Some("sse"),
                        _ => None,
                    };
                    if let (Some(transport), Some(shared)) = (transport, req.app_data::<web::Data<Shared>>()) {
                        let origin = crate::http::context::origin(req.request());
                        crate::pipeline::Attempt::new(transport).refused(shared, origin, &error, 413);
                    }
                    let res = req.into_response(refusal).map_into_boxed_body();
                    return Box::pin(async move { Ok(res) }) as futures_util::future::LocalBoxFuture<'static, _>;
                }
                let started = std::time::Instant::now();
                let trace = crate::telemetry::tracecontext::TraceContext::from_header(
                    req.headers().get("traceparent").and_then(|v| v.to_str().ok()),
                );
                // Span bookkeeping only when spans are exported.
                let exporting = req.app_data::<web::Data<Shared>>().is_some_and(|s| s.telemetry.spans().is_some());
                let span = exporting.then(|| {
                    (
                        crate::telemetry::otlp::now_nanos(),
                        trace.trace_id.clone(),
                        trace.span_id.clone(),
                        trace.parent_id.clone(),
                    )
                });
                let fut = trace.scope(srv.call(req));
                Box::pin(async move {
                    let mut res = fut.await?.map_into_boxed_body();
                    if let Some(shared) = res.request().app_data::<web::Data<Shared>>() {
                        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
                        // Known methods only: a client must not be able to mint label values.
                        let method = match res.request().method().as_str() {
                            m @ ("GET" | "POST" | "DELETE" | "PUT" | "PATCH" | "HEAD" | "OPTIONS") => m,
                            _ => "OTHER",
                        }
                        .to_owned();
                        shared.telemetry.metrics().request(
                            &route,
                            &method,
                            res.status().as_u16(),
                            started.elapsed().as_secs_f64(),
                        );
                        if let (Some(otlp), Some((span_start, trace_id, span_id, parent_span_id))) =
                            (shared.telemetry.spans(), span)
                        {
                            otlp.record(crate::telemetry::otlp::Span {
                                trace_id,
                                span_id,
                                parent_span_id,
                                name: format!("{method} {route}"),
                                start_unix_nanos: span_start,
                                end_unix_nanos: crate::telemetry::otlp::now_nanos(),
                                status: res.status().as_u16(),
                                method,
                                route,
                            });
                        }
                    }
                    if res.status() == actix_web::http::StatusCode::UNAUTHORIZED {
                        crate::mcp::wellknown::point_to_metadata(&mut res);
                    }
                    let id = res.request().extensions().get::<RequestId>().map(|r| r.0.clone());
                    if let Some(value) = id.and_then(|id| actix_web::http::header::HeaderValue::from_str(&id).ok()) {
                        res.headers_mut()
                            .insert(actix_web::http::header::HeaderName::from_static("x-request-id"), value);
                    }
                    Ok(res)
                })
            })
            .wrap(TracingLogger::<GatewaySpans>::new())
    })
    .listen(listener)?
    .client_request_timeout(settings.header_timeout)
    .client_disconnect_timeout(Duration::from_secs(1))
    .keep_alive(settings.keep_alive)
    .shutdown_timeout(30);
    if let Some(workers) = settings.workers {
        server = server.workers(workers.max(1));
    }
    // Signals are ours, so open event streams can be closed before the drain starts.
    let server = server.disable_signals().run();
    let handle = server.handle();
    if handle_signals {
        let (closing, handle) = (shared.closing.clone(), handle.clone());
        actix_web::rt::spawn(async move {
            signal().await;
            tracing::info!("shutdown signal received; draining");
            shut_down(&closing, &handle).await;
        });
    }
    tracing::info!(%addr, "mcp-gateway listening");
    let trail = shared.clone();
    let done = actix_web::rt::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
        // Rows a worker produced in its last event-loop turn reach the writer when that worker
        // hands them over (or its thread ends): flush until every enqueued row is stored, for
        // at most a few seconds.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut stored = 0;
        loop {
            match trail.audit.flush().await {
                Ok(Ok(rows)) => stored += rows,
                Ok(Err(e)) => tracing::error!(error = %e, "audit flush on shutdown failed"),
                Err(e) => {
                    tracing::error!(error = %e, "audit writer unreachable on shutdown");
                    break;
                }
            }
            if trail.audit.health().backlog <= 0 || std::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match trail.audit.health().backlog {
            left if left > 0 => tracing::error!(rows = left, "audit rows not stored at shutdown"),
            _ => tracing::info!(rows = stored, "audit log flushed on shutdown"),
        }
    });
    Ok(Gateway { addr, handle, closing: shared.closing.clone(), done })
}
