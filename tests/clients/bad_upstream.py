"""A stdio MCP server that misbehaves on purpose, for the gateway's bad-upstream tests.

Usage: bad_upstream.py MODE [STATE_FILE]
  good        a well-behaved server with one tool, `ping_tool`
  no_init     never answers `initialize`
  garbage     prints non-JSON lines on stdout before (and between) its answers
  exit        exits at once
  exit_later  answers `initialize` and `tools/list`, then exits on the first tool call
  flood       prints non-JSON lines on stdout without end, answering nothing
  big_line    prints a 100 MB line, then behaves
  big_answer  answers each tool call with a 200 kB line (over a 64 KiB max_line_bytes)
  unknown_ids answers ids it was never asked before each real answer
  bad_tools   lists tools with an invalid name and an invalid schema beside a good one
  env         `ping_tool` answers with the names of its environment variables
  pid         `ping_tool` answers with its process id
  leak        `ping_tool` fails with an error quoting its UPSTREAM_SECRET environment variable
  slow        `ping_tool` answers after 30 s (from a thread: the program keeps reading), and
              each `notifications/cancelled` it receives is appended to STATE_FILE
Each start appends a line to STATE_FILE when given (the tests count restarts).
"""

import json
import os
import sys
import threading
import time

mode = sys.argv[1]
if len(sys.argv) > 2:
    with open(sys.argv[2], "a") as f:
        f.write("start\n")

out = sys.stdout
out_lock = threading.Lock()


def send(message):
    with out_lock:
        out.write(json.dumps(message) + "\n")
        out.flush()


GOOD_TOOL = {"name": "ping_tool", "description": "Answers pong.", "inputSchema": {"type": "object"}}

if mode == "exit":
    sys.exit(3)
if mode == "flood":
    line = "x" * 1000 + "\n"
    while True:
        out.write(line)
if mode == "big_line":
    chunk = "y" * (1 << 20)
    for _ in range(100):
        out.write(chunk)
    out.write("\n")
    out.flush()

for raw in sys.stdin:
    try:
        msg = json.loads(raw)
    except ValueError:
        continue
    method, mid = msg.get("method"), msg.get("id")
    if method == "notifications/cancelled" and len(sys.argv) > 2:
        with open(sys.argv[2], "a") as f:
            f.write("cancelled %s\n" % msg.get("params", {}).get("requestId"))
    if mid is None:
        continue
    if mode == "garbage":
        out.write("this is not json\n{\"half\": \n")
        out.flush()
    if mode == "unknown_ids":
        send({"jsonrpc": "2.0", "id": 987654321, "result": {"content": []}})
        send({"jsonrpc": "2.0", "id": "not-a-number", "result": {}})
    if method == "initialize":
        if mode == "no_init":
            continue
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": "2025-06-18", "capabilities": {"tools": {"listChanged": True}},
            "serverInfo": {"name": "bad-upstream-" + mode, "version": "1"}}})
    elif method == "tools/list":
        tools = [GOOD_TOOL]
        if mode == "bad_tools":
            tools = [GOOD_TOOL, {"name": "has space", "inputSchema": {"type": "object"}},
                     {"name": "no_schema"}, {"name": "array_schema", "inputSchema": {"type": "array"}},
                     {"name": "x" * 300, "inputSchema": {"type": "object"}},
                     {"name": "nul_desc", "description": "a\u0000b\u202e", "inputSchema": {"type": "object"}}]
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": tools}})
    elif method == "tools/call":
        if mode == "exit_later":
            sys.exit(4)
        if mode == "slow":
            def later(mid=mid):
                time.sleep(30)
                send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": "late"}]}})
            threading.Thread(target=later, daemon=True).start()
            continue
        text = "pong"
        if mode == "big_answer":
            text = "z" * 200_000
        if mode == "env":
            text = " ".join(sorted(os.environ))
        if mode == "pid":
            text = str(os.getpid())
        if mode == "leak":
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32000,
                  "message": "bad key " + os.environ.get("UPSTREAM_SECRET", "")}})
            continue
        send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": text}]}})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
    else:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "no such method"}})
