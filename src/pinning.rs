//! Tool-definition pinning ("rug pull" detection): at start-up and every `PIN_CHECK_SECONDS`,
//! each backend's `tools/list` is fetched and every registered tool's definition (description,
//! schemas, annotations) is hashed. The first digest seen is pinned in the `tools` table; a
//! different one later is drift: logged and flagged (`/health/actors`, `/metrics`,
//! `/admin/tools`), and with `TOOL_PINNING=block` the tool is refused until an operator runs
//! `mcp-gateway tools approve NAME`. The backend's input schema is enforced from then on too.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::web;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::Shared;
use crate::backend::McpClient;
use crate::config::Pinning;

/// The digest of a tool definition (object keys sorted, so it is canonical).
pub fn digest(entry: &Value) -> String {
    let definition = json!({
        "description": entry.get("description"),
        "inputSchema": entry.get("inputSchema"),
        "outputSchema": entry.get("outputSchema"),
        "annotations": entry.get("annotations"),
    });
    hex::encode(Sha256::digest(definition.to_string().as_bytes()))
}

/// Fetch every backend's definitions once: their input schemas are enforced for tools whose
/// `tools.yaml` entry declares none, and (unless `TOOL_PINNING=off`) each definition is
/// compared with its pin.
pub async fn check(shared: &Shared, client: &McpClient) {
    let mut by_backend: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let active = shared.catalog.load().active();
    for tool in &active {
        by_backend.entry(tool.backend_url.as_str()).or_default().push(tool.name.as_str());
    }
    for (url, names) in by_backend {
        let listed = match client.list_tools(url, Duration::from_secs(5)).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::debug!(backend = url, error = %e, "cannot fetch tool definitions for pinning");
                continue;
            }
        };
        for name in names {
            let Some(entry) = listed.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(name)) else {
                continue;
            };
            let has_yaml_schema = shared.catalog.load().get(name).is_some_and(|t| t.input_schema.is_some());
            if let (false, Some(schema)) = (has_yaml_schema, entry.get("inputSchema")) {
                shared.schemas.set(name, schema);
            }
            if shared.settings.pinning == Pinning::Off {
                continue;
            }
            let seen = digest(entry);
            match crate::db::tools::observe(&shared.db, name, &seen).await {
                Ok(pin) if pin.pinned.as_deref() != Some(seen.as_str()) => {
                    let pinned = pin.pinned.unwrap_or_default();
                    if shared.drift.insert(name.to_owned(), (pinned.clone(), seen.clone())).is_none() {
                        tracing::warn!(tool = name, pinned = %pinned, observed = %seen, "tool definition changed since it was pinned");
                    }
                }
                Ok(_) => {
                    shared.drift.remove(name);
                }
                Err(e) => tracing::warn!(tool = name, error = %e, "cannot record a tool's definition digest"),
            }
        }
    }
}

/// Check once now (before the gateway serves), then every `PIN_CHECK_SECONDS` and whenever a
/// reload or a backend's `list_changed` says definitions may have changed, until shutdown.
pub async fn start(shared: web::Data<Shared>) {
    let client = McpClient::new(shared.backend_sessions.clone(), shared.settings.max_response_bytes);
    check(&shared, &client).await;
    actix_web::rt::spawn(async move {
        let mut closing = shared.closing.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(shared.settings.pin_check) => {}
                _ = shared.definitions_changed.notified() => {}
                _ = closing.wait_for(|c| *c) => return,
            }
            check(&shared, &client).await;
        }
    });
}
