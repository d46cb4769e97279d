//! Wiring: load configuration, open the database, start the actors, serve HTTP, and flush the
//! audit log on the way out.
//!
//! App-wide state ([`Shared`]) is built once. Each HTTP worker gets its own [`Worker`]: a
//! `RegistryActor` and a `PolicyActor` started in the worker's own arbiter (so a lookup is a
//! same-thread message, not a cross-thread wake-up) and its own pooled MCP client. The single
//! `AuditWriterActor` runs on the arbiter that called [`start`].

mod middleware;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix::Supervisor;
use actix_web::{web, App, HttpServer};
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
use crate::telemetry::GatewaySpans;

/// Check everything `serve` would check, without opening the database or a socket.
pub fn check_config(settings: &Settings) -> anyhow::Result<(crate::config::files::ToolsConfig, Policy, Authenticator)> {
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
    // Providers' keys are fetched in the background: the gateway serves meanwhile, and their
    // tokens verify once the keys arrive.
    auth.start_providers();
    if let Some((sub, _)) = &settings.mcp_anonymous_principal {
        tracing::warn!(principal = %sub, "TEST MODE: MCP requests without a token run as MCP_ANONYMOUS_PRINCIPAL");
    }
    let migrated = db::migrate(&settings.database_url).await.context("running database migrations")?;
    let db = Db::connect(&settings.database_url, settings.database_pool_size).context("opening the database pool")?;
    let report = db::tools::sync(&db, &tools.tools).await.context("syncing tools.yaml into the tools table")?;
    tracing::info!(backend = db.backend_name(), migrated, ?report, tools = tools.tools.len(), "database ready");

    let board = Arc::new(HealthBoard::default());
    let limits = start_limits(&settings, &board)?; // can fail: before the first actor starts
    let (audit, spool) = start_audit(&settings, &db, &board);
    let catalog = Catalog::new(tools.tools.clone());
    let jobs = crate::state::Jobs::new();
    let clients = crate::clients::Clients::new(
        settings.mcp_session_idle,
        settings.redis_url.as_deref(),
        &db,
        &settings.database_url,
        jobs.replica_id(),
    )?;
    let shared = web::Data::new(Shared {
        settings: settings.clone(),
        auth: Arc::new(auth),
        db,
        audit,
        telemetry: crate::telemetry::Telemetry::new(settings.otel_endpoint.as_deref(), board),
        registry: Arc::new(crate::registry::Registry::new(
            catalog,
            settings.breaker_failures,
            settings.breaker_cooldown,
        )),
        policies: Arc::new(crate::policies::Policies::new(policy)),
        clients,
        closing: Closing::new(),
        limits,
        jobs,
    });
    start_owners(&shared, tools);
    // Backends' definitions are checked (pins, schemas) before the gateway serves.
    shared.registry.check_definitions().await;
    let _jobs = {
        use actix::Actor as _;
        crate::jobs::JobDispatcher::new(shared.clone()).start()
    };
    spawn_session_sweeper(&shared);

    let addr = listener.local_addr()?;
    let factory_shared = shared.clone();
    let mut server = HttpServer::new(move || {
        let worker = web::Data::new(Worker::start(&factory_shared));
        App::new()
            .app_data(factory_shared.clone())
            .app_data(worker)
            .configure(crate::routes::routes)
            .wrap_fn(middleware::observe)
            .wrap(TracingLogger::<GatewaySpans>::new())
    })
    // Nagle off: a reply written in two parts (a streamed JSON answer: headers, then body)
    // otherwise waits for the client's delayed ACK — 40 ms per call on a kept-alive connection.
    .on_connect(|conn, _| {
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let _ = tcp.set_nodelay(true);
        }
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
    let done = actix_web::rt::spawn(serve_then_flush(server, shared.clone(), spool));
    Ok(Gateway { addr, handle, closing: shared.closing.clone(), done })
}

/// The audit trail: its writer (batches into the database, spooling while it is away), the
/// spool's replay every 2 s, and retention when `AUDIT_RETENTION_DAYS` is set.
fn start_audit(
    settings: &Settings,
    db: &Db,
    board: &HealthBoard,
) -> (crate::audit::Audit, std::rc::Rc<crate::db::audit::Spool>) {
    let audit_stats = board.stats("audit_writer");
    let batch = BatchConfig {
        max_events: settings.audit_batch_size,
        timeout: settings.audit_flush_interval,
        // Concurrent writes only help a database that commits them in parallel; each holds a
        // pool connection, so leave the pool room for the calls' own queries.
        max_in_flight: settings
            .audit_writes
            .unwrap_or(match db {
                Db::Pg(_) => 4,
                Db::Sqlite(_) => 1,
            })
            .min(settings.database_pool_size.saturating_sub(1).max(1)),
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

    (crate::audit::Audit::new(audit, audit_stats, spool_rows, set_aside_rows, audit_writes), spool)
}

/// Rate limits in this process, or in Redis shared by replicas; one limiter on this arbiter
/// evicts idle in-process cells.
fn start_limits(settings: &Settings, board: &HealthBoard) -> anyhow::Result<crate::ratelimit::Limits> {
    let rate_store: Arc<dyn RateStore> = match &settings.redis_url {
        Some(url) => Arc::new(crate::ratelimit::RedisStore::new(url)?),
        None => Arc::new(LocalStore::new(Arc::new(SystemClock::default()))),
    };
    let rate_failure = if settings.rate_limit_fail_open { FailureMode::Open } else { FailureMode::Closed };
    // One limiter on this arbiter owns eviction of idle in-process cells.
    let (store, stats) = (rate_store.clone(), board.stats("rate_limiter"));
    let _evictor =
        Supervisor::start(move |_| RateLimiterActor::new(store, rate_failure, stats, Some(Duration::from_secs(30))));
    Ok(crate::ratelimit::Limits::new(rate_store, rate_failure))
}

/// The owners of the registry and the policy, the backends' listeners and the file watcher.
fn start_owners(shared: &web::Data<Shared>, tools: crate::config::files::ToolsConfig) {
    let settings = &shared.settings;
    let clients = shared.clients.clone();
    let registry_env = crate::registry::owner::Env {
        registry: shared.registry.clone(),
        settings: settings.clone(),
        db: shared.db.clone(),
        metrics: shared.telemetry.metrics_handle(),
        closing: shared.closing.clone(),
        changed: Arc::new(move || clients.tools_changed()),
        notify: {
            let clients = shared.clients.clone();
            Arc::new(move |method| clients.broadcast(&serde_json::json!({ "jsonrpc": "2.0", "method": method })))
        },
    };
    crate::registry::owner::RegistryOwner::start(registry_env.clone(), tools);
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
}

/// Expired MCP sessions are removed every minute.
fn spawn_session_sweeper(shared: &Shared) {
    let sweeper = shared.clients.clone();
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let live = sweeper.sweep().await;
            tracing::debug!(live, "expired MCP sessions removed");
        }
    });
}

/// Serve until stopped, then flush the audit trail: rows a worker produced in its last
/// event-loop turn reach the writer when that worker hands them over (or its thread ends), so
/// flush until every row handed over is stored, for at most a few seconds.
async fn serve_then_flush(
    server: actix_web::dev::Server,
    trail: web::Data<Shared>,
    spool: std::rc::Rc<crate::db::audit::Spool>,
) {
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
    // Rows spooled during a database stall go in now if the database answers (else they
    // stay in the spool, replayed at the next start).
    if spool.held() > 0 {
        let db = trail.db.clone();
        let replay = async move { spool.replay(&db).await };
        match trail.db.within(Duration::from_secs(5), replay).await {
            Some(Ok(rows)) => tracing::info!(rows, "audit spool replayed on shutdown"),
            _ => tracing::warn!("audit rows stay in the spool until the next start"),
        }
    }
    match trail.audit.health().backlog {
        left if left > 0 => tracing::error!(rows = left, "audit rows not stored at shutdown"),
        _ => tracing::info!(rows = stored, "audit log flushed on shutdown"),
    }
}
