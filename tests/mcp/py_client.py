"""Interop test: the official MCP Python SDK (`mcp`, unmodified, pinned by requirements.txt) as an
OAuth client of this server, the way an MCP client meets a protected MCP server.

Its `mcp.client.auth.OAuthClientProvider` (an `httpx2.Auth`; mcp 2.x uses httpx2, the successor
of httpx) is attached to an `httpx2.AsyncClient` that simply GETs BASE/api/data:
  1. the first GET answers 401 with `WWW-Authenticate: Bearer realm="api",
     resource_metadata="BASE/.well-known/oauth-protected-resource/api", scope="data:read"`;
  2. the SDK reads that protected-resource metadata (RFC 9728) and the authorization-server
     metadata (RFC 8414), registers a public client by dynamic registration (RFC 7591,
     token_endpoint_auth_method "none", a loopback redirect URI) and hands this script the
     authorization URL (PKCE S256, state, RFC 8707 `resource`);
  3. this script signs in and allows over plain HTTP with a cookie jar (the login and consent
     form, no browser; the consent page must name the client, and for CIMD the document's
     host), captures the redirect to the loopback URI without following it, and returns code,
     state and iss to the SDK (which checks state and RFC 9207 iss);
  4. the SDK exchanges the code (sending `resource`) and retries the GET, which must be 200;
     the access token's `aud` must be BASE/api and its `client_id` the client's;
  5. the stored access token is marked expired (`provider.context.token_expiry_time`, the only
     expiry the SDK consults), the next GET makes the SDK refresh first, and must be 200 with
     the new token.
Nothing listens on the redirect URI: the 303 to it is read, as a native app reads its callback.

Usage: BASE=http://127.0.0.1:PORT .venv-mcp/bin/python py_client.py   (the issuer must be BASE)
Environment:
  REGISTRATION_TOKEN  registration needs `Authorization: Bearer <token>` (the local stack). The
                      SDK has no option for an initial access token, so this script adds the
                      header in a request event hook of the httpx2 client, on registration only.
  CIMD_URL            Client ID Metadata Document mode: an https URL with a path, given to the
                      SDK as `OAuthClientProvider(client_metadata_url=...)`. The SDK then uses
                      it as client_id (token_endpoint_auth_method none) instead of registering,
                      but only when the authorization-server metadata says
                      `client_id_metadata_document_supported: true` (checked here: otherwise
                      the SDK would silently fall back to registration). The document must list
                      the redirect URI: set REDIRECT_URI, or this script fetches the document
                      and uses its first loopback `redirect_uris` entry.
  CIMD_CLIENT_NAME    CIMD mode: the document's client_name, which the consent page must show
                      (with the document's host); without it any name is accepted.
  REDIRECT_URI        the loopback redirect URI (default http://127.0.0.1:<free port>/callback).
  VERBOSE=1           print every request the SDK sends.
"""

import asyncio
import base64
import json
import os
import re
import socket
import sys
import time
from html import unescape
from html.parser import HTMLParser
from importlib.metadata import version
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp_types import LATEST_PROTOCOL_VERSION

BASE = os.environ.get("BASE") or sys.exit("BASE is required")
REGISTRATION_TOKEN = os.environ.get("REGISTRATION_TOKEN", "")
CIMD_URL = os.environ.get("CIMD_URL", "")
CIMD_CLIENT_NAME = os.environ.get("CIMD_CLIENT_NAME", "")
VERBOSE = bool(os.environ.get("VERBOSE"))
SDK_VERSION = version("mcp")
API = f"{BASE}/api/data"
RESOURCE = f"{BASE}/api"
PRM_URL = f"{BASE}/.well-known/oauth-protected-resource/api"
USER = f"mcppy{int(time.time() * 1000)}"
PASSWORD = "correct horse battery staple"

passed = 0
failed = 0


def check(name: str, ok: bool, detail: object = "") -> bool:
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name} {detail}", flush=True)
    return ok


def finish() -> None:
    mode = "client id metadata document" if CIMD_URL else "dynamic registration"
    print(f"mcp python sdk {SDK_VERSION} ({mode}): {passed} passed, {failed} failed", flush=True)
    sys.exit(0 if failed == 0 else 1)


def fatal(name: str, error: object) -> None:
    """A step that cannot go on: counted, then the run ends."""
    check(name, False, f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error)
    finish()


def jwt_payload(jwt: str | None) -> dict:
    part = (jwt or "").split(".")[1] if jwt and jwt.count(".") == 2 else ""
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) or b"{}")


def aud_is(aud: object, want: str) -> bool:
    return aud == want or aud == [want]


def is_loopback(uri: str) -> bool:
    u = urlsplit(uri)
    return u.scheme == "http" and u.hostname in ("127.0.0.1", "::1", "localhost")


def form_of(body: bytes | None) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((body or b"").decode(), keep_blank_values=True).items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def redirect_uri() -> str:
    """Given, from the client's metadata document (CIMD), or a free loopback port."""
    if os.environ.get("REDIRECT_URI"):
        return os.environ["REDIRECT_URI"]
    if CIMD_URL:
        try:
            async with httpx2.AsyncClient(timeout=10) as c:
                doc = (await c.get(CIMD_URL, headers={"accept": "application/json"})).json()
        except Exception as e:  # noqa: BLE001 - any failure means: set REDIRECT_URI
            fatal("CIMD mode: the redirect URI (set REDIRECT_URI, or serve the document with a loopback redirect_uris entry)", e)
        uri = next((u for u in doc.get("redirect_uris") or [] if isinstance(u, str) and is_loopback(u)), None)
        if uri:
            return uri
        fatal("CIMD mode: the metadata document lists a loopback redirect URI (or set REDIRECT_URI)", "none found")
    return f"http://127.0.0.1:{free_port()}/callback"


class MemoryStorage:
    """The application's side of the SDK's TokenStorage protocol, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None
        self.saved_tokens: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.saved_tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


# --- The user's browser, scripted: a cookie jar, the login and consent form(s), Allow. ---
PAGES: list[str] = []  # the HTML of every form page shown
CLIENT_NAME = "MCP Python SDK interop test"
class FormParser(HTMLParser):
    """The POST forms of a page: action, inputs and buttons."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self.current: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.current = {"method": a.get("method", "get").lower(), "action": a.get("action", ""), "inputs": [], "buttons": []}
            self.forms.append(self.current)
        elif self.current is not None and tag == "input":
            self.current["inputs"].append(a)
        elif self.current is not None and tag == "button":
            self.current["buttons"].append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = None


def allow_form(html: str) -> dict | None:
    parser = FormParser()
    parser.feed(html)
    for form in parser.forms:
        allow = next((b for b in form["buttons"] if b.get("value") == "allow"), None)
        if form["method"] == "post" and allow:
            return {
                "action": form["action"],
                "hidden": [(i["name"], i.get("value", "")) for i in form["inputs"] if i.get("type") == "hidden" and i.get("name")],
                "names": {i.get("name") for i in form["inputs"]},
                "button": (allow.get("name", "decision"), allow["value"]),
            }
    return None


def page_text(html: str) -> str:
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return unescape(" ".join(re.sub(r"<[^>]+>", " ", html).split()))[:400]


async def sign_in(authorization_url: str, redirect: str) -> httpx2.URL:
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(BASE))
    async with httpx2.AsyncClient(timeout=30, follow_redirects=False) as browser:
        url = authorization_url
        response = await browser.get(url)
        for _ in range(6):
            if response.is_redirect:
                nxt = urljoin(url, response.headers["location"])
                if nxt.split("?")[0] == redirect.split("?")[0]:
                    return httpx2.URL(nxt)
                url = nxt  # e.g. back to the authorization endpoint after the login
                response = await browser.get(url)
                continue
            if response.status_code != 200:
                raise RuntimeError(f"sign-in: HTTP {response.status_code} at {url}: {page_text(response.text)}")
            PAGES.append(response.text)
            form = allow_form(response.text)
            if form is None:
                raise RuntimeError(f"sign-in: no form with an Allow button at {url}")
            data = dict(form["hidden"])
            if "password" in form["names"]:
                data.update(username=USER, password=PASSWORD)
            data[form["button"][0]] = form["button"][1]
            url = urljoin(url, form["action"] or url)
            response = await browser.post(url, data=data, headers={"origin": origin, "sec-fetch-site": "same-origin"})
        raise RuntimeError("sign-in: no redirect to the client after 6 steps")


async def main() -> None:
    redirect = await redirect_uri()
    print(f"MCP Python SDK {SDK_VERSION} against {BASE}{f' (client_id {CIMD_URL})' if CIMD_URL else ''}, redirect {redirect}", flush=True)

    async with httpx2.AsyncClient(timeout=30) as plain:
        r = await plain.post(f"{BASE}/register", json={"username": USER, "password": PASSWORD})
        if not check("the user registers", r.status_code in (200, 201), f"HTTP {r.status_code}: {r.text}"):
            finish()

        # What the SDK will find; checked here so a failure names the document, not a symptom.
        as_meta = (await plain.get(f"{BASE}/.well-known/oauth-authorization-server")).json()
        registration_endpoint = as_meta.get("registration_endpoint")
        check("authorization-server metadata: issuer is BASE", as_meta.get("issuer") == BASE, as_meta.get("issuer"))
        check("authorization-server metadata: S256 PKCE", "S256" in (as_meta.get("code_challenge_methods_supported") or []))
        check("authorization-server metadata: token auth method none", "none" in (as_meta.get("token_endpoint_auth_methods_supported") or []))
        check(
            "authorization-server metadata: authorization_response_iss_parameter_supported (the SDK then requires iss)",
            as_meta.get("authorization_response_iss_parameter_supported") is True,
        )
        if CIMD_URL:
            if not check(
                "authorization-server metadata: client_id_metadata_document_supported (else the SDK registers instead)",
                as_meta.get("client_id_metadata_document_supported") is True,
                as_meta.get("client_id_metadata_document_supported"),
            ):
                finish()
        else:
            check("authorization-server metadata: registration_endpoint", bool(registration_endpoint))

        challenge = await plain.get(API)
        www = challenge.headers.get("www-authenticate", "")
        check("GET /api/data without a token is 401", challenge.status_code == 401, f"HTTP {challenge.status_code}")
        check('the challenge is Bearer realm="api"', www.lower().startswith('bearer realm="api"'), www)
        check("the challenge names the resource metadata (RFC 9728 §5.1)", f'resource_metadata="{PRM_URL}"' in www, www)
        check("the challenge names scope data:read", 'scope="data:read"' in www, www)

        prm_response = await plain.get(PRM_URL)
        prm = prm_response.json() if prm_response.status_code == 200 else {}
        check("protected-resource metadata is served", prm_response.status_code == 200, f"HTTP {prm_response.status_code}")
        check("protected-resource metadata: resource is BASE/api", prm.get("resource") == RESOURCE, prm.get("resource"))
        check("protected-resource metadata: authorization_servers is [BASE]", prm.get("authorization_servers") == [BASE], prm.get("authorization_servers"))
        check(
            "protected-resource metadata: scopes data:read, data:write",
            {"data:read", "data:write"} <= set(prm.get("scopes_supported") or []),
            prm.get("scopes_supported"),
        )
        check("protected-resource metadata: bearer in the header", prm.get("bearer_methods_supported") == ["header"], prm.get("bearer_methods_supported"))

    # Every request the client sends, the SDK's own included (request/response event hooks).
    sent: list[dict] = []

    async def on_request(request: httpx2.Request) -> None:
        if REGISTRATION_TOKEN and request.method == "POST" and str(request.url) == registration_endpoint:
            request.headers["Authorization"] = f"Bearer {REGISTRATION_TOKEN}"
        sent.append({"method": request.method, "url": str(request.url), "headers": dict(request.headers), "body": request.content, "status": None})

    async def on_response(response: httpx2.Response) -> None:
        sent[-1]["status"] = response.status_code
        if VERBOSE:
            s = sent[-1]
            body = f"\n       {s['body'].decode(errors='replace')}" if s["body"] else ""
            headers = {k: v[:20] + "..." if k == "authorization" else v for k, v in s["headers"].items()}
            print(f"  sdk: {s['method']} {s['url']} -> {response.status_code}{body}\n       {headers}", flush=True)

    def sent_to(url: str, method: str | None = None) -> list[dict]:
        return [s for s in sent if s["url"].split("?")[0] == url and (method is None or s["method"] == method)]

    authorization_urls: list[str] = []
    callbacks: list[AuthorizationCodeResult] = []

    async def redirect_handler(url: str) -> None:
        authorization_urls.append(url)
        if VERBOSE:
            print(f"  sdk: authorization URL {url}", flush=True)

    async def callback_handler() -> AuthorizationCodeResult:
        try:
            callback = await sign_in(authorization_urls[-1], redirect)
        except Exception as e:  # noqa: BLE001
            fatal("sign in and allow", e)
        q = {k: v[0] for k, v in parse_qs(callback.query.decode()).items()}
        if "code" not in q:
            fatal("the redirect carries a code", str(callback))
        result = AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))
        callbacks.append(result)
        return result

    storage = MemoryStorage()
    client_metadata = OAuthClientMetadata(
        client_name=CLIENT_NAME,
        redirect_uris=[redirect],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    try:
        provider = OAuthClientProvider(
            server_url=API,
            client_metadata=client_metadata,
            storage=storage,
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
            client_metadata_url=CIMD_URL or None,
        )
    except ValueError as e:
        fatal("CIMD_URL is an https URL with a path", e)

    async with httpx2.AsyncClient(auth=provider, timeout=30, event_hooks={"request": [on_request], "response": [on_response]}) as client:
        try:
            response = await client.get(API)
        except Exception as e:  # noqa: BLE001
            fatal("the SDK's OAuth flow", e)

        check("the SDK read the protected-resource metadata", any(s["status"] == 200 for s in sent_to(PRM_URL, "GET")), [(s["method"], s["url"], s["status"]) for s in sent])
        check("the SDK read the authorization-server metadata", any(s["status"] == 200 for s in sent_to(f"{BASE}/.well-known/oauth-authorization-server", "GET")))
        check(
            "metadata requests carry MCP-Protocol-Version",
            bool(sent_to(PRM_URL)) and all(s["headers"].get("mcp-protocol-version") == LATEST_PROTOCOL_VERSION for s in sent_to(PRM_URL)),
        )
        registrations = sent_to(registration_endpoint, "POST") if registration_endpoint else []
        if CIMD_URL:
            check("CIMD: the SDK did not register", not registrations, f"{len(registrations)} registration request(s)")
            check("CIMD: client_id is the document URL", storage.client is not None and storage.client.client_id == CIMD_URL, storage.client)
        else:
            check("the SDK registered once", len(registrations) == 1 and registrations[0]["status"] in (200, 201), [s["status"] for s in registrations])
            reg = json.loads(registrations[0]["body"]) if registrations else {}
            check("registration asks for a public client (token_endpoint_auth_method none)", reg.get("token_endpoint_auth_method") == "none", reg)
            check("registration carries the loopback redirect URI", reg.get("redirect_uris") == [redirect], reg)
            check("registration asks for scope data:read", "data:read" in (reg.get("scope") or "").split(), reg)
            check("the registered client has no secret", storage.client is not None and storage.client.client_secret is None, storage.client)

        if not authorization_urls:
            fatal("the SDK produced an authorization URL", "none")
        authorization_url = authorization_urls[-1]
        q = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        client_id = storage.client.client_id if storage.client else None
        check("authorize: at the metadata's authorization_endpoint", authorization_url.split("?")[0] == as_meta.get("authorization_endpoint"), authorization_url)
        check("authorize: response_type code, PKCE S256", q.get("response_type") == "code" and q.get("code_challenge_method") == "S256" and bool(q.get("code_challenge")), q)
        check("authorize: client_id, redirect_uri, state", q.get("client_id") == client_id and q.get("redirect_uri") == redirect and bool(q.get("state")), q)
        check("authorize: resource is BASE/api (RFC 8707)", q.get("resource") == RESOURCE, q)
        check("authorize: scope includes data:read", "data:read" in (q.get("scope") or "").split(), q)
        callback = callbacks[-1] if callbacks else None
        check("the redirect carries the state back", callback is not None and callback.state == q.get("state"), callback)
        check("the redirect carries iss (RFC 9207)", callback is not None and callback.iss == BASE, callback)
        # The consent page: `<strong>client_name</strong>`, and for a metadata document ` from <strong class="host">HOST</strong>`.
        named = next(
            (m for m in (re.search(r'<strong>([^<]*)</strong>(?: from <strong class="host">([^<]*)</strong>)? wants to use your account', p) for p in PAGES) if m),
            None,
        )
        shown = (unescape(named[1]), unescape(named[2]) if named[2] is not None else None) if named else None
        if CIMD_URL:
            host = urlsplit(CIMD_URL).hostname
            check(
                f"CIMD: the consent page names the document's client and host ({CIMD_CLIENT_NAME or '<any name>'} from {host})",
                shown is not None and shown[1] == host and (shown[0] == CIMD_CLIENT_NAME if CIMD_CLIENT_NAME else bool(shown[0])),
                named[0] if named else 'no "wants to use your account" line',
            )
        else:
            check(
                "the consent page names the registered client, with no document host",
                shown == (CLIENT_NAME, None),
                named[0] if named else 'no "wants to use your account" line',
            )

        exchange = (sent_to(as_meta["token_endpoint"], "POST") or [{}])[-1]
        form = form_of(exchange.get("body"))
        check("token request: authorization_code with the verifier", form.get("grant_type") == "authorization_code" and bool(form.get("code_verifier")) and form.get("redirect_uri") == redirect, form)
        check("token request: resource is BASE/api", form.get("resource") == RESOURCE, form)
        check(
            "token request: public client (client_id in the body, no Authorization)",
            form.get("client_id") == client_id and "authorization" not in exchange.get("headers", {}),
            exchange.get("headers"),
        )
        first = storage.tokens
        check("tokens: a Bearer access token and a refresh token", first is not None and bool(first.access_token) and bool(first.refresh_token), first and first.model_dump(exclude={"access_token", "refresh_token"}))
        claims = jwt_payload(first.access_token if first else None)
        check("access token: aud is BASE/api", aud_is(claims.get("aud"), RESOURCE), claims.get("aud"))
        check("access token: iss is BASE", claims.get("iss") == BASE, claims.get("iss"))
        check("access token: scope data:read", "data:read" in str(claims.get("scope", "")).split(), claims.get("scope"))
        check(
            f"access token: client_id is the client's{' (the document URL)' if CIMD_URL else ''}",
            bool(claims.get("client_id")) and claims.get("client_id") == client_id,
            claims.get("client_id"),
        )
        check("the SDK's GET /api/data (retried with the token) is 200", response.status_code == 200, f"HTTP {response.status_code}: {response.text}")
        last = sent_to(API)[-1] if sent_to(API) else {}
        check("it carried the access token", first is not None and last.get("headers", {}).get("authorization") == f"Bearer {first.access_token}")

        # Refresh: mark the access token expired, as if its lifetime had passed.
        provider.context.token_expiry_time = time.time() - 1
        redirects_before = len(authorization_urls)
        try:
            response = await client.get(API)
        except Exception as e:  # noqa: BLE001
            fatal("the SDK's refresh", e)
        refresh = (sent_to(as_meta["token_endpoint"], "POST") or [{}])[-1]
        form = form_of(refresh.get("body"))
        check("refresh request: grant_type refresh_token", form.get("grant_type") == "refresh_token" and first is not None and form.get("refresh_token") == first.refresh_token, form)
        check("refresh request: resource is BASE/api", form.get("resource") == RESOURCE, form)
        check(
            "refresh request: public client (client_id in the body, no Authorization)",
            form.get("client_id") == client_id and "authorization" not in refresh.get("headers", {}),
            refresh.get("headers"),
        )
        check("refresh: no new authorization", len(authorization_urls) == redirects_before)
        second = storage.tokens
        check("refresh: a new access token", second is not None and first is not None and second.access_token != first.access_token)
        check("refresh: the refresh token rotated", second is not None and first is not None and bool(second.refresh_token) and second.refresh_token != first.refresh_token)
        claims = jwt_payload(second.access_token if second else None)
        check("refreshed access token: aud is BASE/api", aud_is(claims.get("aud"), RESOURCE), claims.get("aud"))
        check("refreshed access token: the same client_id", bool(claims.get("client_id")) and claims.get("client_id") == client_id, claims.get("client_id"))
        check("the SDK's GET /api/data after the refresh is 200", response.status_code == 200, f"HTTP {response.status_code}: {response.text}")
        last = sent_to(API)[-1] if sent_to(API) else {}
        check("it carried the refreshed token", second is not None and last.get("headers", {}).get("authorization") == f"Bearer {second.access_token}")

    async with httpx2.AsyncClient(timeout=30) as plain:
        r = await plain.get(API, headers={"authorization": f"Bearer {second.access_token if second else ''}"})
        check("the refreshed token reads /api/data on its own", r.status_code == 200, f"HTTP {r.status_code}")
    finish()


if __name__ == "__main__":
    asyncio.run(main())
