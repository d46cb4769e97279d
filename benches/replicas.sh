#!/usr/bin/env bash
# What sharing MCP sessions between replicas costs, in one run (release binaries, echo backend,
# SQLite audit, each figure beside its baseline):
#  1. a session-bound `tools/call` over Streamable HTTP: in-process sessions (one replica, no
#     Redis) vs sessions in Redis, on the replica holding the session's `GET /mcp` stream and
#     on one that does not;
#  2. a legacy SSE `POST /messages` answered on the stream: held by the replica taking the POST
#     vs held by another (the answer crosses Redis pub/sub);
#  3. memory per idle session in Redis (`used_memory`) and on the replica that created it;
#  4. with PostgreSQL reachable (BENCH_DATABASE_URL, default the local server): 1 and 2 again
#     with sessions in PostgreSQL and LISTEN/NOTIFY between replicas (no Redis; audit to
#     PostgreSQL too).
#   bash benches/replicas.sh [SECONDS=10] [IDLE_SESSIONS=10000]
# Needs redis-server and curl (psql for 4). Prints one line per figure; CPU is the answering replica's (and,
# for 2, the stream holder's too), from /proc/<pid>/stat.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
N=${2:-10000}
cargo build --release -q -p mcp-gateway -p mcp-bench
bin=./target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
secret="bench-secret-that-is-long-enough-for-hs256"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
"$bin/mcp-bench" echo --bind 127.0.0.1:0 >"$work/echo.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$work/echo.out" ]] && break; sleep 0.1; done
echo_addr=$(grep -oE '127\.0\.0\.1:[0-9]+' "$work/echo.out" | head -1)
printf 'tools:\n  - name: echo\n    backend_url: http://%s/mcp\n' "$echo_addr" >"$work/tools.yaml"
printf 'default_action: deny\nroles: {developer: {allowed_tools: ["*"]}}\nrate_limits:\n  per_user: {requests_per_minute: 100000000, burst: 100000000}\n' >"$work/policy.yaml"

declare -A PID URL
start() { # name [REDIS_URL] [DATABASE_URL]
  local port; port=$(free_port)
  env GATEWAY_PORT="$port" DATABASE_URL="${3:-sqlite://$work/audit-$1.db}" DATA_DIR="$work/data-$1" JWT_SECRET_KEY=$secret \
    TOOLS_CONFIG="$work/tools.yaml" POLICY_CONFIG="$work/policy.yaml" RUST_LOG=warn BUNDLED_TOOLS=off GATEWAY_WORKERS=1 \
    ${2:+REDIS_URL=$2} "$bin/mcp-gateway" >"$work/$1.log" 2>&1 &
  PID[$1]=$!
  pids+=($!)
  URL[$1]="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -sf "${URL[$1]}/health/ready" >/dev/null && break; sleep 0.1; done
}
start local
start a "redis://127.0.0.1:$redis_port"
start b "redis://127.0.0.1:$redis_port"
token=$(JWT_SECRET_KEY=$secret "$bin/mcp-gateway" token --sub "bench-$$" --roles developer)
auth="Authorization: Bearer $token"
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
session() { # base
  curl -s -D - -o /dev/null -H "$auth" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d "$init" "$1/mcp" | awk 'tolower($1) == "mcp-session-id:" {print $2}' | tr -d '\r'
}
call='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}'
load() { # label url body pid extra-header...
  local label=$1 url=$2 body=$3 pid=$4; shift 4
  local args=(--url "$url" --body "$body" --header "$auth" --header 'Accept: application/json, text/event-stream'
    --connections 16 --duration "$SECONDS_EACH" --warmup 2 --pid "$pid")
  for h in "$@"; do args+=(--header "$h"); done
  printf '%-58s ' "$label"
  "$bin/mcp-bench" load "${args[@]}" | tail -1
}

echo "== 1. session-bound tools/call over Streamable HTTP (16 connections, closed loop)"
sid_local=$(session "${URL[local]}")
load "in-process sessions (no Redis)" "${URL[local]}/mcp" "$call" "${PID[local]}" "Mcp-Session-Id: $sid_local"
sid=$(session "${URL[a]}")
# The session's GET /mcp stream is held by replica a.
curl -sN -H "$auth" -H 'Accept: text/event-stream' -H "Mcp-Session-Id: $sid" "${URL[a]}/mcp" >/dev/null &
pids+=($!)
sleep 0.5
load "Redis sessions, on the replica holding the stream" "${URL[a]}/mcp" "$call" "${PID[a]}" "Mcp-Session-Id: $sid"
load "Redis sessions, on a replica not holding it" "${URL[b]}/mcp" "$call" "${PID[b]}" "Mcp-Session-Id: $sid"

echo "== 2. legacy SSE: POST /messages (202), the answer on the stream"
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)
sse_pair() { # holder other via
  local holder=$1 other=$2 via=$3 sid side before after answered
  curl -sN -H "$auth" "${URL[$holder]}/sse" >"$work/sse.out" &
  pids+=($!)
  for _ in $(seq 1 50); do grep -q session_id "$work/sse.out" && break; sleep 0.1; done
  sid=$(grep -oE 'session_id=[0-9a-f]+' "$work/sse.out" | head -1 | cut -d= -f2)
  : >"$work/sse.out"
  for side in "$holder" "$other"; do
    before=$(cpu "${PID[$holder]}")
    label="stream on $holder, POST to $side$([[ $side == "$other" ]] && echo " (answer over $via)" || echo ' (same replica)')"
    load "$label" "${URL[$side]}/messages?session_id=$sid" "$call" "${PID[$side]}"
    sleep 3   # answers still on their way are counted (and their delivery's CPU)
    after=$(cpu "${PID[$holder]}")
    answered=$(grep -c '^event: message' "$work/sse.out" || true)
    : >"$work/sse.out"
    if [[ $side == "$other" ]]; then
      echo "    stream holder $holder: $(python3 -c "print(round(($after-$before)/$ticks, 2))") CPU-s for $answered answers delivered"
    fi
  done
}
sse_pair a b Redis

echo "== 3. memory per idle session ($N Streamable HTTP sessions through replica b, one subject each)"
mem() { redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
m0=$(mem) r0=$(rss "${PID[b]}")
python3 - "$secret" "$N" "${URL[b]#http://}" "$init" <<'PY'
import base64, hashlib, hmac, http.client, json, sys, time
secret, n, addr, body = sys.argv[1].encode(), int(sys.argv[2]), sys.argv[3], sys.argv[4]
b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=")
def token(sub):  # a subject per session: one subject may hold at most 256
    now = int(time.time())
    signing = b64({"alg": "HS256", "typ": "JWT"}) + b"." + b64({"sub": sub, "roles": ["developer"], "iat": now, "nbf": now, "exp": now + 3600})
    return (signing + b"." + base64.urlsafe_b64encode(hmac.new(secret, signing, hashlib.sha256).digest()).rstrip(b"=")).decode()
host, port = addr.split(":")
c = http.client.HTTPConnection(host, int(port))
ids = set()
for i in range(n):
    c.request("POST", "/mcp", body, {"Authorization": "Bearer " + token(f"idle-{i}"), "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    r = c.getresponse(); r.read()
    ids.add(r.getheader("mcp-session-id"))
assert len(ids) == n, len(ids)
PY
m1=$(mem) r1=$(rss "${PID[b]}")
echo "Redis: $(( (m1 - m0) / N )) bytes per idle session (used_memory $m0 -> $m1); replica b RSS ${r0} -> ${r1} KiB"

pg=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if psql "$pg" -qAtc 'SELECT 1' >/dev/null 2>&1; then
  db="gw_bench_replicas_$$"
  psql "$pg" -qc "CREATE DATABASE $db"
  trap 'cleanup; psql "$pg" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1' EXIT
  pg_db="${pg%/*}/$db"
  start pa "" "$pg_db"
  start pb "" "$pg_db"
  echo "== 4. sessions in PostgreSQL, LISTEN/NOTIFY between replicas (no Redis; audit to PostgreSQL)"
  sid=$(session "${URL[pa]}")
  curl -sN -H "$auth" -H 'Accept: text/event-stream' -H "Mcp-Session-Id: $sid" "${URL[pa]}/mcp" >/dev/null &
  pids+=($!)
  sleep 0.5
  load "PostgreSQL sessions, on the replica holding the stream" "${URL[pa]}/mcp" "$call" "${PID[pa]}" "Mcp-Session-Id: $sid"
  load "PostgreSQL sessions, on a replica not holding it" "${URL[pb]}/mcp" "$call" "${PID[pb]}" "Mcp-Session-Id: $sid"
  sse_pair pa pb NOTIFY
fi
