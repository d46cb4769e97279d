//! Loading `tools.yaml` and `policy.yaml`, with `${VAR:-default}` expansion.
//!
//! Errors name the file, the field and the reason, so `mcp-gateway check-config` can point an
//! operator at the exact line to fix.

use std::path::Path;

use gateway_actors::policy::{Policy, PolicyDocument, RiskTier};
use gateway_actors::Tool;
use serde::Deserialize;

use crate::config::servers::{self, ServerConfig};
use crate::config::{ConfigError, Lookup};

/// `tools.yaml`: tools under `tools:`, whole MCP servers under `servers:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsFile {
    #[serde(default)]
    tools: Vec<Tool>,
    #[serde(default)]
    servers: Vec<ServerConfig>,
    #[serde(default)]
    separator: Option<String>,
}

/// What `tools.yaml` says, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolsConfig {
    /// Tools each served by their own backend (`tools:`).
    pub tools: Vec<Tool>,
    /// Whole servers whose tools are discovered (`servers:`).
    pub servers: Vec<ServerConfig>,
    /// Between a server's namespace and its tools' names.
    pub separator: String,
}

/// Why `${…}` expansion failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A `${` without its `}`.
    #[error("unterminated ${{ in file")]
    Unterminated,
    /// `${NAME}` with no value and no `:-default`.
    #[error("variable {0} is not set and has no default")]
    Unset(String),
}

/// Replace `${VAR}` and `${VAR:-default}` with the variable's value (or the default).
pub fn expand_vars(text: &str, lookup: Lookup<'_>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(ExpandError::Unterminated)?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match lookup(name).filter(|v| !v.is_empty()).or(default.map(str::to_owned)) {
            Some(value) => out.push_str(&value),
            None => return Err(ExpandError::Unset(name.to_owned())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn read(path: &Path, lookup: Lookup<'_>) -> Result<String, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::caused(&name, format!("cannot read: {e}"), e))?;
    expand_vars(&text, lookup).map_err(|e| ConfigError::because(name, e))
}

/// Parse and validate `tools.yaml`.
pub fn load_tools(path: &Path, lookup: Lookup<'_>) -> Result<ToolsConfig, ConfigError> {
    parse_tools(&path.display().to_string(), &read(path, lookup)?)
}

/// Parse and validate the text of a `tools.yaml` (variables already expanded); `name` names the
/// file in errors. Separate from the file read so the fuzz target reaches it directly.
pub fn parse_tools(name: &str, text: &str) -> Result<ToolsConfig, ConfigError> {
    let file: ToolsFile = serde_yaml::from_str(text).map_err(|e| ConfigError::because(name, e))?;
    let mut seen = std::collections::HashSet::new();
    for (i, tool) in file.tools.iter().enumerate() {
        let field = |f: &str| format!("{name}: tools[{i}].{f}");
        if tool.name.is_empty() || !tool.name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
            return Err(ConfigError::new(field("name"), "must be non-empty ASCII letters, digits, '_', '-' or '.'"));
        }
        if !seen.insert(tool.name.clone()) {
            return Err(ConfigError::new(field("name"), format!("duplicate tool {:?}", tool.name)));
        }
        let url_ok = tool.backend_url.starts_with("http://") || tool.backend_url.starts_with("https://");
        if !url_ok || tool.backend_url.parse::<awc::http::Uri>().is_err() {
            return Err(ConfigError::new(
                field("backend_url"),
                format!("{:?} is not an http(s) URL", tool.backend_url),
            ));
        }
        if RiskTier::parse(&tool.risk_level).is_none() {
            return Err(ConfigError::new(field("risk_level"), "must be low, medium, high or critical"));
        }
        if tool.timeout_seconds == Some(0) {
            return Err(ConfigError::new(field("timeout_seconds"), "must be at least 1"));
        }
        if let Some(bad) = tool.required_scopes.iter().find(|s| !servers::valid_scope(s)) {
            return Err(ConfigError::new(field("required_scopes"), format!("{bad:?} is not an OAuth scope token")));
        }
    }
    let separator = file.separator.unwrap_or_else(|| servers::DEFAULT_SEPARATOR.to_owned());
    let tool_urls: Vec<&str> = file.tools.iter().map(|t| t.backend_url.as_str()).collect();
    servers::validate(name, &file.servers, &separator, &tool_urls)?;
    Ok(ToolsConfig { tools: file.tools, servers: file.servers, separator })
}

/// Parse and validate `policy.yaml`.
pub fn load_policy(path: &Path, lookup: Lookup<'_>) -> Result<Policy, ConfigError> {
    parse_policy(&path.display().to_string(), &read(path, lookup)?)
}

/// Parse and compile the text of a `policy.yaml` (variables already expanded); `name` names the
/// file in errors. Separate from the file read so the fuzz target reaches it directly.
pub fn parse_policy(name: &str, text: &str) -> Result<Policy, ConfigError> {
    let doc: PolicyDocument = serde_yaml::from_str(text).map_err(|e| ConfigError::because(name, e))?;
    Policy::compile(doc).map_err(|e| ConfigError::because(name, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables_with_defaults() {
        let lookup = |n: &str| (n == "HOST").then(|| "tools".to_owned());
        assert_eq!(expand_vars("a ${HOST:-x} ${PORT:-8091} b", &lookup).unwrap(), "a tools 8091 b");
        assert!(expand_vars("${MISSING}", &lookup).is_err());
        assert!(expand_vars("${OPEN", &lookup).is_err());
    }

    #[test]
    fn bad_tool_fields_name_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tools.yaml");
        std::fs::write(&path, "tools:\n  - name: a\n    backend_url: ftp://x\n").unwrap();
        let err = load_tools(&path, &|_| None).unwrap_err();
        assert!(err.source_name.ends_with("tools[0].backend_url"), "{err}");
        std::fs::write(&path, "tools:\n  - name: a\n    backend_url: http://x/mcp\n    colour: red\n").unwrap();
        assert!(load_tools(&path, &|_| None).unwrap_err().reason.contains("colour"));
        let quoted = "tools:\n  - name: a\n    backend_url: http://x/mcp\n    required_scopes: ['a\"b']\n";
        std::fs::write(&path, quoted).unwrap();
        assert!(load_tools(&path, &|_| None).unwrap_err().source_name.ends_with("tools[0].required_scopes"));
        let servers = "tools: []\nservers:\n  - name: s\n    transport: streamable_http\n    url: http://x/mcp\n    \
                       required_scopes: ['a b']\n";
        std::fs::write(&path, servers).unwrap();
        assert!(load_tools(&path, &|_| None).unwrap_err().source_name.ends_with("required_scopes"));
    }

    #[test]
    fn shipped_configuration_is_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(!load_tools(&root.join("config/tools.yaml"), &|_| None).unwrap().tools.is_empty());
        load_policy(&root.join("config/policy.yaml"), &|_| None).unwrap();
    }
}
