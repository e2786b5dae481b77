"""An HTTP API front that behaves like API Gateway's HTTP APIs for the local stack.

Per API (an `AWS::ApiGatewayV2::Api` with an OpenAPI `Body`, as SAM translates
`AWS::Serverless::HttpApi`) it serves, on its own 127.0.0.1 port:

- the routes of the body, matched as HTTP APIs match them: an exact path before one with
  `{parameters}`, before a greedy `{proxy+}`, a named method before `ANY`, `$default` last;
  anything else is `404 {"message":"Not Found"}` (a method the route lacks included);
- Lambda proxy integrations with payload format 2.0: the event API Gateway builds
  (`routeKey`, `rawPath`, `rawQueryString`, lower-case headers with repeats joined by
  commas, `cookies` taken out of the Cookie header, `queryStringParameters`,
  `pathParameters`, `requestContext.http.sourceIp` = the TCP peer, `requestId`, stage
  `$default`, `x-forwarded-*` headers, and a base64 body unless the content type is text),
  and the response mapping back (status, headers, `cookies` as Set-Cookie, base64 bodies; a
  result without `statusCode` is a 200 JSON body; an invalid one, a function error or a
  timeout is `500 {"message":"Internal Server Error"}`);
- the resource policy check: a function is only invoked if one of its
  `AWS::Lambda::Permission`s lets apigateway.amazonaws.com invoke it from this API's ARN;
- Lambda REQUEST authorizers (payload 2.0): identity sources (a missing header or query
  value is `401 {"message":"Unauthorized"}` without invoking), the event, simple responses
  (`isAuthorized` false is `403 {"message":"Forbidden"}`) or IAM-policy responses, the
  result TTL cache keyed by the identity values, and `requestContext.authorizer.lambda`;
- stage throttling (token buckets from `DefaultRouteSettings` / `RouteSettings`:
  `429 {"message":"Too Many Requests"}`) and the access log in the stage's `Format`.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

from lambda_host import InvokeError

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
TEXT_TYPES = re.compile(r"^(text/.*|application/(json|.*\+json|xml|.*\+xml|javascript|x-yaml|yaml))$", re.I)
MAX_BODY = 10 * 1024 * 1024
MAX_EVENT = 6 * 1024 * 1024


@dataclass
class Route:
    """One route key and what it integrates with."""

    method: str  # upper case, or ANY
    path: str  # /a/{b}/{c+}, or $default
    function_arn: str
    authorizer: str | None = None

    @property
    def key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict | None:
        if self.path == "$default":
            return {}
        if self.method not in ("ANY", method):
            return None
        # Segments after the leading slash; a trailing slash is an empty last segment, so
        # /a/ is not /a (as API Gateway routes them).
        want = self.path[1:].split("/") if self.path != "/" else []
        got = path[1:].split("/") if path != "/" else []
        params = {}
        for i, seg in enumerate(want):
            if seg.startswith("{") and seg.endswith("+}"):
                rest = "/".join(got[i:])
                if not rest:
                    return None
                params[seg[1:-2]] = rest
                return params
            if i >= len(got):
                return None
            if seg.startswith("{") and seg.endswith("}"):
                if not got[i]:
                    return None
                params[seg[1:-1]] = unquote(got[i])
            elif seg != got[i]:
                return None
        return params if len(got) == len(want) else None

    def rank(self) -> tuple:
        if self.path == "$default":
            return (3, 0, 0)
        greedy = self.path.endswith("+}")
        variables = self.path.count("{")
        return (2 if greedy else 1 if variables else 0, -self.path.count("/"), 1 if self.method == "ANY" else 0)


@dataclass
class Authorizer:
    """A Lambda REQUEST authorizer of an API."""

    name: str
    id: str
    function_arn: str
    identity_sources: list[str]
    ttl: int
    payload_version: str
    simple: bool
    cache: dict = field(default_factory=dict)


class Bucket:
    """A token bucket: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst, self.tokens, self.at = rate, burst, float(burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


def function_of_uri(uri: str) -> str:
    """The function ARN in an integration or authorizer URI."""
    m = re.search(r":lambda:path/2015-03-31/functions/(.+)/invocations$", uri)
    if not m:
        raise ValueError(f"not a Lambda integration URI: {uri}")
    return m.group(1)


def routes_of(body: dict) -> tuple[list[Route], dict[str, dict]]:
    """The routes of an OpenAPI body, and its Lambda authorizer definitions."""
    schemes = ((body.get("components") or {}).get("securitySchemes")) or body.get("securityDefinitions") or {}
    authorizers = {name: s["x-amazon-apigateway-authorizer"] for name, s in schemes.items()
                   if "x-amazon-apigateway-authorizer" in s}
    default_security = body.get("security") or []
    routes = []
    for path, ops in (body.get("paths") or {}).items():
        for op_name, op in ops.items():
            if op_name == "x-amazon-apigateway-any-method":
                method = "ANY"
            elif op_name in METHODS:
                method = op_name.upper()
            else:
                continue
            integration = op.get("x-amazon-apigateway-integration")
            if not integration:
                continue
            if integration.get("type") != "aws_proxy" or str(integration.get("payloadFormatVersion")) != "2.0":
                raise ValueError(f"{method} {path}: only Lambda proxy integrations with payload 2.0 are emulated")
            security = op.get("security", default_security)
            names = [n for entry in security for n in entry if n in authorizers]
            routes.append(Route(method, "$default" if path == "$default" else path,
                                function_of_uri(integration["uri"]), names[0] if names else None))
    routes.sort(key=Route.rank)
    return routes, authorizers


def _json_error(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()


class HttpApi:
    """One HTTP API: routes, authorizers, throttling, access log; `serve()` starts it."""

    def __init__(self, api_id: str, body: dict, stage: dict, invoke, may_invoke, access_log_path: str,
                 region: str, account: str):
        self.api_id, self.region, self.account = api_id, region, account
        self.routes, definitions = routes_of(body)
        self.invoke = invoke  # (function_arn, event_bytes) -> bytes
        self.may_invoke = may_invoke  # (function_arn, principal, source_arn) -> bool
        self.authorizers = {}
        for name, d in definitions.items():
            if d.get("type") != "request" or str(d.get("authorizerPayloadFormatVersion")) != "2.0":
                raise ValueError(f"authorizer {name}: only Lambda REQUEST authorizers with payload 2.0 are emulated")
            sources = d.get("identitySource") or []
            sources = [s.strip() for s in sources.split(",")] if isinstance(sources, str) else sources
            self.authorizers[name] = Authorizer(name, uuid.uuid4().hex[:6], function_of_uri(d["authorizerUri"]),
                                                sources, int(d.get("authorizerResultTtlInSeconds", 300)), "2.0",
                                                bool(d.get("enableSimpleResponses")))
        default = stage.get("DefaultRouteSettings") or {}
        self.buckets = {}
        for route in self.routes:
            settings = dict(default)
            settings.update((stage.get("RouteSettings") or {}).get(route.key, {}))
            if "ThrottlingRateLimit" in settings and "ThrottlingBurstLimit" in settings:
                self.buckets[route.key] = Bucket(float(settings["ThrottlingRateLimit"]),
                                                 int(float(settings["ThrottlingBurstLimit"])))
        self.access_format = (stage.get("AccessLogSettings") or {}).get("Format")
        self.access_log = open(access_log_path, "a", buffering=1) if self.access_format else None
        self.execution_log = open(access_log_path.replace("-access.log", "-execution.log"), "a", buffering=1)
        self.log_lock = threading.Lock()
        self._tls = threading.local()  # the current request's integration error, for the access log
        self.server = None
        self.domain = None

    # -- requests ------------------------------------------------------------------------
    def find_route(self, method: str, path: str) -> tuple[Route, dict] | None:
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None

    def build_event(self, route: Route, params: dict, method: str, raw_path: str, raw_query: str,
                    headers: list[tuple[str, str]], body: bytes, source_ip: str, request_id: str) -> dict:
        joined: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in headers:
            name = name.lower()
            if name == "cookie":
                cookies.extend(c.strip() for c in value.split(";") if c.strip())
                continue
            joined[name] = f"{joined[name]},{value}" if name in joined else value
        joined["x-forwarded-for"] = f"{joined['x-forwarded-for']}, {source_ip}" if "x-forwarded-for" in joined \
            else source_ip
        joined["x-forwarded-port"] = str(self.server.server_address[1]) if self.server else "443"
        joined["x-forwarded-proto"] = "http"
        joined["x-amzn-trace-id"] = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
        now = time.time()
        event = {
            "version": "2.0",
            "routeKey": route.key,
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": joined,
            "requestContext": {
                "accountId": self.account,
                "apiId": self.api_id,
                "domainName": self.domain,
                "domainPrefix": self.domain.split(".")[0],
                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                         "userAgent": joined.get("user-agent", "")},
                "requestId": request_id,
                "routeKey": route.key,
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": False,
        }
        if cookies:
            event["cookies"] = cookies
        if raw_query:
            q: dict[str, str] = {}
            for k, v in parse_qsl(raw_query, keep_blank_values=True):
                q[k] = f"{q[k]},{v}" if k in q else v
            event["queryStringParameters"] = q
        if params:
            event["pathParameters"] = params
        if body:
            ctype = joined.get("content-type", "").split(";")[0].strip()
            if TEXT_TYPES.match(ctype) and not joined.get("content-encoding"):
                try:
                    event["body"] = body.decode("utf-8")
                except UnicodeDecodeError:
                    event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
            else:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        return event

    def _source_arn(self, route: Route, method: str) -> str:
        path = route.path if route.path != "$default" else "$default"
        return f"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/$default/{method}{path}"

    def _authorize(self, auth: Authorizer, route: Route, event: dict, method: str):
        """None to proceed (with `event` given its authorizer context), or an error response."""
        values = []
        for source in auth.identity_sources:
            if source.startswith("$request.header."):
                v = event["headers"].get(source[len("$request.header."):].lower())
            elif source.startswith("$request.querystring."):
                v = (event.get("queryStringParameters") or {}).get(source[len("$request.querystring."):])
            elif source == "$context.routeKey":
                v = route.key
            elif source.startswith("$context."):
                v = str(event["requestContext"].get(source[len("$context."):], ""))
            else:
                v = None
            if not v:
                return _json_error(401, "Unauthorized")
            values.append(v)
        key = tuple(values)
        cached = auth.cache.get(key)
        if auth.ttl > 0 and cached and cached[0] > time.monotonic():
            result = cached[1]
        else:
            source_arn = f"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/authorizers/{auth.id}"
            if not self.may_invoke(auth.function_arn, "apigateway.amazonaws.com", source_arn):
                self._tls.error = "API Gateway may not invoke the authorizer (no permission)"
                return _json_error(500, "Internal Server Error")
            auth_event = {k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")}
            auth_event.update({"type": "REQUEST", "identitySource": values,
                               "routeArn": self._source_arn(route, method)})
            try:
                raw = self.invoke(auth.function_arn, json.dumps(auth_event).encode())
                result = json.loads(raw)
            except (InvokeError, ValueError) as e:
                self._tls.error = f"authorizer failed: {e}"
                return _json_error(500, "Internal Server Error")
            if auth.ttl > 0:
                auth.cache[key] = (time.monotonic() + auth.ttl, result)
        if auth.simple:
            if not isinstance(result, dict) or not isinstance(result.get("isAuthorized"), bool):
                return _json_error(500, "Internal Server Error")
            if not result["isAuthorized"]:
                return _json_error(403, "Forbidden")
        else:
            statements = ((result or {}).get("policyDocument") or {}).get("Statement") or []
            allowed = any(s.get("Effect") == "Allow" for s in statements)
            if not allowed:
                return _json_error(403, "Forbidden")
        event["requestContext"]["authorizer"] = {"lambda": (result or {}).get("context") or {}}
        return None

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str):
        """One request: (status, headers, body)."""
        self._tls.error = ""
        # One id per request, as API Gateway has: the event's requestContext.requestId, the
        # apigw-requestid response header and the access log's $context.requestId.
        self._tls.request_id = base64.b32encode(uuid.uuid4().bytes).decode()[:16]
        raw_path, _, raw_query = target.partition("?")
        if len(body) > MAX_BODY:
            return _json_error(413, "Request Entity Too Large"), None
        found = self.find_route(method, unquote(raw_path))
        if not found:
            return _json_error(404, "Not Found"), None
        route, params = found
        bucket = self.buckets.get(route.key)
        if bucket and not bucket.take():
            return _json_error(429, "Too Many Requests"), route
        request_id = self._tls.request_id
        event = self.build_event(route, params, method, raw_path, raw_query, headers, body, source_ip, request_id)
        if route.authorizer:
            refused = self._authorize(self.authorizers[route.authorizer], route, event, method)
            if refused:
                return refused, route
        if not self.may_invoke(route.function_arn, "apigateway.amazonaws.com", self._source_arn(route, method)):
            self._tls.error = "API Gateway may not invoke the function (no permission)"
            return _json_error(500, "Internal Server Error"), route
        payload = json.dumps(event).encode()
        if len(payload) > MAX_EVENT:
            return _json_error(413, "Request Entity Too Large"), route
        try:
            raw = self.invoke(route.function_arn, payload)
        except InvokeError as e:
            self._tls.error = str(e)
            return _json_error(500, "Internal Server Error"), route
        return self.map_response(raw), route

    def map_response(self, raw: bytes):
        try:
            result = json.loads(raw)
        except ValueError:
            self._tls.error = "the function returned invalid JSON"
            return _json_error(500, "Internal Server Error")
        if not isinstance(result, dict) or "statusCode" not in result:
            return 200, [("Content-Type", "application/json")], raw
        try:
            status = int(result["statusCode"])
            out_headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
            out_headers += [("Set-Cookie", str(c)) for c in result.get("cookies") or []]
            body = result.get("body") or ""
            data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        except (TypeError, ValueError, AttributeError):
            self._tls.error = "malformed Lambda proxy response"
            return _json_error(500, "Internal Server Error")
        return status, out_headers, data

    # -- serving -------------------------------------------------------------------------
    def serve(self, port: int = 0) -> int:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "local-api-gateway"

            def log_message(self, *args):
                pass

            def _any(self):
                started = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                (status, out_headers, data), route = api.handle(self.command, self.path, list(self.headers.items()),
                                                                body, self.client_address[0])
                self.send_response(status)
                names = set()
                for k, v in out_headers:
                    if k.lower() in ("content-length", "connection", "transfer-encoding"):
                        continue
                    names.add(k.lower())
                    self.send_header(k, v)
                self.send_header("apigw-requestid", getattr(api._tls, "request_id", "") or uuid.uuid4().hex[:16])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                api.log_access(self, route, status, len(data), started)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        host, bound = self.server.server_address
        self.domain = f"{host}:{bound}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return bound

    def log_access(self, handler, route, status, length, started) -> None:
        error = getattr(self._tls, "error", "")
        if error:
            # API Gateway's execution log: why a request failed at the gateway.
            with self.log_lock:
                self.execution_log.write(f"{time.strftime('%H:%M:%S')} {handler.command} {handler.path.split('?')[0]}"
                                         f" -> {status}: {error}\n")
        if not self.access_log:
            return
        values = {
            "requestId": getattr(self._tls, "request_id", "") or uuid.uuid4().hex, "identity.sourceIp": handler.client_address[0],
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "routeKey": route.key if route else "-", "status": str(status), "protocol": "HTTP/1.1",
            "responseLength": str(length), "integrationLatency": str(int((time.monotonic() - started) * 1000)),
            "responseLatency": str(int((time.monotonic() - started) * 1000)),
            "integrationErrorMessage": getattr(self._tls, "error", "") or "-",
        }
        line = re.sub(r"\$context\.([A-Za-z.]+)", lambda m: values.get(m.group(1), "-"), self.access_format)
        with self.log_lock:
            self.access_log.write(line + "\n")

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
