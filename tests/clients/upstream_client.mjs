// The official TypeScript MCP SDK (`@modelcontextprotocol/sdk`, Streamable HTTP) using upstream
// servers through the gateway. Copied next to a node_modules that holds the SDK and run there.
// Usage: node upstream_client.mjs URL TOKEN FILE_PATH  — prints STEP lines, exits 1 on a failure.
const [url, token, filePath] = process.argv.slice(2);
const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
let failed = 0;
const step = (name, ok, detail = '') => {
  console.log(`STEP ${name} ${ok ? 'PASS' : 'FAIL'} ${String(detail).replace(/\s+/g, ' ').slice(0, 200)}`);
  if (!ok) failed++;
};
const textOf = (r) => (r.content || []).map((c) => c.text || '').join(' ');
const client = new Client({ name: 'upstream-ts', version: '1.0.0' });
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
await client.connect(transport);
const tools = (await client.listTools()).tools.map((t) => t.name);
step('tools/list', tools.includes('fs.list_directory') && tools.includes('ev.echo'), tools.slice(0, 6));
const listing = await client.callTool({ name: 'fs.read_text_file', arguments: { path: filePath } });
step('fs.read_text_file', textOf(listing).includes('hello from the filesystem server'), textOf(listing));
const progress = [];
const long = await client.callTool(
  { name: 'ev.trigger-long-running-operation', arguments: { duration: 1, steps: 2 } },
  undefined,
  { onprogress: (p) => progress.push(p.progress) },
);
step('progress', progress.length >= 1 && !long.isError, `progress ${JSON.stringify(progress)}`);
const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
step('prompts/list', prompts.includes('ev.args-prompt'), prompts.slice(0, 4));
const prompt = await client.getPrompt({ name: 'ev.args-prompt', arguments: { city: 'Braga' } });
step('prompts/get', JSON.stringify(prompt.messages).includes('Braga'));
const resources = (await client.listResources()).resources;
const read = await client.readResource({ uri: resources[0].uri });
step('resources/read', read.contents.length > 0, read.contents[0].uri);
const completion = await client.complete({
  ref: { type: 'ref/prompt', name: 'ev.completable-prompt' },
  argument: { name: 'department', value: 'Eng' },
});
step('completion/complete', completion.completion.values.includes('Engineering'), completion.completion.values);
await client.close();
process.exit(failed ? 1 : 0);
