"""SAM templates as CloudFormation would see them, for the local stack.

A template is parsed with samtranslator's YAML loader and translated with samtranslator
itself (the code behind `sam deploy`'s transform), after the step `sam package` performs:
each function's `CodeUri` becomes an S3 location. The local stack keeps what that location
stood for (the built binary of `Metadata.BuildProperties.Binary`, or `InlineCode`).

Intrinsic functions are resolved by the SAM CLI's own resolver
(`samcli.lib.intrinsic_resolver`), with a symbol table that knows only the parameters, the
pseudo parameters and the physical ids of resources already created: an unknown symbol is an
error, never a guessed value (the SAM CLI's default table invents ARNs for anything).
Parameters are checked against their `AllowedValues`, `AllowedPattern`, `MinValue` and
`MaxValue`, and `Rules` assertions are evaluated, as CloudFormation does before a deploy.
"""
from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field

from samcli.lib.intrinsic_resolver.intrinsic_property_resolver import IntrinsicResolver
from samcli.lib.intrinsic_resolver.intrinsics_symbol_table import IntrinsicsSymbolTable
from samcli.lib.intrinsic_resolver.invalid_intrinsic_exception import InvalidSymbolException

REGION = "us-east-1"
ACCOUNT = "123456789012"


class TemplateError(Exception):
    """The template or a parameter value is not deployable."""


class _StrictSymbols(IntrinsicsSymbolTable):
    """Resolve only what is known: parameters, pseudo parameters, created resources."""

    def resolve_symbols(self, logical_id, resource_attribute, ignore_errors=False):
        translated = self.get_translation(logical_id, resource_attribute)
        if translated is None or translated == {}:
            raise InvalidSymbolException(f"{logical_id}.{resource_attribute} is not known (yet)")
        return translated


@dataclass
class FunctionCode:
    """What a function's code is: a built binary or inline source."""

    runtime: str
    handler: str
    binary: str | None = None
    inline: str | None = None
    code_uri: str | None = None


@dataclass
class Template:
    """One translated template, its parameter values and the physical ids known so far."""

    path: str
    stack_name: str
    cfn: dict
    parameters: dict[str, str]
    code: dict[str, FunctionCode]
    symbols: dict = field(default_factory=dict)

    def _resolver(self) -> IntrinsicResolver:
        table = _StrictSymbols(template=self.cfn, logical_id_translator=self.symbols)
        return IntrinsicResolver(template=self.cfn, symbol_resolver=table)

    def resolve(self, value):
        """`value` with every intrinsic function resolved (TemplateError when one cannot be)."""
        try:
            chosen = self._select(copy.deepcopy(value))
            out = self._resolver().intrinsic_property_resolver(self._sub_variables(chosen), ignore_errors=False)
        except Exception as e:
            raise TemplateError(f"{self.path}: cannot resolve {value!r}: {e}") from e
        left = _unresolved(out)
        if left:
            raise TemplateError(f"{self.path}: {left!r} left unresolved in {value!r}")
        return out

    def _select(self, node):
        """`Fn::If` replaced by the branch its condition picks, and `Ref: AWS::NoValue` removed
        (as CloudFormation does): the branch not taken is never resolved, so it may name a
        resource that its condition leaves out."""
        novalue = {"Ref": "AWS::NoValue"}
        if isinstance(node, list):
            picked = [self._select(x) for x in node]
            return [x for x in picked if x != novalue]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Fn::If"} and isinstance(node["Fn::If"], list) and len(node["Fn::If"]) == 3:
            name, when_true, when_false = node["Fn::If"]
            return self._select(when_true if self.condition(name) else when_false)
        picked = {k: self._select(v) for k, v in node.items()}
        return {k: v for k, v in picked.items() if v != novalue}

    def _sub_variables(self, node):
        """`Fn::Sub: [text, {name: value}]`, which the SAM CLI's resolver leaves half done:
        substitute the named variables (each resolved first), keep the rest for it."""
        if isinstance(node, list):
            return [self._sub_variables(x) for x in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], list) and len(node["Fn::Sub"]) == 2:
            text, variables = node["Fn::Sub"]
            for name, val in (variables or {}).items():
                resolved = self.resolve(val)
                text = text.replace("${" + name + "}", str(resolved))
            return {"Fn::Sub": text}
        return {k: self._sub_variables(v) for k, v in node.items()}

    def condition(self, name: str) -> bool:
        """The value of a named condition."""
        conditions = self.cfn.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"{self.path}: unknown condition {name}")
        return bool(self.resolve(conditions[name]))

    def resources(self) -> dict[str, dict]:
        """The resources whose condition (if any) holds."""
        out = {}
        for lid, res in (self.cfn.get("Resources") or {}).items():
            if "Condition" in res and not self.condition(res["Condition"]):
                continue
            out[lid] = res
        return out

    def set_physical(self, logical_id: str, ref, **attributes) -> None:
        """Record a created resource: what `Ref` and `Fn::GetAtt` return for it."""
        entry = {"Ref": ref}
        entry.update(attributes)
        self.symbols[logical_id] = entry

    def creation_order(self) -> list[str]:
        """Resources ordered so every resource comes after those it refers to."""
        resources = self.resources()
        deps = {lid: _references(res, resources) for lid, res in resources.items()}
        order, done, visiting = [], set(), set()

        def visit(lid):
            if lid in done:
                return
            if lid in visiting:
                raise TemplateError(f"{self.path}: circular dependency through {lid}")
            visiting.add(lid)
            for d in sorted(deps[lid]):
                visit(d)
            visiting.discard(lid)
            done.add(lid)
            order.append(lid)

        for lid in resources:
            visit(lid)
        return order

    def outputs(self) -> dict[str, str]:
        """The stack outputs, resolved (those whose condition holds)."""
        out = {}
        for name, spec in (self.cfn.get("Outputs") or {}).items():
            if "Condition" in spec and not self.condition(spec["Condition"]):
                continue
            out[name] = str(self.resolve(spec["Value"]))
        return out


def _unresolved(node) -> str | None:
    """A `${...}` placeholder or intrinsic function left in a resolved value, if any."""
    if isinstance(node, str):
        m = re.search(r"\$\{(?!!)[^}]*\}", node)
        return m.group(0) if m else None
    if isinstance(node, list):
        return next((u for u in map(_unresolved, node) if u), None)
    if isinstance(node, dict):
        if any(k.startswith("Fn::") for k in node) or (len(node) == 1 and set(node) & {"Ref", "Condition"}):
            return json.dumps(node)[:200]
        return next((u for u in map(_unresolved, node.values()) if u), None)
    return None


_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z0-9.]+)?\}")


def _references(node, resources: dict) -> set[str]:
    """The resources `node` refers to (Ref, Fn::GetAtt, Fn::Sub, DependsOn)."""
    found: set[str] = set()

    def walk(n):
        if isinstance(n, dict):
            for k, v in n.items():
                if k == "Ref" and isinstance(v, str):
                    found.add(v)
                elif k == "Fn::GetAtt":
                    target = v[0] if isinstance(v, list) else str(v).split(".")[0]
                    found.add(target)
                elif k == "Fn::Sub":
                    text, local = (v[0], v[1]) if isinstance(v, list) else (v, {})
                    found.update(m for m in _SUB_NAME.findall(text) if m not in local)
                    walk(local)
                elif k == "DependsOn":
                    found.update(v if isinstance(v, list) else [v])
                else:
                    walk(v)
        elif isinstance(n, list):
            for x in n:
                walk(x)

    walk(node)
    return {r for r in found if r in resources}


def _check_parameter(name: str, spec: dict, value: str) -> None:
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        raise TemplateError(f"parameter {name}={value!r} is not one of {spec['AllowedValues']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        raise TemplateError(f"parameter {name}={value!r} does not match {spec['AllowedPattern']}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError as e:
            raise TemplateError(f"parameter {name}={value!r} is not a number") from e
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above {spec['MaxValue']}")


def _string(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def load(path: str, stack_name: str, overrides: dict[str, str] | None = None) -> Template:
    """Parse, package and translate a SAM template, with parameter `overrides`."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    with open(path, encoding="utf-8") as f:
        sam = yaml_parse(f.read())
    overrides = dict(overrides or {})
    params_spec = sam.get("Parameters") or {}
    unknown = set(overrides) - set(params_spec)
    if unknown:
        raise TemplateError(f"{path}: no such parameter(s): {sorted(unknown)}")
    parameters = {}
    for name, spec in params_spec.items():
        if name in overrides:
            value = _string(overrides[name])
        elif "Default" in spec:
            value = _string(spec["Default"])
        else:
            raise TemplateError(f"{path}: parameter {name} has no default and no value")
        _check_parameter(name, spec, value)
        parameters[name] = value

    code: dict[str, FunctionCode] = {}
    globals_fn = (sam.get("Globals") or {}).get("Function") or {}
    for lid, res in (sam.get("Resources") or {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.setdefault("Properties", {})
        meta = res.get("Metadata") or {}
        runtime = props.get("Runtime", globals_fn.get("Runtime", ""))
        handler = props.get("Handler", globals_fn.get("Handler", ""))
        if "InlineCode" in props:
            code[lid] = FunctionCode(runtime=runtime, handler=handler, inline=props["InlineCode"])
            continue
        binary = (meta.get("BuildProperties") or {}).get("Binary")
        if meta.get("BuildMethod") != "rust-cargolambda" or not binary:
            raise TemplateError(f"{path}: {lid} is neither a rust-cargolambda binary nor InlineCode")
        code[lid] = FunctionCode(runtime=runtime, handler=handler, binary=binary, code_uri=props.get("CodeUri"))
        # What `sam package` does: the code becomes an S3 object.
        props["CodeUri"] = f"s3://local-stack-artifacts/{stack_name}/{lid}"
    try:
        cfn = transform(sam, parameters, managed_policy_loader=None)
    except Exception as e:
        raise TemplateError(f"{path}: SAM transform failed: {e}") from e
    template = Template(path=path, stack_name=stack_name, cfn=cfn, parameters=parameters, code=code)
    template.symbols.update({
        "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": stack_name, "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None,
        "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack_name}/local",
    })
    template.symbols.update(parameters)
    for name, rule in (cfn.get("Rules") or {}).items():
        if "RuleCondition" in rule and not template.resolve(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions") or []:
            if not template.resolve(assertion["Assert"]):
                raise TemplateError(f"{path}: rule {name}: {assertion.get('AssertDescription', 'assertion failed')}")
    return template
