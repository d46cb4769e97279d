//! The policy in force (`policy.yaml`): the snapshot every per-worker `PolicyActor` enforces,
//! and its one owner, [`PolicyOwner`], the only code that replaces it (`ReloadPolicy`: parse
//! and validate first; a bad file is refused and the policy in force stays).

use std::sync::{Arc, OnceLock};

use actix::{Actor, Addr, Context, Handler, Message};
use gateway_actors::policy::PolicyCell;
use gateway_actors::Policy;

use crate::telemetry::metrics::Metrics;

/// The policy of this gateway.
pub struct Policies {
    cell: PolicyCell,
    owner: OnceLock<Addr<PolicyOwner>>,
}

impl Policies {
    /// `policy` in force until the owner replaces it.
    pub fn new(policy: Policy) -> Self {
        Self { cell: Arc::new(arc_swap::ArcSwap::from_pointee(policy)), owner: OnceLock::new() }
    }

    /// The published snapshot, for a per-worker `PolicyActor` to enforce.
    pub fn cell(&self) -> PolicyCell {
        self.cell.clone()
    }

    /// The policy in force now.
    pub fn snapshot(&self) -> Arc<Policy> {
        self.cell.load_full()
    }

    /// Whether a call must wait for a person ([`Policy::approval`]), read without taking a
    /// reference to the snapshot (asked on every call).
    pub fn approval(
        &self,
        caller: &gateway_actors::Caller,
        tool: &str,
        arguments: &serde_json::Value,
    ) -> Option<gateway_actors::policy::ApprovalDemand> {
        self.cell.load().approval(caller, tool, arguments)
    }

    /// Ask the owner to load `policy.yaml` again; whether the new file is in force.
    pub async fn reload(&self, trigger: &'static str) -> bool {
        match self.owner.get() {
            Some(owner) => owner.send(ReloadPolicy { trigger }).await.unwrap_or(false),
            None => false,
        }
    }
}

/// Load `policy.yaml` again and put it in force when valid.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct ReloadPolicy {
    /// What triggered it (`SIGHUP`, `file changed`), for the log.
    pub trigger: &'static str,
}

/// The owner of the policy in force.
pub struct PolicyOwner {
    cell: PolicyCell,
    path: std::path::PathBuf,
    metrics: Arc<Metrics>,
    changed: Box<dyn Fn()>,
}

impl PolicyOwner {
    /// Start the owner of `policies`, loading from `path`, counting reloads in `metrics` and
    /// calling `changed` after each applied one (clients may call other tools now).
    pub fn start(
        policies: &Policies,
        path: std::path::PathBuf,
        metrics: Arc<Metrics>,
        changed: impl Fn() + 'static,
    ) -> Addr<Self> {
        let addr = Self { cell: policies.cell.clone(), path, metrics, changed: Box::new(changed) }.start();
        let _ = policies.owner.set(addr.clone());
        addr
    }
}

impl Actor for PolicyOwner {
    type Context = Context<Self>;
}

impl Handler<ReloadPolicy> for PolicyOwner {
    type Result = bool;

    fn handle(&mut self, msg: ReloadPolicy, _: &mut Context<Self>) -> bool {
        let lookup = |name: &str| std::env::var(name).ok();
        match crate::config::files::load_policy(&self.path, &lookup) {
            Ok(policy) => {
                self.cell.store(Arc::new(policy));
                self.metrics.config_reload(true);
                tracing::info!(file = %self.path.display(), trigger = msg.trigger, "policy reloaded");
                (self.changed)();
                true
            }
            Err(e) => {
                self.metrics.config_reload(false);
                let trigger = msg.trigger;
                tracing::warn!(error = %e, trigger, "policy reload refused; the previous policy stays in force");
                false
            }
        }
    }
}
