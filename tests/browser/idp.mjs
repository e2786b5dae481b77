// A real upstream OpenID provider for the federation test: node-oidc-provider (npm
// `oidc-provider`) on 127.0.0.1 with one confidential client, our server. Its sign-in pages are
// written here, not the library's development interactions (those load a web font from the
// internet and sign the user in with the typed login as `sub`):
//   GET  /interaction/<uid>          the login form (fields `login`, `password`, button
//                                    "Sign in"; any login and any non-empty password) or the
//                                    consent form (button "Continue", or "Cancel")
//   POST /interaction/<uid>/login    ends the login prompt as account `idp-<login>`
//   POST /interaction/<uid>/confirm  grants the requested scopes and claims
//   POST /interaction/<uid>/abort    access_denied back to the client
// Every account exists: sub `idp-<login>`, email `<login>@idp.example` (verified), name
// `<login>`, in the ID token itself (conformIdTokenClaims off) and at userinfo. PKCE (S256) is
// required of every client; ID tokens are RS256 with a key made at start; the authorization
// response carries `iss` (RFC 9207, always on in oidc-provider 9).
// Environment: IDP_PORT (default: a free port), IDP_CLIENT_ID (default oauth-test-rp),
// IDP_CLIENT_SECRET, IDP_REDIRECT_URI (the client's one redirect URI; a comma separates more).
// Prints `idp listening on http://127.0.0.1:<port>` (the issuer) once ready; logs to stderr.
// Usage: IDP_CLIENT_SECRET=... IDP_REDIRECT_URI=http://127.0.0.1:3000/federation/testidp/callback node idp.mjs
import Provider from 'oidc-provider';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

const CLIENT_ID = process.env.IDP_CLIENT_ID || 'oauth-test-rp';
const CLIENT_SECRET = process.env.IDP_CLIENT_SECRET || 'oauth-test-rp-secret';
if (!process.env.IDP_CLIENT_SECRET) console.error(`idp: IDP_CLIENT_SECRET not set, the client secret is "${CLIENT_SECRET}"`);
const REDIRECT_URIS = (process.env.IDP_REDIRECT_URI || 'http://127.0.0.1:3000/federation/testidp/callback')
  .split(',').map((s) => s.trim()).filter(Boolean);
const log = (...args) => console.error('idp:', ...args);

// Listen first: with port 0 the issuer is only known once the socket is bound.
let handler = (_req, res) => res.writeHead(503).end('starting');
const server = createServer((req, res) => handler(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(process.env.IDP_PORT || 0), '127.0.0.1', resolve);
});
const ISSUER = `http://127.0.0.1:${server.address().port}`;

const signingKey = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: randomUUID(), use: 'sig', alg: 'RS256',
};

function account(accountId) {
  const login = accountId.slice('idp-'.length);
  return {
    accountId,
    // Every claim; the provider keeps those the granted scopes and claims allow.
    async claims() {
      return { sub: accountId, email: `${login}@idp.example`, email_verified: true, name: login };
    },
  };
}

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    client_name: 'oauth-local (federation test)',
    redirect_uris: REDIRECT_URIS,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'email', 'profile'],
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false }, userinfo: { enabled: true } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, id) {
    return id.startsWith('idp-') && id.length > 'idp-'.length ? account(id) : undefined;
  },
});
for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error', 'discovery.error', 'end_session.error']) {
  provider.on(event, (_ctx, err) => log(event, err?.name ?? '', err?.message ?? String(err), err?.error_description ?? ''));
}
provider.on('grant.success', (ctx) => log('token issued to', ctx.oidc.client?.clientId));

const escape = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function page(title, body) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>
<style>body{font-family:sans-serif;max-width:22rem;margin:2rem auto;padding:0 1rem}label,input,button{display:block;width:100%;margin:.4rem 0;box-sizing:border-box}input,button{padding:.5rem;font-size:1rem}</style>
</head>
<body><main><p>Test IdP (${escape(ISSUER)})</p><h1>${escape(title)}</h1>
${body}
</main></body></html>`;
}

async function formBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res, uid, step) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params } = details;
  const client = await provider.Client.find(params.client_id);
  const base = `/interaction/${encodeURIComponent(uid)}`;
  if (req.method === 'GET' && step === '') {
    let html;
    if (prompt.name === 'login') {
      html = page('Sign in', `<form method="post" action="${base}/login" autocomplete="off">
<label for="login">Login</label>
<input id="login" name="login" required autofocus value="${escape(params.login_hint)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button type="submit">Sign in</button>
</form>`);
    } else if (prompt.name === 'consent') {
      const scopes = [...(prompt.details.missingOIDCScope ?? [])].filter((s) => s !== 'openid');
      html = page(`Allow ${client?.clientName ?? params.client_id}?`, `<p>Signed in as ${escape(details.session?.accountId)}.</p>
<p>It asks for: ${escape(scopes.join(', ') || 'your identifier')}.</p>
<form method="post" action="${base}/confirm"><button type="submit">Continue</button></form>
<form method="post" action="${base}/abort"><button type="submit">Cancel</button></form>`);
    } else {
      res.writeHead(501, { 'content-type': 'text/plain' }).end(`prompt ${prompt.name} not implemented`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'GET, POST' }).end();
    return;
  }
  const form = await formBody(req);
  if (step === 'login' && prompt.name === 'login') {
    const login = (form.get('login') ?? '').trim();
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(login) || !form.get('password')) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('login: letters, digits, . _ -; password: anything non-empty');
      return;
    }
    log(`signed in idp-${login}`);
    await provider.interactionFinished(req, res, { login: { accountId: `idp-${login}` } }, { mergeWithLastSubmission: false });
  } else if (step === 'confirm' && prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  } else if (step === 'abort') {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user cancelled' }, { mergeWithLastSubmission: false });
  } else {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(`unexpected ${step} for prompt ${prompt.name}`);
  }
}

const oidc = provider.callback();
handler = (req, res) => {
  res.on('finish', () => log(req.method, req.url.split('?')[0], res.statusCode));
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?\/?$/.exec(new URL(req.url, ISSUER).pathname);
  if (!m) return oidc(req, res);
  interaction(req, res, m[1], m[2] ?? '').catch((err) => {
    log('interaction failed:', err?.message ?? err);
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`interaction failed: ${err?.message ?? err}`);
  });
};
console.log(`idp listening on ${ISSUER}`);

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
