"""Calls one tool through the gateway with the official MCP Python SDK (ClientSession over
Streamable HTTP) and waits for it as a user would while the call is held for approval.

Usage: approval_client.py URL TOKEN TOOL ARGUMENTS_JSON
Prints `PROGRESS <message>` for each progress notification, then `RESULT <json>` with
`is_error` and `text`; exits non-zero when the call fails at the protocol level."""
import json
import sys
from datetime import timedelta

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

URL, TOKEN, TOOL, ARGUMENTS = sys.argv[1:5]


async def main():
    async def progress(value, total, message):
        print(f"PROGRESS {message}", flush=True)

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with streamablehttp_client(URL, headers=headers, timeout=30, sse_read_timeout=300) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            print("READY", flush=True)
            result = await session.call_tool(
                TOOL, json.loads(ARGUMENTS), read_timeout_seconds=timedelta(seconds=240), progress_callback=progress
            )
            text = " ".join(getattr(c, "text", "") for c in result.content or [])
            print("RESULT " + json.dumps({"is_error": bool(result.isError), "text": text}), flush=True)


anyio.run(main)
