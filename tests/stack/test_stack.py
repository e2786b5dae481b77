"""The OAuth server as it ships: template.yaml on the local stack (API Gateway front, the
real Lambda binaries under their template IAM policies, DynamoDB and Secrets Manager in the
emulator with IAM enforced). Black-box: everything goes through the HTTP API, the example
protected API or the AWS APIs, as a deployed stack's users and operators would."""
import base64
import hashlib
import json
import time
import urllib.parse

import pytest
import requests
import yaml

from conftest import admin_client, hidden, redirect_params, session_from

GATEWAY_404 = {"message": "Not Found"}
GATEWAY_500 = {"message": "Internal Server Error"}


def jwt_header(token):
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def jwt_claims(token):
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def outputs(state):
    return state["stacks"]["oauth"]["outputs"]


# -- wiring ---------------------------------------------------------------------------------

def test_every_operation_of_the_contract_reaches_its_function(client):
    """Every path and method in openapi.yaml is routed (no API Gateway 404) to a function that
    starts and answers (no API Gateway 500): routes, permissions, environment and IAM."""
    with open("openapi.yaml") as f:
        spec = yaml.safe_load(f)
    checked = 0
    for path, ops in spec["paths"].items():
        for method in ops:
            if method not in ("get", "post", "options"):
                continue
            r = client.http.request(method.upper(), client.base + path, allow_redirects=False, timeout=30,
                                    headers={"Origin": "http://127.0.0.1:9999", "Access-Control-Request-Method": "POST"})
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
            assert body != GATEWAY_404, f"{method.upper()} {path} is not routed"
            assert body != GATEWAY_500 and r.status_code < 500, f"{method.upper()} {path}: {r.status_code} {r.text[:200]}"
            checked += 1
    assert checked >= 15


def test_discovery_names_the_stacks_issuer_and_publishes_keys(client, state):
    meta = client.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == state["issuer"] == outputs(state)["IssuerUrl"]
    jwks = client.get("/.well-known/jwks.json").json()
    assert len(jwks["keys"]) >= 2 and all("d" not in k for k in jwks["keys"])
    pre = client.http.options(client.base + "/.well-known/jwks.json", timeout=10,
                              headers={"Origin": "https://spa.example", "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204 and pre.headers.get("access-control-allow-origin") == "*"


def test_unrouted_paths_get_api_gateways_404(client):
    for method, path in [("GET", "/nope"), ("DELETE", "/oauth/token"), ("POST", "/oauth/token/")]:
        r = client.http.request(method, client.base + path, timeout=10)
        assert r.status_code == 404 and r.json() == GATEWAY_404, (method, path)


# -- the README's flows, as a deployed user runs them ----------------------------------------

def test_registration_needs_the_token_from_secrets_manager(client, state):
    r = client.post("/register_client", json={"grant_types": ["client_credentials"], "scope": "data:read"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    r = client.post("/register_client", json={"grant_types": ["client_credentials"], "scope": "data:read"},
                    headers={"Authorization": "Bearer " + "x" * 43})
    assert r.status_code == 401
    c = client.register_client(grant_types=["client_credentials"], scope="data:read")
    assert c["client_id"] and c["client_secret"]


def test_users_register_once(client):
    name, pw = client.register_user()
    r = client.post("/register", json={"username": name.upper(), "password": pw})
    assert r.status_code == 409
    r = client.post("/register", data=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_client_credentials_data_introspection_and_revocation(client):
    c = client.register_client(grant_types=["client_credentials"], scope="data:read data:write")
    token = client.client_credentials(c)["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/data", json={"value": {"hello": "stack"}}, headers=auth).status_code == 201
    data = client.get("/api/data", headers=auth).json()
    assert any(item["value"] == {"hello": "stack"} for item in data["items"])
    basic = (c["client_id"], c["client_secret"])
    assert client.post("/oauth/introspect", data={"token": token}, auth=basic).json()["active"] is True
    assert client.post("/oauth/revoke", data={"token": token}, auth=basic).status_code == 200
    assert client.post("/oauth/introspect", data={"token": token}, auth=basic).json()["active"] is False
    r = client.get("/api/data", headers=auth)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


def test_wrong_client_secrets_are_refused_and_counted(client):
    c = client.register_client(grant_types=["client_credentials"], scope="data:read")
    r = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert client.client_credentials(c)["token_type"] == "Bearer"


def test_the_code_flow_with_pkce_refresh_rotation_and_reuse_detection(client):
    user, pw = client.register_user()
    web = client.register_client(client_name="Stack web app", redirect_uris=["http://127.0.0.1:8080/callback"],
                                 scope="openid profile offline_access data:read")
    resp, verifier, state_value = client.login(web, user, pw)
    assert resp.status_code in (302, 303), resp.text
    location = urllib.parse.urlparse(resp.headers["location"])
    q = dict(urllib.parse.parse_qsl(location.query))
    assert location.netloc == "127.0.0.1:8080" and q["state"] == state_value and q["iss"] == client.base
    basic = (web["client_id"], web["client_secret"])
    exchange = {"grant_type": "authorization_code", "code": q["code"], "code_verifier": verifier,
                "redirect_uri": "http://127.0.0.1:8080/callback"}
    tokens = client.post("/oauth/token", data=exchange, auth=basic).json()
    assert jwt_claims(tokens["id_token"])["nonce"] == "n-" + state_value
    info = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert info["preferred_username"] == user
    # The code is single use: a replay is refused and revokes what it issued.
    replay = client.post("/oauth/token", data=exchange, auth=basic)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    r = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                    auth=basic)
    assert r.status_code == 400, "the replay revoked the family"
    # A fresh login: refresh rotates; reusing the old refresh token revokes the family.
    resp, verifier, _ = client.login(web, user, pw)
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(resp.headers["location"]).query))["code"]
    tokens = client.post("/oauth/token", data={**exchange, "code": code, "code_verifier": verifier}, auth=basic).json()
    first = tokens["refresh_token"]
    user_token = {"Authorization": f"Bearer {tokens['access_token']}"}
    intro = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=basic).json()
    assert intro["active"] is True and intro["username"] == user
    example = session_from(client.ip)
    assert example.get(client.state["example"] + "/api/data", headers=user_token, timeout=30).status_code == 200
    rotated = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": first}, auth=basic)
    assert rotated.status_code == 200 and rotated.json()["refresh_token"] != first
    time.sleep(6)  # past REFRESH_REUSE_GRACE_SECONDS
    reuse = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": first}, auth=basic)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    newest = client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                 "refresh_token": rotated.json()["refresh_token"]}, auth=basic)
    assert newest.status_code == 400, "reuse revoked the whole family"
    r = example.get(client.state["example"] + "/api/data", headers=user_token, timeout=30)
    assert r.status_code == 403, "the family's access tokens are refused by the authorizer too"
    assert client.get("/api/data", headers=user_token).status_code == 401


def test_deny_redirects_access_denied(client):
    user, pw = client.register_user()
    web = client.register_client(redirect_uris=["http://127.0.0.1:8080/callback"], scope="openid data:read")
    resp, _, _ = client.login(web, user, pw, scope="openid data:read", decision="deny")
    assert resp.status_code in (302, 303)
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlparse(resp.headers["location"]).query))["error"] == "access_denied"


def test_failed_logins_are_throttled_per_username(client):
    user, pw = client.register_user()
    web = client.register_client(redirect_uris=["http://127.0.0.1:8080/callback"], scope="openid")
    statuses = [client.login(web, user, "wrong password " + str(i), scope="openid")[0].status_code for i in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses
    assert client.login(web, user, pw, scope="openid")[0].status_code == 429, "the right password is refused too"


def test_registration_is_limited_per_source_address_at_the_default(client, state):
    assert state["stacks"]["oauth"]["parameters"]["RegisterLimitPerIp"] == "20", "the suite runs the default limit"
    statuses = []
    for _ in range(21):
        r = client.post("/register", json={"username": "x", "password": "short"})
        statuses.append(r.status_code)
    assert statuses[:20] == [400] * 20 and statuses[20] == 429, statuses
    assert r.json()["error"] == "too_many_requests" and "retry-after" in {k.lower() for k in r.headers}


def test_cors_preflight_on_the_token_endpoint(client, state):
    origin = state["stacks"]["oauth"]["parameters"]["CorsAllowedOrigins"]
    assert origin, "the suite deploys with CorsAllowedOrigins"
    ok = client.http.options(client.base + "/oauth/token", timeout=10,
                             headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == origin
    bad = client.http.options(client.base + "/oauth/token", timeout=10,
                              headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers


# -- the example protected API behind the shipped Lambda authorizer ----------------------------

def test_the_example_api_admits_tokens_by_route_scope(client, state):
    api = session_from(client.ip)
    base = state["example"]
    reader = client.register_client(grant_types=["client_credentials"], scope="data:read")
    token = client.client_credentials(reader)["access_token"]
    r = api.get(base + "/api/data", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    echo = r.json()
    assert echo == {"route": "GET /api/data", "authorizer": "lambda", "sub": jwt_claims(token)["sub"],
                    "client_id": reader["client_id"], "scope": "data:read"}
    assert api.post(base + "/api/data", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 403
    whoami = api.get(base + "/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert whoami.status_code == 200 and whoami.json()["route"] == "GET /whoami", "an explicit any-token rule"
    assert api.get(base + "/nope", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 404
    assert api.get(base + "/api/data", timeout=30).status_code == 401, "no Authorization: refused before the authorizer"
    assert api.get(base + "/api/data", headers={"Authorization": "Bearer garbage"}, timeout=30).status_code == 403
    client.post("/oauth/revoke", data={"token": token}, auth=(reader["client_id"], reader["client_secret"]))
    r = api.get(base + "/api/data", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}, "revoked at once (result TTL 0)"


# -- key rotation as Secrets Manager drives it --------------------------------------------------

def test_key_rotation_publishes_before_signing_so_no_verifier_refuses_a_token(client, state):
    """Secrets Manager drives the rotation function (four steps). The new key is in the JWKS
    at once and signs only KeyPublishDelaySeconds later (longer than KeysCacheSeconds), so
    the first token it signs is accepted by every verifier at once, and a token from before
    stays valid throughout."""
    c = client.register_client(grant_types=["client_credentials"], scope="data:read")
    before = client.client_credentials(c)["access_token"]
    sm = admin_client(state, "secretsmanager")
    secret = outputs(state)["SigningKeysSecretArn"]
    version = sm.rotate_secret(SecretId=secret)["VersionId"]
    deadline = time.time() + 60
    while "AWSCURRENT" not in sm.describe_secret(SecretId=secret)["VersionIdsToStages"].get(version, []):
        assert time.time() < deadline, "the rotation did not finish"
        time.sleep(0.2)
    params = state["stacks"]["oauth"]["parameters"]
    cache, delay = int(params["KeysCacheSeconds"]), int(params["KeyPublishDelaySeconds"])
    assert delay > cache
    jwks = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert len(jwks) >= 4, "the new keys are published with the rotation"
    api = session_from(client.ip)

    def accepted(token):
        auth = {"Authorization": f"Bearer {token}"}
        return (client.get("/api/data", headers=auth).status_code,
                api.get(state["example"] + "/api/data", headers=auth, timeout=30).status_code)

    deadline = time.time() + delay + cache + 15
    while True:
        assert accepted(before) == (200, 200), "a token signed before the rotation must keep working"
        token = client.client_credentials(c)["access_token"]
        if jwt_header(token)["kid"] != jwt_header(before)["kid"]:
            assert jwt_header(token)["kid"] in jwks, "it signs with a key published at the rotation"
            assert accepted(token) == (200, 200), "the first token of the new key is accepted everywhere"
            break
        assert time.time() < deadline, f"no token from the new key after {delay + cache + 15} s"
        time.sleep(1)


# -- IAM is really enforced ----------------------------------------------------------------------

def test_a_function_role_cannot_do_what_its_policy_does_not_grant(state):
    """The emulator refuses a call the role lacks (so a missing permission cannot pass)."""
    role = state["functions"]["oauth-register"]["role"]
    r = requests.post(state["emulator"] + "/_stack/assume-role",
                      json={"RoleArn": role, "RoleSessionName": "probe"}, timeout=10).json()
    ddb = __import__("boto3").client("dynamodb", endpoint_url=state["emulator"], region_name=state["region"],
                                     aws_access_key_id=r["AccessKeyId"], aws_secret_access_key=r["SecretAccessKey"],
                                     aws_session_token=r["SessionToken"])
    table = outputs(state)["TableName"]
    with pytest.raises(Exception, match="AccessDenied"):
        ddb.delete_item(TableName=table, Key={"pk": {"S": "CLIENT#x"}, "sk": {"S": "CLIENT"}})
    with pytest.raises(Exception, match="AccessDenied"):
        ddb.scan(TableName=table)


# -- sign in once: sessions, remembered consent, logout, the account page ----------------------
# Through the authorize function (sessions, grants and refresh-family entries under ACCOUNT#,
# family revocations under REVOKED#fam#, ID token hints verified with the public keys) and
# the token function (a redemption or refresh drawing on the grant and the session), each
# under its template policy: the suite's IAM check proves the grants cover them.

APP_CB = "https://app.example.test/cb"
APP_BYE = "https://app.example.test/bye"
LOOPBACK_CB = "http://127.0.0.1:8080/callback"


def https_app(client, name="Stack https app", scope="openid offline_access data:read"):
    """A confidential client redirecting to an https, non-loopback URI (nothing listens
    there: only the Location header is read), with a post-logout URI."""
    return client.register_client(client_name=name, redirect_uris=[APP_CB], post_logout_redirect_uris=[APP_BYE],
                                  scope=scope)


def code_of(browser, response, state_value, redirect_uri=APP_CB):
    """The code of a redirect back to the client (its state and the issuer checked)."""
    q = redirect_params(response)
    assert response.headers["location"].startswith(redirect_uri + "?"), response.headers["location"]
    assert q.get("state") == state_value and q.get("iss") == browser.base, q
    assert "code" in q, q
    return q["code"]


def is_consent_page(response, user):
    return (response.status_code == 200 and 'name="password"' not in response.text
            and "Allow access" in response.text and f"You are signed in as <strong>{user}</strong>" in response.text)


def is_password_page(response):
    return response.status_code == 200 and 'name="password"' in response.text and 'name="username"' in response.text


def tokens_for(browser, app, user, pw, scope, redirect_uri=APP_CB):
    """Tokens of `app` for `scope` through `browser`: signing in, consenting or silently."""
    r, verifier, st = browser.authorize(app, scope, redirect_uri)
    if is_password_page(r):
        r = browser.post("/oauth/authorize", headers={"Origin": browser.base},
                         data={"request": hidden(r.text, "request"), "username": user, "password": pw,
                               "decision": "allow"})
    elif r.status_code == 200:
        r = browser.consent(r)
    return browser.exchange(app, code_of(browser, r, st, redirect_uri), verifier, redirect_uri)


def account_page(browser, user):
    r = browser.get("/account")
    assert r.status_code == 200 and f"Signed in as <strong>{user}</strong>" in r.text, r.text
    return r


def account_action(browser, page, **form):
    """Post one of the account page's forms with the page's `csrf`, same-origin."""
    return browser.post("/account", data={"csrf": hidden(page.text, "csrf"), **form},
                        headers={"Origin": browser.base})


def test_one_sign_in_then_an_https_confidential_client_gets_its_code_at_once_once_allowed(client, new_client):
    user, pw = client.register_user()
    first = client.register_client(client_name="Loopback app", redirect_uris=[LOOPBACK_CB], scope="openid data:read")
    app = https_app(client)
    resp, verifier, st = client.login(first, user, pw, scope="openid data:read")
    assert resp.status_code == 303, resp.text
    assert "session" in client.http.cookies, "the login begins a sign-in session"
    login_tokens = client.exchange(first, code_of(client, resp, st, LOOPBACK_CB), verifier)
    auth_time = jwt_claims(login_tokens["id_token"])["auth_time"]
    # First time for the https client: the consent page, no password asked.
    page, verifier, st = client.authorize(app, "openid data:read", APP_CB)
    assert is_consent_page(page, user), page.text
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    done = client.consent(page, "allow")
    assert done.status_code == 303, done.text
    tokens = client.exchange(app, code_of(client, done, st), verifier, APP_CB)
    claims = jwt_claims(tokens["id_token"])
    assert claims["aud"] == app["client_id"] and claims["nonce"] == "n-" + st
    assert claims["auth_time"] == auth_time, "the session's auth_time, not the consent's"
    # Allowed once: the code at once, no page, for these scopes or fewer.
    for scope in ("openid data:read", "openid"):
        r, verifier, st = client.authorize(app, scope, APP_CB)
        assert r.status_code == 302, f"{scope}: {r.status_code} {r.text}"
        tokens = client.exchange(app, code_of(client, r, st), verifier, APP_CB)
        assert tokens["scope"] == scope and jwt_claims(tokens["id_token"])["auth_time"] == auth_time
        info = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 200 and info.json()["sub"] == claims["sub"], info.text
    # More than was allowed: the consent page again; a loopback client always gets the page.
    r, _, _ = client.authorize(app, "openid offline_access data:read", APP_CB)
    assert is_consent_page(r, user) and "Stay connected" in r.text, r.text
    r, _, _ = client.authorize(first, "openid data:read", LOOPBACK_CB)
    assert is_consent_page(r, user), r.text
    # Another browser is not signed in.
    r, _, _ = new_client().authorize(app, "openid", APP_CB)
    assert is_password_page(r), r.text


def test_prompt_none_gives_a_code_from_the_session_and_nothing_without_one(client, new_client):
    user, pw = client.register_user()
    app = https_app(client)
    resp, verifier, st = client.login(app, user, pw, scope="openid data:read", redirect_uri=APP_CB)
    assert resp.status_code == 303, resp.text
    client.exchange(app, code_of(client, resp, st), verifier, APP_CB)
    r, verifier, st = client.authorize(app, "openid data:read", APP_CB, prompt="none")
    assert r.status_code == 302, r.text
    tokens = client.exchange(app, code_of(client, r, st), verifier, APP_CB)
    assert tokens["scope"] == "openid data:read"
    # With the user's own ID token as hint too.
    r, verifier, st = client.authorize(app, "openid", APP_CB, prompt="none", id_token_hint=tokens["id_token"])
    client.exchange(app, code_of(client, r, st), verifier, APP_CB)
    # More than was allowed: consent_required, to the (trusted) client, with its state.
    r, _, st = client.authorize(app, "openid offline_access data:read", APP_CB, prompt="none")
    q = redirect_params(r)
    assert q.get("error") == "consent_required" and q.get("state") == st and "code" not in q, q
    # A browser without the session cookie: login_required, never a code.
    fresh = new_client()
    r, _, st = fresh.authorize(app, "openid data:read", APP_CB, prompt="none")
    q = redirect_params(r)
    assert r.headers["location"].startswith(APP_CB + "?")
    assert q.get("error") == "login_required" and q.get("state") == st and "code" not in q, q
    # prompt=none with another value is refused, not ignored.
    r, _, _ = client.authorize(app, "openid", APP_CB, prompt="none login")
    assert "code=" not in r.headers.get("location", "")
    assert "invalid_request" in r.headers.get("location", "") + r.text, f"{r.status_code} {r.text}"


def test_logout_with_the_id_token_hint_ends_the_session_and_its_refresh_tokens_not_offline_ones(client, new_client):
    meta = client.get("/.well-known/openid-configuration").json()
    assert meta["end_session_endpoint"] == client.base + "/oauth/logout"
    assert "none" in meta["prompt_values_supported"]
    user, pw = client.register_user()
    app = https_app(client)
    bound = tokens_for(client, app, user, pw, "openid data:read")
    offline = tokens_for(client, app, user, pw, "openid offline_access data:read")
    assert bound.get("refresh_token") and offline.get("refresh_token"), (bound, offline)
    cookie = client.http.cookies["session"]
    q = urllib.parse.urlencode({"id_token_hint": bound["id_token"], "post_logout_redirect_uri": APP_BYE,
                                "state": "s"})
    r = client.get("/oauth/logout?" + q)
    assert r.status_code == 302, r.text
    assert r.headers["location"] == APP_BYE + "?state=s"
    assert "session" not in client.http.cookies, "the session cookie is cleared"
    assert not client.signed_in()
    # The session's refresh family ends with it (its access tokens too); offline access does not.
    r = client.refresh(app, bound["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert client.get("/api/data", headers={"Authorization": f"Bearer {bound['access_token']}"}).status_code == 401
    r = client.refresh(app, offline["refresh_token"])
    assert r.status_code == 200, r.text
    assert client.get("/api/data", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).status_code == 200
    # The browser signs in again; the old cookie signs nobody in.
    r, _, _ = client.authorize(app, "openid data:read", APP_CB)
    assert is_password_page(r), r.text
    stale = new_client()
    r = stale.get("/account", headers={"Cookie": f"session={cookie}"})
    assert r.status_code == 200 and 'name="password"' in r.text and "Signed in as" not in r.text, r.text


def test_logout_without_a_hint_asks_first_and_signs_out_only_when_confirmed(client):
    user, pw = client.register_user()
    app = https_app(client, name="Confirming app")
    bound = tokens_for(client, app, user, pw, "openid data:read")
    q = urllib.parse.urlencode({"client_id": app["client_id"], "post_logout_redirect_uri": APP_BYE, "state": "s1"})
    page = client.get("/oauth/logout?" + q)
    assert page.status_code == 200 and "Sign out?" in page.text and "Confirming app" in page.text, page.text
    assert "location" not in page.headers and page.headers["x-frame-options"] == "DENY"
    assert client.signed_in(), "showing the question signs nobody out"
    request = hidden(page.text, "request")
    cross = client.post("/oauth/logout", data={"request": request, "decision": "logout"},
                        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 400, cross.text
    stay = client.post("/oauth/logout", data={"request": request, "decision": "stay"}, headers={"Origin": client.base})
    assert stay.status_code == 200 and "still signed in" in stay.text, stay.text
    assert client.signed_in()
    assert client.refresh(app, bound["refresh_token"]).status_code == 200, "nothing was revoked"
    done = client.post("/oauth/logout", data={"request": request, "decision": "logout"},
                       headers={"Origin": client.base})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == APP_BYE + "?state=s1"
    assert not client.signed_in()
    # Signed out already: a trusted client's post-logout URI is followed at once.
    r = client.get("/oauth/logout?" + q)
    assert r.status_code == 302 and r.headers["location"] == APP_BYE + "?state=s1", r.text


def test_the_account_page_disconnects_an_app_and_signs_out_of_every_browser(client, new_client):
    user, pw = client.register_user()
    photos = https_app(client, name="Photo printer")
    calendar = https_app(client, name="Calendar")
    laptop, phone = client, new_client()
    t_photos = tokens_for(laptop, photos, user, pw, "openid offline_access data:read")
    t_calendar = tokens_for(laptop, calendar, user, pw, "openid data:read")
    # The phone signs in on the account page itself.
    signin = phone.get("/account")
    assert signin.status_code == 200 and 'name="password"' in signin.text, signin.text
    r = phone.post("/account", headers={"Origin": phone.base},
                   data={"request": hidden(signin.text, "request"), "username": user, "password": pw})
    assert r.status_code == 303 and r.headers["location"] == phone.base + "/account?done=signed_in", r.text
    assert "You are signed in." in phone.get("/account?done=signed_in").text
    r, verifier, st = phone.authorize(calendar, "openid data:read", APP_CB)
    assert r.status_code == 302, "allowed in the other browser: the code at once"
    t_phone = phone.exchange(calendar, code_of(phone, r, st), verifier, APP_CB)
    page = account_page(laptop, user)
    assert "Photo printer" in page.text and "Calendar" in page.text and "app.example.test" in page.text
    assert "(this browser)" in page.text and page.text.count("Signed in 20") == 2, page.text
    # A form without the page's token, or from another site, changes nothing.
    r = laptop.post("/account", data={"action": "disconnect", "client_id": photos["client_id"]},
                    headers={"Origin": laptop.base})
    assert r.status_code == 400, r.text
    r = laptop.post("/account", data={"csrf": hidden(page.text, "csrf"), "action": "disconnect",
                                      "client_id": photos["client_id"]},
                    headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 400, r.text
    r = laptop.refresh(photos, t_photos["refresh_token"])
    assert r.status_code == 200, r.text
    t_photos = r.json()
    # Disconnect the photo printer: its grant goes, its (offline) tokens stop.
    page = account_page(laptop, user)
    done = account_action(laptop, page, action="disconnect", client_id=photos["client_id"])
    assert done.status_code == 303 and done.headers["location"] == laptop.base + "/account?done=disconnected", done.text
    page = account_page(laptop, user)
    assert "Photo printer" not in page.text and "Calendar" in page.text, page.text
    r = laptop.refresh(photos, t_photos["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert laptop.get("/api/data", headers={"Authorization": f"Bearer {t_photos['access_token']}"}).status_code == 401
    r, _, _ = laptop.authorize(photos, "openid", APP_CB)
    assert is_consent_page(r, user), "a disconnected app must ask again"
    # The calendar keeps working until every browser signs out.
    r = laptop.refresh(calendar, t_calendar["refresh_token"])
    assert r.status_code == 200, r.text
    t_calendar = r.json()
    done = account_action(laptop, page, action="signout_all")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == laptop.base + "/account?done=signed_out_everywhere"
    assert "session" not in laptop.http.cookies
    for browser in (laptop, phone):
        r = browser.get("/account")
        assert r.status_code == 200 and 'name="password"' in r.text and "Signed in as" not in r.text, r.text
    for tokens in (t_calendar, t_phone):
        r = laptop.refresh(calendar, tokens["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", "the sessions' tokens ended"


def test_a_password_change_on_the_account_page_signs_out_the_other_browsers(client, new_client):
    user, pw = client.register_user()
    app = https_app(client)
    laptop, phone = client, new_client()
    tokens_for(laptop, app, user, pw, "openid data:read")
    phone_tokens = tokens_for(phone, app, user, pw, "openid data:read")
    new_pw = "a much longer new passphrase"
    page = account_page(laptop, user)
    r = account_action(laptop, page, action="password", current_password="not it at all", new_password=new_pw,
                       confirm_password=new_pw)
    assert r.status_code == 401 and 'class="error"' in r.text, r.text
    page = account_page(laptop, user)
    done = account_action(laptop, page, action="password", current_password=pw, new_password=new_pw,
                          confirm_password=new_pw)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == laptop.base + "/account?done=password_changed"
    assert "Your password was changed" in laptop.get("/account?done=password_changed").text
    account_page(laptop, user)
    assert not phone.signed_in(), "the other browser is signed out"
    r = phone.refresh(app, phone_tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    fresh = new_client()
    assert fresh.login(app, user, pw, scope="openid", redirect_uri=APP_CB)[0].status_code == 401
    assert fresh.login(app, user, new_pw, scope="openid", redirect_uri=APP_CB)[0].status_code == 303


# -- resource servers (RFC 8707) through the shipped authorizer ----------------------------------

def test_the_authorizer_admits_only_tokens_for_the_resource_it_guards(client, state):
    """scripts/stack-test.sh registered https://other-api.example.test (oauth-admin put-resource)
    before the suites ran. A token for it is valid (this issuer, this key) but for another
    audience: the example API's authorizer, which guards the built-in <issuer>/api, refuses
    it even on a route any valid token of the issuer may call; a token for its own resource
    passes. The example API publishes its protected-resource metadata outside the authorizer."""
    api = session_from(client.ip)
    base = state["example"]
    c = client.register_client(grant_types=["client_credentials"], scope="data:read other:read")
    own = client.client_credentials(c)
    assert jwt_claims(own["access_token"])["aud"] == state["base"] + "/api"
    r = client.post("/oauth/token", data={"grant_type": "client_credentials", "resource": "https://other-api.example.test"},
                    auth=(c["client_id"], c["client_secret"]))
    assert r.status_code == 200, r.text
    other = r.json()
    assert jwt_claims(other["access_token"])["aud"] == "https://other-api.example.test"
    assert other["scope"] == "other:read"
    for route in ("/whoami", "/api/data"):
        ok = api.get(base + route, headers={"Authorization": f"Bearer {own['access_token']}"}, timeout=30)
        assert ok.status_code == 200, (route, ok.text)
        refused = api.get(base + route, headers={"Authorization": f"Bearer {other['access_token']}"}, timeout=30)
        assert refused.status_code == 403, (route, refused.text)
    # The built-in API refuses it too, with the challenge that names its metadata.
    r = client.get("/api/data", headers={"Authorization": f"Bearer {other['access_token']}"})
    assert r.status_code == 401 and "resource_metadata=" in r.headers["www-authenticate"]
    meta = api.get(base + "/.well-known/oauth-protected-resource", timeout=30)
    assert meta.status_code == 200, meta.text
    assert meta.json()["resource"] == state["base"] + "/api"
    assert meta.json()["authorization_servers"] == [state["base"]]
    r = client.post("/oauth/token", data={"grant_type": "client_credentials", "resource": "https://unknown.example.test"},
                    auth=(c["client_id"], c["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"


# -- DPoP with an independent client (requests-oauth2client) -------------------------------------

def test_dpop_bound_tokens_from_an_independent_client_pass_the_authorizer_only_with_their_proof(client, state):
    """requests-oauth2client (PyPI) makes the proofs: a client_credentials token bound to its
    key, used at the built-in API and through the example API's Lambda authorizer (API
    Gateway's event: the called URL rebuilt from it), refused as Bearer and with a proof by
    another key."""
    from requests_oauth2client import ClientSecretBasic, DPoPKey, OAuth2Client
    from requests_oauth2client.dpop import DPoPToken

    reader = client.register_client(grant_types=["client_credentials"], scope="data:read")
    key = DPoPKey.generate(alg="ES256")
    # The client registered client_secret_basic, and must use it.
    oauth = OAuth2Client(token_endpoint=client.base + "/oauth/token",
                         auth=ClientSecretBasic(reader["client_id"], reader["client_secret"]),
                         session=session_from(client.ip), testing=True)  # the local stack is plain http
    token = oauth.client_credentials(scope="data:read", dpop_key=key)
    assert isinstance(token, DPoPToken) and token.token_type.lower() == "dpop", token
    assert jwt_claims(token.access_token)["cnf"]["jkt"] == key.dpop_jkt
    api = session_from(client.ip)
    # The built-in API and the example API behind the authorizer: the token as its own auth
    # handler (a fresh proof per request, with ath).
    r = api.get(client.base + "/api/data", auth=token, timeout=30)
    assert r.status_code == 200, r.text
    r = api.get(state["example"] + "/api/data", auth=token, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["client_id"] == reader["client_id"]
    # As Bearer, or with another key's proof: refused by both.
    bearer = {"Authorization": f"Bearer {token.access_token}"}
    assert api.get(client.base + "/api/data", headers=bearer, timeout=30).status_code == 401
    assert api.get(state["example"] + "/api/data", headers=bearer, timeout=30).status_code == 403
    ath = base64.urlsafe_b64encode(hashlib.sha256(token.access_token.encode()).digest()).rstrip(b"=").decode()
    other = DPoPKey.generate(alg="ES256")
    forged = other.proof(htm="GET", htu=state["example"] + "/api/data", ath=ath)
    r = api.get(state["example"] + "/api/data", timeout=30,
                headers={"Authorization": f"DPoP {token.access_token}", "DPoP": str(forged)})
    assert r.status_code == 403, r.text


def test_the_device_flow_from_an_independent_client_through_the_stack(client, new_client, state):
    """requests-oauth2client (PyPI) is the device: it finds the device authorization endpoint
    by discovery, starts, and polls with its own pacing; a browser (another address) enters
    the code at /device, signs in and allows. The tokens pass the built-in API and the example
    API's authorizer; the device's refresh token works; the code is spent."""
    from requests_oauth2client import DeviceAuthorizationPollingJob, OAuth2Client

    user, pw = client.register_user()
    tv = client.register_client(client_name="Stack TV", token_endpoint_auth_method="none",
                                grant_types=["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
                                scope="openid offline_access data:read")
    # The library reads the token endpoint from discovery but not the device authorization
    # endpoint (requests-oauth2client 1.8): it is taken from the same document here.
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["device_authorization_endpoint"] == client.base + "/oauth/device_authorization"
    assert "urn:ietf:params:oauth:grant-type:device_code" in meta["grant_types_supported"]
    device = OAuth2Client.from_discovery_endpoint(issuer=client.base, client_id=tv["client_id"],
                                                  session=session_from(client.ip), testing=True,
                                                  device_authorization_endpoint=meta["device_authorization_endpoint"])
    started = device.authorize_device(scope="openid offline_access data:read")
    assert started.verification_uri == client.base + "/device"
    assert started.verification_uri_complete == f"{client.base}/device?user_code={started.user_code}"
    job = DeviceAuthorizationPollingJob(device, started)
    assert job() is None, "authorization_pending until the user decides"
    # The user, in a browser elsewhere: the link's page, the code confirmed, a sign-in, Allow.
    browser = new_client()
    form = browser.get("/device?" + urllib.parse.urlencode({"user_code": started.user_code}))
    assert form.status_code == 200 and f'value="{started.user_code}"' in form.text, form.text
    page = browser.post("/device", data={"user_code": started.user_code}, headers={"Origin": browser.base})
    assert is_password_page(page) and "Stack TV" in page.text and started.user_code in page.text, page.text
    assert "Only continue if you started this yourself" in page.text
    done = browser.post("/oauth/authorize", headers={"Origin": browser.base},
                        data={"request": hidden(page.text, "request"), "username": user, "password": pw,
                              "decision": "allow"})
    assert done.status_code == 303 and done.headers["location"] == client.base + "/device?done=approved"
    token = None
    for _ in range(3):
        token = job()
        if token is not None:
            break
    assert token is not None and token.refresh_token and token.id_token, token
    assert jwt_claims(token.access_token)["client_id"] == tv["client_id"]
    api = session_from(client.ip)
    assert api.get(client.base + "/api/data", auth=token, timeout=30).status_code == 200
    r = api.get(state["example"] + "/api/data", auth=token, timeout=30)
    assert r.status_code == 200 and r.json()["client_id"] == tv["client_id"], r.text
    assert device.refresh_token(token.refresh_token).access_token
    # Redeemed once; the user code is spent.
    r = client.post("/oauth/token", data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                          "client_id": tv["client_id"], "device_code": started.device_code})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    again = browser.post("/device", data={"user_code": started.user_code}, headers={"Origin": browser.base})
    assert again.status_code == 400 and "That code is not valid" in again.text


def test_an_independent_clients_dpop_refresh_needs_the_bound_key(client, new_client):
    """requests-oauth2client binds a public client's tokens to its key at the code exchange;
    it refreshes with a proof by that key, and a refresh with another key is refused."""
    from requests_oauth2client import DPoPKey, OAuth2Client
    from requests_oauth2client.dpop import DPoPToken

    user, pw = client.register_user()
    app = client.register_client(client_name="Stack DPoP app", token_endpoint_auth_method="none",
                                 redirect_uris=["http://127.0.0.1:8080/callback"], scope="openid offline_access data:read")
    resp, verifier, _ = client.login(app, user, pw, scope="openid offline_access data:read")
    code = redirect_params(resp)["code"]
    key = DPoPKey.generate(alg="ES256")
    oauth = OAuth2Client(token_endpoint=client.base + "/oauth/token", client_id=app["client_id"],
                         session=session_from(client.ip), testing=True)
    token = oauth.authorization_code(code=code, code_verifier=verifier, redirect_uri="http://127.0.0.1:8080/callback",
                                     dpop_key=key)
    assert isinstance(token, DPoPToken) and jwt_claims(token.access_token)["cnf"]["jkt"] == key.dpop_jkt
    refreshed = oauth.refresh_token(token)
    assert isinstance(refreshed, DPoPToken) and jwt_claims(refreshed.access_token)["cnf"]["jkt"] == key.dpop_jkt
    r = session_from(client.ip).get(client.base + "/api/data", auth=refreshed, timeout=30)
    assert r.status_code == 200, r.text
    # With another key: refused, and the refresh token still works with its own.
    other = DPoPKey.generate(alg="ES256")
    with pytest.raises(Exception) as refused:
        oauth.token_request({"grant_type": "refresh_token", "refresh_token": refreshed.refresh_token}, dpop_key=other)
    assert getattr(refused.value, "error", None) == "invalid_dpop_proof", refused.value
    assert oauth.refresh_token(refreshed).access_token


def test_dpop_nonces_are_demanded_and_an_independent_client_retries_with_them(client):
    """The stack runs with DpopNonceRequired=true: a proof without the server's nonce gets
    use_dpop_nonce and the nonce in DPoP-Nonce; requests-oauth2client retries with it."""
    from requests_oauth2client import ClientSecretBasic, DPoPKey, OAuth2Client
    from requests_oauth2client.dpop import DPoPToken

    reader = client.register_client(grant_types=["client_credentials"], scope="data:read")
    key = DPoPKey.generate(alg="ES256")
    proof = key.proof(htm="POST", htu=client.base + "/oauth/token")
    r = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers={"DPoP": str(proof)},
                    auth=(reader["client_id"], reader["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "use_dpop_nonce", r.text
    assert r.headers.get("DPoP-Nonce"), r.headers
    oauth = OAuth2Client(token_endpoint=client.base + "/oauth/token",
                         auth=ClientSecretBasic(reader["client_id"], reader["client_secret"]),
                         session=session_from(client.ip), testing=True)
    fresh = DPoPKey.generate(alg="ES256")
    token = oauth.client_credentials(scope="data:read", dpop_key=fresh)
    assert isinstance(token, DPoPToken) and fresh.as_nonce, "the client retried with the server's nonce"
    r = session_from(client.ip).get(client.base + "/api/data", auth=token, timeout=30)
    assert r.status_code == 200, r.text


def test_function_logs_name_both_request_ids_and_carry_the_metric_lines(client, state):
    """docs/OPERATIONS.md, "Logs" and "Metrics": the token function's lines of one request
    carry API Gateway's request id (the access log's and the response's apigw-requestid) and
    the Lambda request id; its embedded-metric lines are in the stack's namespace."""
    import os
    logs = os.path.join(os.path.dirname(os.environ["STACK_STATE"]), "logs")
    c = client.register_client(grant_types=["client_credentials"], scope="data:read")
    r = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], c["client_secret"]))
    assert r.status_code == 200, r.text
    rid = r.headers["apigw-requestid"]
    deadline = time.time() + 10
    while True:
        with open(os.path.join(logs, "oauth-token.log")) as f:
            lines = [json.loads(l) for l in f if l.startswith("{")]
        mine = [l for l in lines if any(s.get("apigw_request_id") == rid for s in l.get("spans", []))]
        if mine or time.time() > deadline:
            break
        time.sleep(0.2)
    assert mine, f"no line of the token function names {rid}"
    assert all(any(s.get("requestId") for s in l["spans"]) for l in mine), mine
    assert any(l.get("message") == "request" and l.get("status") == 200 for l in mine), mine
    access = [l for l in open(os.path.join(logs, "oauth-HttpApi-access.log")) if rid in l]
    assert access and json.loads(access[0])["routeKey"] == "POST /oauth/token", access
    metrics = [l for l in lines if "_aws" in l]
    ours = [m for m in metrics if m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "oauth"]
    assert ours and all(m["Function"] == "token" for m in ours), metrics[:3]
    assert any(m.get("TokensIssued") == 1 and m.get("GrantType") == "client_credentials" for m in ours)
    assert any(m.get("Requests") == 1 and "Latency" in m for m in ours)


def test_the_stack_has_its_alarms_and_dashboard_with_the_parameters_thresholds(state):
    """The alarms and the dashboard as CloudFormation created them in the local stack: every
    threshold its parameter's default, no action without AlarmTopicArn, every metric of the
    stack's own in its namespace, and the dashboard's body valid JSON naming the functions."""
    cw = admin_client(state, "cloudwatch")
    alarms = {a["AlarmName"]: a for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix="oauth-")
              for a in page["MetricAlarms"]}
    want = {"oauth-register-5xx-rate": 5, "oauth-authorize-5xx-rate": 5, "oauth-token-5xx-rate": 5,
            "oauth-protected-5xx-rate": 5, "oauth-discovery-5xx-rate": 5, "oauth-lambda-errors": 1,
            "oauth-lambda-throttles": 1, "oauth-key-rotation-failures": 1, "oauth-dynamodb-system-errors": 1,
            "oauth-dynamodb-throttles": 1, "oauth-authorizer-denies": 100}
    assert {n: a["Threshold"] for n, a in alarms.items()} == want, sorted(alarms)
    for name, a in alarms.items():
        assert a.get("AlarmActions", []) == [] and a.get("OKActions", []) == [], name
        for m in a["Metrics"]:
            metric = m.get("MetricStat", {}).get("Metric")
            if metric and metric["Namespace"] not in ("AWS/Lambda", "AWS/DynamoDB"):
                assert metric["Namespace"] == "oauth", (name, metric)
    table = next(d["Value"] for m in alarms["oauth-dynamodb-throttles"]["Metrics"]
                 for d in m.get("MetricStat", {}).get("Metric", {}).get("Dimensions", []))
    assert table == state["stacks"]["oauth"]["outputs"]["TableName"]
    body = json.loads(cw.get_dashboard(DashboardName="oauth-oauth")["DashboardBody"])
    names = {m[3] for w in body["widgets"] for m in w["properties"]["metrics"] if m[0] == "oauth" and len(m) > 3}
    assert {"register", "authorize", "token", "protected", "discovery", "authorizer"} <= names, names
