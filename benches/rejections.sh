#!/usr/bin/env bash
# Rejection throughput: every call is over its rate limit (429, no backend hit, audited).
#   bash benches/rejections.sh            # in-process limits
#   REDIS_URL=redis://127.0.0.1:6379 bash benches/rejections.sh
# Prints 429s per second and the gateway's CPU time per rejection (from /proc/<pid>/stat).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p mcp-gateway
work=$(mktemp -d)
secret="bench-secret-that-is-long-enough-for-hs256"
printf 'tools:\n  - name: echo\n    backend_url: http://127.0.0.1:9/mcp\n' >"$work/tools.yaml"
printf 'default_action: deny\nroles: {developer: {allowed_tools: ["*"]}}\nrate_limits:\n  per_user: {requests_per_minute: 1, burst: 1}\n' >"$work/policy.yaml"
GATEWAY_PORT=18020 DATABASE_URL="sqlite://$work/b.db" DATA_DIR="$work" JWT_SECRET_KEY=$secret TOOLS_CONFIG="$work/tools.yaml" \
  POLICY_CONFIG="$work/policy.yaml" RUST_LOG=warn BUNDLED_TOOLS=off ./target/release/mcp-gateway 2>"$work/gw.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18020/health >/dev/null && break; sleep 0.1; done
token=$(JWT_SECRET_KEY=$secret ./target/release/mcp-gateway token --sub bench-$$ --roles developer)
cat >"$work/r.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '{"tool_name":"echo","arguments":{}}'
LUA
curl -s -o /dev/null -H "Authorization: Bearer $token" -d '{"tool_name":"echo","arguments":{}}' http://127.0.0.1:18020/mcp/invoke
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks=$(getconf CLK_TCK)
before=$(cpu)
wrk -t2 -c32 -d10s -s "$work/r.lua" http://127.0.0.1:18020/mcp/invoke >"$work/wrk.txt"
after=$(cpu)
requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $5}' "$work/wrk.txt")
rate=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
echo "rejections: $rate per second (${non2xx:-0} of $requests answered 429), gateway CPU $(python3 -c "print(round(($after-$before)/$ticks*1e6/$requests, 1))") µs per rejection, $([ -n "${REDIS_URL:-}" ] && echo Redis || echo in-process) limits"
