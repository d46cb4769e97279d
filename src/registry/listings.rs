//! Backends' own `tools/list` entries (schemas, annotations), cached for a few minutes per
//! tool, for the front door's `tools/list`: fetched once per backend when missing or stale, and
//! forgotten by the registry owner when a backend says its list changed or `tools.yaml` changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use gateway_actors::Tool;
use serde_json::{json, Value};

use crate::backend::McpClient;

const FRESH: Duration = Duration::from_secs(300);
const BACKEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Backend listing entries by gateway tool name.
#[derive(Debug, Default)]
pub struct ToolEntries {
    entries: DashMap<String, (Instant, Value)>,
}

fn entry(tool: &Tool, backend: Option<&Value>) -> Value {
    let mut entry = backend.cloned().unwrap_or_else(|| json!({}));
    entry["name"] = json!(tool.name);
    let backend_description = backend.and_then(|b| b.get("description")).and_then(Value::as_str).unwrap_or("");
    entry["description"] =
        json!(if tool.description.is_empty() { backend_description } else { tool.description.as_str() });
    entry["execution"] = json!({ "taskSupport": tool.task_support.as_str() });
    if entry.get("inputSchema").is_none_or(|s| !s.is_object()) {
        entry["inputSchema"] = tool.input_schema.clone().unwrap_or_else(|| json!({ "type": "object" }));
    }
    entry
}

impl ToolEntries {
    /// Forget the cached entries of `names` (their backend said its list changed).
    pub(in crate::registry) fn forget<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            self.entries.remove(name);
        }
    }

    /// Entries for `tools`, asking each backend whose entries are missing or stale (once per
    /// backend), and falling back to `tools.yaml` when a backend does not answer.
    pub async fn describe(&self, client: &McpClient, tools: &[Arc<Tool>]) -> Vec<Value> {
        let mut stale: BTreeMap<&str, Vec<&Tool>> = BTreeMap::new();
        for tool in tools {
            let fresh = self.entries.get(&tool.name).is_some_and(|e| e.0.elapsed() < FRESH);
            if !fresh {
                stale.entry(tool.backend_url.as_str()).or_default().push(tool);
            }
        }
        for (url, group) in stale {
            match client.list_tools(url, BACKEND_TIMEOUT).await {
                Ok(listed) => {
                    for tool in group {
                        let found =
                            listed.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(tool.backend_name()));
                        self.entries.insert(tool.name.clone(), (Instant::now(), entry(tool, found)));
                    }
                }
                Err(e) => tracing::warn!(backend = url, error = %e, "tools/list from backend failed; using tools.yaml"),
            }
        }
        tools.iter().map(|t| self.entries.get(&t.name).map(|e| e.1.clone()).unwrap_or_else(|| entry(t, None))).collect()
    }
}
