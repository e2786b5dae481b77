"""template.yaml as CloudFormation sees it (translated by samtranslator, resolved): exactly
which actions, resources and DynamoDB key prefixes each function is granted, which secrets
each reads, and which routes reach which function. A change that widens a grant fails here
(the emulator does evaluate dynamodb:LeadingKeys, but only for the calls a test makes)."""
import os

import pytest

import template as tpl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/oauth-DataTable-T"
SECRETS = ["SigningKeysSecret", "PublicKeysSecret", "FormKeySecret", "RegistrationTokenSecret"]

# (action, resource, LeadingKeys patterns or None) per function.
EXPECTED = {
    "RegisterFunction": {
        ("dynamodb:GetItem", "DataTable", ("USERNAME#*",)),
        ("dynamodb:PutItem", "DataTable", ("CLIENT#*", "SUB#*", "USERNAME#*")),
        ("dynamodb:PutItem", "DataTable", ("COUNTER#abuse#register#*", "COUNTER#abuse#register_client#*")),
        ("dynamodb:UpdateItem", "DataTable", ("COUNTER#abuse#register#*", "COUNTER#abuse#register_client#*")),
        ("secretsmanager:GetSecretValue", "RegistrationTokenSecret", None),
        ("dynamodb:Query", "DataTable", ("RESOURCES",)),
    },
    "AuthorizeFunction": {
        ("dynamodb:GetItem", "DataTable", ("CLIENT#*", "SUB#*", "USERNAME#*")),
        ("dynamodb:PutItem", "DataTable", ("CODE#*", "COUNTER#device#*", "COUNTER#form#*", "COUNTER#login#*")),
        ("dynamodb:UpdateItem", "DataTable", ("CODE#*", "COUNTER#device#*", "COUNTER#form#*", "COUNTER#login#*")),
        ("dynamodb:DeleteItem", "DataTable", ("COUNTER#login#*",)),
        ("dynamodb:UpdateItem", "DataTable", ("USERNAME#*",)),
        ("dynamodb:GetItem", "DataTable", ("ACCOUNT#*",)),
        ("dynamodb:BatchGetItem", "DataTable", ("ACCOUNT#*",)),
        ("dynamodb:PutItem", "DataTable", ("ACCOUNT#*",)),
        ("dynamodb:UpdateItem", "DataTable", ("ACCOUNT#*",)),
        ("dynamodb:DeleteItem", "DataTable", ("ACCOUNT#*",)),
        ("dynamodb:Query", "DataTable", ("ACCOUNT#*",)),
        ("dynamodb:UpdateItem", "DataTable", ("REVOKED#fam#*",)),
        ("dynamodb:Query", "DataTable", ("RESOURCES",)),
        ("dynamodb:GetItem", "DataTable", ("IDENTITY#*",)),
        ("dynamodb:PutItem", "DataTable", ("IDENTITY#*",)),
        ("dynamodb:DeleteItem", "DataTable", ("IDENTITY#*",)),
        ("dynamodb:PutItem", "DataTable", ("SUB#*", "USERNAME#*")),
        ("dynamodb:UpdateItem", "DataTable", ("SUB#*",)),
        ("dynamodb:GetItem", "DataTable", ("DEVICE#*", "USERCODE#*")),
        ("dynamodb:UpdateItem", "DataTable", ("DEVICE#*",)),
        ("secretsmanager:GetSecretValue", "FormKeySecret", None),
        ("secretsmanager:GetSecretValue", "PublicKeysSecret", None),
    },
    "TokenFunction": {
        ("dynamodb:GetItem", "DataTable", ("CLIENT#*", "CODE#*", "RT#*", "SUB#*", "USERNAME#*")),
        ("dynamodb:BatchGetItem", "DataTable", ("REVOKED#*",)),
        ("dynamodb:PutItem", "DataTable", ("CODE#*", "COUNTER#abuse#client_auth#*", "REVOKED#*", "RT#*")),
        ("dynamodb:UpdateItem", "DataTable", ("CODE#*", "COUNTER#abuse#client_auth#*", "REVOKED#*", "RT#*")),
        ("dynamodb:UpdateItem", "DataTable", ("ACCOUNT#*",)),
        ("dynamodb:PutItem", "DataTable", ("ACCOUNT#*",)),
        ("dynamodb:ConditionCheckItem", "DataTable", ("ACCOUNT#*",)),
        ("dynamodb:Query", "DataTable", ("RESOURCES",)),
        ("dynamodb:PutItem", "DataTable", ("COUNTER#dpop#*",)),
        ("dynamodb:UpdateItem", "DataTable", ("COUNTER#dpop#*",)),
        ("dynamodb:PutItem", "DataTable", ("DEVICE#*", "USERCODE#*")),
        ("dynamodb:UpdateItem", "DataTable", ("DEVICE#*",)),
        ("secretsmanager:GetSecretValue", "SigningKeysSecret", None),
    },
    "ProtectedFunction": {
        ("dynamodb:GetItem", "DataTable", ("SUB#*", "USERNAME#*")),
        ("dynamodb:BatchGetItem", "DataTable", ("REVOKED#*",)),
        ("dynamodb:PutItem", "DataTable", ("DATA#*",)),
        ("dynamodb:Query", "DataTable", ("DATA#*",)),
        ("dynamodb:PutItem", "DataTable", ("COUNTER#dpop#*",)),
        ("dynamodb:UpdateItem", "DataTable", ("COUNTER#dpop#*",)),
        ("secretsmanager:GetSecretValue", "PublicKeysSecret", None),
    },
    "DiscoveryFunction": {
        ("secretsmanager:GetSecretValue", "PublicKeysSecret", None),
    },
    "AuthorizerFunction": {
        ("dynamodb:BatchGetItem", "DataTable", ("REVOKED#*",)),
        ("dynamodb:PutItem", "DataTable", ("COUNTER#dpop#*",)),
        ("dynamodb:UpdateItem", "DataTable", ("COUNTER#dpop#*",)),
        ("secretsmanager:GetSecretValue", "PublicKeysSecret", None),
    },
    "RotateKeysFunction": {
        ("secretsmanager:DescribeSecret", "SigningKeysSecret", None),
        ("secretsmanager:GetSecretValue", "SigningKeysSecret", None),
        ("secretsmanager:PutSecretValue", "SigningKeysSecret", None),
        ("secretsmanager:UpdateSecretVersionStage", "SigningKeysSecret", None),
        ("secretsmanager:GetSecretValue", "PublicKeysSecret", None),
        ("secretsmanager:PutSecretValue", "PublicKeysSecret", None),
    },
}

# Which key material each function is configured with (OAUTH_KEYS and the secret ids).
EXPECTED_KEYS = {
    "RegisterFunction": ("none", {"REGISTRATION_TOKEN_SECRET_ID": "RegistrationTokenSecret"}),
    "AuthorizeFunction": ("public", {"FORM_KEY_SECRET_ID": "FormKeySecret", "PUBLIC_KEYS_SECRET_ID": "PublicKeysSecret"}),
    "TokenFunction": ("secretsmanager", {"SIGNING_KEYS_SECRET_ID": "SigningKeysSecret"}),
    "ProtectedFunction": ("public", {"PUBLIC_KEYS_SECRET_ID": "PublicKeysSecret"}),
    "DiscoveryFunction": ("public", {"PUBLIC_KEYS_SECRET_ID": "PublicKeysSecret"}),
    "AuthorizerFunction": ("public", {"PUBLIC_KEYS_SECRET_ID": "PublicKeysSecret"}),
    "RotateKeysFunction": (None, {"PUBLIC_KEYS_SECRET_ID": "PublicKeysSecret"}),
}

ROUTES = {
    "POST /register": "register", "POST /register_client": "register",
    "GET /oauth/authorize": "authorize", "POST /oauth/authorize": "authorize",
    "GET /oauth/logout": "authorize", "POST /oauth/logout": "authorize",
    "GET /account": "authorize", "POST /account": "authorize",
    "GET /federation/{provider}/callback": "authorize",
    "GET /device": "authorize", "POST /device": "authorize", "POST /oauth/device_authorization": "token",
    "POST /oauth/token": "token", "OPTIONS /oauth/token": "token",
    "POST /oauth/revoke": "token", "OPTIONS /oauth/revoke": "token", "POST /oauth/introspect": "token",
    "GET /oauth/userinfo": "protected", "OPTIONS /oauth/userinfo": "protected",
    "GET /api/data": "protected", "POST /api/data": "protected",
    "GET /": "discovery", "OPTIONS /": "discovery",
    "GET /.well-known/oauth-authorization-server": "discovery",
    "OPTIONS /.well-known/oauth-authorization-server": "discovery",
    "GET /.well-known/openid-configuration": "discovery", "OPTIONS /.well-known/openid-configuration": "discovery",
    "GET /.well-known/jwks.json": "discovery", "OPTIONS /.well-known/jwks.json": "discovery",
    "GET /.well-known/oauth-protected-resource/api": "discovery",
    "OPTIONS /.well-known/oauth-protected-resource/api": "discovery",
    "GET /openapi.yaml": "discovery", "OPTIONS /openapi.yaml": "discovery",
}


@pytest.fixture(scope="module")
def template():
    t = tpl.load(os.path.join(ROOT, "template.yaml"), "oauth")
    t.set_physical("DataTable", "oauth-DataTable-T", Arn=TABLE_ARN)
    for s in SECRETS:
        t.set_physical(s, f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{s}-X-abcdef")
    t.set_physical("HttpApi", "api1234567")
    return t


def environment(template, function):
    props = template.cfn["Resources"][function]["Properties"]
    return template.resolve(props["Environment"])["Variables"]


def resource_name(arn):
    if arn == TABLE_ARN:
        return "DataTable"
    for s in SECRETS:
        if arn == f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{s}-X-abcdef":
            return s
    return arn


def grants(template, function):
    role = template.resolve(template.cfn["Resources"][f"{function}Role"]["Properties"])
    out = set()
    for policy in role.get("Policies") or []:
        for st in policy["PolicyDocument"]["Statement"]:
            assert st["Effect"] == "Allow" and "NotAction" not in st and "NotResource" not in st, st
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            cond = st.get("Condition")
            keys = None
            if cond is not None:
                assert list(cond) == ["ForAllValues:StringLike"], st
                assert list(cond["ForAllValues:StringLike"]) == ["dynamodb:LeadingKeys"], st
                keys = tuple(sorted(cond["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]))
            for a in actions:
                assert "*" not in a, st
                if a.startswith("dynamodb:"):
                    assert keys, f"{function}: {a} without a dynamodb:LeadingKeys condition"
                for r in resources:
                    out.add((a, resource_name(r), keys))
    return out, role


@pytest.mark.parametrize("function", sorted(EXPECTED))
def test_each_function_is_granted_exactly_what_its_code_uses(template, function):
    got, role = grants(template, function)
    assert got == EXPECTED[function], (
        f"\n  granted, not expected: {sorted(got - EXPECTED[function])}"
        f"\n  expected, not granted: {sorted(EXPECTED[function] - got)}")
    assert sorted(role["ManagedPolicyArns"]) == [
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]


def test_the_federation_secret_exists_only_with_providers_and_only_the_authorize_function_reads_it():
    providers = '[{"id":"google","name":"Google","kind":"oidc","issuer":"https://accounts.google.com","client_id":"c","client_secret_key":"google"}]'
    t = tpl.load(os.path.join(ROOT, "template.yaml"), "oauth", {"FederationProviders": providers})
    t.set_physical("DataTable", "oauth-DataTable-T", Arn=TABLE_ARN)
    for s in SECRETS + ["FederationSecret"]:
        t.set_physical(s, f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{s}-X-abcdef")
    t.set_physical("HttpApi", "api1234567")
    fed = "arn:aws:secretsmanager:us-east-1:123456789012:secret:FederationSecret-X-abcdef"
    env = environment(t, "AuthorizeFunction")
    assert env["FEDERATION_PROVIDERS"] == providers and env["FEDERATION_SECRET_ID"] == fed
    for function in EXPECTED:
        got = {g for g in grants(t, function)[0] if g[1] == fed}
        want = {("secretsmanager:GetSecretValue", fed, None)} if function == "AuthorizeFunction" else set()
        assert got == want, function
    # Without providers: no secret, no grant, nothing in the environment.
    plain = tpl.load(os.path.join(ROOT, "template.yaml"), "oauth")
    plain.set_physical("DataTable", "oauth-DataTable-T", Arn=TABLE_ARN)
    for s in SECRETS:
        plain.set_physical(s, f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{s}-X-abcdef")
    plain.set_physical("HttpApi", "api1234567")
    assert "FederationSecret" not in plain.resources()
    assert "FEDERATION_SECRET_ID" not in environment(plain, "AuthorizeFunction")
    assert not any("FederationSecret" in str(g) for g in grants(plain, "AuthorizeFunction")[0])


def test_only_the_token_function_can_read_the_private_signing_keys(template):
    readers = {f for f in EXPECTED if ("secretsmanager:GetSecretValue", "SigningKeysSecret", None) in grants(template, f)[0]}
    assert readers == {"TokenFunction", "RotateKeysFunction"}


@pytest.mark.parametrize("function", sorted(EXPECTED_KEYS))
def test_each_function_gets_its_key_material_and_no_other(template, function):
    env = environment(template, function)
    want_keys, want_ids = EXPECTED_KEYS[function]
    assert env.get("OAUTH_KEYS") == want_keys
    ids = {k: resource_name(v) for k, v in env.items() if k.endswith("_SECRET_ID")}
    assert ids == want_ids
    assert template.code[function].code_uri == f"functions/{template.code[function].binary}"


def test_every_route_of_the_contract_reaches_its_function_and_nothing_else_is_routed(template):
    from gateway import routes_of

    body = template.resolve(template.cfn["Resources"]["HttpApi"]["Properties"]["Body"])
    routes, authorizers = routes_of(body)
    got = {r.key: r.function_arn.rsplit(":function:oauth-", 1)[1] for r in routes}
    assert got == ROUTES
    assert not authorizers


def test_the_issuer_follows_public_url_then_custom_domain_then_execute_api():
    cases = [({}, "https://api1234567.execute-api.us-east-1.amazonaws.com"),
             ({"CustomDomainName": "auth.example.com",
               "CustomDomainCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"}, "https://auth.example.com"),
             ({"PublicIssuerUrl": "https://login.example.com"}, "https://login.example.com")]
    for params, issuer in cases:
        t = tpl.load(os.path.join(ROOT, "template.yaml"), "oauth", params)
        t.set_physical("HttpApi", "api1234567")
        for lid in ("DataTable", "AuthorizerFunction", *SECRETS):
            t.set_physical(lid, lid, Arn=lid)
        t.set_physical("CustomDomain", "auth.example.com", RegionalDomainName="d-1.execute-api.us-east-1.amazonaws.com")
        for function in EXPECTED:
            assert environment(t, function)["ISSUER"] == issuer, (params, function)
        assert t.outputs()["IssuerUrl"] == issuer


def test_bad_parameter_values_are_refused_as_cloudformation_would():
    for params in ({"PublicIssuerUrl": "http://evil.example"}, {"KeysCacheSeconds": "5"},
                   {"CustomDomainName": "auth.example.com"}, {"NoSuchParameter": "1"}):
        with pytest.raises(tpl.TemplateError):
            tpl.load(os.path.join(ROOT, "template.yaml"), "oauth", params)


def test_a_custom_domain_gets_its_dns_record_only_with_a_hosted_zone():
    base = {"CustomDomainName": "auth.example.com",
            "CustomDomainCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"}
    without = tpl.load(os.path.join(ROOT, "template.yaml"), "oauth", base).resources()
    assert "CustomDomain" in without and "CustomDomainRecord" not in without
    with_zone = tpl.load(os.path.join(ROOT, "template.yaml"), "oauth",
                         {**base, "CustomDomainHostedZoneId": "Z0123456789ABC"}).resources()
    assert with_zone["CustomDomainRecord"]["Properties"]["Type"] == "A"
    assert "CustomDomainRecord" not in tpl.load(os.path.join(ROOT, "template.yaml"), "oauth").resources()


def _authorizer_of(path, params):
    t = tpl.load(os.path.join(ROOT, path), "example", params)
    for lid, res in t.resources().items():
        body = (res.get("Properties") or {}).get("Body") or (res.get("Properties") or {}).get("DefinitionBody")
        if body:
            schemes = (body.get("components") or {}).get("securitySchemes") or body.get("securityDefinitions") or {}
            for scheme in schemes.values():
                if "x-amazon-apigateway-authorizer" in scheme:
                    return scheme["x-amazon-apigateway-authorizer"]
    raise AssertionError(f"no Lambda authorizer in {path}")


def test_the_example_apis_never_reuse_a_decision_for_another_route_or_after_revocation():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:oauth-AuthorizerFunction-X"
    http = _authorizer_of("infra/examples/protected-api/template.yaml", {"AuthorizerFunctionArn": arn,
                                                                         "IssuerUrl": "https://as.example"})
    assert http["type"] == "request" and http["enableSimpleResponses"] is True
    assert http["identitySource"] == ["$request.header.Authorization", "$context.routeKey"]
    assert http["authorizerResultTtlInSeconds"] == 0
    rest = _authorizer_of("infra/examples/protected-rest-api/template.yaml", {"AuthorizerFunctionArn": arn})
    assert rest["type"] == "request" and rest["identitySource"] == "method.request.header.Authorization"
    assert rest["authorizerResultTtlInSeconds"] == 0


def test_build_and_deploy_read_one_architecture_setting_and_local_builds_go_elsewhere():
    """samconfig.toml: `sam build` and `sam deploy` both read [default.global.parameters];
    a parameter_overrides in a command section would shadow it for that command only."""
    import tomllib

    with open(os.path.join(ROOT, "samconfig.toml"), "rb") as f:
        config = tomllib.load(f)
    default = config["default"]
    overrides = dict(p.split("=", 1) for p in default["global"]["parameters"]["parameter_overrides"].split())
    assert overrides["Architecture"] in ("arm64", "x86_64")
    for command, section in default.items():
        if command != "global":
            assert "parameter_overrides" not in section.get("parameters", {}), f"[default.{command}] overrides"
    assert default["global"]["parameters"]["stack_name"] == "oauth"
    local = config["local"]
    assert local["build"]["parameters"]["build_dir"] not in ("", ".aws-sam/build")
    assert local["local_start_api"]["parameters"]["template_file"].startswith(local["build"]["parameters"]["build_dir"])
    # Every parameter named there exists in the template.
    t = tpl.load(os.path.join(ROOT, "template.yaml"), "oauth", overrides)
    assert t.parameters["Architecture"] == overrides["Architecture"]


# Every alarm: (threshold parameter, metrics as (namespace, name, dimension names)). The
# stack's own metrics (namespace: the stack's name) are the embedded-metric-format lines the
# code writes; tests/flows/metrics.rs checks those names against what a flow really emits.
STACK = "stack"
ALARMS = {
    **{f"Http5xxRate{cap}Alarm": ("Alarm5xxRatePercent",
                                  {(STACK, "Errors5xx", ("Function",)), (STACK, "Requests", ("Function",))})
       for cap in ["Register", "Authorize", "Token", "Protected", "Discovery"]},
    "LambdaErrorsAlarm": ("AlarmLambdaErrors", {("AWS/Lambda", "Errors", ("FunctionName",))}),
    "LambdaThrottlesAlarm": ("AlarmLambdaThrottles", {("AWS/Lambda", "Throttles", ("FunctionName",))}),
    "RotationFailuresAlarm": ("AlarmRotationFailures", {("AWS/Lambda", "Errors", ("FunctionName",))}),
    "DynamoDbSystemErrorsAlarm": ("AlarmDynamoDbSystemErrors",
                                  {("AWS/DynamoDB", "SystemErrors", ("Operation", "TableName"))}),
    "DynamoDbThrottlesAlarm": ("AlarmDynamoDbThrottles",
                               {("AWS/DynamoDB", "ReadThrottleEvents", ("TableName",)),
                                ("AWS/DynamoDB", "WriteThrottleEvents", ("TableName",))}),
    "AuthorizerDeniesAlarm": ("AlarmAuthorizerDenies", {(STACK, "AuthorizerDenied", ("Function",))}),
}


def alarm_metrics(props):
    out = set()
    for m in props["Metrics"]:
        stat = m.get("MetricStat")
        if not stat:
            assert m.get("Expression") and m.get("ReturnData") is True, m
            continue
        metric = stat["Metric"]
        ns = STACK if metric["Namespace"] == {"Ref": "AWS::StackName"} else metric["Namespace"]
        out.add((ns, metric["MetricName"], tuple(sorted(d["Name"] for d in metric["Dimensions"]))))
    return out


def test_every_alarm_watches_its_metrics_with_a_threshold_parameter_and_notifies_the_topic():
    raw = tpl.load(os.path.join(ROOT, "template.yaml"), "oauth").cfn
    params = raw["Parameters"]
    alarms = {lid: r["Properties"] for lid, r in raw["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == set(ALARMS)
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert raw["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    assert params["AlarmTopicArn"]["Default"] == ""
    for lid, props in alarms.items():
        param, metrics = ALARMS[lid]
        assert props["Threshold"] == {"Ref": param} and param in params, lid
        assert props["AlarmActions"] == topic and props["OKActions"] == topic, lid
        assert props["TreatMissingData"] == "notBreaching" and props["EvaluationPeriods"] == 1, lid
        assert alarm_metrics(props) == metrics, lid
        # Every metric of a function or the table names that resource, by reference.
        for m in props["Metrics"]:
            for d in m.get("MetricStat", {}).get("Metric", {}).get("Dimensions", []):
                if d["Name"] == "FunctionName":
                    assert d["Value"]["Ref"] in EXPECTED or d["Value"]["Ref"] == "RotateKeysFunction", lid
                if d["Name"] == "TableName":
                    assert d["Value"] == {"Fn::If": ["HasRestoredTable", {"Ref": "RestoredTableName"},
                                                     {"Ref": "DataTable"}]}, lid
    # The per-function 5xx alarms name their own function.
    for cap in ["Register", "Authorize", "Token", "Protected", "Discovery"]:
        dims = [d for m in alarms[f"Http5xxRate{cap}Alarm"]["Metrics"]
                for d in m.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])]
        assert dims and all(d == {"Name": "Function", "Value": cap.lower()} for d in dims), cap
    # With a topic, the resolved alarms notify it.
    t = tpl.load(os.path.join(ROOT, "template.yaml"), "oauth",
                 {"AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:oncall"})
    assert t.resolve(t.cfn["Resources"]["LambdaErrorsAlarm"]["Properties"]["AlarmActions"]) == \
        ["arn:aws:sns:us-east-1:123456789012:oncall"]


def test_the_functions_write_metrics_into_the_stacks_namespace(template):
    for function in ["RegisterFunction", "AuthorizeFunction", "TokenFunction", "ProtectedFunction",
                     "DiscoveryFunction", "AuthorizerFunction"]:
        assert environment(template, function)["METRICS_NAMESPACE"] == "oauth", function


def test_a_restored_table_replaces_the_stacks_table_everywhere_with_the_same_grants():
    restored = "oauth-restored-2026-12-07"
    restored_arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{restored}"
    t = tpl.load(os.path.join(ROOT, "template.yaml"), "oauth", {"RestoredTableName": restored})
    t.set_physical("DataTable", "oauth-DataTable-T", Arn=TABLE_ARN)
    for s in SECRETS:
        t.set_physical(s, f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{s}-X-abcdef")
    t.set_physical("HttpApi", "api1234567")
    for function, want in EXPECTED.items():
        got, _ = grants(t, function)
        moved = {(a, "DataTable" if r == restored_arn else r, k) for a, r, k in got}
        assert moved == want and not any(r == "DataTable" for _, r, _ in got), function
        env = environment(t, function)
        assert env.get("TABLE_NAME", restored) == restored, function
    alarm = t.resolve(t.cfn["Resources"]["DynamoDbThrottlesAlarm"]["Properties"])
    assert {d["Value"] for m in alarm["Metrics"] for d in m.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])} == {restored}
