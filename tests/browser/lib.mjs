// Helpers shared by the headless-browser tests (login, session, federation).
import { createServer } from 'node:http';

export const b64url = (buf) => buf.toString('base64url');

// The client's side: a loopback server on a free port that records the last URL to arrive at
// each of `paths` (other paths, such as /favicon.ico, are answered but not recorded).
// Returns { base, arrived(path), reset(), close() }: arrived(path) is the last URL for that
// path, undefined before any arrived and null after reset().
export async function startClientServer(paths = ['/callback']) {
  const last = {};
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (paths.includes(url.pathname)) last[url.pathname] = url;
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`client ${url.pathname} reached`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    arrived: (path) => last[path],
    reset: () => { for (const path of paths) last[path] = null; },
    close: () => server.close(),
  };
}

// The check counter: check(name, ok, detail) prints "ok   name" or "FAIL name detail";
// counts() is { passed, failed } so far.
export function checks() {
  let passed = 0;
  let failed = 0;
  function check(name, ok, detail = '') {
    if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
  }
  return { check, counts: () => ({ passed, failed }) };
}

// fetch(base + path, init) and its status and body: the parsed JSON, or { raw: text } when the
// body is not JSON.
export async function json(base, path, init) {
  const r = await fetch(base + path, init);
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch { body = { raw: text }; }
  return { status: r.status, body };
}
