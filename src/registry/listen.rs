//! Listening to backends: for each backend, a task keeps the backend's own server-to-client
//! stream (`GET` on its MCP endpoint, within the session tool calls opened) open, and when the
//! backend announces `notifications/tools/list_changed`, forgets the cached listing and tells
//! every connected client. Backends without such a stream (HTTP 405) are left alone; broken
//! streams reconnect with a back-off.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::owner::Env;
use crate::backend::Watch;

/// Start one listener per distinct active backend URL not listened to yet (on the calling
/// arbiter): at start-up, and after a reload for backends it added.
pub fn spawn(env: &Env) {
    // stdio and legacy SSE servers' notifications arrive on their own link.
    let urls: BTreeSet<String> = env
        .registry
        .snapshot()
        .active()
        .iter()
        .map(|t| t.backend_url.clone())
        .filter(|url| crate::config::servers::link_name(url).is_none())
        .collect();
    for url in urls {
        if env.registry.first_listener(&url) {
            actix_web::rt::spawn(listen(env.clone(), url));
        }
    }
}

async fn listen(shared: Env, url: String) {
    let client = shared.registry.client(shared.settings.max_response_bytes);
    let mut backoff = Duration::from_secs(1);
    loop {
        let watched = client.watch(&url, |message| on_notification(&shared, &url, message));
        let outcome = tokio::select! {
            outcome = watched => outcome,
            _ = shared.closing.closed() => return,
        };
        match outcome {
            Ok(Watch::NoStream) => {
                tracing::debug!(backend = %url, "backend offers no notification stream");
                return;
            }
            Ok(Watch::NoSession) => backoff = Duration::from_secs(2),
            Ok(Watch::Ended) => backoff = Duration::from_secs(1),
            Err(e) => {
                tracing::debug!(backend = %url, error = %e, "backend notification stream unavailable; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shared.closing.closed() => return,
        }
    }
}

fn on_notification(shared: &Env, url: &str, message: Value) {
    if message.get("method").and_then(Value::as_str) == Some("notifications/tools/list_changed") {
        shared.registry.backend_list_changed(url);
    }
}
