//! Live reload of `policy.yaml`: on SIGHUP and whenever the file changes (checked every second),
//! the file is parsed and compiled first; a bad file is refused with a log line and the policy
//! in force stays. A good one replaces the old in one atomic swap, so every decision sees one
//! policy or the other, never a mix, and no request fails because of the reload. MCP clients
//! are told with `notifications/tools/list_changed`, since what they may call has changed.
//!
//! `tools.yaml` is read at start-up only: a change to it is logged as needing a restart.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::web;
use serde_json::json;

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
            shared.broadcast(&json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed" }));
            true
        }
        Err(e) => {
            shared.metrics.config_reload(false);
            tracing::warn!(error = %e, trigger = why, "policy reload refused; the previous policy stays in force");
            false
        }
    }
}

/// Start watching: SIGHUP and a once-a-second look at the files' modification stamps.
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
        let (mut policy_seen, tools_seen) = (stamp(&policy_path), stamp(&tools_path));
        let mut tools_warned = false;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let now = stamp(&policy_path);
            if hup.swap(false, Ordering::Relaxed) {
                policy_seen = now;
                reload_policy(&shared, "SIGHUP");
            } else if now.is_some() && now != policy_seen {
                policy_seen = now;
                reload_policy(&shared, "file changed");
            }
            if !tools_warned && stamp(&tools_path) != tools_seen {
                tools_warned = true;
                tracing::warn!(file = %tools_path.display(), "tools.yaml changed; restart the gateway to apply it");
            }
        }
    });
}
