//! Anything an upstream MCP server may send: one line as a stdio program's message (routed by
//! the multiplexing link), and, when it is a JSON array, as a server's listing of tools,
//! prompts, resources and templates (published under a namespace, resources routed by URI).
//! Must never panic.
#![no_main]

use std::collections::{BTreeMap, HashSet};

use libfuzzer_sys::fuzz_target;
use mcp_gateway::backend::stdio::StdioLink;
use mcp_gateway::config::servers::ServerConfig;
use mcp_gateway::registry::offerings::{Listing, Offerings};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let (tx, _rx) = tokio::sync::mpsc::channel(4);
    let link = StdioLink::new("fuzz", tx, 4);
    let _ = link.deliver(data);
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(data) else { return };
    let Ok(server) = serde_yaml::from_str::<ServerConfig>("name: fuzz\ntransport: stdio\ncommand: x\nexclude: ['w*']\n") else {
        return;
    };
    let mut taken: HashSet<String> = HashSet::new();
    let _ = mcp_gateway::registry::servers::publish(&server, ".", &items, &mut taken);
    let listing = Listing { tools: Vec::new(), prompts: items.clone(), resources: items.clone(), templates: items.clone() };
    let offerings = Offerings::build(&[server], "__", &BTreeMap::from([("fuzz".to_owned(), listing)]));
    let _ = (offerings.prompts_digest(), offerings.resources_digest(), offerings.resources(), offerings.templates());
    for item in &items {
        for key in ["uri", "uriTemplate", "name"] {
            if let Some(text) = item.get(key).and_then(Value::as_str) {
                let _ = offerings.resource(text);
                let _ = offerings.prompt(text);
            }
        }
    }
});
