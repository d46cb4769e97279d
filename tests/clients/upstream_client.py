"""The official Python MCP SDK (ClientSession over Streamable HTTP) using upstream servers
through the gateway: tools discovered under a namespace, prompts and resources, and the
upstreams' own requests (sampling, elicitation) relayed to this client during its calls.

Usage: upstream_client.py URL TOKEN FILE_PATH [MORE_NAMESPACES,...]
Prints `STEP <name> PASS|FAIL <detail>`; exits non-zero on a failure."""
import sys

import anyio
from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client

URL, TOKEN, FILE_PATH = sys.argv[1:4]
MORE_NS = sys.argv[4].split(",") if len(sys.argv) > 4 else []
failed = []
asked = []


async def sampling(context, params):
    asked.append(("sampling", params.messages[0].content.text))
    return types.CreateMessageResult(
        role="assistant", model="python-test-model",
        content=types.TextContent(type="text", text="sampled by the python client"))


async def elicitation(context, params):
    asked.append(("elicitation", params.message))
    return types.ElicitResult(action="decline")


def step(name, ok, detail=""):
    print(f"STEP {name} {'PASS' if ok else 'FAIL'} {str(detail)[:200]}".rstrip(), flush=True)
    if not ok:
        failed.append(name)


def text_of(result):
    return " ".join(getattr(c, "text", "") for c in (result.content or []))


async def main():
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with streamablehttp_client(URL, headers=headers) as (read, write, _):
        async with ClientSession(read, write, sampling_callback=sampling,
                                 elicitation_callback=elicitation) as session:
            await session.initialize()
            names = [t.name for t in (await session.list_tools()).tools]
            step("tools/list", "fs.read_text_file" in names and "ev.echo" in names, names[:6])
            result = await session.call_tool("fs.read_text_file", {"path": FILE_PATH})
            step("fs.read_text_file", "hello from the filesystem server" in text_of(result), text_of(result))
            result = await session.call_tool("ev.echo", {"message": "sdk through gateway"})
            step("ev.echo", "sdk through gateway" in text_of(result), text_of(result))
            prompts = [p.name for p in (await session.list_prompts()).prompts]
            step("prompts/list", "ev.simple-prompt" in prompts, prompts[:4])
            prompt = await session.get_prompt("ev.args-prompt", {"city": "Porto"})
            step("prompts/get", "Porto" in str(prompt.messages), prompt.messages[:1])
            resources = (await session.list_resources()).resources
            step("resources/list", len(resources) > 0, [str(r.uri) for r in resources[:2]])
            read = await session.read_resource(resources[0].uri)
            step("resources/read", len(read.contents) > 0, str(read.contents[0].uri))
            for ns in ["ev"] + MORE_NS:
                result = await session.call_tool(f"{ns}.trigger-sampling-request", {"prompt": f"via {ns}"})
                step(f"{ns} sampling relayed", "sampled by the python client" in text_of(result)
                     and ("sampling", f"Resource trigger-sampling-request context: via {ns}") in asked,
                     text_of(result))
            result = await session.call_tool("ev.trigger-elicitation-request", {})
            step("ev elicitation relayed", "decline" in text_of(result) and any(k == "elicitation" for k, _ in asked),
                 text_of(result))


anyio.run(main)
sys.exit(1 if failed else 0)
