// Headless-browser test of the login and consent page: Debian's Chromium driven by
// playwright-core. A real browser opens the authorize URL, fills the form, clicks Allow
// (and, in a second run, Deny), follows the 303 to the client's redirect URI, and the code
// is exchanged at the token endpoint. Screenshots go to target/.
// Usage: BASE=http://127.0.0.1:PORT node login.test.mjs   (the server's issuer must be BASE;
// REGISTRATION_TOKEN=... when client registration needs it, as on the local stack)
import { chromium } from 'playwright-core';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { b64url, checks, json as fetchJson, startClientServer } from './lib.mjs';

const BASE = process.env.BASE;
const SHOTS = process.env.SCREENSHOT_DIR ?? '../../target';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!BASE) throw new Error('BASE is required');
mkdirSync(SHOTS, { recursive: true });

// The client's side: a callback endpoint on a free loopback port records what arrives.
const loopback = await startClientServer(['/callback']);
const REDIRECT = `${loopback.base}/callback`;
const { check, counts } = checks();
const json = (path, init) => fetchJson(BASE, path, init);

const user = `browser${Date.now()}`;
const password = 'correct horse battery staple';
await json('/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user, password }) });
const registration = process.env.REGISTRATION_TOKEN ? { authorization: `Bearer ${process.env.REGISTRATION_TOKEN}` } : {};
const { body: client } = await json('/register_client', {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...registration },
  body: JSON.stringify({ client_name: 'Browser <Test> App', redirect_uris: [REDIRECT], scope: 'openid profile data:read' }),
});

function authorizeUrl(state, challenge) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: REDIRECT, scope: 'openid profile data:read',
    state, code_challenge: challenge, code_challenge_method: 'S256', nonce: 'n' + state,
  });
  return `${BASE}/oauth/authorize?${q}`;
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
});
try {
  for (const decision of ['allow', 'deny']) {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } }); // a phone
    const page = await context.newPage();
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(String(e)));
    loopback.reset();
    const verifier = b64url(randomBytes(32));
    const challenge = b64url(createHash('sha256').update(verifier).digest());
    const state = b64url(randomBytes(12));

    const resp = await page.goto(authorizeUrl(state, challenge));
    check(`${decision}: login page is 200`, resp.status() === 200, `got ${resp.status()}`);
    check(`${decision}: page names the client, escaped`, (await page.textContent('body')).includes('Browser <Test> App'));
    check(`${decision}: page explains the scopes`, (await page.textContent('body')).includes('Read your stored data'));
    const headers = resp.headers();
    check(`${decision}: frame-ancestors 'none'`, (headers['content-security-policy'] ?? '').includes("frame-ancestors 'none'"));
    check(`${decision}: X-Frame-Options DENY`, headers['x-frame-options'] === 'DENY');
    const cookies = await context.cookies(`${BASE}/oauth/authorize`);
    const csrf = cookies.find((c) => c.name === 'oauth_csrf');
    check(`${decision}: CSRF cookie is HttpOnly and SameSite=Lax`, csrf && csrf.httpOnly && csrf.sameSite === 'Lax');
    if (decision === 'allow') {
      await page.screenshot({ path: `${SHOTS}/login-page.png`, fullPage: true });
    }

    await page.fill('input[name=username]', user);
    await page.fill('input[name=password]', password);
    await Promise.all([page.waitForURL(`${REDIRECT}**`), page.click(`button[name=decision][value=${decision}]`)]);
    const callback = loopback.arrived('/callback');
    check(`${decision}: browser reached the client's redirect URI`, callback !== null);
    check(`${decision}: state came back`, callback?.searchParams.get('state') === state);
    check(`${decision}: iss came back`, callback?.searchParams.get('iss') === BASE);
    check(`${decision}: no CSP violations or page errors`, problems.length === 0, problems.join(' | '));

    if (decision === 'allow') {
      const code = callback?.searchParams.get('code');
      check('allow: a code came back', !!code);
      const basic = Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64');
      const token = await json('/oauth/token', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT }),
      });
      check('allow: the code exchanges for tokens', token.status === 200 && !!token.body.access_token && !!token.body.id_token, JSON.stringify(token.body));
      const data = await fetch(`${BASE}/api/data`, { headers: { authorization: `Bearer ${token.body.access_token}` } });
      check('allow: the access token reads /api/data', data.status === 200);
    } else {
      check('deny: access_denied came back', callback?.searchParams.get('error') === 'access_denied');
      check('deny: no code came back', !callback?.searchParams.get('code'));
    }
    await context.close();
  }
} finally {
  await browser.close();
  loopback.close();
}
const { passed, failed } = counts();
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
