//! The tool registry: the catalog of tools every per-worker `RegistryActor` serves, and
//! everything derived from it — compiled input schemas, definition pins and drift, backends'
//! cached listings, concurrency slots and circuit breakers, and the backends listened to.
//!
//! One owner, [`owner::RegistryOwner`], changes any of it: it handles `Reload` (`tools.yaml`
//! changed or SIGHUP), a backend's `list_changed` and the periodic definition check, and
//! publishes each new catalog as one immutable snapshot. Everything else only reads, through
//! [`Registry`]'s methods; the mutating ones are visible inside this module only.

pub mod input_schemas;
pub mod listen;
pub mod listings;
pub mod offerings;
pub mod owner;
pub mod pinning;
pub mod processes;
pub mod servers;
pub mod sse_upstream;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::Addr;
use dashmap::{DashMap, DashSet};
use gateway_actors::registry::CatalogCell;
use gateway_actors::Catalog;
use serde_json::Value;
use sha2::Digest as _;

use crate::backend::protect::Protection;
use input_schemas::Schemas;
use listings::ToolEntries;
use owner::{BackendListChanged, RegistryOwner, Reload, Reloaded};

/// A tool whose backend definition differs from its pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The tool.
    pub tool: String,
    /// The pinned definition's digest.
    pub pinned: String,
    /// The digest observed now.
    pub observed: String,
}

/// The registry of this gateway.
pub struct Registry {
    catalog: CatalogCell,
    schemas: Schemas,
    drift: DashMap<String, (String, String)>,
    listings: ToolEntries,
    protection: Protection,
    listened: DashSet<String>,
    routes: crate::backend::Routes,
    processes: DashMap<String, Arc<processes::ProcessStatus>>,
    offerings: arc_swap::ArcSwap<offerings::Offerings>,
    per_client: DashSet<String>,
    secrets: arc_swap::ArcSwap<Vec<String>>,
    owner: OnceLock<Addr<RegistryOwner>>,
}

impl Registry {
    /// The registry of `catalog` (input schemas from `tools.yaml` compiled, slots made), with
    /// circuit breakers opening after `breaker_failures` failures for `breaker_cooldown`.
    pub fn new(catalog: Catalog, breaker_failures: u32, breaker_cooldown: Duration) -> Self {
        let schemas = Schemas::default();
        for tool in catalog.all() {
            if let Some(schema) = &tool.input_schema {
                schemas.set(&tool.name, schema);
            }
        }
        let protection = Protection::new(&catalog, breaker_failures, breaker_cooldown);
        Self {
            catalog: Arc::new(arc_swap::ArcSwap::from_pointee(catalog)),
            schemas,
            drift: DashMap::new(),
            listings: ToolEntries::default(),
            protection,
            listened: DashSet::new(),
            routes: crate::backend::Routes::default(),
            processes: DashMap::new(),
            offerings: arc_swap::ArcSwap::from_pointee(offerings::Offerings::default()),
            per_client: DashSet::new(),
            secrets: arc_swap::ArcSwap::from_pointee(Vec::new()),
            owner: OnceLock::new(),
        }
    }

    /// The published snapshot, for a per-worker `RegistryActor` to serve.
    pub fn cell(&self) -> CatalogCell {
        self.catalog.clone()
    }

    /// The catalog in force now.
    pub fn snapshot(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Whether `tool` is registered (active or not).
    pub fn knows(&self, tool: &str) -> bool {
        self.catalog.load().get(tool).is_some()
    }

    /// Check `arguments` against `tool`'s input schema (from `tools.yaml`, or its backend's).
    pub fn check_arguments(&self, tool: &str, arguments: &Value) -> Result<(), input_schemas::SchemaMismatch> {
        self.schemas.check(tool, arguments)
    }

    /// Whether `tool`'s backend definition differs from its pin.
    pub fn drifted(&self, tool: &str) -> bool {
        self.drift.contains_key(tool)
    }

    /// Every drifted tool, by name.
    pub fn drift(&self) -> Vec<Drift> {
        let mut all: Vec<Drift> = self
            .drift
            .iter()
            .map(|e| Drift { tool: e.key().clone(), pinned: e.value().0.clone(), observed: e.value().1.clone() })
            .collect();
        all.sort_by(|a, b| a.tool.cmp(&b.tool));
        all
    }

    /// A client to the registered backends, sharing their MCP sessions with every other client
    /// (awc is `!Send`: one per thread that calls backends).
    pub fn client(&self, max_response_bytes: usize) -> crate::backend::McpClient {
        crate::backend::McpClient::new(self.routes.clone(), max_response_bytes)
    }

    /// Backends' cached `tools/list` entries.
    pub fn listings(&self) -> &ToolEntries {
        &self.listings
    }

    /// Where a call of `client` (its MCP session, or its subject) to `tool` goes: the tool's own
    /// backend, or — for a `per_client` server — that client's own program, started (and
    /// waited for) at its first call.
    pub async fn route_for(
        &self,
        tool: &gateway_actors::Tool,
        client: &str,
    ) -> Result<Option<String>, crate::error::GatewayError> {
        use crate::error::GatewayError;
        let Some(server) = tool.upstream.as_ref().map(|u| u.server.as_str()).filter(|s| self.per_client.contains(*s))
        else {
            return Ok(None);
        };
        let digest = hex::encode(sha2::Sha256::digest(client.as_bytes()));
        let key = format!("{server}#{}", &digest[..16]);
        let url = format!("{}{key}", crate::config::servers::STDIO_SCHEME);
        if self.routes.links.contains_key(&key) {
            return Ok(Some(url));
        }
        let owner = self.owner.get().ok_or_else(|| GatewayError::Unavailable("registry not started".into()))?;
        owner
            .send(owner::SpawnFor {
                server: server.to_owned(),
                key: key.clone(),
                subject: client.split('\n').next().unwrap_or_default().to_owned(),
            })
            .await
            .map_err(|e| GatewayError::Internal(format!("registry: {e}")))??;
        let started = std::time::Instant::now();
        while !self.routes.links.contains_key(&key) {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(GatewayError::BackendUnavailable(format!(
                    "upstream {server}: the client's process did not start"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Some(url))
    }

    /// `error` with every credential the gateway holds for upstreams (header values, header
    /// files, OAuth client secrets, programs' `env` values of 8 characters or more) replaced by
    /// `[REDACTED]`: an upstream that quotes them in its error text does not get them shown to
    /// the caller, stored in a row or logged.
    pub fn scrub(&self, error: crate::error::GatewayError) -> crate::error::GatewayError {
        use crate::error::GatewayError as E;
        let secrets = self.secrets.load();
        if secrets.is_empty() {
            return error;
        }
        let clean = |mut text: String| {
            for secret in secrets.iter() {
                if text.contains(secret.as_str()) {
                    text = text.replace(secret.as_str(), "[REDACTED]");
                }
            }
            text
        };
        match error {
            E::BackendBadReply(m) => E::BackendBadReply(clean(m)),
            E::BackendUnavailable(m) => E::BackendUnavailable(clean(m)),
            E::InvalidArguments(m) => E::InvalidArguments(clean(m)),
            other => other,
        }
    }

    /// Upstream servers' prompts, resources and templates in force.
    pub fn offerings(&self) -> Arc<offerings::Offerings> {
        self.offerings.load_full()
    }

    /// Each stdio server's program: up, restarts, pending calls, last exit (by server name).
    pub fn processes(&self) -> Vec<(String, Arc<processes::ProcessStatus>)> {
        let mut all: Vec<_> = self.processes.iter().map(|e| (e.key().clone(), e.value().clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Concurrency slots per tool and circuit breakers per backend.
    pub fn protection(&self) -> &Protection {
        &self.protection
    }

    /// Ask the owner to load `tools.yaml` again (`trigger` says why, for the log).
    pub async fn reload(&self, trigger: &'static str) -> Reloaded {
        match self.owner.get() {
            Some(owner) => owner.send(Reload { trigger }).await.unwrap_or(Reloaded::Deferred),
            None => Reloaded::Deferred,
        }
    }

    /// Tell the owner that the backend at `url` says its tool list changed.
    pub fn backend_list_changed(&self, url: &str) {
        if let Some(owner) = self.owner.get() {
            owner.do_send(BackendListChanged { url: url.to_owned() });
        }
    }

    /// Ask the owner to fetch backends' definitions now, and wait until it has.
    pub async fn check_definitions(&self) {
        if let Some(owner) = self.owner.get() {
            let _ = owner.send(owner::CheckDefinitions).await;
        }
    }

    fn attach(&self, owner: Addr<RegistryOwner>) {
        let _ = self.owner.set(owner);
    }

    /// Publish `catalog`: schemas from `tools.yaml` set (and those taken out dropped), slots for
    /// new tools, every listing fetched again. Returns the catalog it replaced.
    fn publish(&self, catalog: Arc<Catalog>) -> Arc<Catalog> {
        // A schema taken out of tools.yaml (or a tool removed) stops being enforced; a backend's
        // own schema comes back with the definition check that follows a reload.
        for old in self.catalog.load().all() {
            if old.input_schema.is_some() && catalog.get(&old.name).is_none_or(|t| t.input_schema.is_none()) {
                self.schemas.remove(&old.name);
            }
        }
        for tool in catalog.all() {
            if let Some(schema) = &tool.input_schema {
                self.schemas.set(&tool.name, schema);
            }
        }
        self.protection.add_slots(&catalog);
        let old = self.catalog.swap(catalog.clone());
        self.listings.forget(old.all().iter().chain(catalog.all().iter()).map(|t| t.name.as_str()));
        old
    }

    /// Publish upstreams' prompts, resources and templates.
    fn publish_offerings(&self, offerings: offerings::Offerings) {
        self.offerings.store(Arc::new(offerings));
    }

    /// Enforce a backend's own input schema for `tool` (it has none in `tools.yaml`).
    fn set_backend_schema(&self, tool: &str, schema: &Value) {
        if self.catalog.load().get(tool).is_some_and(|t| t.input_schema.is_none()) {
            self.schemas.set(tool, schema);
        }
    }

    /// Record `tool`'s definition as drifted (`true` when it was not already).
    fn set_drift(&self, tool: &str, pinned: String, observed: String) -> bool {
        self.drift.insert(tool.to_owned(), (pinned, observed)).is_none()
    }

    /// `tool`'s definition matches its pin again.
    fn clear_drift(&self, tool: &str) {
        self.drift.remove(tool);
    }

    /// Whether `url` has no listener yet (and now counts as having one).
    fn first_listener(&self, url: &str) -> bool {
        self.listened.insert(url.to_owned())
    }
}
