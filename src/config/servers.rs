//! `servers:` in `tools.yaml`: whole MCP servers behind the gateway (Streamable HTTP or a stdio
//! program), whose tools are discovered and published under a namespace.
//!
//! This module holds what the file says and its validation; the registry discovers, runs and
//! calls them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gateway_actors::policy::RiskTier;
use serde::Deserialize;

use crate::config::ConfigError;

/// The separator between a server's namespace and its tools' names when none is configured:
/// `fs.read_file`. Valid under MCP's tool-name rules (letters, digits, `_`, `-`, `.`).
pub const DEFAULT_SEPARATOR: &str = ".";

/// How the gateway talks to an upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// MCP Streamable HTTP at `url`.
    StreamableHttp,
    /// A program started by the gateway, JSON-RPC lines over its stdin and stdout.
    Stdio,
    /// The legacy HTTP+SSE transport (2024-11-05): `GET` an event stream at `url`, `POST`
    /// messages to the endpoint it names.
    Sse,
}

/// Per-tool overrides of a server's defaults, by the tool's own name at the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolOverride {
    /// Risk tier of this tool (policy may cap it per role).
    #[serde(default)]
    pub risk_level: Option<String>,
    /// Roles a caller needs for this tool, replacing the server's.
    #[serde(default)]
    pub required_roles: Option<Vec<String>>,
    /// Scopes a caller's token needs for this tool, replacing the server's.
    #[serde(default)]
    pub required_scopes: Option<Vec<String>>,
    /// Backend timeout of this tool, replacing the server's.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// A value the gateway holds for an upstream and never shows: `Debug` prints `[REDACTED]`, so
/// a configuration dump, a log line or an error cannot carry it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Credentials the gateway presents to an upstream (never the client's token).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// HTTP headers sent with every request to the server; values may use `${VAR}` (expanded
    /// from the gateway's environment when the file is loaded).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// HTTP headers whose values are read from files (a mounted secret), trimmed.
    #[serde(default)]
    pub header_files: BTreeMap<String, PathBuf>,
    /// An access token from the upstream's OAuth token endpoint (client credentials grant),
    /// sent as `Authorization: Bearer …`, cached and refreshed before it expires.
    #[serde(default)]
    pub oauth_client_credentials: Option<OAuthClient>,
}

/// The gateway's own OAuth client at an upstream's authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    /// The token endpoint.
    pub token_url: String,
    /// The gateway's client id there.
    pub client_id: String,
    /// Its secret (use `${VAR}`; never shown).
    pub client_secret: Secret,
    /// Scopes asked for, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// `audience` parameter (Auth0, Okta and others).
    #[serde(default)]
    pub audience: Option<String>,
    /// RFC 8707 `resource` parameter (the upstream's URL, for providers that bind tokens to it).
    #[serde(default)]
    pub resource: Option<String>,
}

/// One `servers:` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Unique name, used in logs, health and metrics; the namespace unless one is given.
    pub name: String,
    /// `streamable_http`, `sse` or `stdio`.
    pub transport: Transport,
    /// The server's MCP endpoint (HTTP transports).
    #[serde(default)]
    pub url: Option<String>,
    /// The program to run (stdio), found on `PATH` when not a path; run without a shell.
    #[serde(default)]
    pub command: Option<String>,
    /// Its arguments, passed as they are (no shell expansion).
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment of the program on top of a clean one (only `PATH`, `HOME`, `LANG`, `TZ`,
    /// `TMPDIR` pass through from the gateway's); values may use `${VAR}`.
    #[serde(default)]
    pub env: BTreeMap<String, Secret>,
    /// Working directory of the program.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Prefix of the published tool names (default: the server's name).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only tools whose own names match one of these globs (`*`, `?`) are published.
    #[serde(default)]
    pub include: Vec<String>,
    /// Tools whose own names match one of these globs are not published.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Risk tier of the server's tools unless overridden per tool.
    #[serde(default = "default_risk")]
    pub risk_level: String,
    /// A caller needs one of these roles for any of the server's tools (besides policy.yaml).
    #[serde(default)]
    pub required_roles: Vec<String>,
    /// OAuth scopes a caller's token must grant for any of the server's tools, prompts and
    /// resources (else 403 `insufficient_scope`).
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Backend timeout of the server's calls (default: `BACKEND_TIMEOUT_SECONDS`).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Most calls in flight to each of the server's tools at once.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Most requests waiting for a stdio server's answers at once (default 256): past it, 503.
    #[serde(default)]
    pub max_pending: Option<usize>,
    /// Longest line a stdio server may print (default 4 MiB): longer lines are dropped.
    #[serde(default)]
    pub max_line_bytes: Option<usize>,
    /// `shared` (the default): one session (one process) for every client; `per_client`: one
    /// process per client session.
    #[serde(default)]
    pub session_mode: SessionMode,
    /// `per_client`: most client processes at once (default 16); past it, 503.
    #[serde(default)]
    pub max_sessions: Option<usize>,
    /// `per_client`: a client's process is stopped after this long without calls (default 300).
    #[serde(default)]
    pub idle_seconds: Option<u64>,
    /// Per-tool overrides, by the tool's name at the server.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolOverride>,
    /// What the gateway presents to the server.
    #[serde(default)]
    pub credentials: Credentials,
}

/// Whether clients share one upstream session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// One session (one process for stdio) serves every client.
    #[default]
    Shared,
    /// stdio only: each client session (its MCP session; REST calls and jobs: its subject) gets
    /// a process of its own, started at its first call and stopped after `idle_seconds` without
    /// calls. For servers that keep state per session.
    PerClient,
}

fn default_risk() -> String {
    "low".to_owned()
}

/// Default cap on client processes of a `per_client` server.
pub const DEFAULT_MAX_SESSIONS: usize = 16;
/// Default idle time after which a client's process is stopped.
pub const DEFAULT_IDLE_SECONDS: u64 = 300;

/// Default cap on waiting requests per stdio server.
pub const DEFAULT_MAX_PENDING: usize = 256;
/// Default cap on one line printed by a stdio server.
pub const DEFAULT_MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

impl ServerConfig {
    /// The prefix of the published names.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(&self.name)
    }

    /// The key calls are routed and circuit breakers kept by: the URL of an HTTP server,
    /// `stdio://<name>` for a program.
    pub fn backend_key(&self) -> String {
        match self.transport {
            Transport::Stdio => format!("{STDIO_SCHEME}{}", self.name),
            Transport::Sse => format!("{SSE_SCHEME}{}", self.name),
            _ => self.url.clone().unwrap_or_default(),
        }
    }

    /// Whether the server's own tool `name` is published (include and exclude globs).
    pub fn publishes(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| glob(g, name)))
            && !self.exclude.iter().any(|g| glob(g, name))
    }

    /// The headers the gateway sends to this server, files read now (each file one header
    /// value on one line; anything else is refused, never sent cut or silently dropped).
    pub fn headers(&self) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> =
            self.credentials.headers.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        for (k, path) in &self.credentials.header_files {
            let value = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let value = value.trim();
            // The value is a secret: the error names the file only.
            if value.is_empty()
                || value.contains(['\n', '\r'])
                || awc::http::header::HeaderValue::from_str(value).is_err()
            {
                return Err(format!("{} does not hold one valid header value (one line)", path.display()));
            }
            out.push((k.clone(), value.to_owned()));
        }
        Ok(out)
    }

    fn validate(&self, field: &dyn Fn(&str) -> String, separator: &str) -> Result<(), ConfigError> {
        if !valid_name(&self.name) {
            return Err(ConfigError::new(field("name"), "must be non-empty ASCII letters, digits, '_' or '-'"));
        }
        if !valid_name(self.namespace()) {
            return Err(ConfigError::new(field("namespace"), "must be non-empty ASCII letters, digits, '_' or '-'"));
        }
        if self.namespace().len() + separator.len() >= 64 {
            return Err(ConfigError::new(field("namespace"), "leaves no room for tool names (at most 60 characters)"));
        }
        match self.transport {
            Transport::Stdio => {
                if self.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    return Err(ConfigError::new(field("command"), "a stdio server needs a command"));
                }
                if self.url.is_some() {
                    return Err(ConfigError::new(field("url"), "a stdio server has no url (it is a program)"));
                }
                let c = &self.credentials;
                if !c.headers.is_empty() || !c.header_files.is_empty() || c.oauth_client_credentials.is_some() {
                    return Err(ConfigError::new(
                        field("credentials"),
                        "a stdio server gets its secrets through env, not headers",
                    ));
                }
            }
            Transport::StreamableHttp | Transport::Sse => {
                let url = self.url.as_deref().unwrap_or("");
                let parsed = url.parse::<awc::http::Uri>().ok();
                let ok = (url.starts_with("http://") || url.starts_with("https://")) && parsed.is_some();
                // The value is not repeated: it may hold an expanded secret.
                if !ok {
                    return Err(ConfigError::new(field("url"), "is not an http(s) URL"));
                }
                if parsed.and_then(|u| u.authority().map(|a| a.as_str().contains('@'))).unwrap_or(false) {
                    return Err(ConfigError::new(
                        field("url"),
                        "must not carry user:password (it would be stored and shown); use credentials",
                    ));
                }
                if self.command.is_some() || !self.args.is_empty() || !self.env.is_empty() || self.cwd.is_some() {
                    return Err(ConfigError::new(field("command"), "command, args, env and cwd are for stdio servers"));
                }
                for name in self.credentials.headers.keys().chain(self.credentials.header_files.keys()) {
                    if awc::http::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Err(ConfigError::new(
                            field("credentials.headers"),
                            format!("{name:?} is not a header name"),
                        ));
                    }
                }
                if let Some(oauth) = &self.credentials.oauth_client_credentials {
                    let url = oauth.token_url.as_str();
                    let ok = (url.starts_with("http://") || url.starts_with("https://"))
                        && url.parse::<awc::http::Uri>().is_ok();
                    if !ok {
                        return Err(ConfigError::new(
                            field("credentials.oauth_client_credentials.token_url"),
                            "is not an http(s) URL",
                        ));
                    }
                    if self
                        .credentials
                        .headers
                        .keys()
                        .chain(self.credentials.header_files.keys())
                        .any(|h| h.eq_ignore_ascii_case("authorization"))
                    {
                        return Err(ConfigError::new(
                            field("credentials"),
                            "an Authorization header and oauth_client_credentials exclude each other",
                        ));
                    }
                }
                for (name, value) in &self.credentials.headers {
                    if awc::http::header::HeaderValue::from_str(&value.0).is_err() {
                        // The value is a secret: name the header only.
                        return Err(ConfigError::new(
                            field("credentials.headers"),
                            format!("the value of {name:?} is not a valid header value"),
                        ));
                    }
                }
            }
        }
        for (name, path) in &self.credentials.header_files {
            if std::fs::metadata(path).map(|m| !m.is_file()).unwrap_or(true) {
                return Err(ConfigError::new(
                    field(&format!("credentials.header_files.{name}")),
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        if !self.credentials.header_files.is_empty() {
            self.headers().map_err(|why| ConfigError::new(field("credentials.header_files"), why))?;
        }

        if self.session_mode == SessionMode::PerClient && self.transport != Transport::Stdio {
            return Err(ConfigError::new(field("session_mode"), "per_client is for stdio servers"));
        }
        if self.max_sessions == Some(0) || self.idle_seconds == Some(0) {
            return Err(ConfigError::new(field("max_sessions"), "max_sessions and idle_seconds must be at least 1"));
        }
        if let Some(cwd) = &self.cwd {
            if !cwd.is_dir() {
                return Err(ConfigError::new(field("cwd"), format!("{} is not a directory", cwd.display())));
            }
        }
        if let Some(command) = self.command.as_deref().filter(|_| self.transport == Transport::Stdio) {
            // The program is looked up on the PATH it will get: its own `env`'s, else the gateway's.
            let path = self.env.get("PATH").map(|p| p.0.clone());
            if !program_exists(command, self.cwd.as_deref(), path) {
                return Err(ConfigError::new(
                    field("command"),
                    format!("{command:?} is not an executable file (nor found on PATH)"),
                ));
            }
        }
        if RiskTier::parse(&self.risk_level).is_none() {
            return Err(ConfigError::new(field("risk_level"), "must be low, medium, high or critical"));
        }
        let overrides = self.tools.values().filter_map(|o| o.required_scopes.as_ref()).flatten();
        if let Some(bad) = self.required_scopes.iter().chain(overrides).find(|s| !valid_scope(s)) {
            return Err(ConfigError::new(field("required_scopes"), format!("{bad:?} is not an OAuth scope token")));
        }
        if self.timeout_seconds == Some(0) {
            return Err(ConfigError::new(field("timeout_seconds"), "must be at least 1"));
        }
        if self.max_pending == Some(0) || self.max_line_bytes.is_some_and(|n| n < 1024) {
            return Err(ConfigError::new(
                field("max_pending"),
                "max_pending must be at least 1 and max_line_bytes at least 1024",
            ));
        }
        for glob in self.include.iter().chain(&self.exclude) {
            if glob.is_empty() {
                return Err(ConfigError::new(field("include"), "an empty glob matches nothing"));
            }
        }
        for (tool, o) in &self.tools {
            if o.risk_level.as_deref().is_some_and(|r| RiskTier::parse(r).is_none()) {
                return Err(ConfigError::new(
                    field(&format!("tools.{tool}.risk_level")),
                    "must be low, medium, high or critical",
                ));
            }
            if o.timeout_seconds == Some(0) {
                return Err(ConfigError::new(field(&format!("tools.{tool}.timeout_seconds")), "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The scheme of a stdio server's routing key.
pub const STDIO_SCHEME: &str = "stdio://";
/// The scheme of a legacy SSE server's routing key (calls go over its event stream's link).
pub const SSE_SCHEME: &str = "sse://";

/// The server name in a routing key served by a link (stdio or legacy SSE), if it is one.
pub fn link_name(key: &str) -> Option<&str> {
    key.strip_prefix(STDIO_SCHEME).or_else(|| key.strip_prefix(SSE_SCHEME))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 60 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

/// Whether `scope` is an OAuth scope token (RFC 6749 §3.3: printable ASCII but space, `"` and
/// `\\`): it travels in `WWW-Authenticate` as written.
pub fn valid_scope(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Whether `command` names an executable the gateway can start: a path (relative ones from
/// `cwd`), or a program found on `PATH` — checked by `check-config` so a typo is caught before
/// the process loops on restarts.
fn program_exists(command: &str, cwd: Option<&std::path::Path>, path: Option<String>) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable =
        |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if command.contains('/') {
        let path = std::path::Path::new(command);
        return match cwd {
            Some(dir) if path.is_relative() => runnable(&dir.join(path)),
            _ => runnable(path),
        };
    }
    let paths = path.map(std::ffi::OsString::from).or_else(|| std::env::var_os("PATH"));
    paths.is_some_and(|paths| std::env::split_paths(&paths).any(|dir| runnable(&dir.join(command))))
}

/// Whether `name` is a valid published tool name under MCP's rules (2025-11-25: 1 to 128
/// characters of ASCII letters, digits, `_`, `-` and `.`).
pub fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// Shell-style glob: `*` any run of characters, `?` one character, everything else literal.
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Validate the `servers:` of a file named `file`, with the name `separator`.
pub fn validate(file: &str, servers: &[ServerConfig], separator: &str, tool_urls: &[&str]) -> Result<(), ConfigError> {
    if separator.is_empty() || !separator.chars().all(|c| "_-.".contains(c)) || separator.len() > 3 {
        return Err(ConfigError::new(format!("{file}: separator"), "must be 1 to 3 of '.', '_' or '-'"));
    }
    let mut names = std::collections::HashSet::new();
    let mut namespaces = std::collections::HashSet::new();
    for (i, server) in servers.iter().enumerate() {
        let field = |f: &str| format!("{file}: servers[{i}].{f}");
        server.validate(&field, separator)?;
        if !names.insert(server.name.as_str()) {
            return Err(ConfigError::new(field("name"), format!("duplicate server {:?}", server.name)));
        }
        if !namespaces.insert(server.namespace()) {
            return Err(ConfigError::new(
                field("namespace"),
                format!("namespace {:?} is used twice", server.namespace()),
            ));
        }
        // One namespace must never be a prefix of another's names: `fs_*` would grant `fs_admin`'s.
        if server.namespace().contains(separator) {
            return Err(ConfigError::new(field("namespace"), format!("must not contain the separator {separator:?}")));
        }
        // Credentials and the upstream session are kept per URL: one URL, one entry.
        if let Some(url) = server.url.as_deref() {
            let taken = servers[..i].iter().any(|s| s.url.as_deref() == Some(url)) || tool_urls.contains(&url);
            if taken {
                return Err(ConfigError::new(
                    field("url"),
                    "already used by another server or tool (each upstream URL may be configured once: \
                     credentials and the upstream session belong to the URL)",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob("read_*", "read_file"));
        assert!(glob("*", ""));
        assert!(glob("*_file", "read_text_file"));
        assert!(glob("r?ad*", "read"));
        assert!(!glob("read_*", "write_file"));
        assert!(!glob("a*b", "acbd"));
        assert!(glob("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn tool_names_follow_mcp_rules() {
        assert!(valid_tool_name("fs.read_file"));
        assert!(!valid_tool_name("fs.read file"));
        assert!(!valid_tool_name(""));
        assert!(!valid_tool_name(&"a".repeat(129)));
    }

    #[test]
    fn one_url_one_entry_and_namespaces_never_prefix_each_other() {
        let two = |a: &str, b: &str, sep: &str| -> Result<(), ConfigError> {
            let parse = |y: &str| serde_yaml::from_str::<ServerConfig>(y).unwrap();
            validate("t.yaml", &[parse(a), parse(b)], sep, &[])
        };
        let ro = "name: ro\ntransport: streamable_http\nurl: http://127.0.0.1:1/mcp\n";
        let rw = "name: rw\ntransport: streamable_http\nurl: http://127.0.0.1:1/mcp\n";
        assert!(two(ro, rw, ".").unwrap_err().to_string().contains("servers[1].url"));
        let one = serde_yaml::from_str::<ServerConfig>(ro).unwrap();
        assert!(validate("t.yaml", &[one], ".", &["http://127.0.0.1:1/mcp"]).is_err(), "a tools: entry's URL too");
        let fs = "name: fs\ntransport: stdio\ncommand: sh\n";
        let fs_admin = "name: fs_admin\ntransport: stdio\ncommand: sh\n";
        assert!(two(fs, fs_admin, "_").unwrap_err().to_string().contains("separator"));
        assert!(two(fs, fs_admin, ".").is_ok());
        let userinfo = "name: u\ntransport: streamable_http\nurl: http://user:pw@127.0.0.1:1/mcp\n";
        let err = two(userinfo, fs, ".").unwrap_err().to_string();
        assert!(err.contains("user:password") && !err.contains("pw@"), "{err}");
    }

    #[test]
    fn a_missing_program_and_a_multi_line_header_file_are_named_not_used() {
        let one = |y: &str| validate("t.yaml", &[serde_yaml::from_str::<ServerConfig>(y).unwrap()], ".", &[]);
        let err = one("name: fs\ntransport: stdio\ncommand: no-such-program-here\n").unwrap_err().to_string();
        assert!(err.contains("servers[0].command") && err.contains("no-such-program-here"), "{err}");
        assert!(one("name: fs\ntransport: stdio\ncommand: /bin/sh\n").is_ok());
        let own_path = one("name: fs\ntransport: stdio\ncommand: sh\nenv: { PATH: /nonexistent }\n").unwrap_err();
        assert!(own_path.to_string().contains("command"), "looked up on the program's own PATH");
        let no_cwd = one("name: fs\ntransport: stdio\ncommand: ./run\ncwd: /nonexistent\n").unwrap_err();
        assert!(no_cwd.to_string().contains("cwd"), "{no_cwd}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "Bearer first-line-secret\nsecond-line-secret\n").unwrap();
        let yaml = format!(
            "name: h\ntransport: streamable_http\nurl: http://127.0.0.1:1/mcp\n\
             credentials: {{ header_files: {{ Authorization: {} }} }}\n",
            file.display()
        );
        let err = one(&yaml).unwrap_err().to_string();
        assert!(err.contains("one valid header value") && !err.contains("secret"), "{err}");
        std::fs::write(&file, "\n").unwrap();
        assert!(one(&yaml).is_err(), "an empty value");
        std::fs::write(&file, "Bearer only-line\n").unwrap();
        assert!(one(&yaml).is_ok());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "[REDACTED]");
    }
}
