#!/usr/bin/env bash
# Short runs of every fuzz target (libFuzzer via cargo-fuzz, on the nightly toolchain), each
# starting from its committed seeds in tests/fuzz/seeds/<target>, so a parser or encoder that
# regressed is caught before it lands. A crash fails CI and leaves its input under
# tests/fuzz/artifacts/<target>/ (rerun it with `cargo +nightly fuzz run --fuzz-dir tests/fuzz
# <target> <file>`). FUZZ_SECONDS sets the time per target (default 45).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-45}

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "the nightly toolchain is needed for cargo-fuzz (rustup toolchain install nightly)" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
# No sanitizer: the code is safe Rust, and a plain coverage-guided build is several times
# faster to build and to run; panics, overflows (debug assertions) and hangs are still found.
# The instrumented build is kept between runs on this machine (a cache: nothing in it is trusted
# that cargo would not rebuild); FUZZ_TARGET_DIR moves it.
target_dir=${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-gateway/fuzz-target}
flags=(--fuzz-dir tests/fuzz --sanitizer none --debug-assertions --target-dir "$target_dir")
cargo +nightly fuzz build "${flags[@]}"
for target in $(cargo +nightly fuzz list --fuzz-dir tests/fuzz); do
  corpus=$(mktemp -d)
  cp -r "tests/fuzz/seeds/$target/." "$corpus/"
  echo "== fuzz $target for ${secs}s ($(ls "$corpus" | wc -l) seeds)"
  log=$(mktemp)
  set +e
  cargo +nightly fuzz run "${flags[@]}" "$target" "$corpus" -- \
    -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
  fi
  rm -rf "$corpus" "$log"
  if [ "$status" -ne 0 ]; then
    echo "fuzz target $target failed; its input is under tests/fuzz/artifacts/$target/" >&2
    exit "$status"
  fi
done
