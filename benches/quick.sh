#!/usr/bin/env bash
# Quick throughput check: wrk against the calculator directly, then through the gateway with
# the full pipeline (JWT, policy, backend call, batched audit), in the same run.
#   bash benches/quick.sh                 # audit to a temporary SQLite file
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash benches/quick.sh
# Needs wrk (apt-get install wrk). Prints calls/s for both and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
cargo build --release -q -p mcp-gateway -p calculator

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

secret="bench-secret-that-is-long-enough-for-hs256"
CALCULATOR_BIND=127.0.0.1:18091 ./target/release/calculator 2>"$work/calc.log" &
pids+=($!)
db_url=${BENCH_DATABASE_URL:-sqlite://$work/bench.db}
if [[ -n "${BENCH_DATABASE_URL:-}" ]]; then
  name="gw_bench_$$"
  psql "$BENCH_DATABASE_URL" -qc "CREATE DATABASE $name"
  db_url="${BENCH_DATABASE_URL%/*}/$name"
  trap 'cleanup; psql "$BENCH_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)"' EXIT
fi
# The full pipeline, rate-limit checks included, with limits high enough never to refuse.
printf 'default_action: deny\nroles: {developer: {allowed_tools: ["*"]}}\nrate_limits:\n  per_user: {requests_per_minute: 4000000000, burst: 4000000000}\n  per_user_tool: {requests_per_minute: 4000000000, burst: 4000000000}\n' >"$work/policy.yaml"
GATEWAY_PORT=18000 DATABASE_URL="$db_url" JWT_SECRET_KEY=$secret DATA_DIR="$work/data" POLICY_CONFIG="$work/policy.yaml" \
  CALCULATOR_URL=http://127.0.0.1:18091/mcp RUST_LOG=warn BUNDLED_TOOLS=off ./target/release/mcp-gateway 2>"$work/gw.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18000/health >/dev/null && curl -sf http://127.0.0.1:18091/health >/dev/null && break; sleep 0.1; done
token=$(JWT_SECRET_KEY=$secret ./target/release/mcp-gateway token --sub bench --roles developer --ttl 600)

args='{"operation":"arithmetic","params":{"operator":"+","x":1,"y":2}}'
cat >"$work/direct.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"exact_compute","arguments":$args}}'
LUA
cat >"$work/gateway.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '{"tool_name":"exact_compute","arguments":$args}'
LUA

run() { wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "$1" | tee "$work/$3.txt" >&2; awk '/Requests\/sec/ {print $2}' "$work/$3.txt"; }
echo "== direct to the calculator" >&2
direct=$(run http://127.0.0.1:18091/mcp "$work/direct.lua" direct)
echo "== through the gateway (JWT + policy + rate limits + audit to ${db_url%%:*})" >&2
gateway=$(run http://127.0.0.1:18000/mcp/invoke "$work/gateway.lua" gateway)
sleep 1
printf '\ndirect: %s calls/s   gateway: %s calls/s   ratio: %s   (%s connections, %s, 2 wrk threads)\n' \
  "$direct" "$gateway" "$(python3 -c "print(round($gateway/$direct, 2))")" "$CONNECTIONS" "$DURATION"
