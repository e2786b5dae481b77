"""Deploy SAM templates into the local stack: what CloudFormation would create, created in the
emulator (tables, secrets, roles, rotation schedules) or on this machine (functions, HTTP
APIs), in dependency order, each resource's properties resolved just before it is created.

Resources created:
- AWS::DynamoDB::Table (key schema, billing mode, TTL, point-in-time recovery, deletion
  protection), AWS::SecretsManager::Secret (SecretString or GenerateSecretString, through
  the emulator's GetRandomPassword), AWS::IAM::Role (trust policy, inline and managed
  policies): in the emulator, by the stack's administrator principal;
- AWS::Lambda::Function: a function of the local Lambda host, running under its role's
  temporary credentials (assumed as the Lambda service assumes them);
- AWS::Lambda::Permission: the functions' resource policies, checked before API Gateway or
  Secrets Manager invoke a function;
- AWS::ApiGatewayV2::Api + Stage: an HTTP API front (gateway.py);
- AWS::SecretsManager::RotationSchedule: RotateSecret with the rotation function, waited
  for (the deploy fails if the rotation does);
- AWS::Logs::LogGroup: recorded (functions log to files).
Anything else is reported as not emulated.
"""
from __future__ import annotations

import json
import os
import random
import string
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

import iam
from gateway import HttpApi
from lambda_host import Function, InvokeError, python_command
from template import ACCOUNT, REGION, Template, TemplateError


# Files every provided.al2023 function finds on Lambda, and where this machine keeps them: an
# environment value naming one is pointed here instead (the only change made to a function's
# environment besides AWS_ENDPOINT_URL).
AMAZON_LINUX_FILES = {"/etc/pki/tls/certs/ca-bundle.crt": ["/etc/ssl/certs/ca-certificates.crt",
                                                           "/etc/pki/tls/certs/ca-bundle.crt"]}


def _host_path(value: str) -> str:
    for candidate in AMAZON_LINUX_FILES.get(value, []):
        if os.path.exists(candidate):
            return candidate
    return value


def _suffix(n: int = 12) -> str:
    return "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def _function_name(ref: str) -> str:
    """A function name from a name, an ARN or a partial ARN (qualifier dropped)."""
    if ref.startswith("arn:"):
        parts = ref.split(":")
        return parts[6] if len(parts) > 6 else ref
    return ref.split(":")[0]


@dataclass
class Permission:
    """One statement of a function's resource policy."""

    function: str
    action: str
    principal: str
    source_arn: str | None
    source_account: str | None


@dataclass
class Deployment:
    """One deployed template: its resources' physical ids and its outputs."""

    name: str
    template: Template
    physical: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


class LocalStack:
    """The emulator, the Lambda host and the HTTP APIs of every deployed template."""

    def __init__(self, workdir: str, emulator_url: str, admin: dict, bin_dir: str):
        self.workdir, self.emulator_url, self.bin_dir = workdir, emulator_url, bin_dir
        self.admin = admin
        self.log_dir = os.path.join(workdir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        session = boto3.session.Session(aws_access_key_id=admin["AccessKeyId"],
                                        aws_secret_access_key=admin["SecretAccessKey"], region_name=REGION)
        self.ddb = session.client("dynamodb", endpoint_url=emulator_url)
        self.sm = session.client("secretsmanager", endpoint_url=emulator_url)
        self.cw = session.client("cloudwatch", endpoint_url=emulator_url)
        self.iam = session.client("iam", endpoint_url=emulator_url)
        self.functions: dict[str, Function] = {}
        self.permissions: list[Permission] = []
        self.apis: dict[str, HttpApi] = {}
        self.deployments: dict[str, Deployment] = {}
        self._creds: dict[str, dict] = {}
        self._creds_lock = threading.Lock()

    # -- the Lambda service ----------------------------------------------------------------
    def credentials(self, role_arn: str, session_name: str):
        def get():
            with self._creds_lock:
                cached = self._creds.get(role_arn)
                if cached and cached["until"] > time.time():
                    return cached
                body = json.dumps({"RoleArn": role_arn, "RoleSessionName": session_name}).encode()
                req = urllib.request.Request(f"{self.emulator_url}/_stack/assume-role", data=body, method="POST")
                try:
                    with urllib.request.urlopen(req) as resp:
                        creds = json.loads(resp.read())
                except urllib.error.HTTPError as e:
                    raise InvokeError("Lambda.AccessDenied", e.read().decode(errors="replace")) from e
                creds["until"] = time.time() + 11 * 3600
                self._creds[role_arn] = creds
                return creds

        return get

    def function(self, ref: str) -> Function | None:
        return self.functions.get(_function_name(ref))

    def may_invoke(self, function_ref: str, principal: str, source_arn: str | None,
                   source_account: str | None = ACCOUNT) -> bool:
        name = _function_name(function_ref)
        for p in self.permissions:
            if p.function != name or p.principal != principal:
                continue
            if p.action not in ("lambda:InvokeFunction", "lambda:*"):
                continue
            if p.source_arn and not (source_arn and iam._glob(p.source_arn, source_arn, False)):
                continue
            if p.source_account and p.source_account != source_account:
                continue
            return True
        return False

    def invoke(self, function_ref: str, payload: bytes) -> bytes:
        fn = self.function(function_ref)
        if fn is None:
            raise InvokeError("ResourceNotFoundException", f"no function {function_ref}")
        return fn.invoke(payload)

    # -- deploying --------------------------------------------------------------------------
    def deploy(self, template: Template, api_ports: dict[str, int]) -> Deployment:
        dep = Deployment(template.stack_name, template)
        stages = {}
        resources = template.resources()
        for lid in template.creation_order():
            res = resources[lid]
            kind = res["Type"]
            props = template.resolve(res.get("Properties") or {})
            creator = getattr(self, "_create_" + kind.replace("::", "_"), None)
            if creator is None:
                dep.skipped[lid] = kind
                template.set_physical(lid, f"{template.stack_name}-{lid}-{_suffix()}")
                continue
            if kind == "AWS::ApiGatewayV2::Stage":
                stages[props["ApiId"]] = props
            creator(dep, lid, props, api_ports)
        self._serve_apis(dep, stages, api_ports)
        dep.outputs = template.outputs()
        self.deployments[dep.name] = dep
        return dep

    def _serve_apis(self, dep: Deployment, stages: dict, api_ports: dict[str, int]) -> None:
        for lid, spec in dep.template.resources().items():
            if spec["Type"] != "AWS::ApiGatewayV2::Api":
                continue
            api_id = dep.physical[lid]
            body = dep.template.resolve(spec["Properties"].get("Body") or {})
            try:
                api = HttpApi(api_id, body, stages.get(api_id, {}), self.invoke, self.may_invoke,
                              os.path.join(self.log_dir, f"{dep.name}-{lid}-access.log"), REGION, ACCOUNT)
            except ValueError as e:
                dep.skipped[lid] = f"AWS::ApiGatewayV2::Api not served: {e}"
                continue
            api.serve(api_ports.get(lid, 0))
            self.apis[api_id] = api
            dep.physical[f"{lid}.url"] = f"http://{api.domain}"

    def _create_AWS_DynamoDB_Table(self, dep, lid, p, _ports):
        name = p.get("TableName") or f"{dep.name}-{lid}-{_suffix()}"
        args = {k: p[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
                                  "LocalSecondaryIndexes", "SSESpecification") if k in p}
        if "SSESpecification" in args:
            args["SSESpecification"] = {"Enabled": str(args["SSESpecification"].get("SSEEnabled")).lower() == "true"}
        args["BillingMode"] = p.get("BillingMode", "PROVISIONED")
        if "DeletionProtectionEnabled" in p:
            args["DeletionProtectionEnabled"] = str(p["DeletionProtectionEnabled"]).lower() == "true"
        table = self.ddb.create_table(TableName=name, **args)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl:
            self.ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"], "Enabled": str(ttl.get("Enabled")).lower() == "true"})
        pitr = p.get("PointInTimeRecoverySpecification")
        if pitr:
            self.ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": str(pitr.get("PointInTimeRecoveryEnabled")).lower() == "true"})
        dep.template.set_physical(lid, name, Arn=table["TableArn"])
        dep.physical[lid] = name

    def _create_AWS_SecretsManager_Secret(self, dep, lid, p, _ports):
        name = p.get("Name") or f"{lid}-{_suffix()}"
        if "SecretString" in p:
            value = p["SecretString"]
        else:
            gen = p.get("GenerateSecretString") or {}
            opts = {"PasswordLength": int(gen.get("PasswordLength", 32))}
            for k in ("ExcludeCharacters", "ExcludeNumbers", "ExcludePunctuation", "ExcludeUppercase",
                      "ExcludeLowercase", "IncludeSpace", "RequireEachIncludedType"):
                if k in gen:
                    opts[k] = gen[k] if k == "ExcludeCharacters" else str(gen[k]).lower() == "true"
            password = self.sm.get_random_password(**opts)["RandomPassword"]
            if "SecretStringTemplate" in gen:
                doc = json.loads(gen["SecretStringTemplate"])
                doc[gen["GenerateStringKey"]] = password
                value = json.dumps(doc)
            else:
                value = password
        arn = self.sm.create_secret(Name=name, Description=p.get("Description", ""), SecretString=value)["ARN"]
        dep.template.set_physical(lid, arn, Id=arn)
        dep.physical[lid] = arn

    def _create_AWS_IAM_Role(self, dep, lid, p, _ports):
        name = (p.get("RoleName") or f"{dep.name}-{lid}-{_suffix()}")[:64]
        role = self.iam.create_role(RoleName=name, Path=p.get("Path", "/"),
                                    AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"]))["Role"]
        for arn in p.get("ManagedPolicyArns") or []:
            self.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        for policy in p.get("Policies") or []:
            self.iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                                     PolicyDocument=json.dumps(policy["PolicyDocument"]))
        dep.template.set_physical(lid, name, Arn=role["Arn"], RoleId=role["RoleId"])
        dep.physical[lid] = name

    def _create_AWS_Lambda_Function(self, dep, lid, p, _ports):
        name = p.get("FunctionName") or f"{dep.name}-{lid}-{_suffix()}"[:64]
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        code = dep.template.code.get(lid)
        task_root = os.path.join(self.workdir, "code", name)
        os.makedirs(task_root, exist_ok=True)
        if code is None and "ZipFile" in (p.get("Code") or {}):
            from template import FunctionCode

            code = FunctionCode(runtime=p.get("Runtime", ""), handler=p.get("Handler", ""), inline=p["Code"]["ZipFile"])
        if code is None:
            raise TemplateError(f"{lid}: no code the local stack can run")
        if code.inline is not None:
            if not code.runtime.startswith("python"):
                raise TemplateError(f"{lid}: inline code of runtime {code.runtime} is not emulated")
            module = code.handler.rsplit(".", 1)[0]
            with open(os.path.join(task_root, f"{module}.py"), "w", encoding="utf-8") as f:
                f.write(code.inline)
            command = python_command(code.handler, task_root)
        else:
            binary = os.path.join(self.bin_dir, code.binary, "bootstrap")
            if not os.access(binary, os.X_OK):
                raise TemplateError(f"{lid}: {binary} is missing; build it with `cargo lambda build --release -p {code.binary}`")
            command = [binary]
        env = {k: _host_path("" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
               for k, v in ((p.get("Environment") or {}).get("Variables") or {}).items()}
        fn = Function(name, arn, command, env, int(p.get("Timeout", 3)), int(p.get("MemorySize", 128)), task_root,
                      self.log_dir, self.emulator_url, self.credentials(p["Role"], name))
        fn.role = p["Role"]
        fn.logical_id = f"{dep.name}/{lid}"
        self.functions[name] = fn
        dep.template.set_physical(lid, name, Arn=arn)
        dep.physical[lid] = name

    def _create_AWS_Lambda_Permission(self, dep, lid, p, _ports):
        self.permissions.append(Permission(_function_name(p["FunctionName"]), p["Action"], p["Principal"],
                                           p.get("SourceArn"), p.get("SourceAccount")))
        dep.template.set_physical(lid, f"{lid}-{_suffix(8)}")
        dep.physical[lid] = lid

    def _create_AWS_CloudWatch_Alarm(self, dep, lid, p, _ports):
        # As CloudFormation creates it (the emulator keeps it; nothing evaluates it here).
        name = p.get("AlarmName") or f"{dep.name}-{lid}-{_suffix()}"
        args = {k: p[k] for k in ("AlarmDescription", "ComparisonOperator", "TreatMissingData", "AlarmActions",
                                  "OKActions") if k in p}
        metrics = []
        for m in p["Metrics"]:
            q = {"Id": m["Id"], "ReturnData": str(m.get("ReturnData", "false")).lower() == "true"}
            for k in ("Expression", "Label"):
                if k in m:
                    q[k] = m[k]
            if "MetricStat" in m:
                st = m["MetricStat"]
                q["MetricStat"] = {"Metric": st["Metric"], "Period": int(st["Period"]), "Stat": st["Stat"]}
            metrics.append(q)
        self.cw.put_metric_alarm(AlarmName=name, Metrics=metrics, Threshold=float(p["Threshold"]),
                                 EvaluationPeriods=int(p["EvaluationPeriods"]),
                                 DatapointsToAlarm=int(p.get("DatapointsToAlarm", p["EvaluationPeriods"])), **args)
        dep.template.set_physical(lid, name, Arn=f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}")
        dep.physical[lid] = name

    def _create_AWS_CloudWatch_Dashboard(self, dep, lid, p, _ports):
        name = p.get("DashboardName") or f"{dep.name}-{lid}"
        self.cw.put_dashboard(DashboardName=name, DashboardBody=p["DashboardBody"])
        dep.template.set_physical(lid, name)
        dep.physical[lid] = name

    def _create_AWS_Logs_LogGroup(self, dep, lid, p, _ports):
        name = p.get("LogGroupName") or f"/aws/{dep.name}/{lid}"
        dep.template.set_physical(lid, name, Arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*")
        dep.physical[lid] = name

    def _create_AWS_ApiGatewayV2_Api(self, dep, lid, p, _ports):
        api_id = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(10))
        dep.template.set_physical(lid, api_id, ApiEndpoint=f"https://{api_id}.execute-api.{REGION}.amazonaws.com")
        dep.physical[lid] = api_id

    def _create_AWS_ApiGatewayV2_Stage(self, dep, lid, p, _ports):
        dep.template.set_physical(lid, p.get("StageName", "$default"))
        dep.physical[lid] = p.get("StageName", "$default")

    def _create_AWS_SecretsManager_RotationSchedule(self, dep, lid, p, _ports):
        rules = {k: v for k, v in (p.get("RotationRules") or {}).items()
                 if k in ("ScheduleExpression", "Duration", "AutomaticallyAfterDays")}
        version = self.rotate(p["SecretId"], p.get("RotationLambdaARN"), rules,
                              str(p.get("RotateImmediatelyOnUpdate", "true")).lower() == "true")
        dep.template.set_physical(lid, f"{p['SecretId']}:rotation:{version}")
        dep.physical[lid] = version

    def rotate(self, secret_id: str, function_arn: str | None = None, rules: dict | None = None,
               immediately: bool = True, timeout: float = 60) -> str:
        """RotateSecret, then wait until the rotation function has run every step."""
        args = {"SecretId": secret_id, "RotateImmediately": immediately}
        if function_arn:
            args["RotationLambdaARN"] = function_arn
        if rules:
            args["RotationRules"] = rules
        version = self.sm.rotate_secret(**args)["VersionId"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            with urllib.request.urlopen(f"{self.emulator_url}/_stack/rotations") as resp:
                rotations = json.loads(resp.read())["rotations"]
            mine = [r for r in rotations if r["version"] == version]
            if mine and mine[-1]["status"] == "succeeded":
                return version
            if mine and mine[-1]["status"] == "failed":
                raise TemplateError(f"rotation of {secret_id} failed: {json.dumps(mine[-1]['steps'])}")
            time.sleep(0.1)
        raise TemplateError(f"rotation of {secret_id} did not finish in {timeout} s")

    def stop(self) -> None:
        for api in self.apis.values():
            api.stop()
        for fn in self.functions.values():
            fn.stop()


def control_server(stack: LocalStack, port: int) -> ThreadingHTTPServer:
    """What other services of the emulator call: POST /_control/invoke (Secrets Manager
    invoking a rotation function, after the resource-policy check)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path != "/_control/invoke":
                out, status = {"error": "unknown endpoint"}, 404
            elif not stack.may_invoke(body["function"], body["principal"], body.get("source_arn"),
                                      body.get("source_account")):
                out, status = {"error": f"{body['principal']} may not invoke {body['function']}"}, 200
            else:
                try:
                    raw = stack.invoke(body["function"], json.dumps(body["event"]).encode())
                    out, status = {"result": raw.decode(errors="replace")}, 200
                except InvokeError as e:
                    out, status = {"error": str(e)}, 200
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
