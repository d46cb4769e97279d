"""A plain round-robin HTTP load balancer for the replica tests: each request (not each
connection) goes to the next replica in turn, with no stickiness of any kind; bodies and event
streams are passed through as they arrive. A replica that refuses connections is skipped (as a
Kubernetes Service drops a dead pod). Prints `LISTENING <port>` once it accepts.

Usage: python3 round_robin.py UPSTREAM [UPSTREAM ...]   (e.g. http://127.0.0.1:8081)
Needs starlette, uvicorn and httpx (the MCP Python SDK's own dependencies)."""
import itertools
import socket
import sys

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAMS = sys.argv[1:]
turn = itertools.count()
client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None), limits=httpx.Limits(max_connections=200))
HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


async def forward(request):
    body = await request.body()
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP]
    for _ in range(len(UPSTREAMS)):
        upstream = UPSTREAMS[next(turn) % len(UPSTREAMS)]
        url = upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        req = client.build_request(request.method, url, headers=headers, content=body)
        try:
            resp = await client.send(req, stream=True)
        except httpx.ConnectError:
            continue
        out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP}
        out["x-replica"] = upstream

        async def relay(resp=resp):
            try:
                async for chunk in resp.aiter_raw():
                    yield chunk
            finally:
                await resp.aclose()

        return StreamingResponse(relay(), status_code=resp.status_code, headers=out)
    return Response("no replica answered", status_code=502)


app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE", "PUT", "PATCH"])])

if __name__ == "__main__":
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(f"LISTENING {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
