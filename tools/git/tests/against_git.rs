//! Round two against `git` itself: each case is a repository built with the `git` binary and
//! a query whose answer git prints; the tool must print the same (or refuse, saying why).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use git_tool::repos::Repos;
use serde_json::{json, Value};

struct Repo {
    _dir: tempfile::TempDir,
    path: PathBuf,
    repos: Repos,
}

/// `git` in `dir` with a fixed clock (`time` seconds) and no user or system configuration.
fn git_at(dir: &Path, args: &[&str], time: u64) -> Vec<u8> {
    let date = format!("{time} +0000");
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.test")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.test")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

impl Repo {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        std::fs::create_dir(&path).unwrap();
        git_at(&path, &["init", "-q", "-b", "main"], 0);
        let repos = Repos::from_list(&format!("r={}", path.display())).unwrap();
        Self { _dir: dir, path, repos }
    }

    /// `git …` at a fixed time (the same for every commit unless `commit_at` is used).
    fn git(&self, args: &[&str]) -> String {
        String::from_utf8(git_at(&self.path, args, 1_700_000_000)).unwrap()
    }

    fn write(&self, file: &str, content: impl AsRef<[u8]>) {
        let p = self.path.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Stage everything and commit at `time`.
    fn commit_at(&self, message: &str, time: u64) {
        git_at(&self.path, &["add", "-A"], time);
        git_at(&self.path, &["commit", "-q", "--allow-empty", "-m", message], time);
    }

    fn call(&self, mut args: Value) -> Result<Value, String> {
        args["repo"] = json!("r");
        git_tool::call(&self.repos, &args).map(|r| r["structuredContent"].clone()).map_err(|e| e.to_string())
    }

    fn ok(&self, args: Value) -> Value {
        self.call(args.clone()).unwrap_or_else(|e| panic!("{args}: {e}"))
    }

    fn lines(&self, args: &[&str]) -> Vec<String> {
        self.git(args).lines().map(str::to_owned).collect()
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["commits"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

/// Branches and merges, every commit at the same second (so only git's tie-breaking orders
/// them), a path changed on one side only, a directory, a side branch that never touches it.
fn branchy() -> Repo {
    let r = Repo::new();
    let t = 1_700_000_000;
    r.write("pages/common/git.md", "git\n");
    r.write("pages.fr/a.md", "a\n");
    r.write("other.txt", "0\n");
    r.commit_at("root", t);
    r.git(&["checkout", "-q", "-b", "side"]);
    for i in 0..4 {
        r.write("other.txt", format!("side {i}\n"));
        r.commit_at(&format!("side {i}"), t);
    }
    r.git(&["checkout", "-q", "-b", "fr", "main"]);
    r.write("pages.fr/a.md", "a fr\n");
    r.commit_at("fr change", t);
    r.git(&["checkout", "-q", "main"]);
    for i in 0..3 {
        r.write("pages/common/git.md", format!("git {i}\n"));
        r.commit_at(&format!("main {i}"), t);
    }
    git_at(&r.path, &["merge", "-q", "--no-ff", "-m", "merge side", "side"], t);
    git_at(&r.path, &["merge", "-q", "--no-ff", "-m", "merge fr", "fr"], t);
    r.write("pages/common/git.md", "git 3\n");
    r.commit_at("main 3", t);
    // The same change on two branches, merged: the merge is the same as both parents.
    r.git(&["checkout", "-q", "-b", "twin"]);
    r.write("pages.fr/a.md", "a fr 2\n");
    r.commit_at("twin", t);
    r.git(&["checkout", "-q", "main"]);
    r.write("pages.fr/a.md", "a fr 2\n");
    r.commit_at("main twin", t);
    git_at(&r.path, &["merge", "-q", "--no-ff", "-m", "merge twin", "twin"], t);
    r
}

#[test]
fn log_order_equals_git_with_equal_timestamps_pages_too() {
    let r = branchy();
    let want = r.lines(&["log", "--format=%H", "main"]);
    assert_eq!(ids(&r.ok(json!({"action": "log"}))), want);
    let mut paged = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = r.ok(json!({"action": "log", "limit": 3, "cursor": cursor}));
        paged.extend(ids(&page));
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(paged, want);
}

#[test]
fn log_with_a_path_simplifies_history_as_git_does() {
    let r = branchy();
    for path in ["pages/common/git.md", "pages.fr", "pages.fr/a.md", "other.txt", "pages", "missing.txt"] {
        let got = r.ok(json!({"action": "log", "path": path}));
        assert_eq!(ids(&got), r.lines(&["log", "--format=%H", "main", "--", path]), "{path}");
        assert_eq!(got["deadline_reached"], false);
    }
}

#[test]
fn ranges_follow_git_and_other_forms_are_refused_saying_so() {
    let r = branchy();
    for range in ["main~3..main", "side..main", "main..side", "HEAD~2.."] {
        assert_eq!(
            ids(&r.ok(json!({"action": "log", "rev": range}))),
            r.lines(&["log", "--format=%H", range]),
            "{range}"
        );
    }
    let err = r.call(json!({"action": "log", "rev": "side...main"})).unwrap_err();
    assert!(err.contains("symmetric ranges"), "{err}");
    let err = r.call(json!({"action": "show", "rev": "main~2..main"})).unwrap_err();
    assert!(err.contains("supported by log only"), "{err}");
}

#[test]
fn message_searches_in_revisions_are_refused_at_once() {
    let r = branchy();
    for rev in ["HEAD^{/(.*.*.*)*[#][#]}", "main^{/merge}", ":/merge"] {
        let started = Instant::now();
        let err = r.call(json!({"action": "show", "rev": rev})).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "{rev}");
        assert!(err.contains("not supported") || err.contains("invalid revision"), "{rev}: {err}");
    }
}

#[test]
fn subject_is_the_first_paragraph_and_body_what_follows() {
    let r = Repo::new();
    r.write("a", "1\n");
    r.commit_at("\n\nFirst line\nsecond line   \n\nBody one\n\nBody two\n", 1_700_000_000);
    let c = &r.ok(json!({"action": "log"}))["commits"][0];
    assert_eq!(c["subject"].as_str().unwrap(), r.git(&["log", "-1", "--format=%s"]).trim_end());
    assert_eq!(c["body"].as_str().unwrap(), r.git(&["log", "-1", "--format=%b"]).trim_end());
}

#[test]
fn latin1_messages_names_and_files_are_decoded_not_dropped() {
    let r = Repo::new();
    // "Café Müller" in ISO-8859-1, with the commit's encoding header saying so.
    let latin1 = b"Caf\xe9 M\xfcller\n\nSch\xf6n.\n".to_vec();
    std::fs::write(r.path.join("msg"), &latin1).unwrap();
    r.write("notes.txt", b"na\xefve r\xe9sum\xe9\n");
    git_at(&r.path, &["add", "notes.txt"], 1_700_000_000);
    git_at(&r.path, &["-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-F", "msg"], 1_700_000_000);
    let c = &r.ok(json!({"action": "log"}))["commits"][0];
    assert_eq!(c["subject"].as_str().unwrap(), r.git(&["log", "-1", "--format=%s"]).trim_end());
    assert_eq!(c["subject"], "Café Müller");
    assert_eq!(c["body"], "Schön.");
    let file = r.ok(json!({"action": "read_file", "path": "notes.txt"}));
    assert_eq!((file["type"].as_str(), file["content"].as_str()), (Some("text"), Some("naïve résumé\n")), "{file}");
    assert!(file["encoding"].as_str().unwrap().contains("not UTF-8"));
    // The patch and grep read the file as read_file does, never U+FFFD.
    let show = r.ok(json!({"action": "show"}));
    assert!(show["patch"].as_str().unwrap().contains("+naïve résumé"), "{show}");
    let grep = r.ok(json!({"action": "grep", "pattern": "résumé"}));
    assert_eq!(grep["matches"][0]["text"], "naïve résumé");
}

#[test]
fn mailmap_matches_names_and_emails_case_insensitively_from_head() {
    let r = Repo::new();
    let commit_as = |name: &str, email: &str, msg: &str, t: u64| {
        r.write("f.txt", msg);
        git_at(&r.path, &["add", "-A"], t);
        git_at(
            &r.path,
            &[
                "-c",
                &format!("user.name={name}"),
                "-c",
                &format!("user.email={email}"),
                "commit",
                "-q",
                "--author",
                &format!("{name} <{email}>"),
                "-m",
                msg,
            ],
            t,
        );
    };
    commit_as("Someone", "CAP@x", "one", 1_700_000_000);
    commit_as("weird", "weird@x", "two", 1_700_000_001);
    commit_as("Plain", "plain@x", "three", 1_700_000_002);
    // The mailmap arrives last: git applies HEAD's mailmap to every commit.
    r.write(".mailmap", "CAPS Name <Cap@X>\nOther <o@x> Weird <WEIRD@X>\n");
    r.commit_at("mailmap", 1_700_000_003);
    let log = r.ok(json!({"action": "log"}));
    let got: Vec<String> = log["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} <{}>", c["author"]["name"].as_str().unwrap(), c["author"]["email"].as_str().unwrap()))
        .collect();
    assert_eq!(got, r.lines(&["log", "--use-mailmap", "--format=%aN <%aE>"]));
    assert_eq!(
        ids(&r.ok(json!({"action": "log", "author": "caps name"}))),
        r.lines(&["log", "--use-mailmap", "-i", "--author=caps name", "--format=%H"])
    );
    let first = r.git(&["rev-list", "--max-parents=0", "HEAD"]).trim().to_owned();
    let show = r.ok(json!({"action": "show", "rev": first}));
    assert_eq!(show["commit"]["author"]["name"], "CAPS Name", "{show}");
}

#[test]
fn blame_of_a_long_file_comes_in_pages_that_match_git() {
    let r = Repo::new();
    let text: String = (0..12_000).map(|i| format!("line {i}\n")).collect();
    r.write("long.txt", &text);
    r.commit_at("long", 1_700_000_000);
    let edited: String =
        (0..12_000).map(|i| if i % 1000 == 7 { format!("edited {i}\n") } else { format!("line {i}\n") }).collect();
    r.write("long.txt", &edited);
    r.commit_at("edit", 1_700_000_001);
    let want: Vec<String> = r
        .git(&["blame", "--porcelain", "HEAD", "--", "long.txt"])
        .lines()
        .filter_map(|l| {
            l.split(' ').next().filter(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit())).map(str::to_owned)
        })
        .collect();
    let (mut got, mut start) = (Vec::new(), Value::Null);
    loop {
        let page = r.ok(json!({"action": "blame", "path": "long.txt", "start_line": start}));
        assert!(page["lines"].as_array().unwrap().len() <= git_tool::tree::MAX_BLAME_LINES);
        got.extend(page["lines"].as_array().unwrap().iter().map(|l| l["commit"].as_str().unwrap().to_owned()));
        start = page["next_line"].clone();
        if start.is_null() {
            assert_eq!(page["truncated"], false);
            break;
        }
    }
    assert_eq!(got, want);
}

#[test]
fn blame_equals_git_blame_with_mailmap_crlf_renames_and_merges() {
    let r = Repo::new();
    let t = 1_700_000_000;
    r.write("old.txt", "one\r\ntwo\r\nthree\r\n");
    r.commit_at("start", t);
    git_at(
        &r.path,
        &["-c", "user.name=Bob", "-c", "user.email=bob@old.test", "commit", "-q", "--allow-empty", "-m", "noop"],
        t + 1,
    );
    r.write("old.txt", "one\r\ntwo!\r\nthree\r\nfour\r\n");
    git_at(&r.path, &["add", "-A"], t + 2);
    let date = format!("{} +0000", t + 2);
    let out = Command::new("git")
        .current_dir(&r.path)
        .args(["commit", "-q", "-m", "bob edits"])
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "bob")
        .env("GIT_AUTHOR_EMAIL", "bob@old.test")
        .env("GIT_COMMITTER_NAME", "bob")
        .env("GIT_COMMITTER_EMAIL", "bob@old.test")
        .output()
        .unwrap();
    assert!(out.status.success());
    git_at(&r.path, &["mv", "old.txt", "new.txt"], t + 3);
    r.commit_at("rename", t + 3);
    r.git(&["checkout", "-q", "-b", "side"]);
    r.write("new.txt", "zero\r\none\r\ntwo!\r\nthree\r\nfour\r\n");
    r.commit_at("side adds zero", t + 4);
    r.git(&["checkout", "-q", "main"]);
    r.write("new.txt", "one\r\ntwo!\r\nthree\r\nfour\r\nfive\r\n");
    r.commit_at("main adds five", t + 5);
    git_at(&r.path, &["merge", "-q", "--no-ff", "-m", "merge", "side"], t + 6);
    r.write(".mailmap", "Robert Builder <robert@new.test> <bob@old.test>\n");
    r.commit_at("mailmap", t + 7);

    let blame = r.ok(json!({"action": "blame", "path": "new.txt"}));
    let porcelain = r.git(&["blame", "--porcelain", "HEAD", "--", "new.txt"]);
    let (mut want, mut authors, mut current) = (Vec::new(), std::collections::HashMap::new(), String::new());
    for line in porcelain.lines() {
        let first = line.split(' ').next().unwrap_or("");
        if first.len() == 40 && first.bytes().all(|b| b.is_ascii_hexdigit()) {
            current = first.to_owned();
            want.push(current.clone());
        } else if let Some(name) = line.strip_prefix("author ") {
            authors.insert(current.clone(), name.to_owned());
        }
    }
    let lines = blame["lines"].as_array().unwrap();
    let got: Vec<&str> = lines.iter().map(|l| l["commit"].as_str().unwrap()).collect();
    assert_eq!(got, want);
    for l in lines {
        assert_eq!(l["author"].as_str().unwrap(), authors[l["commit"].as_str().unwrap()], "{l}");
        assert!(l["text"].as_str().unwrap().ends_with('\r'), "the \\r stays, as git blame prints it: {l}");
    }
    assert_eq!(lines[2]["author"], "Robert Builder", "mailmap applied");
}

#[test]
fn blame_of_a_long_history_stops_at_the_deadline() {
    let r = Repo::new();
    // 20,000 commits each changing f.txt, through fast-import; g.txt is added by the first and
    // never changed, so its blame walks the whole history back to the first commit.
    let g: String = (0..100).map(|i| format!("{i}\n")).collect();
    let mut stream = String::new();
    for i in 0..20_000u64 {
        let content = format!("{i}\n");
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter A <a@x> {} +0000\ndata 1\nc\nM 100644 inline f.txt\ndata {}\n{content}\n",
            1_600_000_000 + i,
            content.len()
        ));
        if i == 0 {
            stream.push_str(&format!("M 100644 inline g.txt\ndata {}\n{g}\n", g.len()));
        }
    }
    let mut child = Command::new("git")
        .current_dir(&r.path)
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), stream.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let repo = r.repos.open("r").unwrap();
    let args = json!({"rev": "main", "path": "g.txt"});
    let started = Instant::now();
    let blame =
        git_tool::tree::blame(&repo, &git_tool::Args(&args), &git_tool::Deadline::after(Duration::from_millis(20)))
            .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "blame went on {took:?} past a 20 ms deadline");
    let done =
        git_tool::tree::blame(&repo, &git_tool::Args(&args), &git_tool::Deadline::after(Duration::from_secs(30)))
            .unwrap();
    assert_eq!(done["deadline_reached"], false);
    assert_eq!(blame["deadline_reached"], true);
    let first = r.git(&["rev-list", "--max-parents=0", "main"]);
    assert_eq!(done["lines"][99]["commit"].as_str().unwrap(), first.trim());
}

#[test]
fn grep_counts_lines_as_git_grep_does() {
    let r = Repo::new();
    r.write("a.txt", "x\n\ny\n\n");
    r.write("b.txt", "no final newline\n\nlast");
    r.write("c.txt", "");
    r.commit_at("files", 1_700_000_000);
    let got = r.ok(json!({"action": "grep", "pattern": "^$", "regex": true}));
    let want = r.lines(&["grep", "-n", "-e", "^$", "HEAD"]);
    let got: Vec<String> = got["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("HEAD:{}:{}:{}", m["path"].as_str().unwrap(), m["line"], m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn paths_with_colons_and_backslashes_are_ordinary_names() {
    let r = Repo::new();
    r.write("a:b.txt", "colon\n");
    r.write("back\\slash.txt", "backslash\n");
    r.write("back/slash.txt", "directory\n");
    r.commit_at("odd names", 1_700_000_000);
    for (path, content) in
        [("a:b.txt", "colon\n"), ("back\\slash.txt", "backslash\n"), ("back/slash.txt", "directory\n")]
    {
        let file = r.ok(json!({"action": "read_file", "path": path}));
        assert_eq!(file["content"], content, "{path}");
        let log = r.ok(json!({"action": "log", "path": path}));
        assert_eq!(ids(&log), r.lines(&["log", "--format=%H", "--", &format!(":(literal){path}")]), "{path}");
    }
    // Literal in show and diff as in log: a glob character is a character.
    let show = r.ok(json!({"action": "show", "path": "*.txt"}));
    assert_eq!(show["files"], json!([]));
    let show = r.ok(json!({"action": "show", "path": "back"}));
    assert_eq!(show["files"].as_array().unwrap().len(), 1, "{show}");
}

#[test]
fn a_symlink_becoming_a_file_is_a_type_change() {
    let r = Repo::new();
    std::os::unix::fs::symlink("target.txt", r.path.join("link")).unwrap();
    r.write("target.txt", "t\n");
    r.commit_at("link", 1_700_000_000);
    std::fs::remove_file(r.path.join("link")).unwrap();
    r.write("link", "now a file\n");
    r.commit_at("file", 1_700_000_001);
    let show = r.ok(json!({"action": "show"}));
    let got: Vec<String> = show["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}\t{}", f["status"].as_str().unwrap(), f["path"].as_str().unwrap()))
        .collect();
    assert_eq!(got, r.lines(&["show", "--format=", "--name-status", "HEAD"]));
    // The patch shows the contents as git does: the link's target removed, the file added.
    let patch: Vec<&str> = show["patch"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(['+', '-']) && !l.starts_with("+++") && !l.starts_with("---"))
        .collect();
    let git_show = r.git(&["show", "--format=", "HEAD"]);
    let want: Vec<&str> = git_show
        .lines()
        .filter(|l| l.starts_with(['+', '-']) && !l.starts_with("+++") && !l.starts_with("---"))
        .collect();
    assert_eq!(patch, want);
}

#[test]
fn a_corrupt_object_is_reported_never_an_empty_patch() {
    let r = Repo::new();
    r.write("a.txt", "one\n");
    r.commit_at("one", 1_700_000_000);
    r.write("a.txt", "two\n");
    r.commit_at("two", 1_700_000_001);
    let blob = r.git(&["rev-parse", "HEAD:a.txt"]).trim().to_owned();
    let object = r.path.join(".git/objects").join(&blob[..2]).join(&blob[2..]);
    let mut perms = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&object, perms).unwrap();
    std::fs::write(&object, b"this is not a zlib stream").unwrap();
    let err = r.call(json!({"action": "show"})).unwrap_err();
    assert!(err.contains("missing or damaged"), "{err}");
    assert!(!err.contains(r.path.to_str().unwrap()), "no directory of this machine: {err}");
    let err = r.call(json!({"action": "read_file", "path": "a.txt"})).unwrap_err();
    assert!(err.contains("missing or damaged") && !err.contains(r.path.to_str().unwrap()), "{err}");
}

#[test]
fn a_repository_that_disappears_is_named_by_its_short_name_only() {
    let r = Repo::new();
    r.write("a.txt", "one\n");
    r.commit_at("one", 1_700_000_000);
    std::fs::remove_dir_all(&r.path).unwrap();
    let dir = r.path.to_str().unwrap();
    let err = r.call(json!({"action": "log"})).unwrap_err();
    assert!(err.contains("\"r\"") && !err.contains(dir), "{err}");
    let listed = git_tool::call(&r.repos, &json!({"action": "list_repos"})).unwrap();
    assert!(!listed.to_string().contains(dir), "{listed}");
}

#[test]
fn an_empty_repository_reports_its_unborn_default_branch() {
    let dir = tempfile::tempdir().unwrap();
    git_at(dir.path(), &["init", "-q", "-b", "trunk", "e"], 0);
    let repos = Repos::from_list(&format!("e={}", dir.path().join("e").display())).unwrap();
    let listed = git_tool::call(&repos, &json!({"action": "list_repos"})).unwrap();
    assert_eq!(listed["structuredContent"]["repos"][0]["default_branch"], "trunk", "{listed}");
    assert_eq!(listed["structuredContent"]["repos"][0]["empty"], true);
    let err = git_tool::call(&repos, &json!({"action": "log", "repo": "e"})).unwrap_err().to_string();
    assert!(err.contains("no commits yet") && err.contains("trunk"), "{err}");
}

#[test]
fn show_of_a_huge_file_never_loads_it() {
    let r = Repo::new();
    r.write("small.txt", "s\n");
    r.commit_at("small", 1_700_000_000);
    // 50 MB of text (written in pieces, so this test itself never holds it): diffing it
    // would hold it (and its diff) in memory several times.
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(r.path.join("huge.txt")).unwrap());
        for _ in 0..3_000_000 {
            out.write_all(b"0123456789abcdef\n").unwrap();
        }
    }
    r.write("small.txt", "s2\n");
    r.commit_at("huge", 1_700_000_001);
    let peak_before = peak_kib();
    let show = r.ok(json!({"action": "show"}));
    let diff = r.ok(json!({"action": "diff", "from": "HEAD~1"}));
    assert_eq!(diff["files"][0]["too_large_to_diff"], true, "{diff}");
    let err = r.call(json!({"action": "read_file", "path": "huge.txt"})).unwrap_err();
    assert!(err.contains("51000000 bytes"), "{err}");
    let err = r.call(json!({"action": "blame", "path": "huge.txt"})).unwrap_err();
    assert!(err.contains("larger than"), "{err}");
    let grep = r.ok(json!({"action": "grep", "pattern": "0123"}));
    assert_eq!(grep["matches"], json!([]), "files over the limit are skipped unread");
    let grown = peak_kib() - peak_before;
    assert!(grown < 30_000, "the 50 MB file was loaded: peak memory grew by {grown} KiB");
    let files = show["files"].as_array().unwrap();
    let huge = files.iter().find(|f| f["path"] == "huge.txt").unwrap();
    assert_eq!(huge["too_large_to_diff"], true, "{huge}");
    assert_eq!(show["truncated"], true);
    assert!(show["patch"].as_str().unwrap().contains("+s2"), "small files still diffed");
    assert!(show["patch"].as_str().unwrap().len() < 10_000);
}

/// This process's peak resident memory (KiB).
fn peak_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
