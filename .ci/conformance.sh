#!/usr/bin/env bash
# The official MCP conformance suite (npm @modelcontextprotocol/conformance, Node >= 22 from
# the npm registry) against the gateway's /mcp. The suite sends no token, so this run — and
# only this run — maps anonymous MCP requests to a test principal (MCP_ANONYMOUS_PRINCIPAL).
# Prints one line per scenario and a closing "conformance: N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

scenarios=(${CONFORMANCE_SCENARIOS:-server-initialize ping tools-list tools-call-simple-text tools-call-error server-sse-multiple-streams dns-rebinding-protection})
node_dir=${CONFORMANCE_NODE_DIR:-${TMPDIR:-/tmp}/mcp-gateway-conformance}
if [[ ! -x "$node_dir/node_modules/.bin/conformance" ]]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm install --silent --no-audit --no-fund node@22 @modelcontextprotocol/conformance >/dev/null)
fi
export PATH="$node_dir/node_modules/.bin:$PATH"

cargo build -q -p mcp-gateway -p tool-kit --example conformance_backend
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
  JWT_SECRET_KEY="conformance-only-secret-0123456789abcdef" MCP_ANONYMOUS_PRINCIPAL=conformance:admin RUST_LOG=warn \
  ./target/debug/mcp-gateway 2>"$work/gateway.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$gateway_port/health" >/dev/null && break; sleep 0.1; done

passed=0 failed=0
for scenario in "${scenarios[@]}"; do
  if conformance server --url "http://127.0.0.1:$gateway_port/mcp" --scenario "$scenario" >"$work/$scenario.log" 2>&1; then
    echo "conformance PASS $scenario"
    passed=$((passed + 1))
  else
    echo "conformance FAIL $scenario"
    sed 's/^/    /' "$work/$scenario.log" | tail -40
    failed=$((failed + 1))
  fi
done
echo "conformance: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
