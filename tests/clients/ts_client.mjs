// One MCP client of the matrix (TypeScript SDK v1 `@modelcontextprotocol/sdk` or v2
// `@modelcontextprotocol/client`), through the same steps as python_client.py. It is copied
// next to its node_modules by matrix.sh and run there.
// Usage: node ts_client.mjs SDK TRANSPORT URL TOKEN   (SDK: v1 | v2; TRANSPORT: http | sse)
const [sdk, transportKind, url, token] = process.argv.slice(2);
const headers = { Authorization: `Bearer ${token}` };
let failed = 0;
const step = (name, ok, detail = '') => {
  console.log(`STEP ${name} ${ok ? 'PASS' : 'FAIL'} ${String(detail).replace(/\s+/g, ' ').slice(0, 200)}`);
  if (!ok) failed++;
};
const textOf = (r) => (r.content || []).map((c) => c.text || '').join(' ');

let Client, StreamableHTTPClientTransport, SSEClientTransport;
if (sdk === 'v1') {
  ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
  ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
  ({ SSEClientTransport } = await import('@modelcontextprotocol/sdk/client/sse.js'));
} else {
  ({ Client, StreamableHTTPClientTransport, SSEClientTransport } = await import('@modelcontextprotocol/client'));
}
// v2 negotiates: server/discover first, 2026-07-28 when offered, else the 2025 handshake.
const options = sdk === 'v2' ? { versionNegotiation: { mode: 'auto' } } : {};
const client = new Client({ name: `matrix-ts-${sdk}`, version: '1.0.0' }, options);
const withAuth = (u, init) => fetch(u, { ...init, headers: { ...(init?.headers || {}), ...headers } });
const transport =
  transportKind === 'sse'
    ? new SSEClientTransport(new URL(url), { requestInit: { headers }, eventSourceInit: { fetch: withAuth } })
    : new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const call = (params, opts = {}) =>
  sdk === 'v1' ? client.callTool(params, undefined, opts) : client.callTool(params, opts);

try {
  await client.connect(transport);
  const version = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? '2025 handshake';
  step('connect', client.getServerVersion()?.name === 'mcp-gateway', version);
} catch (e) {
  step('connect', false, e);
  process.exit(1);
}
try {
  const names = (await client.listTools()).tools.map((t) => t.name);
  const want = ['exact_compute', 'git_readonly', 'document_generate', 'slow_progress', 'sleepy'];
  step('tools/list', want.every((n) => names.includes(n)) && !names.includes('admin_only'), names.sort().join(','));
} catch (e) {
  step('tools/list', false, e);
}
const calls = {
  exact_compute: [{ operation: 'arithmetic', params: { operator: '+', x: 1, y: 2 } }, '3'],
  git_readonly: [{ repo: 'mcp-gateway', action: 'log', limit: 1 }, ''],
  document_generate: [{ content: '# Hello', format: 'html' }, 'Generated'],
};
for (const [name, [args, expect]] of Object.entries(calls)) {
  try {
    const r = await call({ name, arguments: args });
    step(`call:${name}`, !r.isError && textOf(r).includes(expect), textOf(r).slice(0, 80));
  } catch (e) {
    step(`call:${name}`, false, e);
  }
}
try {
  const r = await call({ name: 'admin_only', arguments: {} });
  step('denied-tool', !!r.isError, textOf(r));
} catch (e) {
  step('denied-tool', String(e).includes('Unknown tool'), e);
}
try {
  let seen = 0;
  const r = await call({ name: 'slow_progress', arguments: { steps: 3 } }, { onprogress: () => seen++ });
  step('progress', !r.isError && seen >= 1, `${seen} notifications`);
} catch (e) {
  step('progress', false, e);
}
const started = Date.now();
const abort = new AbortController();
setTimeout(() => abort.abort('matrix cancel'), 1500);
let cancelled = false;
try {
  await call({ name: 'sleepy', arguments: { seconds: 30 } }, { signal: abort.signal, timeout: 60_000 });
} catch {
  cancelled = Date.now() - started < 5000;
}
try {
  const r = await call({ name: 'exact_compute', arguments: calls.exact_compute[0] });
  step('cancel', cancelled && !r.isError, `after ${((Date.now() - started) / 1000).toFixed(1)}s`);
} catch (e) {
  step('cancel', false, e);
}
await client.close().catch(() => {});
process.exit(failed ? 1 : 0);
