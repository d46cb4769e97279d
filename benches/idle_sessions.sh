#!/usr/bin/env bash
# Memory per idle MCP session: open N Streamable HTTP sessions (initialize) and compare the
# gateway's RSS before and after.   bash benches/idle_sessions.sh [N=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
cargo build --release -q -p mcp-gateway
work=$(mktemp -d)
secret="bench-secret-that-is-long-enough-for-hs256"
GATEWAY_PORT=18010 DATABASE_URL="sqlite://$work/b.db" DATA_DIR="$work" JWT_SECRET_KEY=$secret TOOLS_CONFIG=config/tools.yaml \
  GATEWAY_WORKERS=1 RUST_LOG=warn BUNDLED_TOOLS=off ./target/release/mcp-gateway 2>"$work/gw.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18010/health >/dev/null && break; sleep 0.1; done
token=$(JWT_SECRET_KEY=$secret ./target/release/mcp-gateway token --sub bench --roles developer)
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
python3 - "$token" 20 <<'PY' >/dev/null   # warm-up: allocator pools, worker buffers
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", 18010)
for _ in range(int(sys.argv[2])):
    c.request("POST", "/mcp", json.dumps({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}),
              {"Authorization": "Bearer " + sys.argv[1], "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    c.getresponse().read()
PY
before=$(rss)
python3 - "$token" "$N" <<'PY'
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", 18010)
body = json.dumps({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}}})
ids = set()
for _ in range(int(sys.argv[2])):
    c.request("POST", "/mcp", body, {"Authorization": "Bearer " + sys.argv[1], "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    r = c.getresponse(); r.read()
    ids.add(r.getheader("mcp-session-id"))
assert len(ids) == int(sys.argv[2]), len(ids)
PY
after=$(rss)
echo "idle sessions: $N   RSS before: ${before} KiB   after: ${after} KiB   per session: $(( (after - before) * 1024 / N )) bytes"
