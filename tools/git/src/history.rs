//! `log`, `show` and `diff`: commits and unified diffs.

use std::path::Path;

use chrono::{FixedOffset, TimeZone};
use git2::{Commit, Diff, DiffFindOptions, DiffFormat, DiffOptions, Oid, Repository, Signature, Sort, Tree};
use serde_json::{json, Value};

use crate::{Args, Deadline};

/// Largest diff text returned; longer diffs are cut and say so.
pub const MAX_PATCH_BYTES: usize = 256 * 1024;
/// Most changed files listed by `show` and `diff`; more set `files_truncated`.
pub const MAX_FILES: usize = 1000;

/// Resolve a revision (`HEAD`, a branch, a tag, an id, `HEAD~2`) to a commit.
pub fn commit<'r>(repo: &'r Repository, rev: &str) -> Result<Commit<'r>, String> {
    if rev.is_empty() || rev.len() > 256 || rev.starts_with('-') || rev.contains(['\0', ' ', ':']) {
        return Err(format!("invalid revision {rev:?}"));
    }
    repo.revparse_single(rev).and_then(|o| o.peel_to_commit()).map_err(|_| format!("unknown revision {rev:?}"))
}

/// A signature's time as RFC 3339 with its own offset.
pub fn time(sig: &Signature) -> String {
    let when = sig.when();
    FixedOffset::east_opt(when.offset_minutes() * 60)
        .and_then(|tz| tz.timestamp_opt(when.seconds(), 0).single())
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

fn person(sig: &Signature) -> Value {
    json!({ "name": sig.name().unwrap_or(""), "email": sig.email().unwrap_or(""), "date": time(sig) })
}

/// A commit as JSON.
pub fn commit_json(c: &Commit) -> Value {
    let message = c.message().unwrap_or("");
    let (subject, body) = message.split_once('\n').unwrap_or((message, ""));
    json!({
        "id": c.id().to_string(),
        "parents": c.parent_ids().map(|p| p.to_string()).collect::<Vec<_>>(),
        "author": person(&c.author()),
        "committer": person(&c.committer()),
        "subject": subject.trim_end(),
        "body": body.trim(),
    })
}

fn entry_id(tree: &Tree, path: &str) -> Option<Oid> {
    if path.is_empty() {
        return Some(tree.id());
    }
    tree.get_path(Path::new(path)).ok().map(|e| e.id())
}

/// Whether `commit` changed `path`: it differs from every parent (from nothing, for a root).
fn touches(commit: &Commit, path: &str) -> bool {
    let Ok(tree) = commit.tree() else { return false };
    let mine = entry_id(&tree, path);
    if commit.parent_count() == 0 {
        return mine.is_some();
    }
    commit.parents().all(|p| p.tree().ok().and_then(|t| entry_id(&t, path)) != mine)
}

fn parse_date(raw: &str, name: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp());
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| format!("{name} must be an RFC 3339 time or YYYY-MM-DD"))
}

/// `log`: commits reachable from `rev`, newest first, with filters and a cursor.
pub fn log(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, String> {
    let start = commit(repo, args.str_or("rev", "HEAD")?)?;
    let path = args.path("path")?;
    let author = args.opt_str("author")?.map(|a| a.to_lowercase());
    let since = args.opt_str("since")?.map(|s| parse_date(s, "since")).transpose()?;
    let until = args.opt_str("until")?.map(|s| parse_date(s, "until")).transpose()?;
    let limit = args.limit(50, crate::MAX_LIMIT)?;
    let offset: usize = match args.opt_str("cursor")? {
        Some(c) => c.parse().map_err(|_| "cursor must come from a previous next_cursor".to_owned())?,
        None => 0,
    };
    let mut walk = repo.revwalk().map_err(|e| e.to_string())?;
    walk.set_sorting(Sort::TIME).map_err(|e| e.to_string())?;
    walk.push(start.id()).map_err(|e| e.to_string())?;
    let (mut commits, mut matched, mut more, mut cut) = (Vec::new(), 0usize, false, false);
    for oid in walk {
        if deadline.expired() {
            cut = true;
            break;
        }
        let c = repo.find_commit(oid.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let when = c.committer().when().seconds();
        if since.is_some_and(|s| when < s) || until.is_some_and(|u| when > u) {
            continue;
        }
        if let Some(a) = &author {
            let sig = c.author();
            let who = format!("{} <{}>", sig.name().unwrap_or(""), sig.email().unwrap_or("")).to_lowercase();
            if !who.contains(a.as_str()) {
                continue;
            }
        }
        if !path.is_empty() && !touches(&c, &path) {
            continue;
        }
        matched += 1;
        if matched <= offset {
            continue;
        }
        if commits.len() == limit {
            more = true;
            break;
        }
        commits.push(commit_json(&c));
    }
    let next = more.then(|| (offset + limit).to_string());
    Ok(json!({ "commits": commits, "next_cursor": next, "deadline_reached": cut }))
}

/// The changed files, at most [`MAX_FILES`] of them.
fn changes(diff: &Diff) -> Vec<Value> {
    diff.deltas()
        .take(MAX_FILES)
        .map(|d| {
            let status = match d.status() {
                git2::Delta::Added => "A",
                git2::Delta::Deleted => "D",
                git2::Delta::Modified => "M",
                git2::Delta::Renamed => "R",
                git2::Delta::Copied => "C",
                git2::Delta::Typechange => "T",
                _ => "?",
            };
            let path = |f: git2::DiffFile| f.path().map(|p| p.to_string_lossy().into_owned());
            json!({ "status": status, "old_path": path(d.old_file()), "path": path(d.new_file()) })
        })
        .collect()
}

/// The patch text, cut at [`MAX_PATCH_BYTES`] (`truncated`) or at the deadline (`expired`).
struct Patch {
    text: String,
    truncated: bool,
    expired: bool,
}

fn patch(diff: &Diff, deadline: &Deadline) -> Patch {
    let mut out = Patch { text: String::new(), truncated: false, expired: false };
    // libgit2 computes each file's hunks while printing, so this callback is where a large
    // diff spends its time: stop there at the deadline.
    let _ = diff.print(DiffFormat::Patch, |_, _, line| {
        if deadline.expired() {
            out.expired = true;
            return false;
        }
        let content = String::from_utf8_lossy(line.content());
        let origin = line.origin();
        let piece = if matches!(origin, '+' | '-' | ' ') { format!("{origin}{content}") } else { content.into_owned() };
        if out.text.len() + piece.len() > MAX_PATCH_BYTES {
            out.truncated = true;
            return false;
        }
        out.text.push_str(&piece);
        true
    });
    out
}

fn tree_diff<'r>(
    repo: &'r Repository,
    old: Option<&Tree>,
    new: Option<&Tree>,
    path: &str,
    deadline: &Deadline,
) -> Result<(Diff<'r>, bool), String> {
    let mut opts = DiffOptions::new();
    if !path.is_empty() {
        opts.pathspec(path);
    }
    let mut diff = repo.diff_tree_to_tree(old, new, Some(&mut opts)).map_err(|e| e.to_string())?;
    // Rename detection compares contents; past the deadline, answer without it (and say so).
    let expired = deadline.expired();
    if !expired {
        diff.find_similar(Some(DiffFindOptions::new().renames(true))).map_err(|e| e.to_string())?;
    }
    Ok((diff, expired))
}

/// `files` (capped, `files_truncated`), `patch` (capped, `truncated`) and `deadline_reached`
/// (the patch, or rename detection when `expired`, stopped at the deadline).
fn diff_json(diff: &Diff, expired: bool, deadline: &Deadline) -> Value {
    let files = changes(diff);
    let files_truncated = diff.deltas().len() > files.len();
    let patch = patch(diff, deadline);
    json!({
        "files": files,
        "files_truncated": files_truncated,
        "patch": patch.text,
        "truncated": patch.truncated,
        "deadline_reached": expired || patch.expired,
    })
}

/// `show`: one commit, its changed files and its diff against the first parent.
pub fn show(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, String> {
    let c = commit(repo, args.str_or("rev", "HEAD")?)?;
    let tree = c.tree().map_err(|e| e.to_string())?;
    let parent = c.parents().next().map(|p| p.tree()).transpose().map_err(|e| e.to_string())?;
    let (diff, expired) = tree_diff(repo, parent.as_ref(), Some(&tree), &args.path("path")?, deadline)?;
    let mut out = diff_json(&diff, expired, deadline);
    out["commit"] = commit_json(&c);
    Ok(out)
}

/// `diff`: between two revisions (`to` defaults to HEAD), optionally for one path.
pub fn diff(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, String> {
    let from = commit(repo, args.str("from")?)?;
    let to = commit(repo, args.str_or("to", "HEAD")?)?;
    let (a, b) = (from.tree().map_err(|e| e.to_string())?, to.tree().map_err(|e| e.to_string())?);
    let (diff, expired) = tree_diff(repo, Some(&a), Some(&b), &args.path("path")?, deadline)?;
    let mut out = diff_json(&diff, expired, deadline);
    out["from"] = json!(from.id().to_string());
    out["to"] = json!(to.id().to_string());
    Ok(out)
}
