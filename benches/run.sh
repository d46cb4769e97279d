#!/usr/bin/env bash
# The benchmark table in one command (README, "Performance"):
#   bash benches/run.sh                        # echo backend, audit to PostgreSQL on 127.0.0.1:5432
#   bash benches/run.sh --backend calculator   # the same against the calculator tool server
#   bash benches/run.sh --pin off --duration 20
# Builds the release gateway, calculator and harness, runs `mcp-bench run` (the table goes to
# stdout and target/mcp-bench/report.md, with a JSON twin), then the audit writer's rows/s into
# PostgreSQL (`cargo bench --bench audit_writer`; AUDIT_BENCH=off skips it). Options after the
# script name go to `mcp-bench run` (`target/release/mcp-bench run --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p mcp-gateway -p calculator -p mcp-bench
target/release/mcp-bench run "$@"
if [[ "${AUDIT_BENCH:-on}" != off ]]; then
  echo
  echo "## audit writer (cargo bench --bench audit_writer)"
  cargo bench -q --bench audit_writer 2>/dev/null | tee -a target/mcp-bench/report.md
fi
