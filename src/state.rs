//! The state every request handler reads: [`Shared`] (one per gateway, built by `app::start`)
//! and [`Worker`] (one per HTTP worker). Each field is a component with its own API; the
//! handlers, the pipeline and the job runner depend on this module, never on the wiring.

use std::sync::Arc;

use actix::Supervisor;
use gateway_actors::job::JobActor;
use gateway_actors::{Mailbox, PolicyActor, RateLimiterActor, RegistryActor};

use crate::auth::Authenticator;
use crate::backend::McpClient;
use crate::closing::Closing;
use crate::config::Settings;
use crate::db::Db;

/// State shared by all workers.
pub struct Shared {
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Bearer-token verifier.
    pub auth: Arc<Authenticator>,
    /// Database pool.
    pub db: Db,
    /// The audit trail: every attempt's row goes there.
    pub audit: crate::audit::Audit,
    /// Metrics, spans and the actors' counters.
    pub telemetry: crate::telemetry::Telemetry,
    /// The tool registry (catalog, schemas, pins, listings, slots and breakers).
    pub registry: Arc<crate::registry::Registry>,
    /// The policy in force.
    pub policies: Arc<crate::policies::Policies>,
    /// MCP clients on `/mcp` and `/sse`: sessions, open streams, running requests.
    pub clients: Arc<crate::clients::Clients>,
    /// Set to `true` when the gateway starts shutting down (event streams end).
    pub closing: Closing,
    /// The jobs this replica runs.
    pub jobs: Jobs,
    /// Rate limits: the cells' store and what to do when it is unreachable.
    pub limits: crate::ratelimit::Limits,
}

/// State owned by one HTTP worker.
pub struct Worker {
    /// This worker's registry actor.
    pub registry: Mailbox<RegistryActor>,
    /// This worker's policy actor.
    pub policy: Mailbox<PolicyActor>,
    /// This worker's MCP client (awc is `!Send`).
    pub backend: McpClient,
    /// This worker's rate limiter.
    pub limiter: Mailbox<RateLimiterActor>,
}

impl Worker {
    /// Start this worker's actors (in the calling worker's arbiter) and its backend client.
    pub fn start(shared: &Shared) -> Self {
        let registry_stats = shared.telemetry.board().stats("registry");
        let policy_stats = shared.telemetry.board().stats("policy");
        let (catalog, stats) = (shared.registry.cell(), registry_stats.clone());
        let registry = Mailbox::new(Supervisor::start(move |_| RegistryActor::new(catalog, stats)), registry_stats);
        let (policy, stats) = (shared.policies.cell(), policy_stats.clone());
        let policy = Mailbox::new(Supervisor::start(move |_| PolicyActor::new(policy, stats)), policy_stats);
        let backend = shared.registry.client(shared.settings.max_response_bytes);
        let limiter_stats = shared.telemetry.board().stats("rate_limiter");
        let (store, failure, stats) = (shared.limits.store(), shared.limits.failure(), limiter_stats.clone());
        let limiter =
            Mailbox::new(Supervisor::start(move |_| RateLimiterActor::new(store, failure, stats, None)), limiter_stats);
        Self { registry, policy, backend, limiter }
    }
}

/// The jobs this replica runs: its id in the job store (it claims jobs under it) and the actor
/// of each job it runs now (so a cancellation reaches the call).
pub struct Jobs {
    replica_id: String,
    running: dashmap::DashMap<String, actix::Addr<JobActor>>,
}

impl Jobs {
    /// A replica with a fresh id and no job yet.
    pub fn new() -> Self {
        Self { replica_id: format!("replica-{}", uuid::Uuid::new_v4().simple()), running: dashmap::DashMap::new() }
    }

    /// This replica's id in the job store.
    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    /// How many jobs run here now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Job `id` runs here now, as `actor`.
    pub fn started(&self, id: String, actor: actix::Addr<JobActor>) {
        self.running.insert(id, actor);
    }

    /// Job `id` ended here.
    pub fn ended(&self, id: &str) {
        self.running.remove(id);
    }

    /// Tell job `id`'s actor, if it runs here, to stop its call.
    pub fn stop(&self, id: &str) {
        if let Some((_, actor)) = self.running.remove(id) {
            actor.do_send(gateway_actors::job::Cancel);
        }
    }
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}
