//! `tools/list`: the tools the caller may call, described with their backends' own
//! `tools/list` entries (schemas, annotations), cached for a few minutes, paginated with opaque
//! cursors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use dashmap::DashMap;
use gateway_actors::{FilterTools, ListTools, Tool};
use serde_json::{json, Value};

use super::{Ctx, RpcError};
use crate::error::mcp as errors;

/// Tools per `tools/list` page.
pub const PAGE_SIZE: usize = 100;
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
    pub fn forget<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            self.entries.remove(name);
        }
    }

    /// Entries for `tools`, asking each backend whose entries are missing or stale (once per
    /// backend), and falling back to `tools.yaml` when a backend does not answer.
    async fn describe(&self, ctx: &Ctx, tools: &[Arc<Tool>]) -> Vec<Value> {
        let mut stale: BTreeMap<&str, Vec<&Tool>> = BTreeMap::new();
        for tool in tools {
            let fresh = self.entries.get(&tool.name).is_some_and(|e| e.0.elapsed() < FRESH);
            if !fresh {
                stale.entry(tool.backend_url.as_str()).or_default().push(tool);
            }
        }
        for (url, group) in stale {
            match ctx.worker.backend.list_tools(url, BACKEND_TIMEOUT).await {
                Ok(listed) => {
                    for tool in group {
                        let found = listed.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(&tool.name));
                        self.entries.insert(tool.name.clone(), (Instant::now(), entry(tool, found)));
                    }
                }
                Err(e) => tracing::warn!(backend = url, error = %e, "tools/list from backend failed; using tools.yaml"),
            }
        }
        tools.iter().map(|t| self.entries.get(&t.name).map(|e| e.1.clone()).unwrap_or_else(|| entry(t, None))).collect()
    }
}

fn cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("tools:{offset}"))
}

fn offset(cursor: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(raw).ok()?.strip_prefix("tools:")?.parse().ok()
}

/// `tools/list` for the caller.
pub async fn list(ctx: &Ctx, params: &Value) -> Result<Value, RpcError> {
    let start = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => offset(c).ok_or_else(|| errors::invalid_params("invalid cursor"))?,
        Some(_) => return Err(errors::invalid_params("invalid cursor")),
    };
    let internal = |e: actix::MailboxError| errors::internal(e);
    let tools = ctx.worker.registry.ask(ListTools).await.map_err(internal)?;
    let mut allowed =
        ctx.worker.policy.ask(FilterTools { caller: ctx.caller.clone(), tools }).await.map_err(internal)?;
    // A drifted definition in block mode is not shown to agents at all: its new description or
    // schema may be the attack ("rug pull"), and calls to it are refused until approved.
    if ctx.shared.settings.pinning == crate::config::Pinning::Block {
        allowed.retain(|t| !ctx.shared.drift.contains_key(&t.name));
    }
    if start > allowed.len() {
        return Err(errors::invalid_params("invalid cursor"));
    }
    let page: Vec<Arc<Tool>> = allowed.iter().skip(start).take(PAGE_SIZE).cloned().collect();
    let entries = ctx.shared.tool_entries.describe(ctx, &page).await;
    let mut result = json!({ "tools": entries });
    if start + PAGE_SIZE < allowed.len() {
        result["nextCursor"] = json!(cursor(start + PAGE_SIZE));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(offset(&cursor(200)), Some(200));
        assert_eq!(offset("not-a-cursor"), None);
        assert_eq!(offset(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("x:1")), None);
    }
}
