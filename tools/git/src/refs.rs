//! `list_repos`, `branches` and `tags`.

use git2::{BranchType, Repository};
use serde_json::{json, Value};
use tool_kit::ToolError;

use crate::repos::Repos;

/// Most branches or tags listed.
pub const MAX_REFS: usize = 10_000;

/// `list_repos`: short names and default branches (never paths).
pub fn list_repos(repos: &Repos) -> Value {
    let list: Vec<Value> = repos
        .names()
        .map(|name| match repos.open(name) {
            Ok(repo) => {
                // An empty repository still has a default branch: the one HEAD names, unborn.
                let (head, empty) = match repo.head() {
                    Ok(h) => (h.shorthand().map(str::to_owned), false),
                    Err(_) => (Some(crate::history::unborn_branch(&repo)).filter(|b| !b.is_empty()), true),
                };
                json!({ "name": name, "default_branch": head, "bare": repo.is_bare(), "empty": empty })
            }
            Err(e) => json!({ "name": name, "error": e.to_string() }),
        })
        .collect();
    json!({ "repos": list })
}

/// `branches`: local branches with their commits.
pub fn branches(repo: &Repository) -> Result<Value, ToolError> {
    let mut out = Vec::new();
    for branch in repo.branches(Some(BranchType::Local)).map_err(crate::history::damaged)?.take(MAX_REFS) {
        let (branch, _) = branch.map_err(crate::history::damaged)?;
        let name = branch.name().ok().flatten().unwrap_or("").to_owned();
        let target = branch.get().peel_to_commit().map(|c| c.id().to_string()).ok();
        out.push(json!({ "name": name, "commit": target, "is_head": branch.is_head() }));
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(json!({ "branches": out }))
}

/// `tags`: tags with the commit they point at and, for annotated tags, their message.
pub fn tags(repo: &Repository) -> Result<Value, ToolError> {
    let names = repo.tag_names(None).map_err(crate::history::damaged)?;
    let mut out = Vec::new();
    for name in names.iter().flatten().take(MAX_REFS) {
        let Ok(reference) = repo.find_reference(&format!("refs/tags/{name}")) else { continue };
        let commit = reference.peel_to_commit().map(|c| c.id().to_string()).ok();
        let message = reference.peel_to_tag().ok().and_then(|t| t.message().map(|m| m.trim().to_owned()));
        out.push(json!({ "name": name, "commit": commit, "annotated": message.is_some(), "message": message }));
    }
    Ok(json!({ "tags": out }))
}
