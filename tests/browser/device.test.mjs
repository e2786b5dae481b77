// Headless-browser test of the device authorization grant (RFC 8628): Debian's Chromium
// driven by playwright-core, one browser context keeping its cookies throughout.
//  1. a public "TV app" client starts a device request at /oauth/device_authorization; a
//     poll before approval gets authorization_pending;
//  2. the browser opens verification_uri_complete: the code field is prefilled; a wrong code
//     typed in gets the form again (400) with the error; the real code, typed in lowercase
//     without the dash, gets the login page naming the client and the code, with the device
//     warning (screenshot device.png, phone size);
//  3. signing in and allowing lands on /device?done=approved; the device's poll (after the
//     interval) gets the tokens, the access token reads /api/data, a further poll gets
//     invalid_grant;
//  4. a second request, entered at the (now signed-in) browser, gets the consent page (no
//     password field) still with the warning; Deny lands on /device?done=denied and the
//     device's poll gets access_denied.
// Usage: BASE=http://127.0.0.1:PORT node device.test.mjs   (the server's issuer must be BASE;
// REGISTRATION_TOKEN=... when client registration needs it, as on the local stack)
import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { checks, json as fetchJson } from './lib.mjs';

const BASE = process.env.BASE;
const SHOTS = process.env.SCREENSHOT_DIR ?? '../../target';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!BASE) throw new Error('BASE is required');
mkdirSync(SHOTS, { recursive: true });

const GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const SCOPE = 'openid offline_access data:read';
const CLIENT_NAME = 'TV app';
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;
const WRONG_CODE = 'BCDF-GHJK';
const WARNING = 'Only continue if you started this yourself';

const { check, counts } = checks();
const json = (path, init) => fetchJson(BASE, path, init);
const show = (r) => `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;
const form = (params) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(params),
});

const user = `device${Date.now()}${randomBytes(3).toString('hex')}`;
const password = 'correct horse battery staple';
const reg = await json('/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user, password }) });
check('the user registers', reg.status === 201 || reg.status === 200, show(reg));
const registration = process.env.REGISTRATION_TOKEN ? { authorization: `Bearer ${process.env.REGISTRATION_TOKEN}` } : {};
const clientReg = await json('/register_client', {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...registration },
  body: JSON.stringify({
    client_name: CLIENT_NAME, grant_types: [GRANT, 'refresh_token'], token_endpoint_auth_method: 'none', scope: SCOPE,
  }),
});
check(`client "${CLIENT_NAME}" registers (public)`, clientReg.status === 201 && !!clientReg.body.client_id && !clientReg.body.client_secret, show(clientReg));
const clientId = clientReg.body.client_id;

// Start a device request; `at` is when it was answered (the interval counts from the last
// request the device made).
async function start(name) {
  const r = await json('/oauth/device_authorization', form({ client_id: clientId, scope: SCOPE }));
  const d = r.body;
  check(`${name}: device_authorization is 200 with both codes`, r.status === 200 && !!d.device_code && !!d.user_code, show(r));
  check(`${name}: user code is XXXX-XXXX without look-alikes`, USER_CODE.test(d.user_code ?? ''), d.user_code);
  check(`${name}: verification URIs`, d.verification_uri === `${BASE}/device` && d.verification_uri_complete === `${BASE}/device?user_code=${d.user_code}`,
    `${d.verification_uri} ${d.verification_uri_complete}`);
  check(`${name}: expires_in 600, interval 5`, d.expires_in === 600 && d.interval === 5, `${d.expires_in} ${d.interval}`);
  return { ...d, interval: Number.isInteger(d.interval) && d.interval > 0 ? d.interval : 5, at: Date.now() };
}

// One poll, no sooner than the interval (plus a second of margin) after the device's last
// request; records the time for the next one.
async function poll(device) {
  const wait = device.at + (device.interval + 1) * 1000 - Date.now();
  if (wait > 0) await sleep(wait);
  const r = await json('/oauth/token', form({ grant_type: GRANT, client_id: clientId, device_code: device.device_code }));
  device.at = Date.now();
  if (r.body.error === 'slow_down') device.interval += 5;
  return r;
}

// The claims of a JWT, unverified (null when it is not one).
function claims(jwt) {
  try { return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()); } catch { return null; }
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
});
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } }); // a phone
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const problems = [];
  // Chromium logs a document answered with an error status as a console error: the 400 of
  // the wrong code is expected (once, while it is submitted); anything else is a problem.
  let expect400 = false;
  const expected = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const the400 = m.text().startsWith('Failed to load resource: the server responded with a status of 400') && m.location().url === `${BASE}/device`;
    (expect400 && the400 ? expected : problems).push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  const bodyText = () => page.textContent('body');
  const passwordFields = () => page.locator('input[name=password]').count();
  const codeField = page.locator('input[name=user_code]');
  // Fill the code field, click Continue: the response to the form's POST.
  async function submitCode(code) {
    await codeField.fill(code);
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().method() === 'POST' && r.url().startsWith(`${BASE}/device`)),
      page.getByRole('button', { name: 'Continue' }).click(),
    ]);
    await page.waitForLoadState();
    return answer;
  }

  // 1. The first request; the device polls once before anyone approves.
  const first = await start('1');
  const pending = await poll(first);
  check('1 poll before approval: 400 authorization_pending', pending.status === 400 && pending.body.error === 'authorization_pending', show(pending));

  // 2. The verification page from the complete link.
  let resp = await page.goto(first.verification_uri_complete);
  check('2 /device is 200', resp.status() === 200, `got ${resp.status()}`);
  const headers = resp.headers();
  check("2 /device: CSP frame-ancestors 'none'", (headers['content-security-policy'] ?? '').includes("frame-ancestors 'none'"), headers['content-security-policy']);
  check('2 /device: X-Frame-Options DENY', headers['x-frame-options'] === 'DENY', headers['x-frame-options']);
  check('2 the code field is prefilled from the link', (await codeField.inputValue()) === first.user_code, await codeField.inputValue());

  // A wrong code: the form again, with the error and the typed code.
  expect400 = true;
  resp = await submitCode(WRONG_CODE);
  expect400 = false;
  check('2 wrong code: the form again, 400', resp.status() === 400 && (await codeField.count()) === 1, `got ${resp.status()} ${page.url()}`);
  const alert = (await page.locator('[role=alert]').allTextContents()).join(' ').trim();
  check('2 wrong code: the alert says "That code is not valid"', alert.startsWith('That code is not valid'), JSON.stringify(alert));
  check('2 wrong code: no password field', (await passwordFields()) === 0);

  // The real code, lowercase and without the dash.
  const typed = first.user_code.replace('-', '').toLowerCase();
  resp = await submitCode(typed);
  check('2 real code (typed lowercase, no dash): the login page, 200', resp.status() === 200 && (await passwordFields()) === 1 && (await page.locator('input[name=username]').count()) === 1,
    `got ${resp.status()} ${page.url()}`);
  const loginText = await bodyText();
  check('2 login page names the client', loginText.includes(CLIENT_NAME), loginText.slice(0, 300));
  check('2 login page shows the code', loginText.includes(first.user_code), loginText.slice(0, 300));
  const warning = page.locator('p', { hasText: WARNING });
  check('2 login page has the device warning paragraph', (await warning.count()) === 1);
  check('2 the warning names the code', ((await warning.first().textContent()) ?? '').includes(first.user_code));
  check('2 login page has Allow and Deny', (await page.locator('button[name=decision][value=allow]').count()) === 1 && (await page.locator('button[name=decision][value=deny]').count()) === 1);
  await page.screenshot({ path: `${SHOTS}/device.png`, fullPage: true });

  // 3. Sign in and allow.
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${BASE}/device?done=approved`), page.click('button[name=decision][value=allow]')]);
  check('3 Allow lands on /device?done=approved', page.url() === `${BASE}/device?done=approved`, page.url());
  check('3 the page says "Your device is connected"', (await bodyText()).includes('Your device is connected'));

  const tokens = await poll(first);
  const t = tokens.body;
  check('3 poll after approval: 200 with access, refresh and ID tokens', tokens.status === 200 && !!t.access_token && !!t.refresh_token && !!t.id_token, show(tokens));
  check('3 token_type Bearer', t.token_type === 'Bearer', t.token_type);
  const id = claims(t.id_token ?? '');
  check('3 the ID token is for this client, from this issuer', id?.aud === clientId && id?.iss === BASE, JSON.stringify(id));
  const data = await fetch(`${BASE}/api/data`, { headers: { authorization: `Bearer ${t.access_token}` } });
  check('3 the access token reads /api/data', data.status === 200, `got ${data.status}`);
  const again = await poll(first);
  check('3 a further poll: 400 invalid_grant', again.status === 400 && again.body.error === 'invalid_grant', show(again));

  // 4. A second request, denied by the signed-in browser.
  const second = await start('4');
  check('4 a new user code', second.user_code !== first.user_code);
  resp = await page.goto(second.verification_uri);
  check('4 /device without a code: 200, the field empty', resp.status() === 200 && (await codeField.inputValue()) === '', `got ${resp.status()}`);
  resp = await submitCode(second.user_code);
  check('4 the code gets the consent page, 200', resp.status() === 200, `got ${resp.status()} ${page.url()}`);
  check('4 consent page: no password field', (await passwordFields()) === 0);
  check('4 consent page: no username field', (await page.locator('input[name=username]').count()) === 0);
  const consentText = await bodyText();
  check('4 consent page names the client and the signed-in user', consentText.includes(CLIENT_NAME) && consentText.includes(user), consentText.slice(0, 300));
  check('4 consent page still has the device warning with the code', consentText.includes(WARNING) && consentText.includes(second.user_code), consentText.slice(0, 600));
  await Promise.all([page.waitForURL(`${BASE}/device?done=denied`), page.click('button[name=decision][value=deny]')]);
  check('4 Deny lands on /device?done=denied', page.url() === `${BASE}/device?done=denied`, page.url());
  check('4 the page says "The request was denied"', (await bodyText()).includes('The request was denied'));
  const denied = await poll(second);
  check('4 poll after denial: 400 access_denied', denied.status === 400 && denied.body.error === 'access_denied', show(denied));

  check('no CSP violations or page errors', problems.length === 0, problems.join(' | '));
  await context.close();
} finally {
  await browser.close();
}
const { passed, failed } = counts();
console.log(`browser device: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
