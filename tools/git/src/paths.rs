//! Paths inside a repository, normalised and checked: no `..`, no absolute paths, no `.git`.
//! Files are always read from the object database at a revision, never from the working tree,
//! so a symlink can name a target but never be followed.

use tool_kit::ToolError;

/// Normalise `raw` to `a/b/c` (empty for the root), refusing anything that could escape.
pub fn clean(raw: &str) -> Result<String, ToolError> {
    if raw.len() > 4096 || raw.contains('\0') {
        return Err("path is too long or contains NUL".into());
    }
    // Paths are git's: `/`-separated bytes in which `\` and `:` are ordinary characters
    // (`a:b.txt`, `back\slash.txt` are valid names); they never reach the file system.
    if raw.starts_with('/') {
        return Err(format!("path {raw:?} must be relative to the repository root").into());
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("path {raw:?} may not contain '..'").into()),
            p if p.eq_ignore_ascii_case(".git") => return Err(format!("path {raw:?} may not reach into .git").into()),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Compile a path glob (`*`, `**`, `?`) into an anchored regex; a glob without `/` matches
/// file names in any directory.
pub fn glob(pattern: &str) -> Result<(regex::Regex, bool), ToolError> {
    if pattern.len() > 500 {
        return Err("glob is longer than 500 characters".into());
    }
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                    re.push_str("(?:.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    let compiled = regex::Regex::new(&re).map_err(|e| format!("bad glob: {e}"))?;
    Ok((compiled, !pattern.contains('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_refused_and_paths_normalised() {
        assert_eq!(clean("./src//lib.rs").unwrap(), "src/lib.rs");
        assert_eq!(clean("").unwrap(), "");
        assert_eq!(clean("a:b.txt").unwrap(), "a:b.txt");
        assert_eq!(clean("back\\slash.txt").unwrap(), "back\\slash.txt");
        for bad in ["../x", "a/../../b", "/etc/passwd", ".git/config", "sub/.GIT/hooks", "a\0b"] {
            assert!(clean(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn globs_match_like_shells() {
        let (re, base) = glob("*.rs").unwrap();
        assert!(base && re.is_match("lib.rs") && !re.is_match("lib.rsx"));
        let (re, base) = glob("src/**/*.rs").unwrap();
        assert!(!base && re.is_match("src/a/b.rs") && re.is_match("src/b.rs") && !re.is_match("tests/b.rs"));
    }
}
