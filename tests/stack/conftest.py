"""Fixtures of the local-stack suite: the running stack's state (STACK_STATE, the
stack.json that `python infra/stack` writes) and HTTP clients bound to a chosen loopback
source address, so per-address limits are tested at their defaults: API Gateway's
`sourceIp` is the TCP peer, and every test talks from its own address.
"""
import base64
import hashlib
import itertools
import json
import os
import re
import secrets
import urllib.parse

import boto3
import pytest
import requests
from requests.adapters import HTTPAdapter

_addresses = itertools.count(10)


class SourceAdapter(HTTPAdapter):
    def __init__(self, source_ip, **kw):
        self.source_ip = source_ip
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source_ip, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(ip: str) -> requests.Session:
    s = requests.Session()
    s.mount("http://", SourceAdapter(ip))
    return s


class Client:
    """A caller of the stack from one source address."""

    def __init__(self, state, ip):
        self.state, self.ip = state, ip
        self.base = state["base"]
        self.http = session_from(ip)

    def get(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        return self.http.get(self.base + path, timeout=30, **kw)

    def post(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        return self.http.post(self.base + path, timeout=30, **kw)

    def register_user(self, username=None, password="correct horse battery staple"):
        username = username or f"u{secrets.token_hex(6)}"
        r = self.post("/register", json={"username": username, "password": password})
        assert r.status_code == 201, r.text
        return username, password

    def register_client(self, **metadata):
        r = self.post("/register_client", json=metadata,
                      headers={"Authorization": f"Bearer {self.state['registration_token']}"})
        assert r.status_code == 201, r.text
        return r.json()

    def client_credentials(self, client, scope=None):
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        r = self.post("/oauth/token", data=data, auth=(client["client_id"], client["client_secret"]))
        assert r.status_code == 200, r.text
        return r.json()

    def authorize(self, client, scope, redirect_uri="http://127.0.0.1:8080/callback", **extra):
        """A browser's GET /oauth/authorize (PKCE S256, a fresh state and nonce; `extra`
        parameters such as prompt): (response, code_verifier, state)."""
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(8)
        q = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect_uri,
             "scope": scope, "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
             "nonce": "n-" + state, **extra}
        r = self.get("/oauth/authorize?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote))
        return r, verifier, state

    def login(self, client, username, password, scope="openid profile offline_access data:read",
              redirect_uri="http://127.0.0.1:8080/callback", decision="allow"):
        """The browser's part of the code flow: the login form, posted with its cookie."""
        page, verifier, state = self.authorize(client, scope, redirect_uri)
        assert page.status_code == 200, page.text
        form = {"request": hidden(page.text, "request"), "username": username, "password": password,
                "decision": decision}
        r = self.post("/oauth/authorize", data=form, headers={"Origin": self.base})
        return r, verifier, state

    def consent(self, page, decision="allow"):
        """Answer the consent page of a signed-in browser (no password: `request` and
        `decision` only), as a same-origin form post."""
        assert page.status_code == 200 and 'name="password"' not in page.text, page.text
        return self.post("/oauth/authorize", data={"request": hidden(page.text, "request"), "decision": decision},
                         headers={"Origin": self.base})

    def exchange(self, client, code, verifier, redirect_uri="http://127.0.0.1:8080/callback"):
        """The client's code exchange at /oauth/token (200 required): the token response."""
        r = self.post("/oauth/token", auth=(client["client_id"], client["client_secret"]),
                      data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                            "redirect_uri": redirect_uri})
        assert r.status_code == 200, r.text
        return r.json()

    def refresh(self, client, refresh_token):
        """A refresh_token grant at /oauth/token: the response, whatever its status."""
        return self.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                         auth=(client["client_id"], client["client_secret"]))

    def signed_in(self):
        """Whether this browser's sign-in session is live (the account page names a user)."""
        r = self.get("/account")
        assert r.status_code == 200, r.text
        return "Signed in as <strong>" in r.text


def pkce_pair():
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden(html, name):
    """The value of the page's hidden input `name` (the first one)."""
    m = re.search(r'<input type="hidden" name="%s" value="([^"]*)"' % re.escape(name), html)
    assert m, f"no hidden {name} in: {html}"
    return m.group(1)


def redirect_params(response):
    """The query parameters of a redirect's Location (a 302 or 303 required)."""
    assert response.status_code in (302, 303), f"{response.status_code} {response.text}"
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(response.headers["location"]).query))


@pytest.fixture(scope="session")
def state():
    path = os.environ.get("STACK_STATE")
    assert path, "STACK_STATE must name the running stack's stack.json (scripts/stack-test.sh sets it)"
    with open(path) as f:
        st = json.load(f)
    outputs = st["stacks"]["oauth"]["outputs"]
    sm = admin_client(st, "secretsmanager")
    st["registration_token"] = sm.get_secret_value(SecretId=outputs["RegistrationTokenSecretArn"])["SecretString"]
    return st


def admin_client(state, service):
    return boto3.client(service, endpoint_url=state["emulator"], region_name=state["region"],
                        aws_access_key_id=state["admin"]["AccessKeyId"],
                        aws_secret_access_key=state["admin"]["SecretAccessKey"])


def _new_client(state):
    n = next(_addresses)
    return Client(state, f"127.0.{n // 250}.{n % 250 + 2}")


@pytest.fixture
def client(state):
    """A caller from a loopback address no other test uses."""
    return _new_client(state)


@pytest.fixture
def new_client(state):
    """Another caller (a browser without cookies) from an address no other test uses."""
    return lambda: _new_client(state)


@pytest.fixture(scope="session", autouse=True)
def no_access_denied(state):
    """After the suite: IAM refused nothing that any caller tried since the stack started
    (the walk-throughs and the browser test included), but the deliberate probes: a missing
    permission fails here even where a function degrades gracefully."""
    yield
    decisions = requests.get(state["emulator"] + "/_stack/iam", timeout=30).json()["decisions"]
    denied = [d for d in decisions if not d["allowed"] and not d.get("session", "").startswith("probe")]
    assert not denied, "IAM denied:\n" + "\n".join(
        f"  {d['principal']}: {d['action']} on {d['resource']} {d['leading_keys']}" for d in denied[:20])
