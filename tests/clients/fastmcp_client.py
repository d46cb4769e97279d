"""The matrix's fastmcp client (PyPI fastmcp), through the same steps as python_client.py.
Usage: fastmcp_client.py URL TOKEN   (a URL ending in /sse uses the SSE transport)"""
import sys
import time

import anyio
from fastmcp import Client

URL, TOKEN = sys.argv[1:3]
failed = []


def step(name, ok, detail=""):
    print(f"STEP {name} {'PASS' if ok else 'FAIL'} {str(detail)[:200]}".rstrip(), flush=True)
    if not ok:
        failed.append(name)


def text_of(result):
    return " ".join(getattr(c, "text", "") for c in (result.content or []))


async def main():
    if URL.endswith("/sse"):
        from fastmcp.client.transports import SSETransport as Transport
    else:
        from fastmcp.client.transports import StreamableHttpTransport as Transport
    transport = Transport(URL, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        client = Client(transport)
        await client.__aenter__()
        step("connect", True, getattr(client.initialize_result, "protocolVersion", "?"))
    except Exception as e:  # noqa: BLE001
        step("connect", False, repr(e))
        return
    try:
        names = {t.name for t in await client.list_tools()}
        want = {"exact_compute", "git_readonly", "document_generate", "slow_progress", "sleepy"}
        step("tools/list", want <= names and "admin_only" not in names, sorted(names))
    except Exception as e:  # noqa: BLE001
        step("tools/list", False, repr(e))
    calls = {
        "exact_compute": ({"operation": "arithmetic", "params": {"operator": "+", "x": 1, "y": 2}}, "3"),
        "git_readonly": ({"repo": "mcp-gateway", "action": "log", "limit": 1}, ""),
        "document_generate": ({"content": "# Hello", "format": "html"}, "Generated"),
    }
    for name, (args, expect) in calls.items():
        try:
            r = await client.call_tool(name, args, raise_on_error=False)
            step(f"call:{name}", not r.is_error and expect in text_of(r), text_of(r)[:80])
        except Exception as e:  # noqa: BLE001
            step(f"call:{name}", False, repr(e))
    try:
        r = await client.call_tool("admin_only", {}, raise_on_error=False)
        step("denied-tool", r.is_error, text_of(r))
    except Exception as e:  # noqa: BLE001
        step("denied-tool", "Unknown tool" in str(e), str(e))
    seen = []

    async def on_progress(progress, total, message):
        seen.append(progress)

    try:
        r = await client.call_tool("slow_progress", {"steps": 3}, progress_handler=on_progress, raise_on_error=False)
        step("progress", not r.is_error and len(seen) >= 1, f"{len(seen)} notifications")
    except Exception as e:  # noqa: BLE001
        step("progress", False, repr(e))
    started = time.monotonic()
    with anyio.move_on_after(1.5) as scope:
        try:
            await client.call_tool("sleepy", {"seconds": 30})
        except Exception:  # noqa: BLE001
            pass
    try:
        r = await client.call_tool("exact_compute", calls["exact_compute"][0], raise_on_error=False)
        step("cancel", scope.cancelled_caught and not r.is_error, f"after {time.monotonic() - started:.1f}s")
    except Exception as e:  # noqa: BLE001
        step("cancel", False, repr(e))
    try:
        await client.__aexit__(None, None, None)
    except Exception:  # noqa: BLE001
        pass


anyio.run(main)
sys.exit(1 if failed else 0)
