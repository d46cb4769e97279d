#!/usr/bin/env bash
# MCP clients nobody here wrote, against a real gateway and a fixture backend:
# - the official conformance suite (npm @modelcontextprotocol/conformance) on /mcp; it sends no
#   token, so this run — and only this run — maps anonymous MCP requests to a test principal
#   (MCP_ANONYMOUS_PRINCIPAL);
# - the MCP Inspector CLI (npm @modelcontextprotocol/inspector) over /mcp and /sse, with a token;
# - mcp-remote (npm) bridging a stdio client to /mcp, with a token;
# - the client matrix (tests/clients/matrix.sh): the SDK clients people install, step by step.
# Node >= 22 comes from the npm registry (the node@22 package). One line per check, then
# "mcp clients: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

scenarios=(${CONFORMANCE_SCENARIOS:-server-initialize ping tools-list tools-call-simple-text tools-call-error server-sse-multiple-streams dns-rebinding-protection})
npm_dir=${MCP_CLIENTS_NPM_DIR:-${TMPDIR:-/tmp}/mcp-gateway-clients}
install() { # dir packages...: separate folders, so the packages' dependency ranges never clash
  local dir="$npm_dir/$1"; shift
  # Reinstalled whenever the pinned list changes (the marker holds it).
  if [[ "$(cat "$dir/.installed" 2>/dev/null)" != "$*" ]]; then
    rm -rf "$dir" && mkdir -p "$dir" && (cd "$dir" && npm install --silent --no-audit --no-fund "$@" >/dev/null) &&
      printf '%s' "$*" >"$dir/.installed"
  fi
}
# Pinned: a new release of a checker must not change what CI means overnight.
install conformance node@22 @modelcontextprotocol/conformance@0.1.16
install clients node@22 @modelcontextprotocol/inspector@2.12.0 mcp-remote@0.15.1
export PATH="$npm_dir/conformance/node_modules/.bin:$PATH"
clients="$npm_dir/clients/node_modules/.bin"

# --example alone would build only the example: the gateway binary needs its own --bin
cargo build -q -p mcp-gateway --bin mcp-gateway
cargo build -q -p tool-kit --example conformance_backend
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
backend_port=$(free_port)
gateway_port=$(free_port)
cat >"$work/tools.yaml" <<YAML
tools:
  - name: test_simple_text
    description: Returns a fixed text.
    backend_url: http://127.0.0.1:$backend_port/mcp
  - name: test_error_handling
    description: Always fails with isError.
    backend_url: http://127.0.0.1:$backend_port/mcp
YAML
CONFORMANCE_BIND=127.0.0.1:$backend_port ./target/debug/examples/conformance_backend 2>"$work/backend.log" &
pids+=($!)
GATEWAY_PORT=$gateway_port DATABASE_URL="sqlite://$work/audit.db" DATA_DIR="$work/data" TOOLS_CONFIG="$work/tools.yaml" \
  JWT_SECRET_KEY="conformance-only-secret-0123456789abcdef" MCP_ANONYMOUS_PRINCIPAL=conformance:admin RUST_LOG=warn BUNDLED_TOOLS=off \
  ./target/debug/mcp-gateway 2>"$work/gateway.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$gateway_port/health" >/dev/null && break; sleep 0.1; done

passed=0 failed=0
check() { # name command...
  local name=$1; shift
  if "$@" >"$work/check.log" 2>&1; then
    echo "mcp client PASS $name"; passed=$((passed + 1))
  else
    echo "mcp client FAIL $name"; sed 's/^/    /' "$work/check.log" | tail -30; failed=$((failed + 1))
  fi
}
for scenario in "${scenarios[@]}"; do
  # Run from the scratch folder: the suite writes its results/ where it runs.
  check "conformance $scenario" bash -c 'cd "$1" && shift && conformance "$@"' _ "$work" server \
    --url "http://127.0.0.1:$gateway_port/mcp" --scenario "$scenario"
done
token=$(JWT_SECRET_KEY="conformance-only-secret-0123456789abcdef" ./target/debug/mcp-gateway token --sub inspector --roles admin)
base="http://127.0.0.1:$gateway_port"
inspect() { # url expected method args...
  local url=$1 expected=$2; shift 2
  local out
  out=$(PATH="$clients:$PATH" mcp-inspector --cli "$url" --header "Authorization: Bearer $token" "$@")
  printf '%s\n' "$out" >&2
  grep -q -- "$expected" <<<"$out"
}
check "inspector tools/list over /mcp" inspect "$base/mcp" test_error_handling --method tools/list
check "inspector tools/call over /mcp" inspect "$base/mcp" "simple text response" --method tools/call --tool-name test_simple_text
check "inspector tools/list over /sse" inspect "$base/sse" test_simple_text --method tools/list
check "inspector tools/call over /sse" inspect "$base/sse" "simple text response" --method tools/call --tool-name test_simple_text
check "mcp-remote stdio bridge" python3 - "$clients/mcp-remote" "$base/mcp" "$token" <<'PY'
import json, select, subprocess, sys
bridge, url, token = sys.argv[1:4]
p = subprocess.Popen([bridge, url, "--header", f"Authorization: Bearer {token}"], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
def send(m):
    p.stdin.write(json.dumps(m) + "\n"); p.stdin.flush()
def recv():
    ready, _, _ = select.select([p.stdout], [], [], 60)
    return json.loads(p.stdout.readline()) if ready else None
send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "ci", "version": "1"}}})
assert recv()["result"]["serverInfo"]["name"] == "mcp-gateway"
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "test_simple_text", "arguments": {}}})
reply = recv()
p.terminate()
assert "simple text response" in json.dumps(reply), reply
print(json.dumps(reply))
PY
# An expired token through mcp-remote: it answers the 401 by trying OAuth against the gateway;
# what it shows must say what happened (the token was refused; how to get another).
expired=$(python3 - <<'PY'
import base64, hashlib, hmac, json, time
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
head = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b(json.dumps({"sub": "desk", "roles": ["admin"], "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}).encode())
sig = b(hmac.new(b"conformance-only-secret-0123456789abcdef", f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
)
expired_remote() {
  local out
  out=$( (printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"ci","version":"1"}}}'; sleep 10) |
    timeout 20 "$clients/mcp-remote" "$base/mcp" --header "Authorization: Bearer $expired" 2>&1 || true)
  grep -m1 'Fatal error' <<<"$out" >&2 || true
  grep -q 'not_an_authorization_server' <<<"$out" && grep -q 'mcp-gateway token' <<<"$out"
}
check "mcp-remote with an expired token says so" expired_remote
echo "mcp clients: $passed passed, $failed failed"
# The client matrix: Python mcp 2.x/1.x, fastmcp, TypeScript SDK v1/v2, each through every step.
matrix=0
bash tests/clients/matrix.sh || matrix=$?
[[ $failed -eq 0 && $matrix -eq 0 ]]
