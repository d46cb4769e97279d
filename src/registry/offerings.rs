//! Upstream servers' prompts, resources and resource templates, as the gateway publishes them.
//!
//! Prompts are published under the server's namespace like tools (`fs.summarise`). Resources
//! keep their URIs (they appear in tool results and links; rewriting them would break those)
//! and are routed by URI: an exact listed URI first, then the template with the longest literal
//! prefix. Policy and audit see each as a subject named `prompt:<published name>` or
//! `resource:<uri>`, carrying the server's risk level and required roles, so roles' tool
//! patterns (`prompt:fs.*`, `resource:file:///srv/docs/*`) and rate limits apply unchanged.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use gateway_actors::model::{TaskSupport, Upstream};
use gateway_actors::Tool;
use serde_json::{json, Value};

use crate::config::servers::{valid_tool_name, ServerConfig};

/// Most prompts, resources or templates kept from one server's listing.
pub const MAX_ITEMS_PER_SERVER: usize = 10_000;
/// Longest resource URI kept or routed (bytes).
pub const MAX_URI_BYTES: usize = 2048;

/// What a server lists besides tools.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// `tools/list` entries.
    pub tools: Vec<Value>,
    /// `prompts/list` entries.
    pub prompts: Vec<Value>,
    /// `resources/list` entries.
    pub resources: Vec<Value>,
    /// `resources/templates/list` entries.
    pub templates: Vec<Value>,
}

/// One published prompt, resource or template: the subject policy and audit see, and the entry
/// clients are shown.
#[derive(Debug, Clone)]
pub struct Offered {
    /// `prompt:<name>` or `resource:<uri>`, with the server's limits and its own name.
    pub subject: Arc<Tool>,
    /// The listing entry (a prompt's name namespaced).
    pub entry: Value,
}

/// Where resources of one server may be read: its servers' subjects' defaults.
#[derive(Debug, Clone)]
struct Template {
    server: Arc<ServerConfig>,
    prefix: String,
    entry: Value,
}

/// Every upstream's prompts, resources and templates, published as one snapshot.
#[derive(Debug, Default)]
pub struct Offerings {
    prompts: BTreeMap<String, Offered>,
    resources: BTreeMap<String, (Arc<ServerConfig>, Value)>,
    templates: Vec<Template>,
}

fn digest<'a>(entries: impl Iterator<Item = &'a Value>) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for entry in entries {
        hasher.update(entry.to_string().as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// A subject for policy and audit.
fn subject(server: &ServerConfig, name: String, own: &str) -> Tool {
    Tool {
        name,
        description: String::new(),
        backend_url: server.backend_key(),
        risk_level: server.risk_level.clone(),
        required_roles: server.required_roles.clone(),
        required_scopes: server.required_scopes.clone(),
        is_active: true,
        timeout_seconds: server.timeout_seconds,
        input_schema: None,
        max_concurrency: None,
        queue_timeout_ms: 0,
        idempotent: false,
        job_timeout_seconds: None,
        task_support: TaskSupport::Forbidden,
        upstream: Some(Upstream { server: server.name.clone(), name: own.to_owned() }),
    }
}

/// Whether `uri`'s path has no dot segment, no empty segment, no percent-encoding, no
/// backslash and no control character (what a template-routed URI must look like).
fn plain(uri: &str) -> bool {
    if uri.contains(['%', '\\']) || uri.chars().any(char::is_control) {
        return false;
    }
    let path = match uri.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => uri.split_once(':').map_or(uri, |(_, p)| p),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    !path.split('/').enumerate().any(|(i, seg)| seg == "." || seg == ".." || (seg.is_empty() && i > 0))
}

/// The literal part of a URI template before its first expression (`file:///{path}` →
/// `file:///`).
fn literal_prefix(template: &str) -> &str {
    template.split('{').next().unwrap_or("")
}

impl Offerings {
    /// Build the snapshot from each server's listing, in file order (a prompt name or resource
    /// URI already taken by an earlier server is refused with a log line).
    pub fn build(servers: &[ServerConfig], separator: &str, listings: &BTreeMap<String, Listing>) -> Self {
        let mut out = Offerings::default();
        let mut uris: HashSet<String> = HashSet::new();
        for server in servers {
            let Some(listing) = listings.get(&server.name) else { continue };
            let shared = Arc::new(server.clone());
            for entry in listing.prompts.iter().take(MAX_ITEMS_PER_SERVER) {
                let Some(own) = entry.get("name").and_then(Value::as_str) else { continue };
                let name = format!("{}{separator}{own}", server.namespace());
                if !valid_tool_name(&name) || out.prompts.contains_key(&name) {
                    tracing::warn!(server = %server.name, prompt = %own.chars().take(80).collect::<String>(), "prompt name invalid or taken; not published");
                    continue;
                }
                let mut shown = entry.clone();
                shown["name"] = json!(name);
                let subject = Arc::new(subject(server, format!("prompt:{name}"), own));
                out.prompts.insert(name, Offered { subject, entry: shown });
            }
            for entry in listing.resources.iter().take(MAX_ITEMS_PER_SERVER) {
                let Some(uri) = entry.get("uri").and_then(Value::as_str).filter(|u| u.len() <= MAX_URI_BYTES) else {
                    continue;
                };
                if !uris.insert(uri.to_owned()) {
                    tracing::warn!(server = %server.name, uri, "resource URI offered by an earlier server too; not published");
                    continue;
                }
                out.resources.insert(uri.to_owned(), (shared.clone(), entry.clone()));
            }
            for entry in listing.templates.iter().take(MAX_ITEMS_PER_SERVER) {
                let Some(template) = entry.get("uriTemplate").and_then(Value::as_str) else { continue };
                if template.len() > MAX_URI_BYTES {
                    continue;
                }
                let prefix = literal_prefix(template).to_owned();
                out.templates.push(Template { server: shared.clone(), prefix, entry: entry.clone() });
            }
        }
        // Longest literal prefix first: the most specific template routes a URI.
        out.templates.sort_by_key(|t| std::cmp::Reverse(t.prefix.len()));
        out
    }

    /// A digest of the published prompts (what `prompts/list` can show).
    pub fn prompts_digest(&self) -> String {
        digest(self.prompts.values().map(|o| &o.entry))
    }

    /// A digest of the published resources and templates.
    pub fn resources_digest(&self) -> String {
        digest(self.resources.values().map(|(_, e)| e).chain(self.templates.iter().map(|t| &t.entry)))
    }

    /// Every published prompt, with its subject.
    pub fn prompts(&self) -> impl Iterator<Item = &Offered> {
        self.prompts.values()
    }

    /// The prompt published as `name`.
    pub fn prompt(&self, name: &str) -> Option<&Offered> {
        self.prompts.get(name)
    }

    /// Every listed resource, as a subject and its entry.
    pub fn resources(&self) -> Vec<Offered> {
        self.resources
            .iter()
            .map(|(uri, (server, entry))| Offered {
                subject: Arc::new(subject(server, format!("resource:{uri}"), uri)),
                entry: entry.clone(),
            })
            .collect()
    }

    /// Every resource template, as a subject named after the template and its entry.
    pub fn templates(&self) -> Vec<Offered> {
        self.templates
            .iter()
            .map(|t| {
                let template = t.entry.get("uriTemplate").and_then(Value::as_str).unwrap_or("");
                Offered {
                    subject: Arc::new(subject(&t.server, format!("resource:{template}"), template)),
                    entry: t.entry.clone(),
                }
            })
            .collect()
    }

    /// The subject reading `uri`: the server that listed it, else the one whose template has
    /// the longest literal prefix of it.
    pub fn resource(&self, uri: &str) -> Option<Arc<Tool>> {
        if uri.len() > MAX_URI_BYTES {
            return None;
        }
        let server = match self.resources.get(uri) {
            Some((server, _)) => server,
            // A URI reached through a template must be in plain form: policy patterns match the
            // text, so `/pub/../priv`, `/pub/./x`, `/pub//x` or `%2e` would reach what a pattern
            // names differently.
            None if plain(uri) => {
                &self.templates.iter().find(|t| !t.prefix.is_empty() && uri.starts_with(&t.prefix))?.server
            }
            None => return None,
        };
        Some(Arc::new(subject(server, format!("resource:{uri}"), uri)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_route_by_uri_then_by_the_most_specific_template() {
        let a: ServerConfig = serde_yaml::from_str("name: a\ntransport: stdio\ncommand: x\n").unwrap();
        let b: ServerConfig = serde_yaml::from_str("name: b\ntransport: stdio\ncommand: x\n").unwrap();
        let mut listings = BTreeMap::new();
        listings.insert(
            "a".to_owned(),
            Listing {
                prompts: vec![json!({"name": "greet"})],
                resources: vec![json!({"uri": "test://static/1", "name": "one"})],
                templates: vec![json!({"uriTemplate": "test://{x}"})],
                ..Default::default()
            },
        );
        listings.insert(
            "b".to_owned(),
            Listing {
                resources: vec![json!({"uri": "test://static/1"})],
                templates: vec![json!({"uriTemplate": "test://static/{id}"})],
                ..Default::default()
            },
        );
        let o = Offerings::build(&[a, b], ".", &listings);
        assert_eq!(o.prompt("a.greet").unwrap().entry["name"], "a.greet");
        assert_eq!(o.prompt("a.greet").unwrap().subject.backend_name(), "greet");
        assert_eq!(o.resources().len(), 1, "the URI stays with the first server");
        assert_eq!(o.resource("test://static/1").unwrap().backend_url, "stdio://a");
        assert_eq!(o.resource("test://static/2").unwrap().backend_url, "stdio://b");
        assert_eq!(o.resource("test://other").unwrap().backend_url, "stdio://a");
        assert!(o.resource("file:///etc/passwd").is_none());
        assert_eq!(o.resource("test://static/2").unwrap().name, "resource:test://static/2");
        for sneaky in [
            "test://static/../x",
            "test://static/./2",
            "test://static//2",
            "test://static/%2e%2e/x",
            "test://static/a\\..\\b",
        ] {
            assert!(o.resource(sneaky).is_none(), "{sneaky}");
        }
    }
}
