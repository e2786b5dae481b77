"""The HTTP API front: route matching, the payload 2.0 event and the response mapping."""
import base64
import json

from gateway import HttpApi, Route, routes_of

URI = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:{}/invocations"


def body(paths):
    return {"openapi": "3.0.1", "paths": {
        p: {m: {"x-amazon-apigateway-integration": {"type": "aws_proxy", "payloadFormatVersion": "2.0",
                                                   "uri": URI.format(fn)}} for m, fn in ops.items()}
        for p, ops in paths.items()}}


def api(paths, invoke=None, may_invoke=lambda *a: True):
    return HttpApi("abc123", body(paths), {}, invoke or (lambda fn, ev: b"{}"), may_invoke, "/dev/null",
                   "us-east-1", "123456789012")


def test_routes_match_exact_before_variables_before_greedy_and_methods_before_any():
    a = api({"/items/{id}": {"get": "byid"}, "/items/all": {"get": "all"}, "/{proxy+}": {"x-amazon-apigateway-any-method": "any"},
             "/items/{id}/x": {"x-amazon-apigateway-any-method": "anyx", "post": "postx"}})
    def fn(method, path):
        found = a.find_route(method, path)
        return found and found[0].function_arn.rsplit(":", 1)[1]
    assert fn("GET", "/items/all") == "all"
    assert fn("GET", "/items/7") == "byid"
    assert fn("POST", "/items/7") == "any"
    assert fn("POST", "/items/7/x") == "postx"
    assert fn("GET", "/items/7/x") == "anyx"
    assert fn("GET", "/") is None, "a greedy variable needs at least one segment"
    assert a.find_route("GET", "/items/7")[1] == {"id": "7"}


def test_an_unrouted_path_or_method_is_api_gatewayss_404():
    a = api({"/oauth/token": {"post": "token"}})
    (status, _, data), _ = a.handle("GET", "/oauth/token", [], b"", "127.0.0.1")
    assert status == 404 and json.loads(data) == {"message": "Not Found"}
    (status, _, _), _ = a.handle("POST", "/oauth/token/", [], b"", "127.0.0.1")
    assert status == 404


def test_the_event_is_payload_2_0_as_api_gateway_builds_it():
    seen = {}
    def invoke(fn, ev):
        seen["event"] = json.loads(ev)
        return json.dumps({"statusCode": 201, "headers": {"x-a": "1"}, "cookies": ["a=1", "b=2"], "body": "aGk=",
                           "isBase64Encoded": True}).encode()
    a = api({"/oauth/token": {"post": "token"}}, invoke)
    a.domain = "127.0.0.1:1"
    headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", "c=1; d=2"), ("X-Rep", "a"), ("X-Rep", "b")]
    (status, out, data), _ = a.handle("POST", "/oauth/token?a=1&a=2&b=%20", headers, b"grant_type=x", "127.0.0.9")
    ev = seen["event"]
    assert ev["version"] == "2.0" and ev["routeKey"] == "POST /oauth/token"
    assert ev["rawPath"] == "/oauth/token" and ev["rawQueryString"] == "a=1&a=2&b=%20"
    assert ev["queryStringParameters"] == {"a": "1,2", "b": " "}
    assert ev["cookies"] == ["c=1", "d=2"] and "cookie" not in ev["headers"]
    assert ev["headers"]["x-rep"] == "a,b" and ev["headers"]["x-forwarded-for"] == "127.0.0.9"
    assert ev["requestContext"]["http"]["sourceIp"] == "127.0.0.9" and ev["requestContext"]["stage"] == "$default"
    assert ev["isBase64Encoded"] and base64.b64decode(ev["body"]) == b"grant_type=x", "form bodies arrive base64"
    assert status == 201 and data == b"hi" and ("Set-Cookie", "a=1") in out and ("Set-Cookie", "b=2") in out


def test_function_errors_and_bad_results_are_500_and_a_missing_permission_is_never_invoked():
    from lambda_host import InvokeError
    def boom(fn, ev):
        raise InvokeError("Runtime.ExitError", "died")
    a = api({"/x": {"get": "x"}}, boom)
    a.domain = "h"
    (status, _, data), _ = a.handle("GET", "/x", [], b"", "127.0.0.1")
    assert status == 500 and json.loads(data) == {"message": "Internal Server Error"}
    a = api({"/x": {"get": "x"}}, lambda fn, ev: b"not json")
    a.domain = "h"
    assert a.handle("GET", "/x", [], b"", "127.0.0.1")[0][0] == 500
    called = []
    a = api({"/x": {"get": "x"}}, lambda fn, ev: called.append(1) or b"{}", may_invoke=lambda *args: False)
    a.domain = "h"
    assert a.handle("GET", "/x", [], b"", "127.0.0.1")[0][0] == 500 and not called


def test_stage_throttling_refuses_beyond_the_burst_with_api_gateways_429():
    a = HttpApi("abc123", body({"/oauth/token": {"post": "token"}}),
                {"DefaultRouteSettings": {"ThrottlingBurstLimit": 1000, "ThrottlingRateLimit": 1000},
                 "RouteSettings": {"POST /oauth/token": {"ThrottlingBurstLimit": 3, "ThrottlingRateLimit": 0.001}}},
                lambda fn, ev: b"{}", lambda *a: True, "/dev/null", "us-east-1", "123456789012")
    a.domain = "h"
    statuses = [a.handle("POST", "/oauth/token", [], b"", "127.0.0.1")[0][0] for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
