//! Watching `policy.yaml` and `tools.yaml`: on SIGHUP and whenever a file changes (checked twice
//! a second), the file's owner is asked to reload it (the registry's owner, the policy's owner).
//! Each parses and validates the file first; a bad file is refused with
//! a log line and the configuration in force stays. A good one replaces the old in one atomic
//! swap, so every call sees one version or the other, never a mix, and no request fails because
//! of the reload. A new tool catalog is synced into the `tools` table first. MCP clients are
//! told with `notifications/tools/list_changed`, since what they may call has changed.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::web;

use crate::state::Shared;
use crate::registry::owner::Reloaded;

/// What identifies a version of a file without reading it.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
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
                if shared.registry.reload(if hangup { "SIGHUP" } else { "file changed" }).await != Reloaded::Deferred {
                    tools_seen = tools_now;
                }
            }
            if hangup || (policy_now.is_some() && policy_now != policy_seen) {
                policy_seen = policy_now;
                shared.policies.reload(if hangup { "SIGHUP" } else { "file changed" }).await;
            }
        }
    });
}
