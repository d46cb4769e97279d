// mcp-gateway console: one script, no dependencies, no build step. Every value that comes from
// the gateway (tool names, user ids, arguments, error messages) is put into the page as text
// (textContent), never as markup. The token lives in sessionStorage only and travels as a
// bearer header; the page sets no cookie.
'use strict';

const TOKEN_KEY = 'mcpgw.console.token';
const LOGIN_KEY = 'mcpgw.console.login';
const PAGES = {
  overview: { title: 'Overview', roles: 'admin or operator' },
  tools: { title: 'Tools and upstreams', roles: 'admin or operator' },
  audit: { title: 'Audit', roles: 'admin or auditor' },
  policy: { title: 'Policy', roles: 'admin or auditor' },
  jobs: { title: 'Jobs and tasks', roles: 'admin or operator' },
  approvals: { title: 'Approvals', roles: 'an approver role of the policy' },
};

let me = null;
let refreshTimer = null;

// ---------- DOM helpers (text only) ----------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svgEl(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

// replaceChildren with arrays flattened and empty values dropped (never the text "null").
function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function main() {
  return document.getElementById('main');
}

function show(title, ...children) {
  const m = main();
  fill(m, el("h1", { text: title }), children);
  document.title = `${title} · mcp-gateway console`;
}

function statusBox(text, kind) {
  return el('div', { class: `status ${kind || ''}`, role: 'status', text });
}

function fmt(n, digits) {
  if (n === null || n === undefined) return '–';
  return Number(n).toFixed(digits === undefined ? 2 : digits);
}

function table(caption, headers, rows) {
  const t = el('table', {},
    el('caption', { class: 'muted', text: caption }),
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', text: h })))));
  const body = el('tbody');
  for (const r of rows) {
    body.append(r instanceof Node ? r : el('tr', {}, r.map((c) => (c instanceof Node ? el('td', {}, c) : el('td', { text: c ?? '' })))));
  }
  if (rows.length === 0) body.append(el('tr', {}, el('td', { colspan: headers.length, class: 'muted', text: 'none' })));
  t.append(body);
  return t;
}

// ---------- the gateway's API ----------

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options) {
  const opts = Object.assign({ method: 'GET' }, options || {});
  const headers = { Authorization: `Bearer ${token()}` };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method: opts.method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (opts.raw) {
    if (!res.ok) throw new ApiError(res.status, `HTTP ${res.status}`);
    return res;
  }
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    body = null;
  }
  if (!res.ok) {
    const message = body && body.error && body.error.message ? body.error.message : `HTTP ${res.status}`;
    if (res.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      signIn(`Signed out: ${message}`);
    }
    throw new ApiError(res.status, message);
  }
  return body;
}

function failure(e) {
  return statusBox(e.status === 403 ? `Not allowed: ${e.message}` : `Failed: ${e.message}`, 'bad');
}

// ---------- routing: #/page?filters (bookmarkable) ----------

function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [page, query] = hash.split('?');
  return { page: page || 'overview', params: new URLSearchParams(query || '') };
}

function go(page, params) {
  const q = params && [...params.keys()].length ? `?${params.toString()}` : '';
  const target = `#/${page}${q}`;
  if (location.hash === target) render();
  else location.hash = target;
}

function drawNav(current) {
  const nav = document.getElementById('nav');
  fill(nav);
  if (!me) return;
  for (const [page, info] of Object.entries(PAGES)) {
    if (!me.pages.includes(page)) continue;
    nav.append(el('a', { href: `#/${page}`, 'aria-current': page === current ? 'page' : null, text: info.title }));
  }
  const who = document.getElementById('who');
  fill(who, 
    el('span', { text: `${me.sub} (${me.roles.join(', ') || 'no roles'})` }),
    el('button', { type: 'button', class: 'secondary', onclick: signOut, text: 'Sign out' }));
}

async function render() {
  if (refreshTimer) {
    clearInterval(refreshTimer);
    refreshTimer = null;
  }
  if (!token()) return signIn();
  if (!me) {
    try {
      me = await api('/admin/me');
    } catch (e) {
      return signIn(`Sign-in failed: ${e.message}`);
    }
  }
  const { page, params } = route();
  drawNav(page);
  if (!PAGES[page]) return show('Not found', statusBox(`There is no page “${page}”.`, 'bad'));
  if (!me.pages.includes(page)) {
    return show(PAGES[page].title, statusBox(`You cannot open this page: it needs the role ${PAGES[page].roles}.`, 'bad'));
  }
  const views = { overview, tools, audit, policy, jobs, approvals };
  try {
    await views[page](params);
  } catch (e) {
    main().append(failure(e));
  }
  main().focus({ preventScroll: true });
}

// ---------- sign-in ----------

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  signIn('Signed out.');
}

async function signIn(message) {
  me = null;
  drawNav(null);
  document.getElementById('who').replaceChildren();
  const area = el('textarea', { id: 'token', name: 'token', rows: 4, cols: 60, autocomplete: 'off', spellcheck: 'false' });
  const form = el('form', { class: 'stack', id: 'signin' },
    el('label', { for: 'token', text: 'Bearer token (kept in this tab only)' }), area,
    el('div', {}, el('button', { type: 'submit', text: 'Sign in' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = area.value.trim().replace(/^Bearer\s+/i, '');
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    render();
  });
  show('Sign in', message ? statusBox(message, 'bad') : null, form);
  try {
    const config = await (await fetch('/console/config.json', { cache: 'no-store' })).json();
    if (config.oidc) {
      main().append(el('h2', { text: 'Or with your identity provider' }),
        el('button', { type: 'button', id: 'oidc-signin', onclick: () => oidcStart(config.oidc), text: `Sign in with ${config.oidc.issuer}` }));
    }
  } catch (_) { /* no provider sign-in */ }
}

function b64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function redirectUri() {
  return `${location.origin}/console`;
}

async function discover(issuer) {
  const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { credentials: 'omit' });
  if (!res.ok) throw new Error(`discovery: HTTP ${res.status}`);
  return res.json();
}

async function oidcStart(oidc) {
  try {
    const meta = await discover(oidc.issuer);
    const resource = (await (await fetch('/.well-known/oauth-protected-resource/mcp')).json()).resource;
    const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
    const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
    const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
    sessionStorage.setItem(LOGIN_KEY, JSON.stringify({ verifier, state, issuer: oidc.issuer, client_id: oidc.client_id, resource, back: location.hash }));
    const url = new URL(meta.authorization_endpoint);
    const q = { response_type: 'code', client_id: oidc.client_id, redirect_uri: redirectUri(), scope: oidc.scopes, state, code_challenge: challenge, code_challenge_method: 'S256', resource };
    for (const [k, v] of Object.entries(q)) url.searchParams.set(k, v);
    location.assign(url.toString());
  } catch (e) {
    signIn(`Provider sign-in failed: ${e.message}`);
  }
}

async function oidcFinish() {
  const q = new URLSearchParams(location.search);
  if (!q.has('code') && !q.has('error')) return false;
  const saved = JSON.parse(sessionStorage.getItem(LOGIN_KEY) || 'null');
  sessionStorage.removeItem(LOGIN_KEY);
  history.replaceState(null, '', `/console${saved && saved.back ? saved.back : ''}`);
  // Nothing from the URL is shown unless it answers a sign-in started in this tab.
  if (!saved || q.get('state') !== saved.state) {
    signIn('Sign-in refused: the answer does not match a sign-in started here.');
    return true;
  }
  if (q.has('error')) {
    signIn('The provider refused the sign-in.');
    return true;
  }
  try {
    const meta = await discover(saved.issuer);
    const form = new URLSearchParams({ grant_type: 'authorization_code', code: q.get('code'), redirect_uri: redirectUri(), client_id: saved.client_id, code_verifier: saved.verifier, resource: saved.resource });
    const res = await fetch(meta.token_endpoint, { method: 'POST', body: form, credentials: 'omit' });
    const body = await res.json();
    if (!res.ok || !body.access_token) throw new Error(body.error_description || body.error || `HTTP ${res.status}`);
    sessionStorage.setItem(TOKEN_KEY, body.access_token);
    render();
  } catch (e) {
    signIn(`Sign-in failed: ${e.message}`);
  }
  return true;
}

// ---------- overview ----------

function chart(label, points, value, unit) {
  const w = 420;
  const h = 140;
  const pad = 30;
  const values = points.map(value).map((v) => (v === null || v === undefined ? 0 : v));
  const max = Math.max(...values, 0) || 1;
  const svg = svgEl('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': `${label}: ${values.length} minutes, highest ${fmt(max)} ${unit}` });
  svg.append(svgEl('line', { class: 'axis', x1: pad, y1: h - pad, x2: w - 5, y2: h - pad }));
  svg.append(svgEl('line', { class: 'axis', x1: pad, y1: 5, x2: pad, y2: h - pad }));
  const top = svgEl('text', { x: 2, y: 12 });
  top.textContent = fmt(max, 1);
  svg.append(top);
  const left = svgEl('text', { x: pad, y: h - 10 });
  left.textContent = `-${values.length} min`;
  svg.append(left);
  const right = svgEl('text', { x: w - 30, y: h - 10 });
  right.textContent = 'now';
  svg.append(right);
  if (values.length > 0) {
    const step = (w - pad - 10) / Math.max(values.length - 1, 1);
    const xy = values.map((v, i) => [values.length === 1 ? w - 10 : pad + i * step, h - pad - (v / max) * (h - pad - 10)]);
    svg.append(svgEl('path', { class: 'line', d: xy.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${x.toFixed(1)},${y.toFixed(1)}`).join(' ') }));
    for (const [x, y] of xy) svg.append(svgEl('circle', { class: 'dot', cx: x.toFixed(1), cy: y.toFixed(1), r: 3 }));
  }
  return el('figure', {}, svg, el('figcaption', { text: `${label} (${unit}), one point per minute` }));
}

function card(label, value, kind) {
  return el('div', { class: 'card' }, el('div', { class: 'label', text: label }), el('div', { class: `value ${kind || ''}`, text: value }));
}

function duration(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${d ? `${d}d ` : ''}${h}h ${m}m`;
}

async function overview() {
  const o = await api('/admin/overview');
  const five = o.trends.windows.find((w) => w.minutes === 5) || { tools: [] };
  const sum = (w, f) => w.tools.reduce((a, t) => a + f(t), 0);
  const calls = sum(five, (t) => t.calls);
  const errors = sum(five, (t) => t.calls * t.error_rate);
  const perSecond = sum(five, (t) => t.calls_per_second);
  const audit = o.audit;
  show('Overview',
    el('div', { class: 'cards' },
      card('Replica', o.replica),
      card('Version', o.version),
      card('Uptime', duration(o.uptime_seconds)),
      card('Calls/s (5 min)', fmt(perSecond)),
      card('Error rate (5 min)', calls ? `${fmt((100 * errors) / calls, 1)} %` : '–', errors > 0 ? 'warn' : ''),
      card('MCP sessions', o.mcp_sessions),
      card('Jobs running here', o.jobs_running),
      card('Calls awaiting approval', o.approvals_pending ?? '–', o.approvals_pending ? 'warn' : '')),
    el('h2', { text: 'Last hour' }),
    el('div', { class: 'charts' },
      chart('Calls per second', o.trends.points, (p) => p.calls_per_second, 'calls/s'),
      chart('p99 latency', o.trends.points, (p) => p.p99_ms, 'ms'),
      chart('Error rate', o.trends.points, (p) => 100 * p.error_rate, '%')),
    o.trends.windows.map((w) => table(`Per tool, last ${w.minutes} minutes (${fmt(w.covered_seconds / 60, 1)} min seen by this replica)`,
      ['Tool', 'Calls', 'Calls/s', 'Error rate', 'p50 ms', 'p99 ms'],
      w.tools.map((t) => el('tr', {}, el('td', { text: t.tool }), el('td', { class: 'num', text: t.calls }), el('td', { class: 'num', text: fmt(t.calls_per_second) }),
        el('td', { class: 'num', text: `${fmt(100 * t.error_rate, 1)} %` }), el('td', { class: 'num', text: fmt(t.p50_ms) }), el('td', { class: 'num', text: fmt(t.p99_ms) }))))),
    el('h2', { text: 'Actors' }),
    table('Each actor kind', ['Actor', 'Alive', 'Backlog', 'Handled', 'Restarts', 'Last error'],
      o.actors.map((a) => el('tr', {}, el('td', { text: a.name }), el('td', { class: a.alive ? 'ok' : 'bad', text: a.alive ? 'yes' : 'NO' }),
        el('td', { class: 'num', text: a.backlog }), el('td', { class: 'num', text: a.handled }), el('td', { class: 'num', text: a.restarts }), el('td', { text: a.last_error || '' })))),
    el('h2', { text: 'Dependencies' }),
    table('What this replica depends on', ['Dependency', 'Status'], [
      [`Database (${o.database.backend})`, el('span', { class: o.database.status === 'ok' ? 'ok' : 'bad', text: o.database.status })],
      ['Redis (shared rate limits)', el('span', { class: o.redis.status === 'ok' || !o.redis.configured ? 'ok' : 'bad', text: o.redis.status })],
      ...o.identity_providers.map((p) => [`Identity provider ${p.issuer}`, el('span', { class: p.stale ? 'warn' : 'ok', text: `${p.stale ? 'stale keys' : 'ok'} · ${p.keys ?? '?'} key(s)${p.last_error ? ` · last error: ${p.last_error}` : ''}` })]),
      ['Audit trail', el('span', { class: audit.spooled > 0 ? 'bad' : 'ok', text: `backlog ${audit.backlog} · spooled ${audit.spooled} · set aside ${audit.set_aside}` })],
    ]),
    el('p', { class: 'muted', text: `Trends are sampled every ${o.trends.sample_seconds} s; this page refreshes every 10 s.` }));
  refreshTimer = setInterval(() => {
    if (route().page === 'overview') overview().catch(() => {});
  }, 10000);
}

// ---------- tools ----------

// Line diff (longest common subsequence), for a drifted definition.
function diffLines(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  const n = x.length;
  const m = y.length;
  if (n * m > 4000000) return [...x.map((l) => ['-', l]), ...y.map((l) => ['+', l])];
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([' ', x[i]]); i++; j++; } else if (lcs[i + 1][j] >= lcs[i][j + 1]) { out.push(['-', x[i]]); i++; } else { out.push(['+', y[j]]); j++; }
  }
  while (i < n) out.push(['-', x[i++]]);
  while (j < m) out.push(['+', y[j++]]);
  return out;
}

function diffView(name, before, after) {
  const lines = diffLines(before || '', after || '');
  return el('div', { class: 'diff', role: 'region', tabindex: 0, 'aria-label': `Changes to the definition of ${name}` },
    lines.map(([op, text]) => el('div', { class: op === '-' ? 'del' : op === '+' ? 'add' : '' }, `${op === ' ' ? ' ' : op} ${text}`)));
}

async function tools() {
  const t = await api('/admin/tools');
  const drifted = t.tools.filter((x) => x.drift);
  const driftSection = drifted.map((x) => {
    const result = el('div', { role: 'status' });
    const approve = me.admin
      ? el('button', {
        type: 'button', class: 'danger', 'data-tool': x.name,
        onclick: async () => {
          try {
            await api(`/admin/tools/${encodeURIComponent(x.name)}/approve`, { method: 'POST', body: { digest: x.observed_digest } });
            fill(result, statusBox(`Approved the new definition of ${x.name}.`, 'ok'));
            setTimeout(() => go('tools'), 800);
          } catch (e) {
            fill(result, failure(e));
          }
        },
        text: `Approve the new definition of ${x.name}`,
      })
      : el('p', { class: 'muted', text: 'Only an admin can approve it.' });
    return el('section', { 'aria-label': `Drift of ${x.name}` },
      el('h3', {}, 'Drifted: ', el('code', { text: x.name })),
      el('p', { class: 'muted', text: `pinned ${x.pinned_digest || '–'} → observed ${x.observed_digest || '–'}` }),
      x.pinned_definition || x.observed_definition ? diffView(x.name, x.pinned_definition, x.observed_definition) : el('p', { text: 'The definitions were pinned before they were kept: only the digests are known.' }),
      approve, result);
  });
  show('Tools and upstreams',
    el('p', {}, `Definition pinning: ${t.pinning}. `, drifted.length ? el('span', { class: 'bad', text: `${drifted.length} tool(s) drifted.` }) : el('span', { class: 'ok', text: 'No drift.' })),
    driftSection,
    el('h2', { text: 'Tools' }),
    table('Every tool, its backend and protection', ['Tool', 'Server', 'Backend', 'Active', 'Risk', 'Circuit', 'Concurrency', 'Pin'],
      t.tools.map((x) => el('tr', {},
        el('td', {}, el('code', { text: x.name })), el('td', { text: x.server || '' }), el('td', { class: 'mono', text: x.backend_url }),
        el('td', { text: x.active ? 'yes' : 'no' }), el('td', { text: x.risk_level }),
        el('td', { class: x.circuit.state === 'closed' ? 'ok' : 'bad', text: `${x.circuit.state}${x.circuit.consecutive_failures ? ` (${x.circuit.consecutive_failures} failures)` : ''}` }),
        el('td', { text: x.concurrency ? `${x.concurrency.in_use} / ${x.concurrency.limit}` : 'unlimited' }),
        el('td', { class: x.drift ? 'bad' : 'ok', text: x.drift ? 'DRIFTED' : x.pinned_digest ? 'pinned' : 'not seen yet' })))),
    el('h2', { text: 'Upstream programs (stdio)' }),
    table('Programs the gateway runs', ['Server', 'Up', 'PID', 'Restarts', 'Pending calls', 'Last exit'],
      t.upstream_processes.map((p) => [p.server, p.up ? 'yes' : 'no', p.pid ?? '', p.restarts, p.pending_calls, p.last_exit ?? ''])),
    el('h2', { text: 'Recent errors (last hour)' }),
    table('Failed calls, newest first', ['Time (UTC)', 'Tool', 'Outcome', 'HTTP', 'Error', 'Request id'],
      t.recent_errors.map((r) => [r.at, r.tool ?? '', r.status, r.http_status, r.error ?? '', r.request_id])));
}

// ---------- audit ----------

const AUDIT_FILTERS = [
  ['user', 'User'], ['role', 'Role'], ['workspace', 'Workspace'], ['tool', 'Tool'],
  ['decision', 'Decision'], ['status', 'Outcome'], ['request_id', 'Request id'],
];

function toLocalInput(rfc3339) {
  if (!rfc3339) return '';
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return '';
  return d.toISOString().slice(0, 16);
}

function fromLocalInput(value) {
  return value ? `${value}:00Z` : '';
}

function auditQuery(params, extra) {
  const q = new URLSearchParams();
  for (const [k] of AUDIT_FILTERS) if (params.get(k)) q.set(k, params.get(k));
  for (const k of ['since', 'until', 'limit', 'cursor']) if (params.get(k)) q.set(k, params.get(k));
  for (const [k, v] of Object.entries(extra || {})) {
    if (v === null) q.delete(k);
    else q.set(k, v);
  }
  return q;
}

async function download(format, params) {
  const q = auditQuery(params, { format, cursor: null, limit: null });
  const res = await api(`/admin/audit-logs?${q}`, { raw: true });
  const blob = await res.blob();
  const a = el('a', { href: URL.createObjectURL(blob), download: `audit.${format}` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function rowDetail(r) {
  const fields = [
    ['Row id', r.id], ['Time (UTC)', r.created_at], ['Request id', r.request_id], ['Transport', r.transport], ['Kind', r.kind],
    ['User', r.user_id], ['Roles', r.roles], ['Workspace', r.workspace], ['Tool', r.tool_name], ['Decision', r.decision],
    ['Outcome', r.status], ['HTTP status', r.http_status], ['JSON-RPC error', r.error_code], ['Error', r.error_message],
    ['Duration (ms)', r.duration_ms], ['Client address', r.client_ip], ['Arguments (masked)', r.arguments_logged],
    ['Arguments SHA-256', r.arguments_sha256], ['Chain', r.chain_id], ['Position in chain', r.seq],
    ['Previous row hash', r.prev_hash], ['Row hash', r.row_hash],
  ];
  return el('dl', { class: 'mono' }, fields.map(([k, v]) => [el('dt', { text: k }), el('dd', { text: v === null || v === undefined ? '–' : v })]));
}

async function audit(params) {
  const inputs = AUDIT_FILTERS.map(([k, label]) => el('label', {}, label, el('input', { name: k, id: `f-${k}`, value: params.get(k) || '', autocomplete: 'off' })));
  const since = el('input', { type: 'datetime-local', name: 'since', id: 'f-since', value: toLocalInput(params.get('since')) });
  const until = el('input', { type: 'datetime-local', name: 'until', id: 'f-until', value: toLocalInput(params.get('until')) });
  const limit = el('select', { name: 'limit', id: 'f-limit' }, ['25', '50', '100', '250'].map((n) => el('option', { value: n, selected: (params.get('limit') || '50') === n, text: n })));
  const form = el('form', { class: 'filters', id: 'audit-filters', role: 'search', 'aria-label': 'Audit filters' },
    inputs, el('label', {}, 'Since (UTC)', since), el('label', {}, 'Until (UTC)', until), el('label', {}, 'Rows per page', limit),
    el('button', { type: 'submit', text: 'Search' }),
    el('button', { type: 'button', class: 'secondary', onclick: () => go('audit'), text: 'Clear' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k] of AUDIT_FILTERS) {
      const v = form.elements[k].value.trim();
      if (v) q.set(k, v);
    }
    if (since.value) q.set('since', fromLocalInput(since.value));
    if (until.value) q.set('until', fromLocalInput(until.value));
    q.set('limit', limit.value);
    go('audit', q);
  });
  const verifyResult = el('div', { id: 'verify-result', 'aria-live': 'polite' });
  const verify = el('button', {
    type: 'button', id: 'verify', class: 'secondary',
    onclick: async () => {
      fill(verifyResult, statusBox('Verifying every chain…'));
      try {
        const v = await api('/admin/audit/verify', { method: 'POST' });
        fill(verifyResult, statusBox(v.summary, v.intact ? 'ok' : 'bad'),
          v.problems.length ? el('ul', { 'aria-label': 'Problems found' }, v.problems.slice(0, 50).map((p) => el('li', { text: p }))) : null,
          v.notes.length ? el('ul', { 'aria-label': 'Notes' }, v.notes.map((p) => el('li', { class: 'muted', text: p }))) : null);
      } catch (e) {
        fill(verifyResult, failure(e));
      }
    },
    text: 'Verify the hash chains',
  });
  const exports = el('p', {}, 'Export this selection: ',
    el('button', { type: 'button', class: 'secondary', id: 'export-csv', onclick: () => download('csv', params).catch((e) => main().append(failure(e))), text: 'CSV' }), ' ',
    el('button', { type: 'button', class: 'secondary', id: 'export-jsonl', onclick: () => download('jsonl', params).catch((e) => main().append(failure(e))), text: 'JSONL' }), ' ', verify);
  const results = el('div', { id: 'audit-results', 'aria-live': 'polite' }, statusBox('Loading…'));
  show('Audit', form, exports, verifyResult, results);
  const started = performance.now();
  const page = await api(`/admin/audit-logs?${auditQuery(params, { limit: params.get('limit') || '50' })}`);
  const rows = page.items.map((r) => {
    const detail = el('tr', { class: 'detail', hidden: true }, el('td', { colspan: 9 }, rowDetail(r)));
    const toggle = el('button', {
      type: 'button', class: 'secondary', 'aria-expanded': 'false', 'aria-label': `Details of row ${r.id}`,
      onclick: () => {
        detail.hidden = !detail.hidden;
        toggle.setAttribute('aria-expanded', String(!detail.hidden));
      },
      text: 'Details',
    });
    return [el('tr', {},
      el('td', { class: 'mono', text: r.created_at }), el('td', { text: r.user_id ?? '' }), el('td', {}, el('code', { text: r.tool_name ?? '' })),
      el('td', { class: r.decision === 'allowed' ? 'ok' : 'bad', text: r.decision }), el('td', { text: r.status }), el('td', { class: 'num', text: r.http_status }),
      el('td', { class: 'num', text: fmt(r.duration_ms, 1) }), el('td', { class: 'mono', text: r.request_id }), el('td', {}, toggle)), detail];
  }).flat();
  const pager = el('div', { class: 'pager' },
    params.get('cursor') ? el('button', { type: 'button', class: 'secondary', onclick: () => go('audit', auditQuery(params, { cursor: null })), text: 'Newest' }) : null,
    page.next_cursor ? el('button', { type: 'button', class: 'secondary', id: 'older', onclick: () => go('audit', auditQuery(params, { cursor: page.next_cursor })), text: 'Older rows' }) : null,
    el('span', { class: 'muted', id: 'audit-count', text: `${page.items.length} row(s)` }));
  fill(results, 
    table('Audit rows, newest first', ['Time (UTC)', 'User', 'Tool', 'Decision', 'Outcome', 'HTTP', 'ms', 'Request id', ''], rows), pager);
  results.setAttribute('data-rendered-ms', String(Math.round(performance.now() - started)));
}

// ---------- policy ----------

async function policy(params) {
  const p = await api('/admin/policy');
  const f = (name, label, value, attrs) => el('label', {}, label, el(attrs && attrs.textarea ? 'textarea' : 'input', Object.assign({ name, id: `x-${name}`, autocomplete: 'off' }, attrs && attrs.textarea ? {} : { value: value || '' })));
  const explainForm = el('form', { class: 'stack', id: 'explain' },
    f('sub', 'Subject (sub)', params.get('sub')), f('roles', 'Roles (comma-separated)', params.get('roles')), f('workspace', 'Workspace', params.get('workspace')),
    f('tool', 'Tool', params.get('tool')), f('arguments', 'Arguments (JSON object)', '', { textarea: true }),
    el('div', {}, el('button', { type: 'submit', text: 'Explain' })));
  explainForm.elements.arguments.value = params.get('arguments') || '{}';
  const answer = el('div', { id: 'explain-result', 'aria-live': 'polite' });
  explainForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = (k) => explainForm.elements[k].value.trim();
    let args;
    try {
      args = JSON.parse(v('arguments') || '{}');
    } catch (e) {
      fill(answer, statusBox(`Arguments are not JSON: ${e.message}`, 'bad'));
      return;
    }
    const subject = { sub: v('sub'), roles: v('roles').split(',').map((r) => r.trim()).filter(Boolean) };
    if (v('workspace')) subject.workspace = v('workspace');
    history.replaceState(null, '', `#/policy?${new URLSearchParams({ sub: v('sub'), roles: v('roles'), workspace: v('workspace'), tool: v('tool'), arguments: v('arguments') })}`);
    try {
      const e = await api('/admin/policy/explain', { method: 'POST', body: { subject, tool_name: v('tool'), arguments: args } });
      fill(answer, statusBox(e.allowed ? `ALLOWED: ${subject.sub} may call ${v('tool')}.` : `DENIED: ${subject.sub} may not call ${v('tool')}.`, e.allowed ? 'ok' : 'bad'),
        table('Each rule, in the order the gateway checks them', ['Rule', 'Effect', 'Detail'], (e.steps || []).map((s) => [s.rule, s.effect, s.detail])),
        table('Rate limits that apply', ['Limit', 'Key', 'Per minute', 'Burst'], (e.rate_limits || []).map((l) => [l.limit, l.key, l.requests_per_minute, l.burst])));
    } catch (err) {
      fill(answer, failure(err));
    }
  });
  const usageForm = el('form', { class: 'filters', id: 'usage' },
    el('label', {}, 'User', el('input', { name: 'user', id: 'u-user', autocomplete: 'off' })),
    el('label', {}, 'Roles', el('input', { name: 'roles', id: 'u-roles', autocomplete: 'off' })),
    el('label', {}, 'Tool', el('input', { name: 'tool', id: 'u-tool', autocomplete: 'off' })),
    el('button', { type: 'submit', text: 'Show usage' }));
  const usage = el('div', { id: 'usage-result', 'aria-live': 'polite' });
  usageForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams({ user: usageForm.elements.user.value.trim(), tool: usageForm.elements.tool.value.trim(), roles: usageForm.elements.roles.value.trim() });
    try {
      const u = await api(`/admin/rate-limits?${q}`);
      fill(usage, table('Limits for this user and tool, now', ['Limit', 'Per minute', 'Burst', 'Available now', 'Full again in (s)'],
        u.limits.map((l) => [l.limit, l.requests_per_minute, l.burst, l.available, fmt(l.full_in_ms / 1000, 1)])));
    } catch (err) {
      fill(usage, failure(err));
    }
  });
  show('Policy',
    el('h2', { text: 'Explain a decision' }),
    el('p', { class: 'muted', text: 'May this subject call this tool with these arguments? Nothing is called.' }), explainForm, answer,
    el('h2', { text: 'Rate-limit usage' }), usageForm, usage,
    el('h2', { text: 'The policy in force (read-only)' }), el('pre', { tabindex: 0, 'aria-label': 'policy.yaml in force', text: p.yaml }));
  if (params.get('tool') && params.get('sub')) explainForm.requestSubmit();
}

// ---------- jobs ----------

async function jobs(params) {
  const status = el('select', { name: 'status', id: 'j-status' },
    ['', 'pending', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'].map((s) => el('option', { value: s, selected: (params.get('status') || '') === s, text: s || 'any' })));
  const everyone = el('input', { type: 'checkbox', name: 'all', id: 'j-all', checked: params.get('all') === 'true' });
  const form = el('form', { class: 'filters', id: 'job-filters' },
    el('label', {}, 'Status', status),
    me.admin ? el('label', {}, 'Everyone’s jobs', everyone) : null,
    el('button', { type: 'submit', text: 'Show' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (status.value) q.set('status', status.value);
    if (me.admin && everyone.checked) q.set('all', 'true');
    go('jobs', q);
  });
  const q = new URLSearchParams({ limit: '100' });
  if (params.get('status')) q.set('status', params.get('status'));
  if (params.get('all') === 'true' && me.admin) q.set('all', 'true');
  if (params.get('cursor')) q.set('cursor', params.get('cursor'));
  const list = await api(`/mcp/jobs?${q}`);
  const detail = el('div', { id: 'job-detail', 'aria-live': 'polite' });
  const terminal = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);
  const rows = list.jobs.map((j) => el('tr', {},
    el('td', { class: 'mono', text: j.id }), el('td', {}, el('code', { text: j.tool_name ?? '' })), el('td', { text: j.status }),
    el('td', { text: j.owner ?? '' }), el('td', { class: 'mono', text: j.created_at ?? '' }),
    el('td', {},
      el('button', {
        type: 'button', class: 'secondary', 'aria-label': `Details of job ${j.id}`,
        onclick: async () => {
          try {
            const full = await api(`/mcp/jobs/${encodeURIComponent(j.id)}`);
            fill(detail, el('h2', { text: `Job ${j.id}` }), el('pre', { tabindex: 0, text: JSON.stringify(full, null, 2) }));
          } catch (e) {
            fill(detail, failure(e));
          }
        },
        text: 'Details',
      }), ' ',
      terminal.has(j.status) ? null : el('button', {
        type: 'button', class: 'danger', 'data-job': j.id, 'aria-label': `Cancel job ${j.id}`,
        onclick: async () => {
          try {
            await api(`/mcp/jobs/${encodeURIComponent(j.id)}`, { method: 'DELETE' });
            fill(detail, statusBox(`Cancelled job ${j.id}.`, 'ok'));
            setTimeout(() => go('jobs', params), 600);
          } catch (e) {
            fill(detail, failure(e));
          }
        },
        text: 'Cancel',
      }))));
  show('Jobs and tasks',
    el('p', { class: 'muted', text: 'Asynchronous calls (REST jobs and MCP tasks). You see your own; admins may see everyone’s and cancel any.' }),
    form,
    table('Jobs, newest first', ['Id', 'Tool', 'Status', 'Owner', 'Created (UTC)', ''], rows),
    list.next_cursor ? el('button', { type: 'button', class: 'secondary', onclick: () => { const n = new URLSearchParams(params); n.set('cursor', list.next_cursor); go('jobs', n); }, text: 'Older jobs' }) : null,
    detail);
}

// ---------- approvals ----------

async function approvals(params) {
  const status = el('select', { name: 'status', id: 'a-status' },
    ['pending', 'approved', 'denied', 'expired', 'withdrawn', 'all'].map((s) => el('option', { value: s, selected: (params.get('status') || 'pending') === s, text: s })));
  const form = el('form', { class: 'filters', id: 'approval-filters' }, el('label', {}, 'Status', status), el('button', { type: 'submit', text: 'Show' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    go('approvals', new URLSearchParams({ status: status.value }));
  });
  const list = await api(`/admin/approvals?${new URLSearchParams({ status: params.get('status') || 'pending' })}`);
  const cards = list.approvals.map((a) => {
    const result = el('div', { role: 'status' });
    const reasonId = `reason-${a.id}`;
    const reason = el('textarea', { id: reasonId, name: 'reason', rows: 2, cols: 60, maxlength: 1000 });
    const own = a.requester === me.sub;
    const decide = (verb) => async () => {
      if (!reason.value.trim()) {
        fill(result, statusBox('A reason is required.', 'bad'));
        reason.focus();
        return;
      }
      try {
        const d = await api(`/admin/approvals/${encodeURIComponent(a.id)}/${verb}`, { method: 'POST', body: { reason: reason.value } });
        fill(result, statusBox(`${d.status === 'approved' ? 'Approved' : 'Denied'}: ${a.tool_name} for ${a.requester}.`, 'ok'));
        setTimeout(() => go('approvals', params), 800);
      } catch (e) {
        fill(result, failure(e));
      }
    };
    const actions = a.status !== 'pending' ? el('p', { text: `${a.status}${a.decided_by ? ` by ${a.decided_by}` : ''}${a.reason ? `: ${a.reason}` : ''}` })
      : own ? el('p', { class: 'warn', text: 'Your own request: someone else must decide it (four eyes).' })
        : el('div', {}, el('label', { for: reasonId, text: 'Reason (required, recorded in the audit trail)' }), el('br'), reason, el('br'),
          el('button', { type: 'button', 'data-approve': a.id, onclick: decide('approve'), text: 'Approve' }), ' ',
          el('button', { type: 'button', class: 'danger', 'data-deny': a.id, onclick: decide('deny'), text: 'Deny' }));
    return el('section', { class: 'card', 'aria-label': `Request ${a.id}` },
      el('h2', {}, el('code', { text: a.tool_name }), ` requested by ${a.requester}`),
      el('p', { class: 'muted', text: `roles ${(a.requester_roles || []).join(', ') || 'none'}${a.workspace ? ` · workspace ${a.workspace}` : ''} · waiting for ${a.approver_role} · since ${a.created_at} · expires ${a.expires_at} · request id ${a.request_id}` }),
      el('h3', { text: 'Why it waits' }), el('ul', {}, (a.reasons || []).map((r) => el('li', { text: r }))),
      el('h3', { text: 'Arguments' }), el('pre', { tabindex: 0, text: JSON.stringify(a.arguments, null, 2) }),
      actions, result);
  });
  show('Approvals',
    el('p', { class: 'muted', text: `Calls waiting for a person. You decide for: ${list.you.approver_roles.join(', ')}. Nobody decides their own request.` }),
    form, cards.length ? cards : statusBox('No requests.'));
}

// ---------- start ----------

window.addEventListener('hashchange', render);
window.addEventListener('DOMContentLoaded', async () => {
  if (await oidcFinish()) return;
  render();
});
