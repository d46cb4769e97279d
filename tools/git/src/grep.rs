//! `grep`: search file contents at a revision with a linear-time regex engine (no
//! backtracking blow-up), capped in matches, file size and time.

use git2::{ObjectType, Repository, TreeWalkMode, TreeWalkResult};
use regex::RegexBuilder;
use serde_json::{json, Value};
use tool_kit::ToolError;

use crate::history::commit;
use crate::tree::is_binary;
use crate::{paths, Args, Deadline};

/// Longest pattern accepted.
pub const MAX_PATTERN: usize = 1000;

/// `grep`: matching lines as `{path, line, text}`.
pub fn grep(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, ToolError> {
    let pattern = args.str("pattern")?;
    if pattern.is_empty() || pattern.len() > MAX_PATTERN {
        return Err(format!("pattern must be 1 to {MAX_PATTERN} characters").into());
    }
    let source = if args.bool("regex")? { pattern.to_owned() } else { regex::escape(pattern) };
    let re = RegexBuilder::new(&source)
        .case_insensitive(args.bool("ignore_case")?)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid or too large regex: {e}"))?;
    let glob = args.opt_str("glob")?.map(paths::glob).transpose()?;
    let under = args.path("path")?;
    let limit = args.limit(100, crate::MAX_LIMIT)?;
    let tree = commit(repo, args.str_or("rev", "HEAD")?)?.tree().map_err(crate::history::damaged)?;

    let mut matches = Vec::new();
    let (mut truncated, mut cut, mut files) = (false, false, 0usize);
    let mut failure = None;
    let walked = tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if deadline.expired() {
            cut = true;
            return TreeWalkResult::Abort;
        }
        if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == 0o120000 {
            return TreeWalkResult::Ok;
        }
        let name = entry.name().unwrap_or("");
        let path = format!("{dir}{name}");
        if !(under.is_empty() || path == under || path.starts_with(&format!("{under}/"))) {
            return TreeWalkResult::Ok;
        }
        if let Some((g, base_only)) = &glob {
            if !g.is_match(if *base_only { name } else { &path }) {
                return TreeWalkResult::Ok;
            }
        }
        // Files over the size limit are skipped unread, as binary files are.
        let blob = match crate::tree::small_blob(repo, entry.id()) {
            Ok(Some(b)) => b,
            Ok(None) => return TreeWalkResult::Ok,
            Err(e) => {
                failure = Some(e);
                return TreeWalkResult::Abort;
            }
        };
        let data = blob.content();
        if is_binary(data) {
            return TreeWalkResult::Ok;
        }
        files += 1;
        for (i, line) in crate::tree::lines(data).into_iter().enumerate() {
            let line = crate::tree::text_of(line);
            if re.is_match(&line) {
                if matches.len() == limit {
                    truncated = true;
                    return TreeWalkResult::Abort;
                }
                let shown: String = line.chars().take(500).collect();
                matches.push(json!({ "path": path, "line": i + 1, "text": shown }));
            }
        }
        TreeWalkResult::Ok
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if walked.is_err() && !(truncated || cut) {
        return Err("tree walk failed".into());
    }
    Ok(json!({ "matches": matches, "files_searched": files, "truncated": truncated, "deadline_reached": cut }))
}
