//! `log`, `show` and `diff`: commits and unified diffs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use tool_kit::ToolError;

use chrono::{FixedOffset, TimeZone};
use git2::{Commit, Diff, DiffFindOptions, DiffFormat, DiffOptions, Oid, Repository, Signature, Tree};
use serde_json::{json, Value};

use crate::mailmap::MailMap;
use crate::{Args, Deadline};

/// Largest diff text returned; longer diffs are cut and say so.
pub const MAX_PATCH_BYTES: usize = 256 * 1024;
/// Most changed files listed by `show` and `diff`; more set `files_truncated`.
pub const MAX_FILES: usize = 1000;

/// Check a revision as written by the caller: no options, no paths, no message searches.
fn check_rev(rev: &str) -> Result<(), ToolError> {
    if rev.is_empty() || rev.len() > 256 || rev.starts_with('-') || rev.contains(['\0', ' ', ':']) {
        return Err(format!("invalid revision {rev:?}").into());
    }
    // `HEAD^{/regex}` runs a backtracking regex over every commit message, beyond any deadline.
    if rev.contains("^{/") {
        return Err(format!(
            "revision {rev:?} searches commit messages, which is not supported; use log and read the subjects"
        )
        .into());
    }
    Ok(())
}

/// Resolve a revision (`HEAD`, a branch, a tag, an id, `HEAD~2`) to a commit.
pub fn commit<'r>(repo: &'r Repository, rev: &str) -> Result<Commit<'r>, ToolError> {
    check_rev(rev)?;
    if rev.contains("..") {
        return Err(format!("revision ranges like {rev:?} are supported by log only; here name one commit").into());
    }
    resolve(repo, rev)
}

fn resolve<'r>(repo: &'r Repository, rev: &str) -> Result<Commit<'r>, ToolError> {
    match repo.revparse_single(rev).and_then(|o| o.peel_to_commit()) {
        Ok(c) => Ok(c),
        Err(_) if rev == "HEAD" && repo.head().is_err_and(|e| e.code() == git2::ErrorCode::UnbornBranch) => {
            Err(format!("the repository has no commits yet (its branch {} is unborn)", unborn_branch(repo)).into())
        }
        Err(_) => Err(format!("unknown revision {rev:?}").into()),
    }
}

/// The branch HEAD names in a repository without commits.
pub fn unborn_branch(repo: &Repository) -> String {
    repo.find_reference("HEAD")
        .ok()
        .and_then(|h| h.symbolic_target().map(|t| t.trim_start_matches("refs/heads/").to_owned()))
        .unwrap_or_default()
}

/// A damaged or unreadable repository, said without libgit2's message (which can carry the
/// repository's directory on this machine).
pub fn damaged(e: git2::Error) -> ToolError {
    let message =
        format!("the repository could not be read: an object or file it needs is missing or damaged ({:?})", e.class());
    ToolError::failed(message, e)
}

/// Text stored in a commit, decoded as git does: from the commit's `encoding` header (UTF-8
/// when absent); bytes that do not decode become U+FFFD.
pub fn decode(bytes: &[u8], encoding: Option<&str>) -> String {
    let enc = encoding
        .and_then(|label| encoding_rs::Encoding::for_label(label.trim().as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

/// A signature's time as RFC 3339 with its own offset.
pub fn time(sig: &Signature) -> String {
    let when = sig.when();
    FixedOffset::east_opt(when.offset_minutes() * 60)
        .and_then(|tz| tz.timestamp_opt(when.seconds(), 0).single())
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// The repository's `.mailmap` as stored in HEAD (as git uses the current one for every
/// commit), else at `at`; read from the object database, never from the working tree or a
/// configured file, so it cannot point outside the repository.
pub fn mailmap(repo: &Repository, at: &Commit) -> Option<MailMap> {
    let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let from = head.as_ref().unwrap_or(at);
    let odb = repo.odb().ok()?;
    let id = path_id(&odb, from.tree_id(), ".mailmap")?;
    let blob = crate::tree::small_blob(repo, id).ok()??;
    Some(MailMap::parse(&String::from_utf8_lossy(blob.content())))
}

/// Name and email as git shows them: decoded from the commit's encoding, through the mailmap.
pub fn who(sig: &Signature, mailmap: Option<&MailMap>, encoding: Option<&str>) -> (String, String) {
    let (name, email) = (decode(sig.name_bytes(), encoding), decode(sig.email_bytes(), encoding));
    match mailmap {
        Some(m) => m.resolve(&name, &email),
        None => (name, email),
    }
}

fn person(sig: &Signature, mailmap: Option<&MailMap>, encoding: Option<&str>) -> Value {
    let (name, email) = who(sig, mailmap, encoding);
    json!({ "name": name, "email": email, "date": time(sig) })
}

/// git's `%s` and `%b`: the subject is the first paragraph (leading blank lines skipped, its
/// lines joined by spaces); the body is what follows the blank line after it.
pub fn subject_and_body(message: &str) -> (String, String) {
    let mut lines = message.split('\n').skip_while(|l| l.trim().is_empty()).peekable();
    let mut subject = Vec::new();
    while let Some(line) = lines.next_if(|l| !l.trim().is_empty()) {
        subject.push(line.trim_end());
    }
    let body: Vec<&str> = lines.skip_while(|l| l.trim().is_empty()).collect();
    (subject.join(" "), body.join("\n").trim_end().to_owned())
}

/// A commit as JSON (names through the mailmap, text in the commit's own encoding).
pub fn commit_json(c: &Commit, mailmap: Option<&MailMap>) -> Value {
    let encoding = c.message_encoding();
    let (subject, body) = subject_and_body(&decode(c.message_raw_bytes(), encoding));
    json!({
        "id": c.id().to_string(),
        "parents": c.parent_ids().map(|p| p.to_string()).collect::<Vec<_>>(),
        "author": person(&c.author(), mailmap, encoding),
        "committer": person(&c.committer(), mailmap, encoding),
        "subject": subject,
        "body": body,
        "encoding": encoding,
    })
}

/// What the tree `root` holds at `path` (`root` itself for the empty path), found by scanning
/// the raw tree objects for each component, as git does: a history walk looks a path up in
/// every commit, and parsing every entry of a directory of thousands of files each time (what
/// `Tree::get_path` does) made `log -- path` on a large repository miss its deadline.
pub fn path_id(odb: &git2::Odb, root: Oid, path: &str) -> Option<Oid> {
    let mut id = root;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let object = odb.read(id).ok()?;
        if object.kind() != git2::ObjectType::Tree {
            return None;
        }
        id = scan_tree(object.data(), part.as_bytes())?;
    }
    Some(id)
}

/// The id of entry `name` in raw tree data (`<mode> <name>\0<20-byte id>`, sorted by name).
fn scan_tree(data: &[u8], name: &[u8]) -> Option<Oid> {
    let mut at = 0;
    while at < data.len() {
        let space = at + data[at..].iter().position(|b| *b == b' ')?;
        let nul = space + 1 + data[space + 1..].iter().position(|b| *b == 0)?;
        let id = data.get(nul + 1..nul + 21)?;
        if &data[space + 1..nul] == name {
            return Oid::from_bytes(id).ok();
        }
        at = nul + 21;
    }
    None
}

/// Commit ids in git's own order: newest commit time first and, among equal times, in the
/// order they were queued. Shared by `log` (each commit once) and `blame` (a commit again
/// whenever it is asked about more lines).
#[derive(Default)]
pub struct ByDate {
    queue: BinaryHeap<(i64, Reverse<u64>, Oid)>,
    queued: u64,
}

impl ByDate {
    /// Queue `c`.
    pub fn push(&mut self, c: &Commit) {
        self.queue.push((c.time().seconds(), Reverse(self.queued), c.id()));
        self.queued += 1;
    }

    /// The next commit's id.
    pub fn pop(&mut self) -> Option<Oid> {
        self.queue.pop().map(|(_, _, id)| id)
    }
}

/// Commits in git's own order (see [`ByDate`]), each once, when its first child is shown.
pub struct Walk<'r> {
    repo: &'r Repository,
    queue: ByDate,
    seen: HashSet<Oid>,
}

impl<'r> Walk<'r> {
    /// An empty walk over `repo`.
    pub fn new(repo: &'r Repository) -> Self {
        Self { repo, queue: ByDate::default(), seen: HashSet::new() }
    }

    /// Queue `c` unless it was queued before.
    pub fn push(&mut self, c: &Commit) {
        if self.seen.insert(c.id()) {
            self.queue.push(c);
        }
    }

    /// The next commit, or an error naming a damaged repository.
    pub fn pop(&mut self) -> Option<Result<Commit<'r>, ToolError>> {
        let id = self.queue.pop()?;
        Some(self.repo.find_commit(id).map_err(damaged))
    }
}

/// git's default history simplification for `path`: a commit the same at `path` as one of its
/// parents is not shown and only that parent is followed (so a side branch that did not change
/// the path is never walked); a commit that differs from every parent is shown and all are
/// followed. `at` caches each commit's entry at `path`.
fn simplify<'r>(
    odb: &git2::Odb,
    c: &Commit<'r>,
    path: &str,
    at: &mut HashMap<Oid, Option<Oid>>,
) -> (bool, Vec<Commit<'r>>) {
    let mut entry = |c: &Commit| *at.entry(c.id()).or_insert_with(|| path_id(odb, c.tree_id(), path));
    let mine = entry(c);
    let parents: Vec<Commit> = c.parents().collect();
    if parents.is_empty() {
        return (mine.is_some(), parents);
    }
    if let Some(same) = parents.iter().find(|p| entry(p) == mine) {
        return (false, vec![same.clone()]);
    }
    (true, parents)
}

fn parse_date(raw: &str, name: &str) -> Result<i64, ToolError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp());
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| format!("{name} must be an RFC 3339 time or YYYY-MM-DD").into())
}

/// `rev` for `log`: one revision, or `A..B` (what B has that A does not: every ancestor of A
/// is hidden, as git does). `A...B` is refused.
fn range<'r>(repo: &'r Repository, rev: &str, deadline: &Deadline) -> Result<(Commit<'r>, HashSet<Oid>), ToolError> {
    check_rev(rev)?;
    if rev.contains("...") {
        return Err(format!("symmetric ranges like {rev:?} are not supported; use A..B").into());
    }
    let Some((from, to)) = rev.split_once("..") else { return Ok((resolve(repo, rev)?, HashSet::new())) };
    let (from, to) = (if from.is_empty() { "HEAD" } else { from }, if to.is_empty() { "HEAD" } else { to });
    let (hide, start) = (resolve(repo, from)?, resolve(repo, to)?);
    let mut hidden = HashSet::new();
    let mut todo = vec![hide.id()];
    while let Some(id) = todo.pop() {
        if deadline.expired() {
            return Err(format!("the range {rev:?} is too large to compute within the time limit").into());
        }
        if hidden.insert(id) {
            todo.extend(repo.find_commit(id).map_err(damaged)?.parent_ids());
        }
    }
    Ok((start, hidden))
}

/// `log`: commits reachable from `rev` (or in `A..B`), in git's order, with git's history
/// simplification for `path` (a literal path: a file or a directory), filters and a cursor.
pub fn log(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, ToolError> {
    let rev = args.str_or("rev", "HEAD")?;
    let (start, hidden) = range(repo, rev, deadline)?;
    let path = args.path("path")?;
    let author = args.opt_str("author")?.map(|a| a.to_lowercase());
    let since = args.opt_str("since")?.map(|s| parse_date(s, "since")).transpose()?;
    let until = args.opt_str("until")?.map(|s| parse_date(s, "until")).transpose()?;
    let limit = args.limit(50, crate::MAX_LIMIT)?;
    let offset: usize = match args.opt_str("cursor")? {
        Some(c) => c.parse().map_err(|_| "cursor must come from a previous next_cursor".to_owned())?,
        None => 0,
    };
    let mailmap = mailmap(repo, &start);
    let mut walk = Walk::new(repo);
    if !hidden.contains(&start.id()) {
        walk.push(&start);
    }
    let mut at = HashMap::new();
    let odb = repo.odb().map_err(damaged)?;
    let (mut commits, mut matched, mut more, mut cut) = (Vec::new(), 0usize, false, false);
    while let Some(c) = walk.pop() {
        if deadline.expired() {
            cut = true;
            break;
        }
        let c = c?;
        let when = c.time().seconds();
        // As git's --since: an older commit ends its line of history.
        if since.is_some_and(|s| when < s) {
            continue;
        }
        let (shown, follow) =
            if path.is_empty() { (true, c.parents().collect()) } else { simplify(&odb, &c, &path, &mut at) };
        for p in follow.iter().filter(|p| !hidden.contains(&p.id())) {
            walk.push(p);
        }
        if !shown || until.is_some_and(|u| when > u) {
            continue;
        }
        if let Some(a) = &author {
            let (name, email) = who(&c.author(), mailmap.as_ref(), c.message_encoding());
            if !format!("{name} <{email}>").to_lowercase().contains(a.as_str()) {
                continue;
            }
        }
        matched += 1;
        if matched <= offset {
            continue;
        }
        if commits.len() == limit {
            more = true;
            break;
        }
        commits.push(commit_json(&c, mailmap.as_ref()));
    }
    let next = more.then(|| (offset + limit).to_string());
    Ok(json!({ "commits": commits, "next_cursor": next, "deadline_reached": cut }))
}

/// The changed files, at most [`MAX_FILES`] of them; a side over
/// [`crate::tree::MAX_FILE_BYTES`] is marked `too_large_to_diff` (its patch is not computed).
fn changes(repo: &Repository, diff: &Diff) -> Vec<Value> {
    let odb = repo.odb().ok();
    let too_large = |id: Oid| {
        !id.is_zero()
            && odb
                .as_ref()
                .and_then(|o| o.read_header(id).ok())
                .is_some_and(|(size, _)| size > crate::tree::MAX_FILE_BYTES)
    };
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
            let mut file = json!({ "status": status, "old_path": path(d.old_file()), "path": path(d.new_file()) });
            if too_large(d.old_file().id()) || too_large(d.new_file().id()) {
                file["too_large_to_diff"] = json!(true);
            }
            file
        })
        .collect()
}

/// The patch text, cut at [`MAX_PATCH_BYTES`] (`truncated`) or at the deadline (`expired`).
struct Patch {
    text: String,
    truncated: bool,
    expired: bool,
}

fn patch(diff: &Diff, deadline: &Deadline) -> Result<Patch, ToolError> {
    let mut out = Patch { text: String::new(), truncated: false, expired: false };
    // libgit2 computes each file's hunks while printing, so this callback is where a large
    // diff spends its time: stop there at the deadline.
    let printed = diff.print(DiffFormat::Patch, |_, _, line| {
        if deadline.expired() {
            out.expired = true;
            return false;
        }
        let content = crate::tree::text_of(line.content());
        let origin = line.origin();
        let piece = if matches!(origin, '+' | '-' | ' ') { format!("{origin}{content}") } else { content.into_owned() };
        if out.text.len() + piece.len() > MAX_PATCH_BYTES {
            out.truncated = true;
            return false;
        }
        out.text.push_str(&piece);
        true
    });
    match printed {
        // A blob that cannot be read is a damaged repository, never an empty patch.
        Err(e) if !(out.expired || out.truncated) => Err(damaged(e)),
        _ => Ok(out),
    }
}

/// Whether every added or deleted file is small enough to compare for rename detection
/// (which reads whole blobs); one too large and renames are not looked for.
fn renames_affordable(repo: &Repository, diff: &Diff) -> bool {
    let Ok(odb) = repo.odb() else { return false };
    diff.deltas().all(|d| {
        let file = match d.status() {
            git2::Delta::Added => d.new_file(),
            git2::Delta::Deleted => d.old_file(),
            _ => return true,
        };
        odb.read_header(file.id()).is_ok_and(|(size, _)| size <= crate::tree::MAX_FILE_BYTES)
    })
}

/// A diff between two trees, for `path` when given: a literal path (a file, or a directory
/// and everything under it), as `log` reads it. Blobs over [`crate::tree::MAX_FILE_BYTES`] are
/// never loaded (they show as binary), type changes show as `T`, renames are found when
/// time and file sizes allow.
fn tree_diff<'r>(
    repo: &'r Repository,
    old: Option<&Tree>,
    new: Option<&Tree>,
    path: &str,
    deadline: &Deadline,
    typechange: bool,
) -> Result<(Diff<'r>, bool), ToolError> {
    let mut opts = DiffOptions::new();
    opts.include_typechange(typechange).max_size(crate::tree::MAX_FILE_BYTES as i64);
    if !path.is_empty() {
        opts.pathspec(path).disable_pathspec_match(true);
    }
    let mut diff = repo.diff_tree_to_tree(old, new, Some(&mut opts)).map_err(damaged)?;
    // Rename detection compares contents; past the deadline, answer without it (and say so).
    let expired = deadline.expired();
    if !expired && renames_affordable(repo, &diff) {
        diff.find_similar(Some(DiffFindOptions::new().renames(true))).map_err(damaged)?;
    }
    Ok((diff, expired))
}

/// `files` (capped, `files_truncated`), `patch` (capped, or a file too large to diff:
/// `truncated`) and `deadline_reached`
/// (the patch, or rename detection when `expired`, stopped at the deadline).
fn diff_json(
    repo: &Repository,
    (old, new, path): (Option<&Tree>, Option<&Tree>, &str),
    deadline: &Deadline,
) -> Result<Value, ToolError> {
    let (diff, expired) = tree_diff(repo, old, new, path, deadline, true)?;
    let files = changes(repo, &diff);
    let files_truncated = diff.deltas().len() > files.len();
    let skipped = files.iter().any(|f| f["too_large_to_diff"] == true);
    // A type change is `T` in the file list but, as git prints it, a deletion and an addition
    // in the patch (libgit2 would print the mode lines only, without the contents).
    let typechanged = diff.deltas().any(|d| d.status() == git2::Delta::Typechange);
    let patch = if typechanged {
        patch(&tree_diff(repo, old, new, path, deadline, false)?.0, deadline)?
    } else {
        patch(&diff, deadline)?
    };
    Ok(json!({
        "files": files,
        "files_truncated": files_truncated,
        "patch": patch.text,
        "truncated": patch.truncated || skipped,
        "deadline_reached": expired || patch.expired,
    }))
}

/// `show`: one commit, its changed files and its diff against the first parent.
pub fn show(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, ToolError> {
    let c = commit(repo, args.str_or("rev", "HEAD")?)?;
    let tree = c.tree().map_err(damaged)?;
    let parent = c.parents().next().map(|p| p.tree()).transpose().map_err(damaged)?;
    let mut out = diff_json(repo, (parent.as_ref(), Some(&tree), &args.path("path")?), deadline)?;
    out["commit"] = commit_json(&c, mailmap(repo, &c).as_ref());
    Ok(out)
}

/// `diff`: between two revisions (`to` defaults to HEAD), optionally for one path.
pub fn diff(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, ToolError> {
    let from = commit(repo, args.str("from")?)?;
    let to = commit(repo, args.str_or("to", "HEAD")?)?;
    let (a, b) = (from.tree().map_err(damaged)?, to.tree().map_err(damaged)?);
    let mut out = diff_json(repo, (Some(&a), Some(&b), &args.path("path")?), deadline)?;
    out["from"] = json!(from.id().to_string());
    out["to"] = json!(to.id().to_string());
    Ok(out)
}
