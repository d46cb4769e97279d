"""A third-party MCP server for the client matrix (the official Python SDK's FastMCP): a tool
that reports progress, one that sleeps until cancelled, and one only admins may call.
Usage: python3 fixture_server.py PORT"""
import asyncio
import sys

from mcp.server.fastmcp import Context, FastMCP

server = FastMCP("matrix-fixture", host="127.0.0.1", port=int(sys.argv[1]))


@server.tool()
async def slow_progress(steps: int, ctx: Context) -> str:
    """Counts to `steps`, reporting progress at each."""
    for i in range(steps):
        await ctx.report_progress(i + 1, steps, f"step {i + 1}")
        await asyncio.sleep(0.2)
    return f"counted to {steps}"


@server.tool()
async def sleepy(seconds: float) -> str:
    """Sleeps (a call to cancel)."""
    await asyncio.sleep(seconds)
    return "woke up"


@server.tool()
def admin_only() -> str:
    """Only admins may call it."""
    return "secret"


server.run(transport="streamable-http")
