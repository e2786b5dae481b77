"""The OAuth server as it ships: template.yaml on the local stack (API Gateway front, the
real Lambda binaries under their template IAM policies, DynamoDB and Secrets Manager in the
emulator with IAM enforced). Black-box: everything goes through the HTTP API, the example
protected API or the AWS APIs, as a deployed stack's users and operators would."""
import base64
import json
import time
import urllib.parse

import pytest
import requests
import yaml

from conftest import admin_client, session_from

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
