//! Time of `grep` over a repository of 10,000+ files (median of 5 runs):
//! `cargo run --release -p git-tool --example grep_timing [-- PATH_OF_A_REPO]`.
//! Without a path it builds a synthetic repository: 12,000 files of ~40 lines in 120 folders.

use std::time::Instant;

use git2::{Repository, Signature};
use serde_json::json;

fn synthetic(dir: &std::path::Path) -> anyhow::Result<()> {
    let repo = Repository::init(dir)?;
    let mut root = repo.treebuilder(None)?;
    for d in 0..120 {
        let mut folder = repo.treebuilder(None)?;
        for f in 0..100 {
            let mut text = String::new();
            for l in 0..40 {
                text.push_str(&format!(
                    "line {l} of file {f} in folder {d}: lorem ipsum dolor sit amet {}\n",
                    (d * 7919 + f * 104_729 + l) % 100_003
                ));
            }
            if f % 50 == 7 {
                text.push_str("needle: the one we look for\n");
            }
            let blob = repo.blob(text.as_bytes())?;
            folder.insert(format!("file_{f}.txt"), blob, 0o100644)?;
        }
        let tree = folder.write()?;
        root.insert(format!("folder_{d}"), tree, 0o040000)?;
    }
    let tree = repo.find_tree(root.write()?)?;
    let sig = Signature::new("Bench", "bench@example.test", &git2::Time::new(1_700_000_000, 0))?;
    repo.commit(Some("HEAD"), &sig, &sig, "synthetic", &tree, &[])?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = match std::env::args().nth(1) {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            synthetic(dir.path())?;
            dir.path().to_path_buf()
        }
    };
    let repos =
        git_tool::repos::Repos::from_list(&format!("bench={}", path.display())).map_err(|e| anyhow::anyhow!(e))?;
    for (label, args) in [
        ("literal", json!({"repo": "bench", "action": "grep", "pattern": "needle", "limit": 1000})),
        ("regex", json!({"repo": "bench", "action": "grep", "pattern": "need(le|s):", "regex": true, "limit": 1000})),
    ] {
        let mut times = Vec::new();
        let mut last = json!(null);
        for _ in 0..5 {
            let started = Instant::now();
            last = git_tool::call(&repos, &args).map_err(|e| anyhow::anyhow!(e))?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let s = &last["structuredContent"];
        println!(
            "{label:>7}: median {:.0} ms over 5 runs; {} files searched, {} matches",
            times[2],
            s["files_searched"],
            s["matches"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(())
}
