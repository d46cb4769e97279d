// A real OpenID Provider for the gateway's identity tests: the npm `oidc-provider` package
// (a certified implementation), configured for tests — client credentials, authorization code
// with PKCE, dynamic client registration, JWT access tokens for a resource (RFC 8707), and
// interactions approved automatically (the account is the `login_hint`, else "alice").
//
// Usage: [CONSOLE_REDIRECT_URI=<gateway>/console] node oidc_provider.mjs PORT KEYS_DIR KID[,KID...] [RESOURCE]
//   Signing keys are RSA 2048 JWKs kept in KEYS_DIR by kid (made on first use), so a restart
//   with another list rotates them: the first kid signs, the others are published too.
//   Prints "READY <issuer>" once listening. GET /__stats answers {"jwks": <requests>, ...}.
//   Access tokens carry `groups` (from GROUPS below) for the account or client.
import { createServer } from "node:http";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Provider from "oidc-provider";

const [port, keysDir, kids, resourceArg] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const resource = resourceArg || "http://127.0.0.1/mcp";

const GROUPS = {
  alice: ["g-developers"],
  bob: ["g-auditors", "g-admins"],
  "svc-client": ["g-developers"],
};

function key(kid) {
  const file = join(keysDir, `${kid}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8"));
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" };
  writeFileSync(file, JSON.stringify(jwk));
  return jwk;
}

const stats = { jwks: 0, discovery: 0, token: 0, registration: 0 };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "svc-client",
      client_secret: "svc-secret-for-tests-only-0123456789",
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      scope: "mcp:tools mcp:admin",
    },
    // The gateway's console (a public client: code + PKCE, no secret), when a test names its
    // redirect URI.
    ...(process.env.CONSOLE_REDIRECT_URI
      ? [{
        client_id: "console",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code"],
        response_types: ["code"],
        redirect_uris: [process.env.CONSOLE_REDIRECT_URI],
        scope: "openid mcp:tools",
      }]
      : []),
  ],
  jwks: { keys: kids.split(",").map(key) },
  // The resource server's scopes are listed too: dynamic registration accepts only listed ones.
  scopes: ["openid", "offline_access", "mcp:tools", "mcp:admin"],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => ({
        scope: "mcp:tools mcp:admin",
        audience: indicator,
        accessTokenTTL: 600,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  pkce: { required: () => true },
  extraTokenClaims: async (ctx, token) => {
    const who = token.accountId || token.clientId;
    return { groups: GROUPS[who] || [] };
  },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
  },
});
provider.proxy = false;

// Interactions approved at once: log in as the login_hint (else alice), then grant what the
// consent prompt says is missing.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (process.env.OIDC_DEBUG) console.error(JSON.stringify({ prompt: details.prompt, params: details.params }));
  if (details.prompt.name === "login") {
    const account = details.params.login_hint || "alice";
    return provider.interactionFinished(req, res, { login: { accountId: account } }, { mergeWithLastSubmission: false });
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(" "));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
createServer(async (req, res) => {
  try {
    const path = req.url.split("?")[0];
    if (path === "/__stats") {
      res.setHeader("content-type", "application/json");
      return res.end(JSON.stringify(stats));
    }
    if (path === "/jwks") stats.jwks += 1;
    if (path === "/.well-known/openid-configuration") stats.discovery += 1;
    if (path === "/token") stats.token += 1;
    if (path === "/reg") stats.registration += 1;
    if (path.startsWith("/interaction/")) return await interaction(req, res);
    return callback(req, res);
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e));
  }
}).listen(Number(port), "127.0.0.1", () => console.log(`READY ${issuer}`));
