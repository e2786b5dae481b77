// Headless-browser test of the sign-in session, remembered consent, the account page and
// RP-initiated logout: Debian's Chromium driven by playwright-core, one browser context
// keeping its cookies throughout.
//  1. sign in through /oauth/authorize for a first client (loopback redirect): the session
//     cookie is set;
//  2. a second, confidential client redirecting to https://app.example.test/cb (answered inside
//     the browser by Chromium's Fetch interception: nothing leaves the machine) gets the consent page without a password
//     field, then, asked again, a code at once without any page;
//  3. /account lists the user and both applications (screenshot account-page.png, phone size);
//  4. disconnecting the second application removes it and revokes its refresh tokens;
//  5. /oauth/logout without id_token_hint asks first (screenshot logout-page.png), "Sign out"
//     lands on the post-logout URI with the state, and the password form is back.
// Usage: BASE=http://127.0.0.1:PORT node session.test.mjs   (the server's issuer must be BASE;
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

// The first client's side: a loopback server records the callback and the post-logout landing.
const clientServer = await startClientServer(['/callback', '/bye']);
const LOOPBACK = clientServer.base;
const REDIRECT = `${LOOPBACK}/callback`;
const BYE = `${LOOPBACK}/bye`;
// The second client's side: a made-up https host, answered by the browser context's routing.
const REMOTE = 'https://app.example.test';
const REMOTE_CB = `${REMOTE}/cb`;

const { check, counts } = checks();
const json = (path, init) => fetchJson(BASE, path, init);

const user = `session${Date.now()}`;
const password = 'correct horse battery staple';
const reg = await json('/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user, password }) });
check('the user registers', reg.status === 201 || reg.status === 200, `${reg.status} ${JSON.stringify(reg.body)}`);
const registration = process.env.REGISTRATION_TOKEN ? { authorization: `Bearer ${process.env.REGISTRATION_TOKEN}` } : {};
async function registerClient(metadata) {
  const r = await json('/register_client', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...registration },
    body: JSON.stringify(metadata),
  });
  check(`client "${metadata.client_name}" registers`, r.status === 201 && !!r.body.client_id && !!r.body.client_secret, `${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
const FIRST_NAME = 'Loopback Notes';
const SECOND_NAME = 'Remote Web App';
const first = await registerClient({
  client_name: FIRST_NAME, redirect_uris: [REDIRECT], post_logout_redirect_uris: [BYE], scope: 'openid profile data:read',
});
const second = await registerClient({
  client_name: SECOND_NAME, redirect_uris: [REMOTE_CB], post_logout_redirect_uris: [`${REMOTE}/bye`], scope: 'openid data:read',
});
check('post_logout_redirect_uris is echoed', JSON.stringify(first.post_logout_redirect_uris) === JSON.stringify([BYE]), JSON.stringify(first));

function pkce() {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash('sha256').update(verifier).digest()), state: b64url(randomBytes(12)) };
}

function authorizeUrl(client, redirect, scope, p) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: redirect, scope,
    state: p.state, code_challenge: p.challenge, code_challenge_method: 'S256', nonce: 'n' + p.state,
  });
  return `${BASE}/oauth/authorize?${q}`;
}

function basic(client) {
  return 'Basic ' + Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64');
}

async function exchange(client, code, verifier, redirect) {
  return json('/oauth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirect }),
  });
}

async function refresh(client, refreshToken) {
  return json('/oauth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
}

// Refresh `tokens` once (it must work) and return the rotated token response: the control
// that makes the later invalid_grant mean "revoked", not "never valid".
async function checkRefreshWorks(name, client, tokens) {
  if (!tokens?.refresh_token) { check(`${name}: (no refresh token was issued)`, true); return tokens; }
  const r = await refresh(client, tokens.refresh_token);
  check(`${name}: refresh token works before`, r.status === 200 && !!r.body.access_token, `${r.status} ${JSON.stringify(r.body)}`);
  return r.body.refresh_token ? r.body : tokens;
}

// The refresh token of `tokens` (if one was issued) is refused with invalid_grant.
async function checkRefreshRefused(name, client, tokens) {
  if (!tokens?.refresh_token) { check(`${name}: (no refresh token was issued)`, true); return; }
  const r = await refresh(client, tokens.refresh_token);
  check(`${name}: refresh token now gets invalid_grant`, r.status === 400 && r.body.error === 'invalid_grant', `${r.status} ${JSON.stringify(r.body)}`);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
    // Belt and braces: the made-up client host never reaches a resolver.
    `--host-resolver-rules=MAP ${new URL(REMOTE).hostname} ~NOTFOUND`],
});
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } }); // a phone
  const page = await context.newPage();
  // The https client answers "ok" from inside the browser. Not context.route(): Playwright
  // never routes a request that follows a redirect (and every request to the client does),
  // while Chromium's own Fetch interception pauses each hop of a redirect chain.
  const remoteHits = [];
  const cdp = await context.newCDPSession(page);
  cdp.on('Fetch.requestPaused', (e) => {
    const url = new URL(e.request.url);
    if (url.pathname !== '/favicon.ico') remoteHits.push(url);
    cdp.send('Fetch.fulfillRequest', {
      requestId: e.requestId, responseCode: 200,
      responseHeaders: [{ name: 'content-type', value: 'text/plain; charset=utf-8' }],
      body: Buffer.from('ok').toString('base64'),
    }).catch(() => {});
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: `${REMOTE}/*`, requestStage: 'Request' }] });
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  // Every document the server answered for the main frame (to see whether a page was shown).
  let served = [];
  page.on('response', (r) => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame() && r.url().startsWith(BASE)) {
      served.push({ url: r.url(), status: r.status() });
    }
  });
  const sessionCookie = async () => (await context.cookies(BASE)).find((c) => c.name === 'session' || c.name === '__Host-session');
  const passwordFields = () => page.locator('input[name=password]').count();
  const bodyText = () => page.textContent('body');

  // 1. Sign in for the first client.
  const p1 = pkce();
  let resp = await page.goto(authorizeUrl(first, REDIRECT, 'openid profile data:read', p1));
  check('1 first client: login page is 200', resp.status() === 200, `got ${resp.status()}`);
  check('1 first client: page has the password form', (await passwordFields()) === 1);
  check('1 no session cookie before signing in', !(await sessionCookie()));
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${REDIRECT}**`), page.click('button[name=decision][value=allow]')]);
  const cb1 = clientServer.arrived('/callback');
  check('1 first client: code and state came back', !!cb1?.searchParams.get('code') && cb1?.searchParams.get('state') === p1.state, String(cb1));
  const session = await sessionCookie();
  check('1 session cookie set: HttpOnly, SameSite=Lax, Path=/', !!session && session.httpOnly && session.sameSite === 'Lax' && session.path === '/', JSON.stringify(session));
  check('1 session cookie value is <sub>.<43 chars>', /^[^.]+\.[A-Za-z0-9_-]{43}$/.test(session?.value ?? ''));
  const firstTokens = await exchange(first, cb1?.searchParams.get('code'), p1.verifier, REDIRECT);
  check('1 first client: code exchanges for tokens', firstTokens.status === 200 && !!firstTokens.body.access_token, JSON.stringify(firstTokens.body));

  // 2a. The second client: the consent page, no password.
  const p2 = pkce();
  resp = await page.goto(authorizeUrl(second, REMOTE_CB, 'openid data:read', p2));
  check('2 second client, first time: consent page is 200', resp.status() === 200, `got ${resp.status()}`);
  check('2 consent page has no password field', (await passwordFields()) === 0);
  check('2 consent page has no username field', (await page.locator('input[name=username]').count()) === 0);
  const consentText = await bodyText();
  check('2 consent page says "Allow access"', (await page.textContent('h1'))?.trim() === 'Allow access');
  check('2 consent page names the user and the client', consentText.includes(`You are signed in as ${user}`) && consentText.includes(SECOND_NAME), consentText);
  check('2 consent page explains the scopes', consentText.includes('Read your stored data'));
  await Promise.all([page.waitForURL(`${REMOTE_CB}**`), page.click('button[name=decision][value=allow]')]);
  let landed = new URL(page.url());
  check('2 Allow: the browser reached the https redirect URI (intercepted)', landed.origin + landed.pathname === REMOTE_CB && remoteHits.length === 1, page.url());
  check('2 Allow: code, state and iss came back', !!landed.searchParams.get('code') && landed.searchParams.get('state') === p2.state && landed.searchParams.get('iss') === BASE, page.url());
  const secondTokensA = await exchange(second, landed.searchParams.get('code'), p2.verifier, REMOTE_CB);
  check('2 consent code exchanges for tokens (PKCE)', secondTokensA.status === 200 && !!secondTokensA.body.access_token, JSON.stringify(secondTokensA.body));

  // 2b. The second client again: a code at once, no page.
  const p3 = pkce();
  served = [];
  resp = await page.goto(authorizeUrl(second, REMOTE_CB, 'openid data:read', p3));
  landed = new URL(page.url());
  const redirectedFrom = resp.request().redirectedFrom();
  const authorizeAnswer = redirectedFrom ? await redirectedFrom.response() : null;
  check('2 second time: the browser went straight to the redirect URI', landed.origin + landed.pathname === REMOTE_CB && remoteHits.length === 2, page.url());
  check('2 second time: /oauth/authorize answered with a 302', authorizeAnswer?.status() === 302 && redirectedFrom.url().startsWith(`${BASE}/oauth/authorize`), String(authorizeAnswer?.status()));
  check('2 second time: no login or consent page was shown', served.length === 1 && served[0].status === 302, JSON.stringify(served));
  check('2 second time: the page is the client\'s ("ok")', (await bodyText()) === 'ok');
  check('2 second time: code, state and iss came back', !!landed.searchParams.get('code') && landed.searchParams.get('state') === p3.state && landed.searchParams.get('iss') === BASE, page.url());
  const secondTokensB = await exchange(second, landed.searchParams.get('code'), p3.verifier, REMOTE_CB);
  check('2 silent code exchanges for tokens (PKCE)', secondTokensB.status === 200 && !!secondTokensB.body.access_token && !!secondTokensB.body.id_token, JSON.stringify(secondTokensB.body));
  check('2 a refresh token was issued (default grant types)', !!secondTokensB.body.refresh_token);
  const data = await fetch(`${BASE}/api/data`, { headers: { authorization: `Bearer ${secondTokensB.body.access_token}` } });
  check('2 the silent access token reads /api/data', data.status === 200, `got ${data.status}`);

  // 3. The account page.
  resp = await page.goto(`${BASE}/account`);
  check('3 account page is 200', resp.status() === 200, `got ${resp.status()}`);
  check('3 account page: X-Frame-Options DENY', resp.headers()['x-frame-options'] === 'DENY', resp.headers()['x-frame-options']);
  check("3 account page: CSP frame-ancestors 'none'", (resp.headers()['content-security-policy'] ?? '').includes("frame-ancestors 'none'"));
  check('3 account page: no <script', !(await page.content()).includes('<script'));
  let accountText = await bodyText();
  check('3 account page names the user', accountText.includes(`Signed in as ${user}`) && (await page.textContent('p.lead strong')) === user, accountText);
  const appNames = async () => page.locator('section.item h3').allTextContents();
  let apps = await appNames();
  check('3 account page lists both applications', apps.includes(FIRST_NAME) && apps.includes(SECOND_NAME), JSON.stringify(apps));
  check('3 account page shows the https host and this browser', accountText.includes('app.example.test') && accountText.includes('(this browser)'));
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  check('3 account page fits a phone screen (no sideways scrolling)', scrollWidth <= 390, `scrollWidth ${scrollWidth}`);
  await page.screenshot({ path: `${SHOTS}/account-page.png`, fullPage: true });

  // 4. Disconnect the second application.
  const secondRefreshA = await checkRefreshWorks('4 second client (consent code)', second, secondTokensA.body);
  const secondRefreshB = await checkRefreshWorks('4 second client (silent code)', second, secondTokensB.body);
  await Promise.all([
    page.waitForURL(`${BASE}/account?done=disconnected`),
    page.getByRole('button', { name: `Disconnect ${SECOND_NAME}` }).click(),
  ]);
  apps = await appNames();
  check('4 the disconnected application is gone from the page', !apps.includes(SECOND_NAME) && apps.includes(FIRST_NAME), JSON.stringify(apps));
  check('4 the page says so', (await page.locator('p.notice').count()) === 1);
  await checkRefreshRefused('4 disconnected client (consent code)', second, secondRefreshA);
  await checkRefreshRefused('4 disconnected client (silent code)', second, secondRefreshB);
  // Its remembered consent is gone: the next request shows the consent page again.
  resp = await page.goto(authorizeUrl(second, REMOTE_CB, 'openid data:read', pkce()));
  check('4 disconnected client is asked again (consent page, no password)', resp.status() === 200 && (await passwordFields()) === 0 && (await bodyText()).includes('Allow access'), `${resp.status()} ${page.url()}`);
  check('4 (still) two visits to the https client only', remoteHits.length === 2, String(remoteHits.length));

  // 5. Log out, without id_token_hint: confirm first.
  const firstRefresh = await checkRefreshWorks('5 first client (session-bound)', first, firstTokens.body);
  const logoutState = b64url(randomBytes(12));
  const logoutUrl = `${BASE}/oauth/logout?${new URLSearchParams({ client_id: first.client_id, post_logout_redirect_uri: BYE, state: logoutState })}`;
  resp = await page.goto(logoutUrl);
  check('5 logout confirmation page is 200', resp.status() === 200, `got ${resp.status()}`);
  check('5 logout page: X-Frame-Options DENY', resp.headers()['x-frame-options'] === 'DENY', resp.headers()['x-frame-options']);
  check('5 logout page: CSP form-action allows the post-logout origin', (resp.headers()['content-security-policy'] ?? '').includes(`form-action 'self' ${LOOPBACK}`), resp.headers()['content-security-policy']);
  check('5 logout page: no <script', !(await page.content()).includes('<script'));
  const logoutText = await bodyText();
  check('5 logout page asks "Sign out?" and names the client and user', logoutText.includes('Sign out?') && logoutText.includes(FIRST_NAME) && logoutText.includes(user), logoutText);
  check('5 showing the page signs nobody out', !!(await sessionCookie()));
  await page.screenshot({ path: `${SHOTS}/logout-page.png`, fullPage: true });
  await Promise.all([page.waitForURL(`${BYE}**`), page.getByRole('button', { name: 'Sign out' }).click()]);
  const bye = clientServer.arrived('/bye');
  check('5 Sign out lands on the post-logout URI with the state', !!bye && bye.searchParams.get('state') === logoutState, `${page.url()} ${bye}`);
  check('5 the session cookie is cleared', !(await sessionCookie()));
  await checkRefreshRefused('5 first client (session-bound)', first, firstRefresh);
  resp = await page.goto(authorizeUrl(first, REDIRECT, 'openid profile data:read', pkce()));
  check('5 after logout /oauth/authorize shows the password form again', resp.status() === 200 && (await passwordFields()) === 1, `${resp.status()} ${page.url()}`);
  resp = await page.goto(`${BASE}/account`);
  check('5 after logout /account asks to sign in', resp.status() === 200 && (await passwordFields()) === 1 && !(await bodyText()).includes('Signed in as'));
  check('no CSP violations or page errors', problems.length === 0, problems.join(' | '));
  await context.close();
} finally {
  await browser.close();
  clientServer.close();
}
const { passed, failed } = counts();
console.log(`browser sessions: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
