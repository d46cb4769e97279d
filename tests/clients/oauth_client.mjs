// The official TypeScript MCP SDK's OAuth client through the whole MCP authorization flow,
// headless, with no hand-minted token: the gateway's 401 → its RFC 9728 metadata → the
// provider's metadata → dynamic client registration → authorization code + PKCE (the
// provider's interaction approved by the test provider; its redirects followed here with a
// cookie jar, as a browser would) → token → tools/list and tools/call.
// Copied next to a node_modules that holds the SDK and run there.
// Usage: node oauth_client.mjs GATEWAY_MCP_URL ACCOUNT TOOL
// Prints STEP lines, exits 1 on a failure.
const [url, account, tool] = process.argv.slice(2);
const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { UnauthorizedError } = await import('@modelcontextprotocol/sdk/client/auth.js');

let failed = 0;
const step = (name, ok, detail = '') => {
  console.log(`STEP ${name} ${ok ? 'PASS' : 'FAIL'} ${String(detail).replace(/\s+/g, ' ').slice(0, 300)}`);
  if (!ok) failed++;
};

// Never contacted: the authorization code is read from the redirect's Location.
const redirectUrl = 'http://127.0.0.1:9/callback';
const store = {};
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() {
    return {
      client_name: 'mcp-gateway oauth test',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  clientInformation() { return store.client; },
  saveClientInformation(info) { store.client = info; },
  tokens() { return store.tokens; },
  saveTokens(tokens) { store.tokens = tokens; },
  redirectToAuthorization(authorizationUrl) { store.authorizationUrl = authorizationUrl; },
  saveCodeVerifier(verifier) { store.verifier = verifier; },
  codeVerifier() { return store.verifier; },
};

// Follow the provider's redirects with cookies until it redirects to our redirect URI.
async function authorize(start) {
  const jar = new Map();
  let next = new URL(start);
  const seen = [];
  for (let hop = 0; hop < 12; hop++) {
    seen.push(`${next.pathname}${next.search.slice(0, 80)}`);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const resp = await fetch(next, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const line of resp.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      jar.set(pair.slice(0, at).trim(), pair.slice(at + 1));
    }
    const location = resp.headers.get('location');
    if (!location) throw new Error(`no redirect at hop ${hop}: HTTP ${resp.status} ${(await resp.text()).slice(0, 200)}`);
    next = new URL(location, next);
    if (next.href.startsWith(redirectUrl)) {
      const code = next.searchParams.get('code');
      if (!code) throw new Error(`redirected without a code: ${next.search}`);
      return code;
    }
  }
  throw new Error(`too many redirects: ${seen.join(' -> ')}`);
}

let first;
try {
  const client = new Client({ name: 'oauth-ts', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  first = 'connected without authorization';
} catch (e) {
  first = e instanceof UnauthorizedError ? 'unauthorized' : `error: ${e}`;
}
step('401 leads to the authorization server', first === 'unauthorized' && store.authorizationUrl, first);
step('dynamic client registration', Boolean(store.client && store.client.client_id), store.client?.client_id);
const authUrl = new URL(store.authorizationUrl);
step('PKCE S256 and the resource indicator', authUrl.searchParams.get('code_challenge_method') === 'S256'
  && authUrl.searchParams.get('resource') === url, authUrl.search);
authUrl.searchParams.set('login_hint', account);
const code = await authorize(authUrl);
const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
await transport.finishAuth(code);
step('token', Boolean(store.tokens && store.tokens.access_token), store.tokens?.token_type);
const client = new Client({ name: 'oauth-ts', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
const tools = (await client.listTools()).tools.map((t) => t.name);
step('tools/list', tools.includes(tool), tools);
const result = await client.callTool({ name: tool, arguments: { said: 'through oauth' } });
step('tools/call', !result.isError && JSON.stringify(result).includes('through oauth'), JSON.stringify(result));
await client.close();
process.exit(failed ? 1 : 0);
