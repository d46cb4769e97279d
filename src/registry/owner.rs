//! The registry's one owner: the only code that publishes a catalog, compiles schemas, records
//! drift or forgets listings. Reloads run one at a time; a definition check runs beside them
//! (it only records what it observed, against the catalog in force when it records it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::processes::{ProcessStatus, StdioProcess, Stop};
use crate::backend::McpClient;
use crate::closing::Closing;
use crate::config::files::ToolsConfig;
use crate::config::servers::{ServerConfig, Transport};
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
    /// Called with a notification method when upstreams' prompts or resources changed
    /// (`notifications/prompts/list_changed`, `notifications/resources/list_changed`).
    pub notify: Arc<dyn Fn(&'static str) + Send + Sync>,
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

/// List the tools of upstream servers (`None`: all) and publish what they list.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Discover {
    /// The servers to ask, by name.
    pub servers: Option<Vec<String>>,
}

/// How long discovery waits for a server's `tools/list`.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The `tools.yaml` in force.
    config: Arc<ToolsConfig>,
    /// Each server's last `tools/list` that was answered (kept while it does not answer).
    discovered: BTreeMap<String, super::offerings::Listing>,
    /// The running stdio programs, with the configuration each was started with.
    processes: HashMap<String, (Arc<ServerConfig>, actix::Recipient<Stop>)>,
    /// Clients' own programs of `per_client` servers, by link key (`<server>#<client>`).
    client_processes: HashMap<String, (String, String, actix::Addr<StdioProcess>)>,
    /// Servers that said their lists changed, discovered together shortly (a server announcing
    /// `list_changed` in a loop costs one discovery a second, not one per message).
    changed: std::collections::BTreeSet<String>,
}

/// A server said its lists changed (or came up).
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Changed {
    server: String,
}

/// Longest a server's `list_changed` waits to be discovered (they gather meanwhile).
const CHANGE_DELAY: Duration = Duration::from_millis(1000);

impl Handler<Changed> for RegistryOwner {
    type Result = ();

    fn handle(&mut self, msg: Changed, ctx: &mut Context<Self>) {
        if self.changed.is_empty() {
            ctx.run_later(CHANGE_DELAY, |owner, ctx| {
                let servers: Vec<String> = std::mem::take(&mut owner.changed).into_iter().collect();
                if !servers.is_empty() {
                    ctx.notify(Discover { servers: Some(servers) });
                }
            });
        }
        self.changed.insert(msg.server);
    }
}

/// Start (unless running) the program of one client of a `per_client` server.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), crate::error::GatewayError>")]
pub struct SpawnFor {
    /// The server.
    pub server: String,
    /// The link key (`<server>#<client digest>`).
    pub key: String,
    /// The client's subject: one subject may hold a quarter of `max_sessions` (at least one).
    pub subject: String,
}

impl RegistryOwner {
    /// Start the owner of `env.registry` and attach it, so the registry's requests reach it.
    /// `config` is the `tools.yaml` the gateway started with (its `tools:` already published).
    pub fn start(env: Env, config: ToolsConfig) -> actix::Addr<Self> {
        let client = Rc::new(env.registry.client(env.settings.max_response_bytes));
        let registry = env.registry.clone();
        let addr = Self {
            env,
            client,
            check_queued: false,
            checking: false,
            check_again: false,
            config: Arc::new(ToolsConfig::default()),
            discovered: BTreeMap::new(),
            processes: HashMap::new(),
            client_processes: HashMap::new(),
            changed: std::collections::BTreeSet::new(),
        };
        let addr = Actor::create(move |ctx| {
            let mut owner = addr;
            owner.apply(config, ctx);
            owner
        });
        registry.attach(addr.clone());
        addr
    }

    /// Put `config` in force for upstream servers: programs of removed or changed stdio
    /// servers stopped, new ones started, credentials set, listings of removed servers
    /// forgotten. Discovery follows.
    fn apply(&mut self, config: ToolsConfig, ctx: &mut Context<Self>) {
        let wanted: HashMap<&str, &ServerConfig> = config.servers.iter().map(|s| (s.name.as_str(), s)).collect();
        let registry = self.env.registry.clone();
        self.processes.retain(|name, (running, addr)| {
            let keep = wanted.get(name.as_str()).is_some_and(|s| **s == **running);
            if !keep {
                addr.do_send(Stop);
                registry.processes.remove(name);
            }
            keep
        });
        self.discovered.retain(|name, _| wanted.get(name.as_str()).is_some_and(|s| self.config.servers.contains(s)));
        // Clients' programs of servers removed or changed stop too.
        let unchanged: HashSet<&str> =
            config.servers.iter().filter(|s| self.config.servers.contains(s)).map(|s| s.name.as_str()).collect();
        self.client_processes.retain(|_, (server, _, addr)| {
            let keep = unchanged.contains(server.as_str());
            if !keep {
                addr.do_send(Stop);
            }
            keep
        });
        registry.per_client.clear();
        for server in config.servers.iter().filter(|s| s.session_mode == crate::config::servers::SessionMode::PerClient)
        {
            registry.per_client.insert(server.name.clone());
        }
        let owner = ctx.address();
        let on_event: super::processes::OnEvent = Arc::new(move |server: &str, _| {
            owner.do_send(Changed { server: server.to_owned() });
        });
        // Credentials are replaced key by key (a call meanwhile sees the old or the new ones,
        // never none), and those of servers no longer configured are dropped after.
        let tokens_before: HashMap<String, Arc<crate::backend::oauth::TokenSource>> =
            registry.routes.tokens.iter().map(|e| (e.key().clone(), e.value().clone())).collect();
        let keys: HashSet<String> = config.servers.iter().map(ServerConfig::backend_key).collect();
        let with_oauth: HashSet<String> = config
            .servers
            .iter()
            .filter(|s| s.credentials.oauth_client_credentials.is_some())
            .map(ServerConfig::backend_key)
            .collect();
        registry.routes.headers.retain(|k, _| keys.contains(k));
        registry.routes.tokens.retain(|k, _| with_oauth.contains(k));
        let mut secrets: Vec<String> = Vec::new();
        for server in &config.servers {
            match server.transport {
                Transport::Stdio if !self.processes.contains_key(&server.name) => {
                    let server = Arc::new(server.clone());
                    let status = Arc::new(ProcessStatus::default());
                    registry.processes.insert(server.name.clone(), status.clone());
                    let process =
                        StdioProcess::new(server.clone(), registry.routes.links.clone(), status, on_event.clone());
                    self.processes.insert(server.name.clone(), (server, process.start().recipient()));
                }
                Transport::Stdio => {}
                Transport::StreamableHttp | Transport::Sse => {
                    let headers = match server.headers() {
                        // Read once: the values (files included) are also the secrets scrubbed
                        // from upstream errors.
                        Ok(headers) => headers
                            .into_iter()
                            .inspect(|(_, v)| secrets.push(v.clone()))
                            .filter_map(|(k, v)| {
                                let name = awc::http::header::HeaderName::from_bytes(k.as_bytes()).ok()?;
                                let mut value = awc::http::header::HeaderValue::from_str(&v).ok()?;
                                value.set_sensitive(true);
                                Some((name, value))
                            })
                            .collect(),
                        Err(e) => {
                            tracing::error!(server = %server.name, error = %e, "credentials unreadable; requests go without them");
                            Vec::new()
                        }
                    };
                    let headers = Arc::new(headers);
                    // A token source is kept across reloads while its configuration is unchanged
                    // (its cached token stays valid).
                    let key = server.backend_key();
                    let token = server.credentials.oauth_client_credentials.as_ref().map(|oauth| {
                        let same = tokens_before.get(&key).filter(|t| t.config() == oauth).cloned();
                        let source =
                            same.unwrap_or_else(|| Arc::new(crate::backend::oauth::TokenSource::new(oauth.clone())));
                        registry.routes.tokens.insert(key.clone(), source.clone());
                        source
                    });
                    if server.transport == Transport::StreamableHttp {
                        registry.routes.headers.insert(key, headers);
                    } else if !self.processes.contains_key(&server.name) {
                        let server = Arc::new(server.clone());
                        let status = Arc::new(ProcessStatus::default());
                        registry.processes.insert(server.name.clone(), status.clone());
                        let links = registry.routes.links.clone();
                        let upstream = super::sse_upstream::SseUpstream::new(
                            server.clone(),
                            headers,
                            token,
                            links,
                            status,
                            on_event.clone(),
                        );
                        self.processes.insert(server.name.clone(), (server, upstream.start().recipient()));
                    }
                }
            }
        }
        for server in &config.servers {
            let c = &server.credentials;
            secrets.extend(c.oauth_client_credentials.iter().map(|o| o.client_secret.0.clone()));
            secrets.extend(server.env.values().map(|v| v.0.clone()).filter(|v| v.len() >= 8));
        }
        // A bearer value's token alone is a secret too (`Bearer abc…` quoted as `abc…`).
        let tokens: Vec<String> =
            secrets.iter().filter_map(|s| s.split_once(' ').map(|(_, t)| t.trim().to_owned())).collect();
        secrets.extend(tokens);
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        registry.secrets.store(Arc::new(secrets));
        self.config = Arc::new(config);
        ctx.notify(Discover { servers: None });
    }

    /// Every tool the catalog should hold: `tools:` entries, then each server's discovered
    /// tools in file order (a name already taken is refused).
    fn merged(&self) -> Vec<gateway_actors::Tool> {
        let mut tools = self.config.tools.clone();
        let mut taken: HashSet<String> = tools.iter().map(|t| t.name.clone()).collect();
        for server in &self.config.servers {
            if let Some(listed) = self.discovered.get(&server.name) {
                tools.extend(super::servers::publish(server, &self.config.separator, &listed.tools, &mut taken));
            }
        }
        tools
    }

    /// Stop every program (the gateway is shutting down).
    fn stop_processes(&mut self) {
        for (_, (_, stop)) in self.processes.drain() {
            stop.do_send(Stop);
        }
        for (_, (_, _, addr)) in self.client_processes.drain() {
            addr.do_send(Stop);
        }
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
        // Definitions are checked (and servers' tools discovered again) every
        // PIN_CHECK_SECONDS, and after every change.
        ctx.run_interval(self.env.settings.pin_check, |owner, ctx| {
            if !owner.config.servers.is_empty() {
                ctx.notify(Discover { servers: None });
            }
            owner.check_soon(ctx);
        });
        let closing = self.env.closing.clone();
        ctx.spawn(async move { closing.closed().await }.into_actor(self).map(|(), owner, _| owner.stop_processes()));
    }
}

impl Handler<Reload> for RegistryOwner {
    type Result = AtomicResponse<Self, Reloaded>;

    fn handle(&mut self, msg: Reload, _: &mut Context<Self>) -> Self::Result {
        let env = self.env.clone();
        let trigger = msg.trigger;
        AtomicResponse::new(Box::pin(async move { load(&env, trigger) }.into_actor(self).then(
            move |loaded, owner, ctx| {
                let outcome: Box<dyn actix::ActorFuture<Self, Output = Reloaded>> = match loaded {
                    Some(config) => {
                        owner.apply(config, ctx);
                        let (env, tools) = (owner.env.clone(), owner.merged());
                        Box::new(async move { publish(&env, tools, trigger, true).await }.into_actor(owner).map(
                            |outcome, owner, ctx| {
                                if outcome == Reloaded::Applied {
                                    owner.check_soon(ctx);
                                }
                                outcome
                            },
                        ))
                    }
                    None => Box::new(actix::fut::ready(Reloaded::Refused)),
                };
                Box::into_pin(outcome)
            },
        )))
    }
}

impl Handler<SpawnFor> for RegistryOwner {
    type Result = Result<(), crate::error::GatewayError>;

    fn handle(&mut self, msg: SpawnFor, _: &mut Context<Self>) -> Self::Result {
        use crate::config::servers::{DEFAULT_IDLE_SECONDS, DEFAULT_MAX_SESSIONS};
        use crate::error::GatewayError;
        let registry = self.env.registry.clone();
        // Programs that stopped (idle, exited) are forgotten.
        self.client_processes.retain(|key, (_, _, addr)| {
            let alive = addr.connected();
            if !alive {
                registry.processes.remove(key);
            }
            alive
        });
        if self.client_processes.contains_key(&msg.key) {
            return Ok(());
        }
        let Some(config) = self.config.servers.iter().find(|s| s.name == msg.server) else {
            return Err(GatewayError::BackendUnavailable(format!("upstream {} is not configured", msg.server)));
        };
        let max = config.max_sessions.unwrap_or(DEFAULT_MAX_SESSIONS);
        let of_server = || self.client_processes.values().filter(|(server, _, _)| *server == msg.server);
        if of_server().count() >= max {
            return Err(GatewayError::Busy(format!(
                "upstream {} runs its most client processes ({max}, max_sessions); retry later",
                msg.server
            )));
        }
        // One subject cannot take every slot from the others.
        let per_subject = (max / 4).max(1);
        if of_server().filter(|(_, subject, _)| *subject == msg.subject).count() >= per_subject {
            return Err(GatewayError::Busy(format!(
                "upstream {}: you hold your most client processes ({per_subject}); end a session or wait for one to go idle",
                msg.server
            )));
        }
        let idle = Duration::from_secs(config.idle_seconds.unwrap_or(DEFAULT_IDLE_SECONDS));
        let status = Arc::new(ProcessStatus::default());
        registry.processes.insert(msg.key.clone(), status.clone());
        let process = StdioProcess::for_client(
            Arc::new(config.clone()),
            msg.key.clone(),
            idle,
            registry.routes.links.clone(),
            status,
        );
        self.client_processes.insert(msg.key, (msg.server, msg.subject, process.start()));
        Ok(())
    }
}

impl Handler<Discover> for RegistryOwner {
    type Result = AtomicResponse<Self, ()>;

    /// Ask the servers for their tools (all at once, each within [`DISCOVERY_TIMEOUT`]), keep
    /// what they answered, and publish the catalog if it changed.
    fn handle(&mut self, msg: Discover, _: &mut Context<Self>) -> Self::Result {
        let targets: Vec<(String, String)> = self
            .config
            .servers
            .iter()
            .filter(|s| msg.servers.as_ref().is_none_or(|only| only.contains(&s.name)))
            .map(|s| (s.name.clone(), s.backend_key()))
            .collect();
        let client = self.client.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let asks = targets.iter().map(|(name, key)| {
                    let client = client.clone();
                    async move { (name.clone(), discover(&client, key).await) }
                });
                futures_util::future::join_all(asks).await
            }
            .into_actor(self)
            .then(|found, owner, _| {
                for (server, listed) in found {
                    match listed {
                        Ok(listed) => {
                            owner.discovered.insert(server, listed);
                        }
                        Err(e) => {
                            tracing::info!(server = %server, error = %e, "upstream server's tools not discovered now; retried later")
                        }
                    }
                }
                let config = &owner.config;
                let offerings = super::offerings::Offerings::build(&config.servers, &config.separator, &owner.discovered);
                let before = owner.env.registry.offerings();
                if before.prompts_digest() != offerings.prompts_digest() {
                    (owner.env.notify)("notifications/prompts/list_changed");
                }
                if before.resources_digest() != offerings.resources_digest() {
                    (owner.env.notify)("notifications/resources/list_changed");
                }
                owner.env.registry.publish_offerings(offerings);
                let (env, tools) = (owner.env.clone(), owner.merged());
                let unchanged = {
                    let current = env.registry.snapshot();
                    current.all().len() == tools.len()
                        && current.all().iter().zip(&tools).all(|(a, b)| **a == *b)
                };
                async move {
                    if unchanged {
                        Reloaded::Refused
                    } else {
                        publish(&env, tools, "discovery", false).await
                    }
                }
                .into_actor(owner)
            })
            .map(|outcome, owner, ctx| {
                if outcome == Reloaded::Applied {
                    owner.check_soon(ctx);
                }
            }),
        ))
    }
}

impl Handler<BackendListChanged> for RegistryOwner {
    type Result = ();

    fn handle(&mut self, msg: BackendListChanged, ctx: &mut Context<Self>) {
        let registry = &self.env.registry;
        let catalog = registry.snapshot();
        let names = catalog.all().iter().filter(|t| t.backend_url == msg.url).map(|t| t.name.as_str());
        registry.listings.forget(names);
        for server in self.config.servers.iter().filter(|s| s.backend_key() == msg.url) {
            ctx.notify(Changed { server: server.name.clone() });
        }
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

/// A server's tools, prompts, resources and templates. The tools must be listed; the rest
/// only when the server offers them (an error there counts as none).
async fn discover(client: &McpClient, key: &str) -> Result<super::offerings::Listing, crate::error::GatewayError> {
    let tools = client.list_tools(key, DISCOVERY_TIMEOUT).await?;
    let (prompts, resources, templates) = tokio::join!(
        client.list_all(key, "prompts/list", "prompts", DISCOVERY_TIMEOUT),
        client.list_all(key, "resources/list", "resources", DISCOVERY_TIMEOUT),
        client.list_all(key, "resources/templates/list", "resourceTemplates", DISCOVERY_TIMEOUT),
    );
    Ok(super::offerings::Listing {
        tools,
        prompts: prompts.unwrap_or_default(),
        resources: resources.unwrap_or_default(),
        templates: templates.unwrap_or_default(),
    })
}

/// Load and validate `tools.yaml` (`None`, logged and counted, when it is invalid).
fn load(env: &Env, trigger: &'static str) -> Option<ToolsConfig> {
    let lookup = |name: &str| std::env::var(name).ok();
    match crate::config::files::load_tools(&env.settings.tools_config, &lookup) {
        Ok(config) => Some(config),
        Err(e) => {
            env.metrics.config_reload(false);
            tracing::warn!(error = %e, trigger, "tools.yaml reload refused; the previous tools stay in force");
            None
        }
    }
}

/// Sync `tools` into the `tools` table and publish them as the new catalog.
async fn publish(env: &Env, tools: Vec<gateway_actors::Tool>, trigger: &'static str, reload: bool) -> Reloaded {
    if let Err(e) = crate::db::tools::sync(&env.db, &tools).await {
        tracing::warn!(error = %e, trigger, "tools not published yet: the tools table could not be synced; retried");
        return Reloaded::Deferred;
    }
    let catalog = Arc::new(gateway_actors::Catalog::new(tools));
    env.registry.publish(catalog.clone());
    if reload {
        env.metrics.config_reload(true);
    }
    let file = env.settings.tools_config.display();
    tracing::info!(%file, trigger, tools = catalog.all().len(), "tools published");
    (env.changed)();
    // Backends new to this catalog get a notification listener.
    super::listen::spawn(env);
    Reloaded::Applied
}
