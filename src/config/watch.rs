//! Watching `policy.yaml` and `tools.yaml`: on SIGHUP and whenever a file changes (checked twice
//! a second), the file's owner is asked to reload it (the registry's owner, the policy's owner).
//! Each parses and validates the file first; a bad file is refused with
//! a log line and the configuration in force stays. A good one replaces the old in one atomic
//! swap, so every call sees one version or the other, never a mix, and no request fails because
//! of the reload. A new tool catalog is synced into the `tools` table first. MCP clients are
//! told with `notifications/tools/list_changed`, since what they may call has changed.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What identifies a version of a file without reading it.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Asks a file's owner to reload it (`trigger` says why); answers `false` when the reload was
/// deferred (the file is tried again at the next tick).
pub type Reload = Box<dyn Fn(&'static str) -> futures_util::future::LocalBoxFuture<'static, bool>>;

/// Start watching `tools_path` and `policy_path`: SIGHUP and a twice-a-second look at the files'
/// modification stamps; each change goes to its owner through `tools` or `policy`.
pub fn spawn(tools_path: PathBuf, policy_path: PathBuf, tools: Reload, policy: Reload) {
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
            // The policy first: a revocation must not wait behind a tools.yaml reload.
            if hangup || (policy_now.is_some() && policy_now != policy_seen) {
                policy_seen = policy_now;
                policy(if hangup { "SIGHUP" } else { "file changed" }).await;
            }
            if hangup || (tools_now.is_some() && tools_now != tools_seen) {
                // A deferred reload (database down) is tried again at the next tick.
                if tools(if hangup { "SIGHUP" } else { "file changed" }).await {
                    tools_seen = tools_now;
                }
            }
        }
    });
}
