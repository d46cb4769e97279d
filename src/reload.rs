//! Live reload of `policy.yaml` and `tools.yaml`: on SIGHUP and whenever a file changes
//! (checked twice a second), the file is parsed and validated first; a bad file is refused with
//! a log line and the configuration in force stays. A good one replaces the old in one atomic
//! swap, so every call sees one version or the other, never a mix, and no request fails because
//! of the reload. A new tool catalog is synced into the `tools` table first. MCP clients are
//! told with `notifications/tools/list_changed`, since what they may call has changed.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::web;

use crate::app::Shared;

/// What identifies a version of a file without reading it.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Load and swap in the policy file; `why` says what triggered it (for the log).
pub fn reload_policy(shared: &Shared, why: &str) -> bool {
    let lookup = |name: &str| std::env::var(name).ok();
    match crate::config_files::load_policy(&shared.settings.policy_config, &lookup) {
        Ok(policy) => {
            shared.policy.store(Arc::new(policy));
            shared.metrics.config_reload(true);
            tracing::info!(file = %shared.settings.policy_config.display(), trigger = why, "policy reloaded");
            shared.clients.tools_changed();
            true
        }
        Err(e) => {
            shared.metrics.config_reload(false);
            tracing::warn!(error = %e, trigger = why, "policy reload refused; the previous policy stays in force");
            false
        }
    }
}

/// How a reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The new file is in force.
    Applied,
    /// The file is invalid; the old configuration stays until the file changes again.
    Refused,
    /// The file is valid but could not be applied yet (database down); tried again shortly.
    Deferred,
}

/// Load `tools.yaml`, sync it into the `tools` table, and swap in the new catalog.
pub async fn reload_tools(shared: &Shared, why: &str) -> Reload {
    let lookup = |name: &str| std::env::var(name).ok();
    let tools = match crate::config_files::load_tools(&shared.settings.tools_config, &lookup) {
        Ok(tools) => tools,
        Err(e) => {
            shared.metrics.config_reload(false);
            tracing::warn!(error = %e, trigger = why, "tools.yaml reload refused; the previous tools stay in force");
            return Reload::Refused;
        }
    };
    if let Err(e) = crate::db::tools::sync(&shared.db, &tools).await {
        tracing::warn!(error = %e, trigger = why, "tools.yaml reload deferred: the tools table could not be synced");
        return Reload::Deferred;
    }
    let catalog = Arc::new(gateway_actors::Catalog::new(tools));
    // A schema taken out of tools.yaml (or a tool removed) stops being enforced; a backend's own
    // schema comes back with the definition check this reload triggers.
    for old in shared.catalog.load().all() {
        if old.input_schema.is_some() && catalog.get(&old.name).is_none_or(|t| t.input_schema.is_none()) {
            shared.schemas.remove(&old.name);
        }
    }
    for tool in catalog.all() {
        if let Some(schema) = &tool.input_schema {
            shared.schemas.set(&tool.name, schema);
        }
    }
    shared.protection.add_slots(&catalog);
    let old = shared.catalog.swap(catalog.clone());
    // Backends' own listings are fetched again for every tool, old or new.
    shared.tool_entries.forget(old.all().iter().chain(catalog.all().iter()).map(|t| t.name.as_str()));
    shared.metrics.config_reload(true);
    tracing::info!(file = %shared.settings.tools_config.display(), trigger = why, tools = catalog.all().len(), "tools reloaded");
    shared.clients.tools_changed();
    shared.definitions_changed.notify_one();
    Reload::Applied
}

/// Start watching: SIGHUP and a twice-a-second look at the files' modification stamps.
pub fn spawn(shared: web::Data<Shared>) {
    let policy_path = shared.settings.policy_config.clone();
    let tools_path = shared.settings.tools_config.clone();
    let hup = Arc::new(std::sync::atomic::AtomicBool::new(false));
    #[cfg(unix)]
    {
        let hup = hup.clone();
        actix_web::rt::spawn(async move {
            let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                tracing::warn!("SIGHUP cannot be watched; policy reload on file change only");
                return;
            };
            while signal.recv().await.is_some() {
                hup.store(true, Ordering::Relaxed);
            }
        });
    }
    actix_web::rt::spawn(async move {
        let (mut policy_seen, mut tools_seen) = (stamp(&policy_path), stamp(&tools_path));
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let (policy_now, tools_now) = (stamp(&policy_path), stamp(&tools_path));
            let hangup = hup.swap(false, Ordering::Relaxed);
            if hangup || (tools_now.is_some() && tools_now != tools_seen) {
                // A deferred reload (database down) is tried again at the next tick.
                if reload_tools(&shared, if hangup { "SIGHUP" } else { "file changed" }).await != Reload::Deferred {
                    tools_seen = tools_now;
                    // Backends new to this reload get a notification listener.
                    crate::backend::listen::spawn(shared.clone());
                }
            }
            if hangup || (policy_now.is_some() && policy_now != policy_seen) {
                policy_seen = policy_now;
                reload_policy(&shared, if hangup { "SIGHUP" } else { "file changed" });
            }
        }
    });
}
