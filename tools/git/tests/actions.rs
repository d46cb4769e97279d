//! Every action checked against what `git` itself prints for the same query, on a fixture
//! repository with renames, a merge, a binary file, symlinks pointing outside and tags.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::Command;

use git_tool::repos::Repos;
use serde_json::{json, Value};

fn git(dir: &Path, args: &[&str], time: u64) -> String {
    let date = format!("{time} +0100");
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    repos: Repos,
}

impl Fixture {
    fn git(&self, args: &[&str]) -> String {
        git(&self.path, args, 1_700_000_000)
    }

    fn call(&self, args: Value) -> Result<Value, String> {
        git_tool::call(&self.repos, &args).map(|r| r["structuredContent"].clone()).map_err(|e| e.to_string())
    }

    fn ok(&self, args: Value) -> Value {
        self.call(args.clone()).unwrap_or_else(|e| panic!("{args}: {e}"))
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    std::fs::create_dir(&path).unwrap();
    let mut t = 1_700_000_000;
    let mut step = |args: &[&str]| {
        t += 3600;
        git(&path, args, t)
    };
    step(&["init", "-q", "-b", "main"]);
    step(&["config", "user.name", "Ada Lovelace"]);
    step(&["config", "user.email", "ada@example.test"]);
    std::fs::create_dir(path.join("src")).unwrap();
    std::fs::write(path.join("README.md"), "# Fixture\n\nA repository for tests.\n").unwrap();
    std::fs::write(path.join("src/lib.rs"), "fn one() {}\nfn two() {}\n// TODO: three\n").unwrap();
    std::fs::write(path.join("data.bin"), [0u8, 1, 2, 3, 0, 255]).unwrap();
    step(&["add", "."]);
    step(&["commit", "-q", "-m", "Initial commit\n\nWith a body."]);
    std::fs::write(
        path.join("src/lib.rs"),
        "fn one() {}\nfn two() { println!(\"2\"); }\n// TODO: three\nfn four() {}\n",
    )
    .unwrap();
    std::fs::create_dir(path.join("docs")).unwrap();
    std::fs::write(path.join("docs/guide.md"), "Guide\nTODO: write it\n").unwrap();
    step(&["add", "."]);
    step(&[
        "-c",
        "user.name=Grace Hopper",
        "-c",
        "user.email=grace@example.test",
        "commit",
        "-q",
        "-m",
        "Add guide, change two",
    ]);
    step(&["checkout", "-q", "-b", "feature"]);
    std::fs::write(path.join("docs/guide.md"), "Guide\nWritten at last.\n").unwrap();
    step(&["commit", "-q", "-am", "Write the guide"]);
    step(&["checkout", "-q", "main"]);
    step(&["mv", "README.md", "README.txt"]);
    step(&["commit", "-q", "-m", "Rename the readme"]);
    step(&["merge", "-q", "--no-ff", "-m", "Merge feature", "feature"]);
    step(&["tag", "-a", "v1.0", "-m", "First release"]);
    std::os::unix::fs::symlink("/etc/passwd", path.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../outside", path.join("up")).unwrap();
    std::fs::write(path.join("big.txt"), "x".repeat(2 << 20)).unwrap();
    step(&["add", "."]);
    step(&["commit", "-q", "-m", "Add symlinks and a big file"]);
    step(&["tag", "light"]);
    let repos = Repos::from_list(&format!("fixture={}", path.display())).unwrap();
    Fixture { _dir: dir, path, repos }
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn log_matches_git_log_including_paths_authors_and_paging() {
    let f = fixture();
    let expected: Vec<String> =
        f.git(&["log", "--format=%H %P|%an|%ae|%s", "main"]).lines().map(str::to_owned).collect();
    let log = f.ok(json!({"repo": "fixture", "action": "log"}));
    let got: Vec<String> = log["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let parents: Vec<&str> = c["parents"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
            format!(
                "{} {}|{}|{}|{}",
                c["id"].as_str().unwrap(),
                parents.join(" "),
                c["author"]["name"].as_str().unwrap(),
                c["author"]["email"].as_str().unwrap(),
                c["subject"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(got, expected);
    let first = log["commits"].as_array().unwrap().last().unwrap();
    assert_eq!(first["body"], "With a body.");
    let iso = f.git(&["log", "-1", "--format=%aI", first["id"].as_str().unwrap()]);
    assert_eq!(first["author"]["date"].as_str(), Some(iso.trim()));

    let by_path = f.ok(json!({"repo": "fixture", "action": "log", "path": "src/lib.rs"}));
    assert_eq!(
        ids(&by_path, "commits"),
        f.git(&["log", "--format=%H", "main", "--", "src/lib.rs"]).lines().collect::<Vec<_>>()
    );
    let by_author = f.ok(json!({"repo": "fixture", "action": "log", "author": "grace"}));
    assert_eq!(
        ids(&by_author, "commits"),
        f.git(&["log", "--format=%H", "--author=grace", "main"]).lines().collect::<Vec<_>>()
    );

    let mut paged = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = f.ok(json!({"repo": "fixture", "action": "log", "limit": 2, "cursor": cursor}));
        paged.extend(ids(&page, "commits"));
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(paged, ids(&log, "commits"));
}

#[test]
fn show_and_diff_match_git_name_status_and_patch() {
    let f = fixture();
    let rename = f.git(&["rev-parse", "main~1^1"]).trim().to_owned(); // "Rename the readme"
    let show = f.ok(json!({"repo": "fixture", "action": "show", "rev": rename}));
    assert_eq!(show["commit"]["subject"], "Rename the readme");
    assert_eq!(show["files"], json!([{"status": "R", "old_path": "README.md", "path": "README.txt"}]));
    assert!(f.git(&["show", "--name-status", "--format=", "-M", &rename]).starts_with("R100\tREADME.md\tREADME.txt"));

    let second = f.git(&["rev-parse", "main~1^1~1"]).trim().to_owned(); // "Add guide, change two"
    let show = f.ok(json!({"repo": "fixture", "action": "show", "rev": second}));
    let body = |patch: &str| -> Vec<String> {
        patch
            .lines()
            .filter(|l| l.starts_with(['+', '-', ' ', '@']) && !l.starts_with("+++") && !l.starts_with("---"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(body(show["patch"].as_str().unwrap()), body(&f.git(&["show", "--format=", &second])));

    let diff = f.ok(json!({"repo": "fixture", "action": "diff", "from": "main~2", "to": "main"}));
    let got: Vec<String> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{}\t{}", d["status"].as_str().unwrap(), d["path"].as_str().unwrap()))
        .collect();
    let want: Vec<String> =
        f.git(&["diff", "--name-status", "--no-renames", "main~2", "main"]).lines().map(str::to_owned).collect();
    assert_eq!(got, want);
    let only = f.ok(json!({"repo": "fixture", "action": "diff", "from": "main~2", "path": "docs"}));
    assert_eq!(only["files"].as_array().unwrap().len(), 1);
}

#[test]
fn log_since_and_until_match_git_log() {
    let f = fixture();
    // Committer times of fixture commits, as git prints them: the bounds fall exactly on
    // commits, so inclusiveness is checked too.
    let at = |rev: &str| f.git(&["log", "-1", "--format=%cI", rev]).trim().to_owned();
    let (add_guide, rename, merge) = (at("main~1^1~1"), at("main~1^1"), at("main~1"));
    let windows: [(Option<&str>, Option<&str>); 5] = [
        (Some(&add_guide), Some(&rename)),
        (Some(&rename), None),
        (None, Some(&add_guide)),
        (Some(&merge), Some(&merge)),
        (Some("2023-11-15T06:00:00+01:00"), Some("2023-11-15T12:00:00Z")),
    ];
    for (since, until) in windows {
        let mut git_args = vec!["log".to_owned(), "--format=%H".to_owned()];
        let mut args = json!({"repo": "fixture", "action": "log"});
        if let Some(s) = since {
            git_args.push(format!("--since={s}"));
            args["since"] = json!(s);
        }
        if let Some(u) = until {
            git_args.push(format!("--until={u}"));
            args["until"] = json!(u);
        }
        git_args.push("main".to_owned());
        let want: Vec<String> =
            f.git(&git_args.iter().map(String::as_str).collect::<Vec<_>>()).lines().map(str::to_owned).collect();
        let got = ids(&f.ok(args.clone()), "commits");
        assert!(!want.is_empty(), "{args}: the window should hold commits");
        assert_eq!(got, want, "{args}");
    }
}

/// The patch lines `git` and the tool both print (headers differ in form, hunks must not).
fn patch_body(patch: &str) -> Vec<String> {
    patch
        .lines()
        .filter(|l| l.starts_with(['+', '-', ' ', '@']) && !l.starts_with("+++") && !l.starts_with("---"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn show_of_the_big_file_is_truncated_and_diff_patches_match_git_diff() {
    let f = fixture();
    let big = f.ok(json!({"repo": "fixture", "action": "show", "rev": "main"}));
    assert_eq!(big["commit"]["subject"], "Add symlinks and a big file");
    assert_eq!(big["truncated"], true, "a 2 MiB file is past the diff limit");
    assert_eq!(big["files"][0]["too_large_to_diff"], true, "{big}");
    assert!(big["patch"].as_str().unwrap().len() <= git_tool::history::MAX_PATCH_BYTES);
    assert_eq!((big["files_truncated"].as_bool(), big["deadline_reached"].as_bool()), (Some(false), Some(false)));
    let paths: Vec<&str> = big["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["big.txt", "escape", "up"]);

    for (from, to, path) in
        [("main~1^1~1", "main~1", None), ("main~1^1~1~1", "main~1^2", None), ("main~1^1~1~1", "main~1", Some("src"))]
    {
        let mut args = json!({"repo": "fixture", "action": "diff", "from": from, "to": to});
        let mut git_args = vec!["diff", "-M", from, to];
        if let Some(p) = path {
            args["path"] = json!(p);
            git_args.extend(["--", p]);
        }
        let diff = f.ok(args.clone());
        assert_eq!((diff["truncated"].as_bool(), diff["deadline_reached"].as_bool()), (Some(false), Some(false)));
        let want = patch_body(&f.git(&git_args));
        assert!(!want.is_empty(), "{args}");
        assert_eq!(patch_body(diff["patch"].as_str().unwrap()), want, "{args}");
    }
}

#[test]
fn show_diff_list_tree_and_blame_stop_at_the_deadline() {
    let f = fixture();
    let repo = f.repos.open("fixture").unwrap();
    let expired = git_tool::Deadline::after(std::time::Duration::ZERO);
    let args = json!({"rev": "main~1^1~1", "from": "main~2", "to": "main", "path": "src/lib.rs"});
    let args = git_tool::Args(&args);
    let show = git_tool::history::show(&repo, &args, &expired).unwrap();
    let diff = git_tool::history::diff(&repo, &args, &expired).unwrap();
    for v in [&show, &diff] {
        assert_eq!(v["deadline_reached"], true, "{v}");
        assert_eq!(v["patch"], "", "{v}");
    }
    let blame = git_tool::tree::blame(&repo, &args, &expired).unwrap();
    assert_eq!((blame["deadline_reached"].as_bool(), blame["lines"].as_array().unwrap().len()), (Some(true), 0));
    let root = json!({});
    let tree = git_tool::tree::list_tree(&repo, &git_tool::Args(&root), &expired).unwrap();
    assert_eq!((tree["deadline_reached"].as_bool(), tree["entries"].as_array().unwrap().len()), (Some(true), 0));
    // With time to spare, the same calls are complete.
    let blame = f.ok(json!({"repo": "fixture", "action": "blame", "path": "src/lib.rs"}));
    let tree = f.ok(json!({"repo": "fixture", "action": "list_tree"}));
    assert_eq!((blame["deadline_reached"].as_bool(), tree["deadline_reached"].as_bool()), (Some(false), Some(false)));
}

#[test]
fn show_lists_at_most_max_files_and_says_so() {
    let f = fixture();
    let many = git_tool::history::MAX_FILES + 5;
    std::fs::create_dir(f.path.join("many")).unwrap();
    for i in 0..many {
        std::fs::write(f.path.join(format!("many/f{i:05}.txt")), format!("{i}\n")).unwrap();
    }
    f.git(&["add", "many"]);
    f.git(&["commit", "-q", "-m", "Many files"]);
    let show = f.ok(json!({"repo": "fixture", "action": "show"}));
    assert_eq!(show["files"].as_array().unwrap().len(), git_tool::history::MAX_FILES);
    assert_eq!(show["files_truncated"], true);
    assert_eq!(show["files"][0]["path"], "many/f00000.txt");
    let text = git_tool::call(&f.repos, &json!({"repo": "fixture", "action": "show"})).unwrap();
    assert!(text["content"][0]["text"].as_str().unwrap().contains("[partial result: more changed files than listed"));
    let small = f.ok(json!({"repo": "fixture", "action": "show", "rev": "main~1^1~1"}));
    assert_eq!(small["files_truncated"], false);
}

#[test]
fn the_limit_maximum_is_the_published_one() {
    let f = fixture();
    let server = git_tool::server(f.repos.clone());
    let schema = &server.tools[0].input_schema["properties"]["limit"];
    assert_eq!(schema["maximum"].as_u64(), Some(git_tool::MAX_LIMIT as u64));
    for action in ["log", "grep"] {
        let ok = json!({"repo": "fixture", "action": action, "pattern": "fn", "limit": git_tool::MAX_LIMIT});
        f.ok(ok);
        let over = json!({"repo": "fixture", "action": action, "pattern": "fn", "limit": git_tool::MAX_LIMIT + 1});
        let err = f.call(over).unwrap_err();
        assert!(err.contains(&format!("from 1 to {}", git_tool::MAX_LIMIT)), "{action}: {err}");
    }
}

#[test]
fn files_trees_and_blame_match_git() {
    let f = fixture();
    let file = f.ok(json!({"repo": "fixture", "action": "read_file", "path": "src/lib.rs"}));
    assert_eq!(file["content"].as_str().unwrap(), f.git(&["show", "HEAD:src/lib.rs"]));
    let old = f.ok(json!({"repo": "fixture", "action": "read_file", "path": "README.md", "rev": "v1.0~1~1"}));
    assert_eq!(old["content"].as_str().unwrap(), f.git(&["show", "v1.0~1~1:README.md"]));
    let bin = f.ok(json!({"repo": "fixture", "action": "read_file", "path": "data.bin"}));
    assert_eq!((bin["type"].as_str(), bin["size"].as_u64()), (Some("binary"), Some(6)));

    let tree = f.ok(json!({"repo": "fixture", "action": "list_tree"}));
    let got: Vec<String> = tree["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let t = match e["type"].as_str().unwrap() {
                "tree" => "tree",
                _ => "blob",
            };
            format!(
                "{} {t} {}\t{}",
                e["mode"].as_str().unwrap(),
                e["id"].as_str().unwrap(),
                e["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(got, f.git(&["ls-tree", "HEAD"]).lines().collect::<Vec<_>>());

    let blame = f.ok(json!({"repo": "fixture", "action": "blame", "path": "src/lib.rs"}));
    let porcelain = f.git(&["blame", "--porcelain", "HEAD", "--", "src/lib.rs"]);
    let mut want = Vec::new();
    for line in porcelain.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.len() >= 3 && parts[0].len() == 40 && parts[0].bytes().all(|b| b.is_ascii_hexdigit()) {
            want.push(parts[0].to_owned());
        }
    }
    let got: Vec<String> =
        blame["lines"].as_array().unwrap().iter().map(|l| l["commit"].as_str().unwrap().to_owned()).collect();
    assert_eq!(got, want);
    assert_eq!(blame["lines"][1]["author"], "Grace Hopper");
}

#[test]
fn grep_matches_git_grep() {
    let f = fixture();
    let want: Vec<String> = f
        .git(&["grep", "-n", "-I", "TODO", "HEAD"])
        .lines()
        .map(|l| l.trim_start_matches("HEAD:").to_owned())
        .collect();
    let got = f.ok(json!({"repo": "fixture", "action": "grep", "pattern": "TODO"}));
    let got: Vec<String> = got["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}:{}:{}", m["path"].as_str().unwrap(), m["line"], m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(got, want);
    let re =
        f.ok(json!({"repo": "fixture", "action": "grep", "pattern": "fn (one|four)", "regex": true, "glob": "*.rs"}));
    assert_eq!(re["matches"].as_array().unwrap().len(), 2);
    let none = f.ok(json!({"repo": "fixture", "action": "grep", "pattern": "TODO", "glob": "docs/**"}));
    assert!(none["matches"].as_array().unwrap().is_empty(), "HEAD's guide has no TODO");
    let capped = f.ok(json!({"repo": "fixture", "action": "grep", "pattern": "fn", "limit": 1}));
    assert_eq!((capped["matches"].as_array().unwrap().len(), capped["truncated"].as_bool()), (1, Some(true)));
    // Pathological patterns stay linear: no backtracking engine.
    let slow = f.ok(json!({"repo": "fixture", "action": "grep", "pattern": "(a*)*b", "regex": true}));
    assert!(slow["matches"].as_array().unwrap().is_empty());
}

#[test]
fn branches_tags_and_repos_match_git() {
    let f = fixture();
    let branches = f.ok(json!({"repo": "fixture", "action": "branches"}));
    let got: Vec<String> = branches["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| format!("{} {}", b["name"].as_str().unwrap(), b["commit"].as_str().unwrap()))
        .collect();
    assert_eq!(got, f.git(&["branch", "--format=%(refname:short) %(objectname)"]).lines().collect::<Vec<_>>());
    let tags = f.ok(json!({"repo": "fixture", "action": "tags"}));
    let got: Vec<String> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{} {}", t["name"].as_str().unwrap(), t["commit"].as_str().unwrap()))
        .collect();
    let want: Vec<String> = f
        .git(&["tag"])
        .lines()
        .map(|t| format!("{t} {}", f.git(&["rev-parse", &format!("{t}^{{commit}}")]).trim()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(tags["tags"][1]["message"], "First release");
    let repos = f.ok(json!({"action": "list_repos"}));
    assert_eq!(repos["repos"], json!([{"name": "fixture", "default_branch": "main", "bare": false, "empty": false}]));
}

#[test]
fn escapes_and_bad_input_are_refused_with_clear_errors() {
    let f = fixture();
    let link = f.ok(json!({"repo": "fixture", "action": "read_file", "path": "escape"}));
    assert_eq!((link["type"].as_str(), link["target"].as_str()), (Some("symlink"), Some("/etc/passwd")));
    assert!(link.get("content").is_none(), "a symlink is never followed");
    let up = f.ok(json!({"repo": "fixture", "action": "read_file", "path": "up"}));
    assert_eq!(up["type"], "symlink");
    for (args, needle) in [
        (json!({"repo": "fixture", "action": "read_file", "path": "../outside"}), "'..'"),
        (json!({"repo": "fixture", "action": "read_file", "path": "/etc/passwd"}), "relative"),
        (json!({"repo": "fixture", "action": "read_file", "path": ".git/config"}), ".git"),
        (json!({"repo": "fixture", "action": "list_tree", "path": "src/../../"}), "'..'"),
        (json!({"repo": "fixture", "action": "read_file", "path": "escape/x"}), "no file"),
        (json!({"repo": "nope", "action": "log"}), "unknown repository"),
        (json!({"repo": "fixture", "action": "log", "rev": "does-not-exist"}), "unknown revision"),
        (json!({"repo": "fixture", "action": "log", "rev": "--output=/tmp/x"}), "invalid revision"),
        (json!({"repo": "fixture", "action": "grep", "pattern": "(", "regex": true}), "invalid or too large regex"),
        (json!({"repo": "fixture", "action": "grep", "pattern": "a{1000}{1000}", "regex": true}), "too large"),
        (json!({"repo": "fixture", "action": "log", "limit": 100000}), "limit"),
        (json!({"repo": "fixture", "action": "read_file", "path": "big.txt"}), "up to"),
        (json!({"repo": "fixture", "action": "read_file", "path": "src"}), "directory"),
        (json!({"repo": "fixture", "action": "teleport"}), "unknown action"),
        (json!({"repo": "fixture"}), "action is required"),
    ] {
        let err = f.call(args.clone()).unwrap_err();
        assert!(err.contains(needle), "{args}: {err}");
    }
}
