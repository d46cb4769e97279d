#!/usr/bin/env bash
# The MCP client matrix: each client people install today (pinned below; a new release is a
# one-line change) drives a real gateway — with the three bundled tools and a third-party
# fixture server (the Python SDK's FastMCP) — through connect (initialize or server/discover),
# tools/list, one call of each bundled tool, a denied tool, progress and a cancel, over /mcp and,
# where the client has it, /sse; then the SDK clients again through three replicas sharing Redis
# behind a round-robin balancer. Prints one line per client × version × mode × step, then
# "client matrix: N passed, N failed". Run from the repository root after
# `cargo build -p mcp-gateway --bin mcp-gateway`; packages go to MCP_CLIENTS_NPM_DIR (default
# $TMPDIR/mcp-gateway-clients), separate folders per client so their dependencies never clash.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY_MCP2=2.3.0        # PyPI mcp, 2.x: high-level Client (discover → 2026-07-28) and ClientSession
PY_MCP1=1.30.0       # PyPI mcp, 1.x: ClientSession (2025 handshake), Streamable HTTP and SSE
FASTMCP=4.2.3        # PyPI fastmcp
TS_SDK_V1=1.32.2     # npm @modelcontextprotocol/sdk
TS_CLIENT_V2=2.4.0   # npm @modelcontextprotocol/client (versionNegotiation: auto)
# crates.io rmcp: pinned in tests/clients/rmcp/Cargo.toml (both lifecycle modes)

dir=${MCP_CLIENTS_NPM_DIR:-${TMPDIR:-/tmp}/mcp-gateway-clients}
mkdir -p "$dir"
venv() { # name requirement
  if [[ ! -x "$dir/$1/bin/python" ]] || ! "$dir/$1/bin/python" -m pip show -q "${2%%==*}" 2>/dev/null | grep -q "Version: ${2#*==}"; then
    python3 -m venv "$dir/$1" && "$dir/$1/bin/pip" install --quiet --disable-pip-version-check "$2"
  fi
}
npm_dir() { # name packages...
  local d="$dir/$1"; shift
  if [[ "$(cat "$d/.installed" 2>/dev/null)" != "$*" ]]; then
    rm -rf "$d" && mkdir -p "$d" && (cd "$d" && npm install --silent --no-audit --no-fund "$@" >/dev/null) &&
      printf '%s' "$*" >"$d/.installed"
  fi
}
venv "py-mcp2-$PY_MCP2" "mcp==$PY_MCP2"
venv "py-mcp1-$PY_MCP1" "mcp==$PY_MCP1"
venv "py-fastmcp-$FASTMCP" "fastmcp==$FASTMCP"
npm_dir "ts-v1-$TS_SDK_V1" node@22 "@modelcontextprotocol/sdk@$TS_SDK_V1"
npm_dir "ts-v2-$TS_CLIENT_V2" node@22 "@modelcontextprotocol/client@$TS_CLIENT_V2"

# The rmcp client builds into a cache kept between runs (its own target dir: rmcp and reqwest
# never enter the main workspace's build).
rmcp_target=${RMCP_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-gateway/rmcp-target}
CARGO_TARGET_DIR="$rmcp_target" cargo build -q --release --manifest-path tests/clients/rmcp/Cargo.toml
rmcp_client="$rmcp_target/release/matrix-rmcp-client"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gw=$(free_port) calc=$(free_port) git=$(free_port) docs=$(free_port) fixture=$(free_port)
cat >"$work/tools.yaml" <<YAML
tools:
  - {name: exact_compute, backend_url: "http://127.0.0.1:$calc/mcp"}
  - {name: git_readonly, backend_url: "http://127.0.0.1:$git/mcp"}
  - {name: document_generate, backend_url: "http://127.0.0.1:$docs/mcp"}
  - {name: slow_progress, backend_url: "http://127.0.0.1:$fixture/mcp"}
  - {name: sleepy, backend_url: "http://127.0.0.1:$fixture/mcp"}
  - {name: admin_only, backend_url: "http://127.0.0.1:$fixture/mcp"}
YAML
cat >"$work/policy.yaml" <<YAML
default_action: deny
roles:
  admin: {allowed_tools: ["*"]}
  developer: {allowed_tools: [exact_compute, git_readonly, document_generate, slow_progress, sleepy]}
YAML
python3 tests/clients/fixture_server.py "$fixture" >"$work/fixture.log" 2>&1 &
pids+=($!)
secret="matrix-only-secret-0123456789abcdef0123"
GATEWAY_PORT=$gw DATABASE_URL="sqlite://$work/audit.db" DATA_DIR="$work/data" TOOLS_CONFIG="$work/tools.yaml" \
  POLICY_CONFIG="$work/policy.yaml" JWT_SECRET_KEY="$secret" RUST_LOG=warn ALLOWED_ORIGINS="" \
  CALCULATOR_BIND="127.0.0.1:$calc" GIT_TOOL_BIND="127.0.0.1:$git" DOCGEN_BIND="127.0.0.1:$docs" \
  GIT_REPOS="mcp-gateway=$PWD" ./target/debug/mcp-gateway >"$work/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  curl -sf "http://127.0.0.1:$gw/health/ready" >/dev/null && curl -s -o /dev/null "http://127.0.0.1:$fixture/mcp" && break
  sleep 0.2
done
token=$(JWT_SECRET_KEY="$secret" ./target/debug/mcp-gateway token --sub matrix --roles developer)
base="http://127.0.0.1:$gw"

passed=0 failed=0
run() { # client version mode command...
  local client=$1 version=$2 mode=$3; shift 3
  local out status
  set +e
  out=$(timeout 180 "$@" 2>"$work/client.err" </dev/null)
  status=$?
  set -e
  if ! grep -q '^STEP ' <<<"$out"; then
    out="STEP connect FAIL exit $status: $(tail -c 400 "$work/client.err" | tr '\n' ' ')"
  fi
  while read -r name result detail; do
    printf 'matrix %-22s %-8s %-22s %-24s %s %s\n' "$client" "$version" "$mode" "$name" "$result" "${detail:0:90}"
    if [[ $result == PASS ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  done < <(sed -n 's/^STEP //p' <<<"$out")
  if [[ $status -ne 0 ]] && ! grep -q 'FAIL' <<<"$out"; then
    printf 'matrix %-22s %-8s %-22s %-24s FAIL exit %s\n' "$client" "$version" "$mode" "(process)" "$status"
    failed=$((failed + 1))
  fi
}
py2="$dir/py-mcp2-$PY_MCP2/bin/python"
py1="$dir/py-mcp1-$PY_MCP1/bin/python"
run "python mcp Client" "$PY_MCP2" "auto (discover) /mcp" "$py2" tests/clients/python_client.py client "$base/mcp" "$token"
run "python mcp ClientSession" "$PY_MCP2" "initialize /mcp" "$py2" tests/clients/python_client.py session "$base/mcp" "$token"
run "python mcp ClientSession" "$PY_MCP2" "initialize /sse" "$py2" tests/clients/python_client.py sse "$base/sse" "$token"
run "python mcp ClientSession" "$PY_MCP1" "initialize /mcp" "$py1" tests/clients/python_client.py session "$base/mcp" "$token"
run "python mcp ClientSession" "$PY_MCP1" "initialize /sse" "$py1" tests/clients/python_client.py sse "$base/sse" "$token"
fast="$dir/py-fastmcp-$FASTMCP/bin/python"
run "fastmcp Client" "$FASTMCP" "/mcp" "$fast" tests/clients/fastmcp_client.py "$base/mcp" "$token"
run "fastmcp Client" "$FASTMCP" "/sse" "$fast" tests/clients/fastmcp_client.py "$base/sse" "$token"
# The script runs beside its SDK's node_modules (ES modules resolve from the script's folder).
v1="$dir/ts-v1-$TS_SDK_V1" v2="$dir/ts-v2-$TS_CLIENT_V2"
cp tests/clients/ts_client.mjs "$v1/" && cp tests/clients/ts_client.mjs "$v2/"
run "ts @modelcontextprotocol/sdk" "$TS_SDK_V1" "initialize /mcp" "$v1/node_modules/.bin/node" "$v1/ts_client.mjs" v1 http "$base/mcp" "$token"
run "ts @modelcontextprotocol/sdk" "$TS_SDK_V1" "initialize /sse" "$v1/node_modules/.bin/node" "$v1/ts_client.mjs" v1 sse "$base/sse" "$token"
run "ts @modelcontextprotocol/client" "$TS_CLIENT_V2" "auto (discover) /mcp" "$v2/node_modules/.bin/node" "$v2/ts_client.mjs" v2 http "$base/mcp" "$token"
run "ts @modelcontextprotocol/client" "$TS_CLIENT_V2" "auto /sse" "$v2/node_modules/.bin/node" "$v2/ts_client.mjs" v2 sse "$base/sse" "$token"
run "rust rmcp" "3.11.0" "initialize /mcp" "$rmcp_client" initialize "$base/mcp" "$token"
run "rust rmcp" "3.11.0" "discover /mcp" "$rmcp_client" discover "$base/mcp" "$token"

# The same clients through three replicas sharing one Redis (sessions, stream routing) behind a
# plain round-robin balancer (tests/clients/round_robin.py; every request to the next replica).
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
replicas=()
for r in 0 1 2; do
  port=$(free_port)
  GATEWAY_PORT=$port DATABASE_URL="sqlite://$work/replicas.db" DATA_DIR="$work/data-r$r" TOOLS_CONFIG="$work/tools.yaml" \
    POLICY_CONFIG="$work/policy.yaml" JWT_SECRET_KEY="$secret" RUST_LOG=warn ALLOWED_ORIGINS="" BUNDLED_TOOLS=off \
    REDIS_URL="redis://127.0.0.1:$redis_port" GATEWAY_WORKERS=1 ./target/debug/mcp-gateway >"$work/replica-$r.log" 2>&1 &
  pids+=($!)
  replicas+=("http://127.0.0.1:$port")
done
for url in "${replicas[@]}"; do
  for _ in $(seq 1 150); do curl -sf "$url/health/ready" >/dev/null && break; sleep 0.2; done
done
"$py1" tests/clients/round_robin.py "${replicas[@]}" >"$work/lb.out" 2>"$work/lb.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q LISTENING "$work/lb.out" 2>/dev/null && break; sleep 0.1; done
lb="http://127.0.0.1:$(sed -n 's/^LISTENING //p' "$work/lb.out")"
run "python mcp ClientSession" "$PY_MCP2" "3 replicas, rr /mcp" "$py2" tests/clients/python_client.py session "$lb/mcp" "$token"
run "python mcp ClientSession" "$PY_MCP2" "3 replicas, rr /sse" "$py2" tests/clients/python_client.py sse "$lb/sse" "$token"
run "ts @modelcontextprotocol/sdk" "$TS_SDK_V1" "3 replicas, rr /mcp" "$v1/node_modules/.bin/node" "$v1/ts_client.mjs" v1 http "$lb/mcp" "$token"
run "ts @modelcontextprotocol/sdk" "$TS_SDK_V1" "3 replicas, rr /sse" "$v1/node_modules/.bin/node" "$v1/ts_client.mjs" v1 sse "$lb/sse" "$token"
run "ts @modelcontextprotocol/client" "$TS_CLIENT_V2" "3 replicas, rr /mcp" "$v2/node_modules/.bin/node" "$v2/ts_client.mjs" v2 http "$lb/mcp" "$token"
echo "client matrix: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
