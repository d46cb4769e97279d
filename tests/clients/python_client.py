"""One MCP client of the matrix, driving the gateway through every step a user needs:
connect (initialize or server/discover), tools/list, one call of each bundled tool, a denied
tool, progress and a cancel. Prints `STEP <name> PASS|FAIL <detail>`; exits non-zero on a failure.

Usage: python_client.py API URL TOKEN
  API: client  (mcp 2.x high-level Client, default mode: discover, then 2026-07-28)
       session (ClientSession over Streamable HTTP: the 2025 handshake; mcp 1.x and 2.x)
       sse     (ClientSession over the legacy HTTP+SSE transport)"""
import sys
import time
from contextlib import AsyncExitStack

import anyio

API, URL, TOKEN = sys.argv[1:4]
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
failed = []


def step(name, ok, detail=""):
    print(f"STEP {name} {'PASS' if ok else 'FAIL'} {detail}".rstrip(), flush=True)
    if not ok:
        failed.append(name)


def is_error(result):
    """`isError` (mcp 1.x) or `is_error` (2.x)."""
    return bool(getattr(result, "is_error", getattr(result, "isError", False)))


def text_of(result):
    return " ".join(getattr(c, "text", "") for c in (result.content or []))


async def connect(stack):
    """A session-like object with list_tools/call_tool, and the negotiated version."""
    if API == "client":
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        http = await stack.enter_async_context(create_mcp_http_client(headers=HEADERS))
        client = await stack.enter_async_context(Client(streamable_http_client(URL, http_client=http)))
        return client, str(client.protocol_version)
    from mcp import ClientSession

    if API == "sse":
        from mcp.client.sse import sse_client

        read, write = await stack.enter_async_context(sse_client(URL, headers=HEADERS))
    else:
        try:  # mcp 2.x
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            http = await stack.enter_async_context(create_mcp_http_client(headers=HEADERS))
            streams = await stack.enter_async_context(streamable_http_client(URL, http_client=http))
        except ImportError:  # mcp 1.x
            from mcp.client.streamable_http import streamablehttp_client

            streams = await stack.enter_async_context(streamablehttp_client(URL, headers=HEADERS))
        read, write = streams[0], streams[1]
    session = await stack.enter_async_context(ClientSession(read, write))
    init = await session.initialize()
    return session, str(getattr(init, "protocol_version", getattr(init, "protocolVersion", "?")))


async def main():
    async with AsyncExitStack() as stack:
        try:
            session, version = await connect(stack)
            step("connect", True, version)
        except Exception as e:  # noqa: BLE001
            step("connect", False, repr(e)[:300])
            return
        try:
            tools = {t.name for t in (await session.list_tools()).tools}
            want = {"exact_compute", "git_readonly", "document_generate", "slow_progress", "sleepy"}
            step("tools/list", want <= tools and "admin_only" not in tools, str(sorted(tools)))
        except Exception as e:  # noqa: BLE001
            step("tools/list", False, repr(e)[:300])
        calls = {
            "exact_compute": ({"operation": "arithmetic", "params": {"operator": "+", "x": 1, "y": 2}}, "3"),
            "git_readonly": ({"repo": "mcp-gateway", "action": "log", "limit": 1}, ""),
            "document_generate": ({"content": "# Hello", "format": "html"}, "Generated"),
        }
        for name, (args, expect) in calls.items():
            try:
                result = await session.call_tool(name, args)
                step(f"call:{name}", not is_error(result) and expect in text_of(result) + str(result), text_of(result)[:80])
            except Exception as e:  # noqa: BLE001
                step(f"call:{name}", False, repr(e)[:300])
        try:
            result = await session.call_tool("admin_only", {})
            step("denied-tool", bool(is_error(result)), text_of(result)[:120])
        except Exception as e:  # noqa: BLE001 - a JSON-RPC error is the expected refusal
            step("denied-tool", "Unknown tool" in str(e), str(e)[:120])
        seen = []

        async def on_progress(progress, total, message):
            seen.append(progress)

        try:
            result = await session.call_tool("slow_progress", {"steps": 3}, progress_callback=on_progress)
            step("progress", not is_error(result) and len(seen) >= 1, f"{len(seen)} notifications")
        except Exception as e:  # noqa: BLE001
            step("progress", False, repr(e)[:300])
        started = time.monotonic()
        with anyio.move_on_after(1.5) as scope:
            try:
                await session.call_tool("sleepy", {"seconds": 30})
            except Exception:  # noqa: BLE001
                pass
        cancelled = scope.cancelled_caught and time.monotonic() - started < 5
        try:
            again = await session.call_tool("exact_compute", calls["exact_compute"][0])
            step("cancel", cancelled and not is_error(again), f"after {time.monotonic() - started:.1f}s")
        except Exception as e:  # noqa: BLE001
            step("cancel", False, repr(e)[:300])
        # The cancelled call's own answer may still be on its way (behind a load balancer the
        # cancel reaches the call through another replica): let it land before closing, since
        # the SDK raises on a response that arrives during teardown.
        await anyio.sleep(0.5)


anyio.run(main)
sys.exit(1 if failed else 0)
