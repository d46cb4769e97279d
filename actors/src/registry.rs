//! `RegistryActor`: owns the catalog of tools loaded from `tools.yaml`.
//!
//! The catalog is immutable once built; each worker runs its own `RegistryActor` reading the same
//! `Arc<Catalog>`, so a lookup is a same-thread message and a hash-map read.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, MessageResult, Supervised};

use crate::health::{ActorStats, GetHealth};
use crate::model::Tool;

/// The registered tools, by name, in the order of the configuration file.
#[derive(Debug, Default)]
pub struct Catalog {
    by_name: HashMap<String, Arc<Tool>>,
    ordered: Vec<Arc<Tool>>,
}

impl Catalog {
    /// Build a catalog; later duplicates of a name replace earlier ones.
    pub fn new(tools: Vec<Tool>) -> Self {
        let mut catalog = Catalog::default();
        for tool in tools {
            let tool = Arc::new(tool);
            if let Some(old) = catalog.by_name.insert(tool.name.clone(), tool.clone()) {
                catalog.ordered.retain(|t| !Arc::ptr_eq(t, &old));
            }
            catalog.ordered.push(tool);
        }
        catalog
    }

    /// The tool called `name`, active or not.
    pub fn get(&self, name: &str) -> Option<Arc<Tool>> {
        self.by_name.get(name).cloned()
    }

    /// Every active tool, in configuration order.
    pub fn active(&self) -> Vec<Arc<Tool>> {
        self.ordered.iter().filter(|t| t.is_active).cloned().collect()
    }

    /// Every tool, active or not.
    pub fn all(&self) -> &[Arc<Tool>] {
        &self.ordered
    }
}

/// The catalog in force, replaced whole when `tools.yaml` is reloaded.
pub type CatalogCell = Arc<arc_swap::ArcSwap<Catalog>>;

/// Owns a view of the catalog and answers lookups.
pub struct RegistryActor {
    catalog: CatalogCell,
    stats: Arc<ActorStats>,
}

impl RegistryActor {
    /// An actor serving `catalog`, counting into `stats`.
    pub fn new(catalog: CatalogCell, stats: Arc<ActorStats>) -> Self {
        Self { catalog, stats }
    }
}

impl Actor for RegistryActor {
    type Context = Context<Self>;
}

impl Supervised for RegistryActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.stats.restarted();
    }
}

/// Look a tool up by name; `None` when it was never registered.
#[derive(Debug, Message)]
#[rtype(result = "Option<Arc<Tool>>")]
pub struct GetTool(pub String);

/// List the active tools (the HTTP layer filters them by policy).
#[derive(Debug, Message)]
#[rtype(result = "Vec<Arc<Tool>>")]
pub struct ListTools;

impl Handler<GetTool> for RegistryActor {
    type Result = Option<Arc<Tool>>;

    fn handle(&mut self, msg: GetTool, _: &mut Context<Self>) -> Self::Result {
        self.catalog.load().get(&msg.0)
    }
}

impl Handler<ListTools> for RegistryActor {
    type Result = MessageResult<ListTools>;

    fn handle(&mut self, _: ListTools, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.catalog.load().active())
    }
}

impl Handler<GetHealth> for RegistryActor {
    type Result = MessageResult<GetHealth>;

    fn handle(&mut self, _: GetHealth, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats.report("registry", true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, active: bool) -> Tool {
        Tool {
            name: name.into(),
            description: String::new(),
            backend_url: "http://127.0.0.1:1/mcp".into(),
            risk_level: "low".into(),
            required_roles: vec![],
            required_scopes: vec![],
            is_active: active,
            timeout_seconds: None,
            input_schema: None,
            max_concurrency: None,
            queue_timeout_ms: 0,
            idempotent: false,
            job_timeout_seconds: None,
            task_support: Default::default(),
            upstream: None,
        }
    }

    #[test]
    fn later_duplicate_replaces_earlier_and_inactive_tools_are_not_listed() {
        let catalog = Catalog::new(vec![tool("a", true), tool("b", false), tool("a", false)]);
        assert_eq!(catalog.all().len(), 2);
        assert!(catalog.active().is_empty());
        assert!(catalog.get("b").is_some_and(|t| !t.is_active));
    }

    #[actix::test]
    async fn registry_actor_answers_lookups() {
        let stats = Arc::new(ActorStats::default());
        let catalog = Arc::new(Catalog::new(vec![tool("a", true)]));
        let addr = RegistryActor::new(Arc::new(arc_swap::ArcSwap::new(catalog)), stats.clone()).start();
        let registry = crate::Mailbox::new(addr, stats.clone());
        assert!(registry.ask(GetTool("a".into())).await.unwrap().is_some());
        assert!(registry.ask(GetTool("zz".into())).await.unwrap().is_none());
        assert_eq!(stats.report("registry", true).backlog, 0);
    }
}
