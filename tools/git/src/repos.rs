//! The allow-list: short repository names mapped to local paths, from `GIT_REPOS` or
//! `GIT_REPOS_FILE`. Requests name a repository; paths never come from a request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use tool_kit::ToolError;

use git2::{Repository, RepositoryOpenFlags};

/// Repositories by short name.
#[derive(Debug, Clone, Default)]
pub struct Repos {
    by_name: BTreeMap<String, PathBuf>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl Repos {
    /// Parse `name=path,other=path`.
    pub fn from_list(list: &str) -> Result<Self, ToolError> {
        let mut repos = Repos::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, path) = item.split_once('=').ok_or_else(|| format!("GIT_REPOS: {item:?} is not name=path"))?;
            repos.add(name.trim(), path.trim())?;
        }
        Ok(repos)
    }

    /// Parse a YAML mapping `name: path` (or `repos: {name: path}`).
    pub fn from_yaml(text: &str) -> Result<Self, ToolError> {
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| format!("GIT_REPOS_FILE: {e}"))?;
        let map = value.get("repos").cloned().unwrap_or(value);
        let map: BTreeMap<String, String> =
            serde_yaml::from_value(map).map_err(|e| format!("GIT_REPOS_FILE: expected name: path entries: {e}"))?;
        let mut repos = Repos::default();
        for (name, path) in map {
            repos.add(&name, &path)?;
        }
        Ok(repos)
    }

    /// Read `GIT_REPOS_FILE` or `GIT_REPOS` from the environment.
    pub fn from_env() -> Result<Self, ToolError> {
        if let Ok(file) = std::env::var("GIT_REPOS_FILE") {
            let text = std::fs::read_to_string(&file).map_err(|e| format!("GIT_REPOS_FILE={file}: {e}"))?;
            return Self::from_yaml(&text);
        }
        Self::from_list(&std::env::var("GIT_REPOS").unwrap_or_default())
    }

    /// Add one repository, checking that it opens.
    pub fn add(&mut self, name: &str, path: &str) -> Result<(), ToolError> {
        if !valid_name(name) {
            return Err(format!("repository name {name:?} must be ASCII letters, digits, '-', '_' or '.'").into());
        }
        let path = PathBuf::from(path);
        open_path(&path)
            .map_err(|e| ToolError::failed(format!("repository {name:?} at {}: {e}", path.display()), e))?;
        self.by_name.insert(name.to_owned(), path);
        Ok(())
    }

    /// The short names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Open the repository called `name`.
    pub fn open(&self, name: &str) -> Result<Repository, ToolError> {
        let path = self.by_name.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.names().collect();
            format!("unknown repository {name:?}; available: {}", known.join(", "))
        })?;
        // libgit2's message names the directory on this machine: say only the short name.
        open_path(path)
            .map_err(|_| format!("repository {name:?} cannot be opened: it is missing or not a git repository").into())
    }
}

fn open_path(path: &std::path::Path) -> Result<Repository, git2::Error> {
    // libgit2 re-hashes every object it reads (SHA-1 with collision detection): 83% of the time
    // of `log -- path` on a 23,000-commit history went there. git does not re-hash on read
    // either; damage still shows as a zlib or parse error (reported as "missing or damaged").
    static NO_REHASH: std::sync::Once = std::sync::Once::new();
    NO_REHASH.call_once(|| git2::opts::strict_hash_verification(false));
    // NO_SEARCH: never walk up to a parent repository.
    Repository::open_ext(path, RepositoryOpenFlags::NO_SEARCH, std::iter::empty::<&std::ffi::OsStr>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_repos() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        Repository::init(&a).unwrap();
        Repository::init_bare(&b).unwrap();
        (dir, a.display().to_string(), b.display().to_string())
    }

    #[test]
    fn yaml_is_accepted_as_a_plain_mapping_or_under_repos() {
        let (_dir, a, b) = two_repos();
        for text in [format!("alpha: {a}\nbeta.2: {b}\n"), format!("repos:\n  alpha: {a}\n  beta.2: {b}\n")] {
            let repos = Repos::from_yaml(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(repos.names().collect::<Vec<_>>(), ["alpha", "beta.2"], "{text}");
            assert!(repos.open("alpha").is_ok() && repos.open("beta.2").is_ok());
            assert_eq!(repos.by_name["alpha"], PathBuf::from(&a));
        }
        assert_eq!(Repos::from_yaml("{}").unwrap().names().count(), 0);
    }

    #[test]
    fn bad_yaml_is_refused_with_the_reason() {
        let (_dir, a, _) = two_repos();
        for (text, needle) in [
            ("- a\n- b\n".to_owned(), "name: path"),
            ("repos: [1, 2]\n".to_owned(), "name: path"),
            ("alpha: [\n".to_owned(), "GIT_REPOS_FILE"),
            (format!("bad name: {a}\n"), "must be ASCII"),
            ("missing: /nonexistent/repository\n".to_owned(), "\"missing\""),
        ] {
            let err = Repos::from_yaml(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
