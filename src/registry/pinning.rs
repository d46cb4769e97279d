//! Tool-definition pinning ("rug pull" detection): at start-up and every `PIN_CHECK_SECONDS`,
//! each backend's `tools/list` is fetched and every registered tool's definition (description,
//! schemas, annotations) is hashed. The first digest seen is pinned in the `tools` table; a
//! different one later is drift: logged and flagged (`/health/actors`, `/metrics`,
//! `/admin/tools`), and with `TOOL_PINNING=block` the tool is refused until an operator runs
//! `mcp-gateway tools approve NAME`. The backend's input schema is enforced from then on too.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::owner::Env;
use crate::backend::McpClient;
use crate::config::Pinning;

/// The part of a tool's entry that is pinned, as canonical JSON (object keys sorted).
pub fn definition(entry: &Value) -> String {
    json!({
        "description": entry.get("description"),
        "inputSchema": entry.get("inputSchema"),
        "outputSchema": entry.get("outputSchema"),
        "annotations": entry.get("annotations"),
    })
    .to_string()
}

/// The digest of a tool definition (of [`definition`], so it is canonical).
pub fn digest(entry: &Value) -> String {
    hex::encode(Sha256::digest(definition(entry).as_bytes()))
}

/// Fetch every backend's definitions once: their input schemas are enforced for tools whose
/// `tools.yaml` entry declares none, and (unless `TOOL_PINNING=off`) each definition is
/// compared with its pin. Run by the registry's owner only.
pub(super) async fn check(shared: &Env, client: &McpClient) {
    let registry = &shared.registry;
    let mut by_backend: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    let catalog = registry.snapshot();
    let active = catalog.active();
    for tool in &active {
        by_backend.entry(tool.backend_url.as_str()).or_default().push((tool.name.as_str(), tool.backend_name()));
    }
    for (url, names) in by_backend {
        let listed = match client.list_tools(url, Duration::from_secs(5)).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::debug!(backend = url, error = %e, "cannot fetch tool definitions for pinning");
                continue;
            }
        };
        for (name, own) in names {
            let Some(entry) = listed.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(own)) else {
                continue;
            };
            if let Some(schema) = entry.get("inputSchema") {
                registry.set_backend_schema(name, schema);
            }
            if shared.settings.pinning == Pinning::Off {
                continue;
            }
            let text = definition(entry);
            let seen = hex::encode(Sha256::digest(text.as_bytes()));
            match crate::db::tools::observe(&shared.db, name, &seen, &text).await {
                Ok(pin) if pin.pinned.as_deref() != Some(seen.as_str()) => {
                    let pinned = pin.pinned.unwrap_or_default();
                    if registry.set_drift(name, pinned.clone(), seen.clone()) {
                        tracing::warn!(tool = name, pinned = %pinned, observed = %seen, "tool definition changed since it was pinned");
                    }
                }
                Ok(_) => registry.clear_drift(name),
                Err(e) => tracing::warn!(tool = name, error = %e, "cannot record a tool's definition digest"),
            }
        }
    }
}
