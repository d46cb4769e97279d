//! `git_readonly`: read-only history, diffs, blame and search over allow-listed repositories.
//!
//! Requests name a repository by its short name from the allow-list ([`repos`]); every file is
//! read from the object database at a revision (never from the working tree, so symlinks are
//! never followed), paths are normalised and checked ([`paths`]), and nothing writes, fetches or
//! runs hooks. Long operations stop at a per-request deadline.
//!
//! | module | actions |
//! |---|---|
//! | [`refs`] | `list_repos`, `branches`, `tags` |
//! | [`history`] | `log`, `show`, `diff` |
//! | [`tree`] | `read_file`, `list_tree`, `blame` |
//! | [`grep`] | `grep` |

pub mod grep;
pub mod history;
pub mod mailmap;
pub mod paths;
pub mod refs;
pub mod repos;
pub mod tree;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tool_kit::{tool_result, CallOutcome, ToolError, ToolServer, ToolSpec};

use crate::repos::Repos;

/// How long one request may work before returning what it has.
pub const DEADLINE: Duration = Duration::from_secs(8);

/// Largest `limit` accepted (`log`, `grep`); the inputSchema publishes the same maximum.
pub const MAX_LIMIT: usize = 1000;

/// A per-request deadline checked inside long loops; it also ends when the call is given up.
pub struct Deadline(Instant);

impl Deadline {
    /// A deadline `d` from now.
    pub fn after(d: Duration) -> Self {
        Self(Instant::now() + d)
    }

    /// Whether it has passed, or the call was given up (its time limit in the server passed).
    pub fn expired(&self) -> bool {
        Instant::now() >= self.0 || tool_kit::cancel::requested()
    }
}

/// Typed access to the `arguments` object, with errors naming the argument.
pub struct Args<'a>(pub &'a Value);

impl Args<'_> {
    /// An optional string argument.
    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, ToolError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("{name} must be a string").into()),
        }
    }

    /// A required string argument.
    pub fn str(&self, name: &str) -> Result<&str, ToolError> {
        self.opt_str(name)?.ok_or_else(|| format!("{name} is required").into())
    }

    /// A string argument with a default.
    pub fn str_or<'b>(&'b self, name: &str, default: &'b str) -> Result<&'b str, ToolError> {
        Ok(self.opt_str(name)?.unwrap_or(default))
    }

    /// A boolean argument (default false).
    pub fn bool(&self, name: &str) -> Result<bool, ToolError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("{name} must be true or false").into()),
        }
    }

    /// `limit`, between 1 and `max`.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ToolError> {
        match self.0.get("limit") {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=max as u64).contains(&n) => Ok(n as usize),
                _ => Err(format!("limit must be an integer from 1 to {max}").into()),
            },
        }
    }

    /// A checked, normalised path argument (empty when absent).
    pub fn path(&self, name: &str) -> Result<String, ToolError> {
        self.opt_str(name)?.map(paths::clean).transpose().map(Option::unwrap_or_default)
    }
}

/// Readable text for a result (the same content as `structuredContent`).
fn text(action: &str, v: &Value) -> String {
    let lines = |key: &str, f: &dyn Fn(&Value) -> String| -> String {
        v[key].as_array().map(|a| a.iter().map(f).collect::<Vec<_>>().join("\n")).unwrap_or_default()
    };
    let short = |id: &Value| id.as_str().unwrap_or("").chars().take(10).collect::<String>();
    match action {
        "log" => lines("commits", &|c| {
            let date = c["author"]["date"].as_str().unwrap_or("").get(..10).unwrap_or("");
            format!(
                "{} {date} {}: {}",
                short(&c["id"]),
                c["author"]["name"].as_str().unwrap_or(""),
                c["subject"].as_str().unwrap_or("")
            )
        }),
        "show" | "diff" => {
            let files = lines("files", &|f| {
                format!("{}\t{}", f["status"].as_str().unwrap_or(""), f["path"].as_str().unwrap_or(""))
            });
            format!("{files}\n\n{}", v["patch"].as_str().unwrap_or(""))
        }
        "read_file" => match v["type"].as_str() {
            Some("text") => v["content"].as_str().unwrap_or("").to_owned(),
            Some("symlink") => format!("symlink to {}", v["target"].as_str().unwrap_or("")),
            _ => format!("{} ({} bytes)", v["type"].as_str().unwrap_or(""), v["size"]),
        },
        "list_tree" => {
            lines("entries", &|e| format!("{}\t{}", e["type"].as_str().unwrap_or(""), e["path"].as_str().unwrap_or("")))
        }
        "blame" => lines("lines", &|l| {
            format!("{} {:>5} {}", short(&l["commit"]), l["line"], l["text"].as_str().unwrap_or(""))
        }),
        "grep" => lines("matches", &|m| {
            format!("{}:{}:{}", m["path"].as_str().unwrap_or(""), m["line"], m["text"].as_str().unwrap_or(""))
        }),
        "branches" => lines("branches", &|b| format!("{} {}", b["name"].as_str().unwrap_or(""), short(&b["commit"]))),
        "tags" => lines("tags", &|t| format!("{} {}", t["name"].as_str().unwrap_or(""), short(&t["commit"]))),
        _ => lines("repos", &|r| {
            format!("{} ({})", r["name"].as_str().unwrap_or(""), r["default_branch"].as_str().unwrap_or("-"))
        }),
    }
}

/// Answer a `tools/call` of `git_readonly`.
pub fn call(repos: &Repos, arguments: &Value) -> CallOutcome {
    let args = Args(arguments);
    let action = args.str("action")?;
    let deadline = Deadline::after(DEADLINE);
    let result = if action == "list_repos" {
        refs::list_repos(repos)
    } else {
        let repo = repos.open(args.str("repo")?)?;
        match action {
            "log" => history::log(&repo, &args, &deadline)?,
            "show" => history::show(&repo, &args, &deadline)?,
            "diff" => history::diff(&repo, &args, &deadline)?,
            "read_file" => tree::read_file(&repo, &args)?,
            "list_tree" => tree::list_tree(&repo, &args, &deadline)?,
            "blame" => tree::blame(&repo, &args, &deadline)?,
            "grep" => grep::grep(&repo, &args, &deadline)?,
            "branches" => refs::branches(&repo)?,
            "tags" => refs::tags(&repo)?,
            other => {
                return Err(format!(
                    "unknown action {other:?}: use list_repos, log, show, diff, read_file, list_tree, blame, grep, branches or tags"
                ).into())
            }
        }
    };
    let mut readable = text(action, &result);
    let partial: Vec<&str> = [
        ("deadline_reached", "stopped at the time limit"),
        ("files_truncated", "more changed files than listed"),
        ("truncated", "cut at the size or count limit"),
    ]
    .into_iter()
    .filter(|(flag, _)| result[*flag] == true)
    .map(|(_, why)| why)
    .collect();
    if !partial.is_empty() {
        readable.push_str(&format!("\n\n[partial result: {}]", partial.join("; ")));
    }
    Ok(tool_result(readable, result))
}

/// The tool server answering `git_readonly` over `repos`.
pub fn server(repos: Repos) -> ToolServer {
    let repos = Arc::new(repos);
    ToolServer {
        name: "mcp-gateway-git",
        version: env!("CARGO_PKG_VERSION"),
        tools: vec![ToolSpec {
            name: "git_readonly",
            description: "Read-only access to allow-listed git repositories: log, show, diff, read_file, list_tree, \
                blame, grep, branches, tags, list_repos. Repositories are named by short name.",
            input_schema: json!({
                "type": "object",
                "required": ["action"],
                "properties": {
                    "action": { "type": "string", "enum": ["list_repos", "log", "show", "diff", "read_file", "list_tree", "blame", "grep", "branches", "tags"] },
                    "repo": { "type": "string", "description": "short name from list_repos (all actions but list_repos)" },
                    "rev": { "type": "string", "default": "HEAD", "description": "a branch, tag, commit id or HEAD~2; log also takes A..B" },
                    "path": { "type": "string", "description": "literal path relative to the repository root: a file, or a directory and what is under it" },
                    "limit": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT },
                    "cursor": { "type": "string", "description": "next_cursor from a previous log" },
                    "start_line": { "type": "integer", "minimum": 1, "description": "blame from this line (next_line of a previous blame)" },
                    "author": { "type": "string", "description": "case-insensitive part of 'Name <email>' (after .mailmap)" },
                    "since": { "type": "string", "description": "RFC 3339 or YYYY-MM-DD (committer date)" },
                    "until": { "type": "string" },
                    "from": { "type": "string" },
                    "to": { "type": "string", "default": "HEAD" },
                    "pattern": { "type": "string", "maxLength": grep::MAX_PATTERN },
                    "regex": { "type": "boolean", "default": false },
                    "ignore_case": { "type": "boolean", "default": false },
                    "glob": { "type": "string", "description": "e.g. *.rs or src/**/*.rs" }
                }
            }),
            output_schema: None,
        }],
        call: Arc::new(move |_, arguments| call(&repos, &arguments)),
        max_body_bytes: 64 * 1024,
        call_timeout: DEADLINE + Duration::from_secs(2),
    }
}
