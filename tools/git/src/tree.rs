//! `read_file`, `list_tree` and `blame`: content at a revision, from the object database.

use std::path::Path;

use git2::{BlameOptions, ObjectType, Repository};
use serde_json::{json, Value};

use crate::history::{commit, time};
use crate::{Args, Deadline};

/// Largest file returned by `read_file` or blamed by `blame`.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
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

/// `read_file`: a file's text at a revision; binary files and symlinks are described, not dumped.
pub fn read_file(repo: &Repository, args: &Args) -> Result<Value, String> {
    let rev = args.str_or("rev", "HEAD")?;
    let path = args.path("path")?;
    if path.is_empty() {
        return Err("path is required".into());
    }
    let tree = commit(repo, rev)?.tree().map_err(|e| e.to_string())?;
    let entry = tree.get_path(Path::new(&path)).map_err(|_| format!("no file {path:?} at {rev}"))?;
    let mode = entry.filemode();
    match kind(mode, entry.kind()) {
        "tree" => return Err(format!("{path:?} is a directory; use list_tree")),
        "submodule" => return Ok(json!({ "path": path, "type": "submodule", "commit": entry.id().to_string() })),
        _ => {}
    }
    let blob = repo.find_blob(entry.id()).map_err(|e| e.to_string())?;
    let data = blob.content();
    if mode == SYMLINK {
        // The link's target as stored; it is never followed.
        return Ok(json!({ "path": path, "type": "symlink", "target": String::from_utf8_lossy(data) }));
    }
    if data.len() > MAX_FILE_BYTES {
        return Err(format!("{path:?} is {} bytes; read_file returns files up to {MAX_FILE_BYTES} bytes", data.len()));
    }
    match (is_binary(data), std::str::from_utf8(data)) {
        (false, Ok(text)) => Ok(json!({ "path": path, "type": "text", "size": data.len(), "content": text })),
        _ => Ok(json!({ "path": path, "type": "binary", "size": data.len() })),
    }
}

/// `list_tree`: the entries of a directory at a revision (at most [`MAX_ENTRIES`], and what
/// was listed when the deadline passed).
pub fn list_tree(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, String> {
    let rev = args.str_or("rev", "HEAD")?;
    let path = args.path("path")?;
    let root = commit(repo, rev)?.tree().map_err(|e| e.to_string())?;
    let tree = if path.is_empty() {
        root
    } else {
        let entry = root.get_path(Path::new(&path)).map_err(|_| format!("no directory {path:?} at {rev}"))?;
        repo.find_tree(entry.id()).map_err(|_| format!("{path:?} is not a directory"))?
    };
    let odb = repo.odb().map_err(|e| e.to_string())?;
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

/// `blame`: for each line of a file at a revision, the commit that last changed it (the lines
/// done when the deadline passed).
pub fn blame(repo: &Repository, args: &Args, deadline: &Deadline) -> Result<Value, String> {
    let rev = args.str_or("rev", "HEAD")?;
    let path = args.path("path")?;
    let c = commit(repo, rev)?;
    let entry = c
        .tree()
        .map_err(|e| e.to_string())?
        .get_path(Path::new(&path))
        .map_err(|_| format!("no file {path:?} at {rev}"))?;
    let blob = repo.find_blob(entry.id()).map_err(|_| format!("{path:?} is not a file"))?;
    if blob.size() > MAX_FILE_BYTES || is_binary(blob.content()) {
        return Err(format!("{path:?} is binary or larger than {MAX_FILE_BYTES} bytes; blame needs a text file"));
    }
    let text = String::from_utf8_lossy(blob.content()).into_owned();
    let mut opts = BlameOptions::new();
    opts.newest_commit(c.id());
    let blame = repo.blame_file(Path::new(&path), Some(&mut opts)).map_err(|e| e.to_string())?;
    let (mut lines, mut cut) = (Vec::new(), false);
    for (i, line) in text.lines().enumerate() {
        if deadline.expired() {
            cut = true;
            break;
        }
        let Some(hunk) = blame.get_line(i + 1) else { continue };
        let sig = hunk.final_signature();
        lines.push(json!({
            "line": i + 1,
            "commit": hunk.final_commit_id().to_string(),
            "author": sig.name().unwrap_or(""),
            "date": time(&sig),
            "text": line,
        }));
    }
    Ok(json!({ "path": path, "rev": c.id().to_string(), "lines": lines, "deadline_reached": cut }))
}
