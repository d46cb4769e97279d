#!/usr/bin/env bash
# Jobs per second the job store sustains end to end: submit N jobs (REST), wait until all have
# succeeded against the calculator, report submissions/s and completions/s.
#   bash benches/jobs.sh [N=2000]
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash benches/jobs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
cargo build --release -q -p mcp-gateway -p calculator
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
db_url="sqlite://$work/b.db"
if [[ -n "${BENCH_DATABASE_URL:-}" ]]; then
  name="gw_jobs_bench_$$"
  psql "$BENCH_DATABASE_URL" -qc "CREATE DATABASE $name"
  db_url="${BENCH_DATABASE_URL%/*}/$name"
  trap 'cleanup; psql "$BENCH_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)"' EXIT
fi
secret="bench-secret-that-is-long-enough-for-hs256"
CALCULATOR_BIND=127.0.0.1:18191 ./target/release/calculator 2>/dev/null &
pids+=($!)
printf 'default_action: deny\nroles: {developer: {allowed_tools: ["*"]}}\n' >"$work/policy.yaml"
GATEWAY_PORT=18100 DATABASE_URL="$db_url" DATA_DIR="$work" JWT_SECRET_KEY=$secret POLICY_CONFIG="$work/policy.yaml" \
  CALCULATOR_URL=http://127.0.0.1:18191/mcp JOB_MAX_CONCURRENT=64 JOB_POLL_MS=10 RUST_LOG=warn BUNDLED_TOOLS=off ./target/release/mcp-gateway 2>"$work/gw.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18100/health >/dev/null && break; sleep 0.1; done
token=$(JWT_SECRET_KEY=$secret ./target/release/mcp-gateway token --sub jobs-bench --roles developer)
python3 - "$token" "$N" "${db_url%%:*}" <<'PY'
import http.client, json, sys, time
token, n, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
c = http.client.HTTPConnection("127.0.0.1", 18100)
body = json.dumps({"tool_name": "exact_compute", "arguments": {"operation": "arithmetic", "params": {"operator": "+", "x": 1, "y": 2}}})
start = time.time()
for _ in range(n):
    c.request("POST", "/mcp/jobs", body, h)
    r = c.getresponse(); r.read()
    assert r.status == 202, r.status
submitted = time.time() - start
while True:
    c.request("GET", "/mcp/jobs?status=succeeded&limit=1", headers=h)
    r = c.getresponse(); r.read()
    c.request("GET", "/mcp/jobs?status=pending&limit=1", headers=h)
    pending = json.loads(c.getresponse().read())["jobs"]
    c.request("GET", "/mcp/jobs?status=running&limit=1", headers=h)
    running = json.loads(c.getresponse().read())["jobs"]
    if not pending and not running:
        break
    time.sleep(0.05)
total = time.time() - start
ended_badly = []
for status in ("failed", "timed_out", "cancelled"):
    c.request("GET", f"/mcp/jobs?status={status}&limit=1", headers=h)
    if json.loads(c.getresponse().read())["jobs"]:
        ended_badly.append(status)
assert not ended_badly, f"some jobs ended {ended_badly}: the figure would not be jobs that succeeded"
print(f"jobs ({store}): {n} submitted in {submitted:.2f} s ({n/submitted:.0f}/s), all succeeded after {total:.2f} s ({n/total:.0f} jobs/s end to end)")
PY
