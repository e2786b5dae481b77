// Interop test: the official MCP TypeScript SDK (@modelcontextprotocol/sdk, unmodified, pinned by
// package-lock.json) as an OAuth client of this server, the way an MCP client meets a protected
// MCP server. Its `auth()` flow (client/auth.js) is driven with an in-memory OAuthClientProvider:
//   1. a plain `GET BASE/api/data` answers 401 with `WWW-Authenticate: Bearer realm="api",
//      resource_metadata="BASE/.well-known/oauth-protected-resource/api", scope="data:read"`;
//   2. the SDK reads that protected-resource metadata (RFC 9728) and the authorization-server
//      metadata (RFC 8414), registers a public client by dynamic registration (RFC 7591,
//      token_endpoint_auth_method "none", a loopback redirect URI) and builds the authorization
//      URL (PKCE S256, state, RFC 8707 `resource`);
//   3. this script signs in and allows over plain HTTP with a cookie jar (the login and consent
//      form, no browser; the consent page must name the client, and for CIMD the document's
//      host), and captures the redirect to the loopback URI without following it;
//   4. the SDK exchanges the code (sending `resource`); the access token's `aud` must be
//      BASE/api, its `client_id` the client's, and it must read /api/data;
//   5. the SDK refreshes (auth() with the stored refresh token, what its transports do on a 401)
//      and the new access token must work too.
// Nothing listens on the redirect URI: the 303 to it is read, as a native app reads its callback.
//
// Usage: BASE=http://127.0.0.1:PORT node ts_client.mjs   (the server's issuer must be BASE)
// Environment:
//   REGISTRATION_TOKEN  registration needs `Authorization: Bearer <token>` (the local stack). The
//                       SDK has no option for an initial access token, so this script adds the
//                       header in the fetch it hands the SDK (`fetchFn`), on registration only.
//   CIMD_URL            Client ID Metadata Document mode: an https URL with a path, given to the
//                       SDK as `OAuthClientProvider.clientMetadataUrl`. The SDK then uses it as
//                       client_id instead of registering, but only when the authorization-server
//                       metadata says `client_id_metadata_document_supported: true` (checked
//                       here: otherwise the SDK would silently fall back to registration). The
//                       document must list the redirect URI: set REDIRECT_URI, or this script
//                       fetches the document and uses its first loopback `redirect_uris` entry.
//   CIMD_CLIENT_NAME    CIMD mode: the document's client_name, which the consent page must show
//                       (with the document's host); without it any name is accepted.
//   REDIRECT_URI        the loopback redirect URI (default http://127.0.0.1:<free port>/callback).
//   VERBOSE=1           print every request the SDK sends.
import { auth, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const BASE = process.env.BASE;
if (!BASE) throw new Error('BASE is required');
const REGISTRATION_TOKEN = process.env.REGISTRATION_TOKEN || '';
const CIMD_URL = process.env.CIMD_URL || '';
const CIMD_CLIENT_NAME = process.env.CIMD_CLIENT_NAME || '';
const VERBOSE = !!process.env.VERBOSE;
const SDK_VERSION = JSON.parse(readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url))).version;
const API = `${BASE}/api/data`;
const RESOURCE = `${BASE}/api`;
const PRM_URL = `${BASE}/.well-known/oauth-protected-resource/api`;
const USER = `mcpts${Date.now()}`;
const PASSWORD = 'correct horse battery staple';

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
  return ok;
}
function finish() {
  console.log(`mcp ts sdk ${SDK_VERSION} (${CIMD_URL ? 'client id metadata document' : 'dynamic registration'}): ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}
// A step that cannot go on: counted, then the run ends.
function fatal(name, error) {
  check(name, false, error instanceof Error ? `${error.message}${VERBOSE ? `\n${error.stack}` : ''}` : String(error));
  finish();
}

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const jwtPayload = (jwt) => JSON.parse(Buffer.from(String(jwt).split('.')[1] ?? '', 'base64url').toString('utf8'));
const audIs = (aud, want) => aud === want || (Array.isArray(aud) && aud.length === 1 && aud[0] === want);
const isLoopback = (u) => { try { const x = new URL(u); return x.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(x.hostname); } catch { return false; } };

// The redirect URI: given, from the client's metadata document (CIMD), or a free loopback port.
async function redirectUri() {
  if (process.env.REDIRECT_URI) return process.env.REDIRECT_URI;
  if (CIMD_URL) {
    try {
      const doc = await (await fetch(CIMD_URL, { headers: { accept: 'application/json' } })).json();
      const uri = (doc.redirect_uris ?? []).find(isLoopback);
      if (uri) return uri;
    } catch (e) {
      fatal('CIMD mode: the redirect URI (set REDIRECT_URI, or serve the document with a loopback redirect_uris entry)', e);
    }
    fatal('CIMD mode: the metadata document lists a loopback redirect URI (or set REDIRECT_URI)', 'none found');
  }
  return `http://127.0.0.1:${await freePort()}/callback`;
}
const REDIRECT = await redirectUri();

// Every request the SDK sends, through the fetch it is given (the SDK's public `fetchFn` option).
const sent = [];
let registrationEndpoint = null;
async function sdkFetch(input, init = {}) {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const method = (init.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers);
  if (REGISTRATION_TOKEN && method === 'POST' && url.href === registrationEndpoint) {
    headers.set('authorization', `Bearer ${REGISTRATION_TOKEN}`);
  }
  const body = init.body == null ? undefined : String(init.body); // a string or URLSearchParams
  const res = await fetch(url, { ...init, headers });
  sent.push({ method, url, headers: Object.fromEntries(headers), body, status: res.status });
  if (VERBOSE) {
    const shown = Object.fromEntries([...headers].map(([k, v]) => [k, k === 'authorization' ? `${v.slice(0, 20)}...` : v]));
    console.log(`  sdk: ${method} ${url.href} -> ${res.status}${body ? `\n       ${body}` : ''}\n       ${JSON.stringify(shown)}`);
  }
  return res;
}
const sentTo = (url, method) => sent.filter((r) => r.url.href.split('?')[0] === url && (!method || r.method === method));

// The application's side of the SDK's OAuthClientProvider interface, in memory.
class MemoryProvider {
  constructor() {
    this.client = undefined;
    this.stored = undefined;
    this.verifier = undefined;
    this.discovery = undefined;
    this.lastState = undefined;
    this.authorizationUrls = [];
    this.invalidated = [];
    if (CIMD_URL) this.clientMetadataUrl = CIMD_URL;
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return {
      client_name: 'MCP TypeScript SDK interop test',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { this.lastState = randomBytes(16).toString('base64url'); return this.lastState; }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.stored; }
  saveTokens(tokens) { this.stored = tokens; }
  redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
    if (VERBOSE) console.log(`  sdk: authorization URL ${url}`);
  }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { if (!this.verifier) throw new Error('no code verifier saved'); return this.verifier; }
  invalidateCredentials(scope) {
    this.invalidated.push(scope);
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.stored = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined;
  }
  saveDiscoveryState(state) { this.discovery = state; }
  discoveryState() { return this.discovery; }
}

// --- The user's browser, scripted: a cookie jar, the login and consent form(s), Allow. ---
const pages = []; // the HTML of every form page shown
const decode = (s) => s.replace(/&(#\d+|#x[0-9a-f]+|amp|lt|gt|quot|apos);/gi, (m, e) => {
  const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e.toLowerCase()];
  if (named) return named;
  return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
});
function attributes(tag) {
  const out = {};
  for (const m of tag.replace(/^<\w+/, '').matchAll(/([^\s=>\/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    out[m[1].toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}
// The POST form that has an Allow button: its action, hidden fields, and whether it asks for a password.
function allowForm(html) {
  for (const m of html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)) {
    const form = attributes(m[0].match(/<form\b[^>]*>/i)[0]);
    const buttons = [...m[0].matchAll(/<button\b[^>]*>/gi)].map((b) => attributes(b[0]));
    const allow = buttons.find((b) => b.value === 'allow');
    if ((form.method ?? 'get').toLowerCase() !== 'post' || !allow) continue;
    const inputs = [...m[0].matchAll(/<input\b[^>]*>/gi)].map((i) => attributes(i[0]));
    return {
      action: form.action || '',
      hidden: inputs.filter((i) => i.type === 'hidden' && i.name).map((i) => [i.name, i.value ?? '']),
      names: new Set(inputs.map((i) => i.name)),
      button: [allow.name, allow.value],
    };
  }
  return null;
}
async function signIn(authorizationUrl) {
  const jar = new Map();
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const keep = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (!value || /;\s*max-age=0\b/i.test(c)) jar.delete(name); else jar.set(name, value);
    }
  };
  let url = new URL(authorizationUrl);
  let res = await fetch(url, { redirect: 'manual', headers: { cookie: cookie() } });
  for (let step = 0; step < 6; step++) {
    keep(res);
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url);
      if (next.href.split('?')[0] === REDIRECT.split('?')[0]) return next;
      url = next; // e.g. back to the authorization endpoint after the login
      res = await fetch(url, { redirect: 'manual', headers: { cookie: cookie() } });
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`sign-in: HTTP ${res.status} at ${url.href}: ${decode(html.replace(/<style>[\s\S]*?<\/style>/, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim()).slice(0, 400)}`);
    pages.push(html);
    const form = allowForm(html);
    if (!form) throw new Error(`sign-in: no form with an Allow button at ${url.href}`);
    const body = new URLSearchParams(form.hidden);
    if (form.names.has('password')) { body.set('username', USER); body.set('password', PASSWORD); }
    body.set(...form.button);
    url = new URL(form.action || url.href, url);
    res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(BASE).origin, 'sec-fetch-site': 'same-origin', cookie: cookie() },
      body,
    });
  }
  throw new Error('sign-in: no redirect to the client after 6 steps');
}

// --- The flow. ---
console.log(`MCP TypeScript SDK ${SDK_VERSION} against ${BASE}${CIMD_URL ? ` (client_id ${CIMD_URL})` : ''}, redirect ${REDIRECT}`);
try {
  const r = await fetch(`${BASE}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: USER, password: PASSWORD }) });
  if (!check('the user registers', r.ok, `HTTP ${r.status}: ${await r.text()}`)) finish();
} catch (e) { fatal('the user registers', e); }

// What the SDK will find; checked here so a failure names the document, not a symptom.
const asMeta = await (await fetch(`${BASE}/.well-known/oauth-authorization-server`)).json();
registrationEndpoint = asMeta.registration_endpoint ?? null;
check('authorization-server metadata: issuer is BASE', asMeta.issuer === BASE, asMeta.issuer);
check('authorization-server metadata: S256 PKCE', (asMeta.code_challenge_methods_supported ?? []).includes('S256'));
check('authorization-server metadata: token auth method none', (asMeta.token_endpoint_auth_methods_supported ?? []).includes('none'));
if (CIMD_URL) {
  if (!check('authorization-server metadata: client_id_metadata_document_supported (else the SDK registers instead)', asMeta.client_id_metadata_document_supported === true, String(asMeta.client_id_metadata_document_supported))) finish();
} else {
  check('authorization-server metadata: registration_endpoint', !!registrationEndpoint);
}

const challenge = await fetch(API);
await challenge.body?.cancel();
const wwwAuthenticate = challenge.headers.get('www-authenticate') ?? '';
check('GET /api/data without a token is 401', challenge.status === 401, `HTTP ${challenge.status}`);
check('the challenge is Bearer realm="api"', /^Bearer\s+realm="api"/i.test(wwwAuthenticate), wwwAuthenticate);
const params = extractWWWAuthenticateParams(challenge); // the SDK's own parser
check('the challenge names the resource metadata (RFC 9728 §5.1)', params.resourceMetadataUrl?.href === PRM_URL, `${wwwAuthenticate}`);
check('the challenge names scope data:read', params.scope === 'data:read', wwwAuthenticate);

const prmResponse = await fetch(PRM_URL);
const prm = prmResponse.ok ? await prmResponse.json() : {};
check('protected-resource metadata is served', prmResponse.status === 200, `HTTP ${prmResponse.status}`);
check('protected-resource metadata: resource is BASE/api', prm.resource === RESOURCE, prm.resource);
check('protected-resource metadata: authorization_servers is [BASE]', JSON.stringify(prm.authorization_servers) === JSON.stringify([BASE]), JSON.stringify(prm.authorization_servers));
check('protected-resource metadata: scopes data:read, data:write', ['data:read', 'data:write'].every((s) => (prm.scopes_supported ?? []).includes(s)), JSON.stringify(prm.scopes_supported));
check('protected-resource metadata: bearer in the header', JSON.stringify(prm.bearer_methods_supported) === '["header"]', JSON.stringify(prm.bearer_methods_supported));

// The SDK's part. serverUrl is what the client was pointed at; the challenge's values as an MCP
// transport passes them after a 401.
const provider = new MemoryProvider();
const options = { serverUrl: API, resourceMetadataUrl: params.resourceMetadataUrl, scope: params.scope, fetchFn: sdkFetch };

let result;
try { result = await auth(provider, options); } catch (e) { fatal('auth(): discovery and registration', e); }
check('auth() asks for a redirect', result === 'REDIRECT', result);
check('the SDK read the protected-resource metadata', sentTo(PRM_URL, 'GET').some((r) => r.status === 200), sent.map((r) => `${r.method} ${r.url.href} ${r.status}`).join(', '));
check('the SDK read the authorization-server metadata', sentTo(`${BASE}/.well-known/oauth-authorization-server`, 'GET').some((r) => r.status === 200));
check('metadata requests carry MCP-Protocol-Version', sentTo(PRM_URL).length > 0 && sentTo(PRM_URL).every((r) => r.headers['mcp-protocol-version'] === LATEST_PROTOCOL_VERSION));
const registrations = registrationEndpoint ? sentTo(registrationEndpoint, 'POST') : [];
if (CIMD_URL) {
  check('CIMD: the SDK did not register', registrations.length === 0, `${registrations.length} registration request(s)`);
  check('CIMD: client_id is the document URL', provider.client?.client_id === CIMD_URL, provider.client?.client_id);
} else {
  const reg = registrations[0];
  check('the SDK registered once', registrations.length === 1 && [200, 201].includes(reg.status), registrations.map((r) => r.status).join(','));
  const regBody = reg?.body ? JSON.parse(reg.body) : {};
  check('registration asks for a public client (token_endpoint_auth_method none)', regBody.token_endpoint_auth_method === 'none', reg?.body);
  check('registration carries the loopback redirect URI', JSON.stringify(regBody.redirect_uris) === JSON.stringify([REDIRECT]), reg?.body);
  check('registration asks for scope data:read', regBody.scope === 'data:read', reg?.body);
  check('the registered client has no secret', !!provider.client?.client_id && provider.client.client_secret === undefined, JSON.stringify(provider.client));
}

const authorizationUrl = provider.authorizationUrls.at(-1);
if (!authorizationUrl) fatal('the SDK produced an authorization URL', 'none');
const q = authorizationUrl.searchParams;
check('authorize: at the metadata\'s authorization_endpoint', authorizationUrl.href.split('?')[0] === asMeta.authorization_endpoint, authorizationUrl.href);
check('authorize: response_type code, PKCE S256', q.get('response_type') === 'code' && q.get('code_challenge_method') === 'S256' && !!q.get('code_challenge'), authorizationUrl.search);
check('authorize: client_id, redirect_uri, state', q.get('client_id') === provider.client?.client_id && q.get('redirect_uri') === REDIRECT && q.get('state') === provider.lastState, authorizationUrl.search);
check('authorize: resource is BASE/api (RFC 8707)', q.get('resource') === RESOURCE, authorizationUrl.search);
check('authorize: scope data:read', q.get('scope') === 'data:read', authorizationUrl.search);

let callback;
try { callback = await signIn(authorizationUrl); } catch (e) { fatal('sign in and allow', e); }
check('the redirect carries a code', !!callback.searchParams.get('code'), callback.href);
check('the redirect carries the state back', callback.searchParams.get('state') === provider.lastState, callback.search);
check('the redirect carries iss (RFC 9207)', callback.searchParams.get('iss') === BASE, callback.search);
// The consent page: `<strong>client_name</strong>`, and for a metadata document ` from <strong class="host">HOST</strong>`.
const named = pages.map((p) => p.match(/<strong>([^<]*)<\/strong>(?: from <strong class="host">([^<]*)<\/strong>)? wants to use your account/)).find(Boolean);
if (CIMD_URL) {
  const host = new URL(CIMD_URL).hostname;
  check(`CIMD: the consent page names the document's client and host (${CIMD_CLIENT_NAME || '<any name>'} from ${host})`,
    !!named && decode(named[2] ?? '') === host && (CIMD_CLIENT_NAME ? decode(named[1]) === CIMD_CLIENT_NAME : !!named[1]), named?.[0] ?? 'no "wants to use your account" line');
} else {
  check('the consent page names the registered client, with no document host', !!named && decode(named[1]) === provider.clientMetadata.client_name && named[2] === undefined, named?.[0] ?? 'no "wants to use your account" line');
}
if (!callback.searchParams.get('code')) finish();

try { result = await auth(provider, { ...options, authorizationCode: callback.searchParams.get('code') }); } catch (e) { fatal('auth(): the code exchange', e); }
check('auth() with the code: AUTHORIZED', result === 'AUTHORIZED', result);
const exchange = sentTo(asMeta.token_endpoint, 'POST').at(-1);
const exchangeForm = new URLSearchParams(exchange?.body ?? '');
check('token request: authorization_code with the verifier', exchangeForm.get('grant_type') === 'authorization_code' && !!exchangeForm.get('code_verifier') && exchangeForm.get('redirect_uri') === REDIRECT, exchange?.body);
check('token request: resource is BASE/api', exchangeForm.get('resource') === RESOURCE, exchange?.body);
check('token request: public client (client_id in the body, no Authorization)', exchangeForm.get('client_id') === provider.client?.client_id && !exchange?.headers.authorization, JSON.stringify(exchange?.headers));
const first = provider.tokens();
check('tokens: a Bearer access token and a refresh token', !!first?.access_token && /^bearer$/i.test(first?.token_type ?? '') && !!first?.refresh_token, JSON.stringify({ ...first, access_token: !!first?.access_token, refresh_token: !!first?.refresh_token }));
let claims = {};
try { claims = jwtPayload(first?.access_token); } catch (e) { check('the access token is a JWT', false, String(e)); }
check('access token: aud is BASE/api', audIs(claims.aud, RESOURCE), JSON.stringify(claims.aud));
check('access token: iss is BASE', claims.iss === BASE, claims.iss);
check('access token: scope data:read', String(claims.scope ?? '').split(' ').includes('data:read'), claims.scope);
check(`access token: client_id is the client's${CIMD_URL ? ' (the document URL)' : ''}`, !!claims.client_id && claims.client_id === provider.client?.client_id, claims.client_id);
let data = await fetch(API, { headers: { authorization: `Bearer ${first?.access_token}` } });
check('GET /api/data with the access token is 200', data.status === 200, `HTTP ${data.status}: ${await data.text()}`);

// Refresh: auth() again with the stored refresh token (the SDK refreshes whenever it holds one;
// its transports call auth() like this on a 401). The stored tokens are marked expired first, as
// a client that notices the expiry would.
provider.saveTokens({ ...first, expires_in: 0 });
const redirectsBefore = provider.authorizationUrls.length;
try { result = await auth(provider, options); } catch (e) { fatal('auth(): the refresh', e); }
check('auth() with the refresh token: AUTHORIZED, no new authorization', result === 'AUTHORIZED' && provider.authorizationUrls.length === redirectsBefore, result);
const refresh = sentTo(asMeta.token_endpoint, 'POST').at(-1);
const refreshForm = new URLSearchParams(refresh?.body ?? '');
check('refresh request: grant_type refresh_token', refreshForm.get('grant_type') === 'refresh_token' && refreshForm.get('refresh_token') === first?.refresh_token, refresh?.body);
check('refresh request: resource is BASE/api', refreshForm.get('resource') === RESOURCE, refresh?.body);
check('refresh request: public client (client_id in the body, no Authorization)', refreshForm.get('client_id') === provider.client?.client_id && !refresh?.headers.authorization, refresh?.body);
const second = provider.tokens();
check('refresh: a new access token', !!second?.access_token && second.access_token !== first?.access_token);
check('refresh: the refresh token rotated', !!second?.refresh_token && second.refresh_token !== first?.refresh_token);
try { claims = jwtPayload(second?.access_token); } catch { claims = {}; }
check('refreshed access token: aud is BASE/api', audIs(claims.aud, RESOURCE), JSON.stringify(claims.aud));
check('refreshed access token: the same client_id', !!claims.client_id && claims.client_id === provider.client?.client_id, claims.client_id);
data = await fetch(API, { headers: { authorization: `Bearer ${second?.access_token}` } });
check('GET /api/data with the refreshed token is 200', data.status === 200, `HTTP ${data.status}: ${await data.text()}`);
check('the SDK never dropped its credentials', provider.invalidated.length === 0, provider.invalidated.join(','));
finish();
