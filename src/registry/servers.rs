//! Discovered tools: what a `servers:` entry's own `tools/list` becomes in the catalog.
//!
//! Each tool the server lists (and its `include`/`exclude` lets through) is published as
//! `<namespace><separator><name>`, with the server's defaults and per-tool overrides. A name
//! that breaks MCP's tool-name rules, a schema that is not a JSON Schema object, or a name
//! another tool already holds is refused with a log line naming the server and the tool.

use std::collections::HashSet;

use gateway_actors::model::{TaskSupport, Upstream};
use gateway_actors::Tool;
use serde_json::Value;

use crate::config::servers::{valid_tool_name, ServerConfig};

/// Longest description kept from a server's listing (characters).
const MAX_DESCRIPTION: usize = 4096;
/// Largest input schema published (bytes of JSON): it is compiled, stored and listed.
const MAX_SCHEMA_BYTES: usize = 256 * 1024;

/// Characters that reorder or hide text (bidirectional controls, zero-width marks).
pub(crate) fn hidden(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The tools `server` publishes from its listing `listed`; names in `taken` (earlier tools and
/// servers) are refused, and the ones published are added to it.
pub fn publish(server: &ServerConfig, separator: &str, listed: &[Value], taken: &mut HashSet<String>) -> Vec<Tool> {
    let mut tools = Vec::new();
    for entry in listed {
        let Some(own) = entry.get("name").and_then(Value::as_str) else {
            tracing::warn!(server = %server.name, "a listed tool has no name; not published");
            continue;
        };
        if !server.publishes(own) {
            continue;
        }
        let name = format!("{}{separator}{own}", server.namespace());
        if !valid_tool_name(&name) || !valid_tool_name(own) {
            let shown: String = own.chars().take(80).collect();
            tracing::warn!(server = %server.name, tool = ?shown, "tool name is not valid under MCP's rules (1-128 of A-Z a-z 0-9 _ - .); not published");
            continue;
        }
        let schema = entry.get("inputSchema");
        let schema_ok = schema.is_some_and(|s| {
            s.get("type").and_then(Value::as_str) == Some("object")
                && s.to_string().len() <= MAX_SCHEMA_BYTES
                && jsonschema::validator_for(s).is_ok()
        });
        if !schema_ok {
            tracing::warn!(server = %server.name, tool = %own, "tool's inputSchema is not a JSON Schema of type object (or is over 256 KiB); not published");
            continue;
        }
        if !taken.insert(name.clone()) {
            tracing::warn!(server = %server.name, tool = %own, published = %name, "tool name collides with another tool; not published (the first keeps it)");
            continue;
        }
        let over = server.tools.get(own).cloned().unwrap_or_default();
        // Control characters (NUL above all: PostgreSQL refuses it in `text`, and the tools table
        // would not sync for any server) and characters that reorder or hide text are dropped.
        let description: String = entry
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .filter(|c| (!c.is_control() || matches!(c, '\n' | '\t')) && !hidden(*c))
            .take(MAX_DESCRIPTION)
            .collect();
        tools.push(Tool {
            name,
            description,
            backend_url: server.backend_key(),
            risk_level: over.risk_level.unwrap_or_else(|| server.risk_level.clone()),
            required_roles: over.required_roles.unwrap_or_else(|| server.required_roles.clone()),
            required_scopes: over.required_scopes.unwrap_or_else(|| server.required_scopes.clone()),
            is_active: true,
            timeout_seconds: over.timeout_seconds.or(server.timeout_seconds),
            input_schema: schema.cloned(),
            max_concurrency: server.max_concurrency,
            queue_timeout_ms: 0,
            idempotent: false,
            job_timeout_seconds: None,
            task_support: TaskSupport::Optional,
            upstream: Some(Upstream { server: server.name.clone(), name: own.to_owned() }),
        });
    }
    tools
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn server(yaml: &str) -> ServerConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn publishes_namespaced_tools_with_overrides_and_refuses_bad_ones() {
        let s = server(
            "name: fs\ntransport: stdio\ncommand: x\nexclude: [write_*]\nrisk_level: medium\n\
             tools: {read_file: {risk_level: low}}\n",
        );
        let object = json!({"type": "object"});
        let listed = vec![
            json!({"name": "read_file", "description": "Re\u{0}a\u{202E}d", "inputSchema": object}),
            json!({"name": "write_file", "inputSchema": object}),
            json!({"name": "bad name", "inputSchema": object}),
            json!({"name": "no_schema"}),
            json!({"name": "array_schema", "inputSchema": {"type": "array"}}),
            json!({"name": "list_dir", "inputSchema": object}),
            json!({"name": "taken", "inputSchema": object}),
        ];
        let mut taken: HashSet<String> = ["fs.taken".to_owned()].into();
        let tools = publish(&s, ".", &listed, &mut taken);
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["fs.read_file", "fs.list_dir"]);
        assert_eq!(tools[0].risk_level, "low");
        assert_eq!(tools[0].description, "Read");
        assert_eq!(tools[1].risk_level, "medium");
        assert_eq!(tools[0].backend_name(), "read_file");
        assert_eq!(tools[0].backend_url, "stdio://fs");
    }
}
