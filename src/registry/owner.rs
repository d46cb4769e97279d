//! The registry's one owner: the only code that publishes a catalog, compiles schemas, records
//! drift or forgets listings. Reloads run one at a time; a definition check runs beside them
//! (it only records what it observed, against the catalog in force when it records it).

use std::rc::Rc;
use std::sync::Arc;

use crate::backend::McpClient;
use crate::closing::Closing;
use crate::config::Settings;
use crate::db::Db;
use crate::telemetry::metrics::Metrics;
use actix::{
    Actor, ActorFutureExt, AsyncContext, AtomicResponse, Context, Handler, Message, ResponseActFuture, WrapFuture,
};

use super::Registry;

/// What the owner works with: the registry it owns, and what a reload and a check need.
#[derive(Clone)]
pub struct Env {
    /// The registry owned.
    pub registry: Arc<Registry>,
    /// Settings (file paths, pinning mode, limits).
    pub settings: Arc<Settings>,
    /// The database (the `tools` table and its pins).
    pub db: Db,
    /// Reloads are counted there.
    pub metrics: Arc<Metrics>,
    /// Checks stop when the gateway shuts down.
    pub closing: Closing,
    /// Called when the tools clients may call changed (they are told `list_changed`).
    pub changed: Arc<dyn Fn() + Send + Sync>,
}

/// Load `tools.yaml` again and publish it when valid.
#[derive(Debug, Message)]
#[rtype(result = "Reloaded")]
pub struct Reload {
    /// What triggered it (`SIGHUP`, `file changed`), for the log.
    pub trigger: &'static str,
}

/// How a reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// The new file is in force.
    Applied,
    /// The file is invalid; the old configuration stays until the file changes again.
    Refused,
    /// The file is valid but could not be applied yet (database down); tried again shortly.
    Deferred,
}

/// A backend announced `notifications/tools/list_changed`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct BackendListChanged {
    /// The backend's URL.
    pub url: String,
}

/// Fetch every backend's definitions: pin, detect drift, load backends' schemas.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct CheckDefinitions;

/// The owner actor (one per gateway, on the arbiter that starts it).
pub struct RegistryOwner {
    env: Env,
    client: Rc<McpClient>,
    /// A check is queued and not started: another request joins it (checks take seconds when a
    /// backend does not answer; they must not pile up behind a short interval).
    check_queued: bool,
    /// A check is running now.
    checking: bool,
    /// A check was asked for while one ran: run one more after it.
    check_again: bool,
}

impl RegistryOwner {
    /// Start the owner of `env.registry` and attach it, so the registry's requests reach it.
    pub fn start(env: Env) -> actix::Addr<Self> {
        let client = Rc::new(env.registry.client(env.settings.max_response_bytes));
        let registry = env.registry.clone();
        let addr = Self { env, client, check_queued: false, checking: false, check_again: false }.start();
        registry.attach(addr.clone());
        addr
    }

    fn closing(&self) -> bool {
        self.env.closing.is_closing()
    }

    /// Queue a definition check unless one is queued already.
    fn check_soon(&mut self, ctx: &mut Context<Self>) {
        if !self.check_queued && !self.closing() {
            self.check_queued = true;
            ctx.notify(CheckDefinitions);
        }
    }
}

impl Actor for RegistryOwner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Definitions are checked every PIN_CHECK_SECONDS, and after every change.
        ctx.run_interval(self.env.settings.pin_check, |owner, ctx| owner.check_soon(ctx));
    }
}

impl Handler<Reload> for RegistryOwner {
    type Result = AtomicResponse<Self, Reloaded>;

    fn handle(&mut self, msg: Reload, _: &mut Context<Self>) -> Self::Result {
        let env = self.env.clone();
        AtomicResponse::new(Box::pin(async move { reload(env, msg.trigger).await }.into_actor(self).map(
            |outcome, owner, ctx| {
                if outcome == Reloaded::Applied {
                    owner.check_soon(ctx);
                }
                outcome
            },
        )))
    }
}

impl Handler<BackendListChanged> for RegistryOwner {
    type Result = ();

    fn handle(&mut self, msg: BackendListChanged, ctx: &mut Context<Self>) {
        let registry = &self.env.registry;
        let catalog = registry.snapshot();
        let names = catalog.all().iter().filter(|t| t.backend_url == msg.url).map(|t| t.name.as_str());
        registry.listings.forget(names);
        tracing::info!(backend = %msg.url, "backend tool list changed; telling connected clients");
        (self.env.changed)();
        // The new definitions are compared with their pins (and their schemas loaded) now.
        self.check_soon(ctx);
    }
}

impl Handler<CheckDefinitions> for RegistryOwner {
    type Result = ResponseActFuture<Self, ()>;

    /// A check fetches every backend's listing (seconds when one does not answer), so it does
    /// not hold the mailbox: a reload or a backend's `list_changed` is handled meanwhile. One
    /// check runs at a time; a request during it queues one more, which runs after it.
    fn handle(&mut self, _: CheckDefinitions, _: &mut Context<Self>) -> Self::Result {
        self.check_queued = false;
        if self.checking {
            self.check_again = true;
            return Box::pin(actix::fut::ready(()));
        }
        self.checking = true;
        let (env, client) = (self.env.clone(), self.client.clone());
        Box::pin(async move { super::pinning::check(&env, &client).await }.into_actor(self).map(|(), owner, ctx| {
            owner.checking = false;
            if std::mem::take(&mut owner.check_again) {
                owner.check_soon(ctx);
            }
        }))
    }
}

/// Load `tools.yaml`, sync it into the `tools` table, and publish the new catalog.
async fn reload(env: Env, trigger: &'static str) -> Reloaded {
    let shared = &env;
    let lookup = |name: &str| std::env::var(name).ok();
    let tools = match crate::config::files::load_tools(&shared.settings.tools_config, &lookup) {
        Ok(tools) => tools,
        Err(e) => {
            shared.metrics.config_reload(false);
            tracing::warn!(error = %e, trigger, "tools.yaml reload refused; the previous tools stay in force");
            return Reloaded::Refused;
        }
    };
    if let Err(e) = crate::db::tools::sync(&shared.db, &tools).await {
        tracing::warn!(error = %e, trigger, "tools.yaml reload deferred: the tools table could not be synced");
        return Reloaded::Deferred;
    }
    let catalog = Arc::new(gateway_actors::Catalog::new(tools));
    env.registry.publish(catalog.clone());
    shared.metrics.config_reload(true);
    let file = shared.settings.tools_config.display();
    tracing::info!(%file, trigger, tools = catalog.all().len(), "tools reloaded");
    (env.changed)();
    // Backends new to this catalog get a notification listener.
    super::listen::spawn(&env);
    Reloaded::Applied
}
