"""The local AWS emulator: moto's server, one request at a time, optionally with IAM enforced.

    python infra/stack/emulator.py HOST PORT [--iam] [--control-url URL]

One request at a time: moto_server serves requests on parallel threads and does not check a
transaction's conditions atomically against concurrent requests; DynamoDB does. Serving one
request at a time gives the emulator DynamoDB's atomicity for conditional writes and
transactions, so race tests test our code, not the emulator's thread scheduling.

With `--iam` (the local stack), every request must be signed by a principal that exists in
the emulator, and is authorised by `iam.py` against that principal's policies (moto's own
check evaluates DynamoDB and Secrets Manager requests against the resource "*" and knows no
condition keys, so it cannot run a least-privilege policy). moto's IAM access control is
switched on with INITIAL_NO_AUTH_ACTION_COUNT=0; the first principal, an administrator for
the stack's provisioning, comes from `POST /_stack/admin`. Every decision is recorded:
`GET /_stack/iam` lists them (tests assert that a flow caused no denial and derive which
calls each function made), `POST /_stack/iam/reset` clears them.

`POST /_stack/assume-role` is what the Lambda service does for a function: it assumes the
function's execution role (checking that the role trusts the service principal) and hands
back temporary credentials.

With `--control-url`, RotateSecret behaves as Secrets Manager does: it records the rotation
configuration, answers at once, and then invokes the rotation function (through the local
stack at that URL, which checks the function's resource policy) with the four steps
createSecret, setSecret, testSecret and finishSecret, stopping at the first failure. It
does not move AWSCURRENT itself: that is the function's finishSecret. `GET /_stack/rotations`
lists every rotation with its outcome.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request
import uuid
from collections import deque

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import iam  # noqa: E402

ACCOUNT = "123456789012"
DECISIONS: deque = deque(maxlen=100_000)
ROTATIONS: list[dict] = []
_lock = threading.Lock()


def _policies_of(access_key) -> list[dict]:
    docs = []
    for p in access_key.collect_policies():
        if isinstance(p, str):
            docs.append(json.loads(p))
        elif hasattr(p, "versions"):
            version = next(v for v in p.versions if v.is_default)
            doc = version.document
            docs.append(json.loads(doc) if isinstance(doc, str) else doc)
        elif isinstance(p, dict) and "policy_document" in p:
            doc = p["policy_document"]
            docs.append(json.loads(doc) if isinstance(doc, str) else doc)
    return docs


def _principal_name(arn: str) -> tuple[str, str]:
    """(role or user name, session name): arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION or
    arn:aws:iam::ACCOUNT:user/NAME."""
    parts = arn.split(":", 5)[-1].split("/")
    return (parts[1] if len(parts) > 1 else arn), (parts[2] if len(parts) > 2 else "")


def _requests_for(response, service: str, operation: str) -> list[iam.AuthzRequest]:
    region, account = response.region, response.current_account
    # The request as sent (some moto services replace `body` with parsed parameters).
    raw = getattr(response, "raw_body", None) or b""
    try:
        body = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    if service == "dynamodb":
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[account][region]

        def hash_key(table):
            try:
                return backend.get_table(table).hash_key_attr
            except Exception:
                return None

        return iam.dynamodb_requests(operation, body, lambda t: f"arn:aws:dynamodb:{region}:{account}:table/{t}", hash_key)
    if service == "secretsmanager":
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[account][region]

        def secret_arn(secret_id):
            try:
                return backend.secrets[secret_id].arn
            except Exception:
                return None

        return iam.secretsmanager_requests(operation, body, secret_arn, region, account)
    resource = response._determine_resource() if hasattr(response, "_determine_resource") else "*"
    return [iam.AuthzRequest(f"{service}:{operation}", resource)]


def enforce_iam() -> None:
    """Replace moto's authorisation of every request (see the module documentation)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import JsonRESTError
    from moto.iam.access_control import IAMRequest

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0

    def authorize(self, resource: str = "*") -> None:
        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            ActionAuthenticatorMixin.request_count += 1
            return
        from urllib.parse import urlparse

        path = self.raw_path
        query = urlparse(self.uri).query
        if query:
            path += "?" + query
        operation = self._get_action()
        request = IAMRequest(account_id=self.current_account, method=self.method, path=path, data=self.data,
                             body=self.raw_body, headers=self.headers, action=operation)
        request.check_signature()
        key = request._access_key
        service = request._service
        policies = _policies_of(key)
        who, session = _principal_name(key.arn)
        for authz in _requests_for(self, service, operation):
            decision = iam.evaluate(policies, authz)
            with _lock:
                DECISIONS.append({
                    "time": time.time(), "principal": who, "session": session, "action": authz.action, "resource": authz.resource,
                    "leading_keys": authz.context.get("dynamodb:LeadingKeys", []),
                    "allowed": decision.allowed, "reason": decision.reason,
                })
            if not decision.allowed:
                message = f"User: {key.arn} is not authorized to perform: {authz.describe()} because {decision.reason}"
                print(f"IAM DENIED {who}: {authz.describe()}: {decision.reason}", file=sys.stderr, flush=True)
                if service in ("dynamodb", "secretsmanager"):
                    raise JsonRESTError("AccessDeniedException", message)
                request._raise_access_denied()

    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize


def _rotate(control_url: str):
    """RotateSecret as Secrets Manager does it (see the module documentation)."""
    from moto.secretsmanager.exceptions import InvalidRequestException, ResourceNotFoundException
    from moto.secretsmanager.models import SecretsManagerBackend

    def rotate_secret(self, secret_id, client_request_token=None, rotation_lambda_arn=None,
                      rotation_rules=None, rotate_immediately=True):
        if not self._is_valid_identifier(secret_id):
            raise ResourceNotFoundException("Secrets Manager can't find the specified secret.")
        secret = self.secrets[secret_id]
        pending = [v for v, d in secret.versions.items() if "AWSPENDING" in d["version_stages"]
                   and "AWSCURRENT" not in d["version_stages"]]
        if pending:
            raise InvalidRequestException("A previous rotation isn't complete. That rotation will be reattempted.")
        arn = rotation_lambda_arn or secret.rotation_lambda_arn
        if not arn:
            raise InvalidRequestException("No Lambda rotation function ARN is associated with this secret.")
        secret.rotation_requested = True
        secret.rotation_lambda_arn = arn
        secret.rotation_enabled = True
        if rotation_rules:
            secret.rotation_rules = rotation_rules
            days = rotation_rules.get("AutomaticallyAfterDays")
            if days:
                secret.auto_rotate_after_days = days
        token = client_request_token or str(uuid.uuid4())
        steps = ["createSecret", "setSecret", "testSecret", "finishSecret"] if rotate_immediately else ["testSecret"]
        record = {"secret": secret.arn, "version": token, "function": arn, "steps": [], "status": "running"}
        with _lock:
            ROTATIONS.append(record)

        def run():
            for step in steps:
                event = {"Step": step, "SecretId": secret.arn, "ClientRequestToken": token,
                         "RotationToken": str(uuid.uuid4())}
                call = json.dumps({"function": arn, "event": event, "principal": "secretsmanager.amazonaws.com",
                                   "source_arn": secret.arn, "source_account": self.account_id}).encode()
                try:
                    req = urllib.request.Request(f"{control_url}/_control/invoke", data=call, method="POST",
                                                 headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        result = json.loads(resp.read() or b"{}")
                except Exception as e:  # the stack is down or refused
                    result = {"error": f"invoke failed: {e}"}
                with _lock:
                    record["steps"].append({"step": step, **result})
                if result.get("error"):
                    with _lock:
                        record["status"] = "failed"
                    print(f"rotation of {secret.name} failed at {step}: {result['error']}", file=sys.stderr, flush=True)
                    return
            # A finished rotation leaves AWSPENDING on no other version than AWSCURRENT's;
            # Secrets Manager then drops the label.
            version = secret.versions.get(token)
            if version and "AWSCURRENT" in version["version_stages"] and "AWSPENDING" in version["version_stages"]:
                version["version_stages"].remove("AWSPENDING")
            secret.last_rotation_date = int(time.time())
            with _lock:
                record["status"] = "succeeded"

        threading.Thread(target=run, daemon=True).start()
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "VersionId": token})

    SecretsManagerBackend.rotate_secret = rotate_secret


def _admin() -> dict:
    """An administrator principal for provisioning (created directly in the backend)."""
    from moto.iam.models import iam_backends

    backend = iam_backends[ACCOUNT]["aws"]
    try:
        backend.get_user("stack-admin")
    except Exception:
        backend.create_user("us-east-1", "stack-admin")
        backend.put_user_policy("stack-admin", "administrator", json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = backend.create_access_key("stack-admin")
    return {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key}


def _assume_role(body: dict) -> tuple[int, dict]:
    """The Lambda service assuming a function's execution role."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    role_arn, service = body["RoleArn"], body.get("ServicePrincipal", "lambda.amazonaws.com")
    try:
        role = iam_backends[ACCOUNT]["aws"].get_role_by_arn(role_arn)
    except Exception:
        return 404, {"error": f"no role {role_arn}"}
    trust = role.assume_role_policy_document
    trust = json.loads(trust) if isinstance(trust, str) else trust
    trusted = any(
        st.get("Effect") == "Allow"
        and any(a.lower() in ("sts:assumerole", "sts:*", "*") for a in iam._as_list(st.get("Action")))
        and service in iam._as_list((st.get("Principal") or {}).get("Service"))
        for st in iam._as_list(trust.get("Statement"))
    )
    if not trusted:
        return 403, {"error": f"role {role_arn} does not trust {service}"}
    assumed = sts_backends[ACCOUNT]["aws"].assume_role(
        region_name="us-east-1", role_session_name=body.get("RoleSessionName", "lambda"), role_arn=role_arn,
        policy="", duration=43200, external_id="")
    return 200, {"AccessKeyId": assumed.access_key_id, "SecretAccessKey": assumed.secret_access_key,
                 "SessionToken": assumed.session_token}


def control_app(moto_app):
    """WSGI middleware: the /_stack/ endpoints, everything else to moto."""

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_stack/"):
            return moto_app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        body = json.loads(raw) if raw else {}
        method = environ.get("REQUEST_METHOD")
        status, out = 404, {"error": "unknown endpoint"}
        if path == "/_stack/admin" and method == "POST":
            status, out = 200, _admin()
        elif path == "/_stack/assume-role" and method == "POST":
            status, out = _assume_role(body)
        elif path == "/_stack/iam" and method == "GET":
            with _lock:
                status, out = 200, {"decisions": list(DECISIONS)}
        elif path == "/_stack/iam/reset" and method == "POST":
            with _lock:
                DECISIONS.clear()
            status, out = 200, {"status": "ok"}
        elif path == "/_stack/rotations" and method == "GET":
            with _lock:
                status, out = 200, {"rotations": json.loads(json.dumps(ROTATIONS))}
        data = json.dumps(out).encode()
        start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--iam", action="store_true", help="enforce IAM (the local stack)")
    ap.add_argument("--control-url", help="the local stack's control URL (RotateSecret invokes through it)")
    args = ap.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if args.iam:
        # The AWS managed policies SAM attaches (AWSLambdaBasicExecutionRole, ...) must exist.
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    from werkzeug.serving import run_simple
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    if args.iam:
        enforce_iam()
    if args.control_url:
        _rotate(args.control_url.rstrip("/"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = control_app(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=False, processes=1, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
