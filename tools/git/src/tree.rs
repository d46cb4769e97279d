//! `read_file`, `list_tree` and `blame`: content at a revision, from the object database.

use std::collections::HashMap;
use std::path::Path;
use tool_kit::ToolError;

use git2::{Commit, DiffFindOptions, DiffOptions, ObjectType, Oid, Repository};
use serde_json::{json, Value};

use crate::history::{commit, damaged, mailmap, time, who, ByDate};
use crate::{Args, Deadline};

/// Largest file returned by `read_file` or blamed by `blame`.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most lines one `blame` answers; `next_line` (as `start_line`) asks for the rest.
pub const MAX_BLAME_LINES: usize = 5000;
/// Most entries listed by `list_tree`.
pub const MAX_ENTRIES: usize = 10_000;

const SYMLINK: i32 = 0o120000;
const SUBMODULE: i32 = 0o160000;

fn kind(mode: i32, object: Option<ObjectType>) -> &'static str {
    match (mode, object) {
        (SYMLINK, _) => "symlink",
        (SUBMODULE, _) => "submodule",
        (_, Some(ObjectType::Tree)) => "tree",
        _ => "blob",
    }
}

/// Whether content looks binary (a NUL in the first 8000 bytes, as git decides).
pub fn is_binary(data: &[u8]) -> bool {
    data.iter().take(8000).any(|b| *b == 0)
}

/// Text as stored: UTF-8 when it is, else read as Windows-1252 (as `read_file` reads a
/// non-UTF-8 file), never U+FFFD in place of a letter.
pub fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.into(),
        Err(_) => encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

/// A blob's size from its header, without reading (or inflating) the blob itself.
pub fn blob_size(repo: &Repository, id: Oid) -> Result<usize, ToolError> {
    repo.odb().and_then(|odb| odb.read_header(id)).map(|(size, _)| size).map_err(damaged)
}

/// The blob `id` when it is at most [`MAX_FILE_BYTES`] (`None` when larger: never loaded).
pub fn small_blob(repo: &Repository, id: Oid) -> Result<Option<git2::Blob<'_>>, ToolError> {
    if blob_size(repo, id)? > MAX_FILE_BYTES {
        return Ok(None);
    }
    repo.find_blob(id).map(Some).map_err(damaged)
}

/// `read_file`: a file's text at a revision; binary files and symlinks are described, not dumped.
pub fn read_file(repo: &Repository, args: &Args) -> Result<Value, ToolError> {
    let rev = args.str_or("rev", "HEAD")?;
    let path = args.path("path")?;
    if path.is_empty() {
        return Err("path is required".into());
    }
    let tree = commit(repo, rev)?.tree().map_err(damaged)?;
    let entry = tree.get_path(Path::new(&path)).map_err(|_| format!("no file {path:?} at {rev}"))?;
    let mode = entry.filemode();
    match kind(mode, entry.kind()) {
        "tree" => return Err(format!("{path:?} is a directory; use list_tree").into()),
        "submodule" => return Ok(json!({ "path": path, "type": "submodule", "commit": entry.id().to_string() })),
        _ => {}
    }
    let Some(blob) = small_blob(repo, entry.id())? else {
        let size = blob_size(repo, entry.id())?;
        return Err(format!("{path:?} is {size} bytes; read_file returns files up to {MAX_FILE_BYTES} bytes").into());
    };
    let data = blob.content();
    if mode == SYMLINK {
        // The link's target as stored; it is never followed.
        return Ok(json!({ "path": path, "type": "symlink", "target": String::from_utf8_lossy(data) }));
    }
    if is_binary(data) {
        return Ok(json!({ "path": path, "type": "binary", "size": data.len() }));
    }
    // Text is what git calls text (no NUL); text that is not UTF-8 is read as Windows-1252
    // (a superset of Latin-1, the usual other encoding) and says so.
    Ok(match std::str::from_utf8(data) {
        Ok(text) => json!({ "path": path, "type": "text", "size": data.len(), "content": text, "encoding": "utf-8" }),
        Err(_) => json!({
            "path": path, "type": "text", "size": data.len(),
            "content": encoding_rs::WINDOWS_1252.decode_without_bom_handling(data).0,
            "encoding": "windows-1252 (not UTF-8; read as Latin-1)",
        }),
    })
}

/// `list_tree`: the entries of a directory at a revision (at most [`MAX_ENTRIES`], and what
/// was listed when the deadline passed).
pub fn list_tree(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, ToolError> {
    let rev = args.str_or("rev", "HEAD")?;
    let path = args.path("path")?;
    let root = commit(repo, rev)?.tree().map_err(damaged)?;
    let tree = if path.is_empty() {
        root
    } else {
        let entry = root.get_path(Path::new(&path)).map_err(|_| format!("no directory {path:?} at {rev}"))?;
        repo.find_tree(entry.id()).map_err(|_| format!("{path:?} is not a directory"))?
    };
    let odb = repo.odb().map_err(damaged)?;
    let (mut entries, mut cut) = (Vec::new(), false);
    for entry in tree.iter().take(MAX_ENTRIES) {
        if deadline.expired() {
            cut = true;
            break;
        }
        let name = entry.name().unwrap_or("").to_owned();
        let kind = kind(entry.filemode(), entry.kind());
        let size =
            (kind == "blob" || kind == "symlink").then(|| odb.read_header(entry.id()).map(|(s, _)| s).ok()).flatten();
        entries.push(json!({
            "name": name,
            "path": if path.is_empty() { name.clone() } else { format!("{path}/{name}") },
            "type": kind,
            "mode": format!("{:06o}", entry.filemode()),
            "id": entry.id().to_string(),
            "size": size,
        }));
    }
    Ok(json!({ "path": path, "entries": entries, "truncated": tree.len() > MAX_ENTRIES, "deadline_reached": cut }))
}

/// A file's lines as git counts them: split at `\n` only (a `\r` stays with its line), the
/// last line counted even without a final newline.
pub fn lines(data: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if data.is_empty() || data.ends_with(b"\n") {
        out.pop();
    }
    out
}

/// Where the lines of `new` that a line diff leaves unchanged were in `old`: a map from each
/// unchanged new line to its old line.
fn unchanged(old: &[u8], new: &[u8]) -> Result<HashMap<usize, usize>, ToolError> {
    let mut opts = DiffOptions::new();
    opts.context_lines(0).force_text(true);
    let patch = git2::Patch::from_buffers(old, None, new, None, Some(&mut opts)).map_err(damaged)?;
    let (old_len, new_len) = (lines(old).len(), lines(new).len());
    let mut map = HashMap::new();
    let (mut o, mut n) = (0usize, 0usize);
    let mut keep = |o_to: usize, n_to: usize, o: usize, n: usize| {
        for i in 0..(n_to.saturating_sub(n)).min(o_to.saturating_sub(o)) {
            map.insert(n + i, o + i);
        }
    };
    for h in 0..patch.num_hunks() {
        let (hunk, _) = patch.hunk(h).map_err(damaged)?;
        // A side with no lines names the line before the change (1-based), so its 0-based
        // position is that number itself.
        let o_at = if hunk.old_lines() == 0 { hunk.old_start() } else { hunk.old_start() - 1 } as usize;
        let n_at = if hunk.new_lines() == 0 { hunk.new_start() } else { hunk.new_start() - 1 } as usize;
        keep(o_at, n_at, o, n);
        o = o_at + hunk.old_lines() as usize;
        n = n_at + hunk.new_lines() as usize;
    }
    keep(old_len, new_len, o, n);
    Ok(map)
}

/// Lines still looking for their commit: `(line in this version, line in the blamed file)`.
struct Pending {
    path: String,
    blob: Oid,
    lines: Vec<(usize, usize)>,
}

/// The commits still to visit, newest first, each with the lines it is asked about.
#[derive(Default)]
struct Todo {
    pending: HashMap<Oid, Vec<Pending>>,
    queue: ByDate,
}

impl Todo {
    /// Ask `c` about `lines` of its version of `path` (queueing it if it was not waiting).
    fn give(&mut self, c: &Commit, path: &str, blob: Oid, lines: Vec<(usize, usize)>) {
        if lines.is_empty() {
            return;
        }
        let waiting = self.pending.entry(c.id()).or_default();
        if waiting.is_empty() {
            self.queue.push(c);
        }
        match waiting.iter_mut().find(|p| p.path == path) {
            Some(p) => p.lines.extend(lines),
            None => waiting.push(Pending { path: path.to_owned(), blob, lines }),
        }
    }
}

/// The path and blob a parent had before `c` renamed the file now at `path`.
fn renamed_from(repo: &Repository, parent: &Commit, c: &Commit, path: &str) -> Option<(String, Oid)> {
    let (old, new) = (parent.tree().ok()?, c.tree().ok()?);
    let mut diff = repo.diff_tree_to_tree(Some(&old), Some(&new), None).ok()?;
    diff.find_similar(Some(DiffFindOptions::new().renames(true))).ok()?;
    let delta = diff
        .deltas()
        .find(|d| d.status() == git2::Delta::Renamed && d.new_file().path().is_some_and(|p| p == Path::new(path)))?;
    Some((delta.old_file().path()?.to_str()?.to_owned(), delta.old_file().id()))
}

/// For each line of `path` at `start`, the commit that last changed it (`None` for lines not
/// reached by the deadline). As git blame does: commits newest first; a parent with the same
/// content takes every line; otherwise each parent in turn takes the lines a line diff shows
/// unchanged from it; the lines left are the commit's own. Renames are followed.
fn owners(
    repo: &Repository,
    start: &Commit,
    path: &str,
    blob: Oid,
    count: usize,
    deadline: &Deadline,
) -> Result<(Vec<Option<Oid>>, bool), ToolError> {
    let mut owner = vec![None; count];
    let odb = repo.odb().map_err(damaged)?;
    let mut todo = Todo::default();
    todo.give(start, path, blob, (0..count).map(|i| (i, i)).collect());
    let mut left = count;
    while left > 0 {
        let Some(id) = todo.queue.pop() else { break };
        if deadline.expired() {
            return Ok((owner, true));
        }
        let c = repo.find_commit(id).map_err(damaged)?;
        let parents: Vec<Commit> = c.parents().collect();
        for mine in todo.pending.remove(&id).unwrap_or_default() {
            let mut sources: Vec<(&Commit, String, Oid)> = parents
                .iter()
                .filter_map(|p| {
                    crate::history::path_id(&odb, p.tree_id(), &mine.path)
                        .filter(|id| odb.read_header(*id).is_ok_and(|(_, kind)| kind == ObjectType::Blob))
                        .map(|id| (p, mine.path.clone(), id))
                })
                .collect();
            if sources.is_empty() {
                if let Some((old_path, old_blob)) = parents.first().and_then(|p| renamed_from(repo, p, &c, &mine.path))
                {
                    sources.push((&parents[0], old_path, old_blob));
                }
            }
            let mut lines = mine.lines;
            if let Some((p, p_path, p_blob)) = sources.iter().find(|s| s.2 == mine.blob) {
                todo.give(p, p_path, *p_blob, lines);
                continue;
            }
            let Some(new) = small_blob(repo, mine.blob)? else {
                // A version too large to compare: its lines are this commit's.
                for (_, f) in lines {
                    owner[f] = Some(id);
                    left -= 1;
                }
                continue;
            };
            for (p, p_path, p_blob) in sources {
                if lines.is_empty() {
                    break;
                }
                let Some(old) = small_blob(repo, p_blob)? else { continue };
                let map = unchanged(old.content(), new.content())?;
                let (passed, kept): (Vec<_>, Vec<_>) = lines.into_iter().partition(|(l, _)| map.contains_key(l));
                todo.give(p, &p_path, p_blob, passed.into_iter().map(|(l, f)| (map[&l], f)).collect());
                lines = kept;
            }
            for (_, f) in lines {
                owner[f] = Some(id);
                left -= 1;
            }
        }
    }
    Ok((owner, false))
}

/// `blame`: for each line of a file at a revision, the commit that last changed it, its
/// author through the `.mailmap` (the lines done when the deadline passed). Stops its work at
/// the deadline: the walk checks it at every commit.
pub fn blame(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, ToolError> {
    let rev = args.str_or("rev", "HEAD")?;
    let path = args.path("path")?;
    let c = commit(repo, rev)?;
    let entry =
        c.tree().map_err(damaged)?.get_path(Path::new(&path)).map_err(|_| format!("no file {path:?} at {rev}"))?;
    if entry.kind() != Some(ObjectType::Blob) {
        return Err(format!("{path:?} is not a file").into());
    }
    let too_big = || format!("{path:?} is binary or larger than {MAX_FILE_BYTES} bytes; blame needs a text file");
    let blob = small_blob(repo, entry.id())?.ok_or_else(too_big)?;
    if is_binary(blob.content()) {
        return Err(too_big().into());
    }
    let text = lines(blob.content());
    let first = match args.0.get("start_line") {
        None | Some(Value::Null) => 1,
        Some(v) => v.as_u64().filter(|n| *n >= 1).ok_or("start_line must be a positive integer")? as usize,
    };
    let (owner, mut cut) = owners(repo, &c, &path, blob.id(), text.len(), deadline)?;
    let mailmap = mailmap(repo, &c);
    // One commit's author is looked up once, however many lines it owns.
    let mut authors: HashMap<Oid, Value> = HashMap::new();
    let mut out = Vec::new();
    let mut next_line = None;
    for (i, (line, owner)) in text.iter().zip(&owner).enumerate().skip(first - 1) {
        if out.len() == MAX_BLAME_LINES {
            next_line = Some(i + 1);
            break;
        }
        if deadline.expired() {
            cut = true;
            break;
        }
        let Some(id) = owner else { continue };
        let author = match authors.get(id) {
            Some(a) => a.clone(),
            None => {
                let commit = repo.find_commit(*id).map_err(damaged)?;
                let sig = commit.author();
                let (name, email) = who(&sig, mailmap.as_ref(), commit.message_encoding());
                let a = json!([name, email, time(&sig)]);
                authors.insert(*id, a.clone());
                a
            }
        };
        out.push(json!({
            "line": i + 1,
            "commit": id.to_string(),
            "author": author[0],
            "email": author[1],
            "date": author[2],
            "text": text_of(line),
        }));
    }
    Ok(json!({
        "path": path,
        "rev": c.id().to_string(),
        "lines": out,
        "truncated": next_line.is_some(),
        "next_line": next_line,
        "deadline_reached": cut,
    }))
}
