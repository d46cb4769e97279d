#!/usr/bin/env bash
# git_readonly against git itself on a generated 23,000-commit history: `log -- path` and
# `blame` of a file changed ~45 times, same answers required, wall times side by side.
#   bash benches/git_history/run.sh [N_FILES]   (default 3000 files in one directory)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; root="$here/../.."
files="${1:-3000}"
work="$(mktemp -d)"; trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release -q -p git-tool --manifest-path "$root/Cargo.toml"
git init -q -b main "$work/repo"
python3 "$here/generate.py" "$files" | git -C "$work/repo" fast-import --quiet
GIT_REPOS="big=$work/repo" GIT_TOOL_BIND=127.0.0.1:18199 "$root/target/release/git-tool" 2>/dev/null & pid=$!
sleep 1
path=pages/common/p00042.md
call() {
  curl -s -X POST 127.0.0.1:18199/mcp -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"git_readonly\",\"arguments\":$1}}"
}
now() { date +%s.%N; }
t0=$(now); call "{\"repo\":\"big\",\"action\":\"log\",\"path\":\"$path\",\"limit\":1000}" > "$work/log.json"; t1=$(now)
git -C "$work/repo" log --format=%H -- "$path" > "$work/git-log.txt"; t2=$(now)
call "{\"repo\":\"big\",\"action\":\"blame\",\"path\":\"$path\"}" > "$work/blame.json"; t3=$(now)
git -C "$work/repo" blame --porcelain HEAD -- "$path" | awk 'length($1)==40 && NF>=3 {print $1}' > "$work/git-blame.txt"; t4=$(now)
python3 - "$work" "$t0" "$t1" "$t2" "$t3" "$t4" <<'PY'
import json, sys
w, t = sys.argv[1], [float(x) for x in sys.argv[2:]]
log = json.load(open(f"{w}/log.json"))["result"]["structuredContent"]
blame = json.load(open(f"{w}/blame.json"))["result"]["structuredContent"]
same_log = [c["id"] for c in log["commits"]] == open(f"{w}/git-log.txt").read().split()
same_blame = [l["commit"] for l in blame["lines"]] == open(f"{w}/git-blame.txt").read().split()
print(f"log -- path: tool {t[1]-t[0]:.2f} s ({len(log['commits'])} commits, deadline {log['deadline_reached']}), git {t[2]-t[1]:.2f} s, same: {same_log}")
print(f"blame:       tool {t[3]-t[2]:.2f} s, git {t[4]-t[3]:.2f} s, same: {same_blame}")
PY
