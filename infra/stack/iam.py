"""IAM policy evaluation for the local stack's emulator.

moto's own IAM access control (INITIAL_NO_AUTH_ACTION_COUNT) checks a request's action but
evaluates every DynamoDB and Secrets Manager request against the resource "*", so a policy
that names a table or secret ARN (as every policy in template.yaml does) refuses everything;
it also knows no TransactWriteItems expansion and no condition keys. This module evaluates
the way IAM does for the calls this project makes:

- a request becomes one or more authorization requests (action, resource ARN, context
  keys): a TransactWriteItems is authorised item by item as PutItem, UpdateItem,
  DeleteItem or ConditionCheckItem (there is no dynamodb:TransactWriteItems IAM action), a
  BatchGetItem per table, and every item-level call carries `dynamodb:LeadingKeys` (the
  partition-key values it touches);
- an explicit Deny wins, otherwise one matching Allow is needed (implicit deny);
- Action/NotAction match case-insensitively with `*` and `?`, Resource/NotResource
  case-sensitively;
- conditions: String(Not)Equals, String(Not)Like, StringEqualsIgnoreCase, Arn(Not)Like,
  Arn(Not)Equals, Bool and Null, with the ForAllValues:/ForAnyValue: set prefixes and the
  IfExists suffix. An unknown operator never matches (fail closed).

Pure functions only: the emulator (emulator.py) feeds them moto's requests and policies.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AuthzRequest:
    """One question to IAM: may the principal perform `action` on `resource`?"""

    action: str
    resource: str
    context: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> str:
        keys = self.context.get("dynamodb:LeadingKeys")
        return f"{self.action} on {self.resource}" + (f" (LeadingKeys {sorted(set(keys))})" if keys else "")


@dataclass(frozen=True)
class Decision:
    """The outcome: allowed or not, and which statement decided (for the denial log)."""

    allowed: bool
    reason: str


def _glob(pattern: str, value: str, ignore_case: bool) -> bool:
    regex = "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"
    return re.match(regex, value, (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL) is not None


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _matches_element(statement: dict, positive: str, negative: str, value: str, ignore_case: bool) -> bool:
    if positive in statement:
        return any(_glob(p, value, ignore_case) for p in _as_list(statement[positive]))
    if negative in statement:
        return not any(_glob(p, value, ignore_case) for p in _as_list(statement[negative]))
    return False


def _string_op(op: str, expected: str, actual: str) -> bool | None:
    if op == "StringEquals":
        return actual == expected
    if op == "StringNotEquals":
        return actual != expected
    if op == "StringEqualsIgnoreCase":
        return actual.lower() == expected.lower()
    if op == "StringNotEqualsIgnoreCase":
        return actual.lower() != expected.lower()
    if op in ("StringLike", "ArnLike"):
        return _glob(expected, actual, False)
    if op in ("StringNotLike", "ArnNotLike"):
        return not _glob(expected, actual, False)
    if op == "ArnEquals":
        return actual == expected
    if op == "ArnNotEquals":
        return actual != expected
    if op == "Bool":
        return actual.lower() == str(expected).lower()
    return None


_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotLike", "ArnNotEquals"}


def _condition_holds(operator: str, key: str, expected_values, context: dict[str, list[str]]) -> bool:
    set_op = None
    op = operator
    for prefix in ("ForAllValues:", "ForAnyValue:"):
        if op.startswith(prefix):
            set_op, op = prefix[:-1], op[len(prefix):]
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    expected = [str(v) if not isinstance(v, bool) else str(v).lower() for v in _as_list(expected_values)]
    actual = context.get(key)
    if op == "Null":
        # {"Null": {"key": "true"}}: the key is absent.
        absent = not actual
        return any((e.lower() == "true") == absent for e in expected)
    if _string_op(op, "", "") is None:
        return False  # unknown operator: never matches (fail closed)
    negated = op in _NEGATED

    def one(value: str) -> bool:
        results = [_string_op(op, e, value) for e in expected]
        # A negated operator holds when the value matches none of the listed values.
        return all(results) if negated else any(results)

    if set_op == "ForAllValues":
        return all(one(v) for v in (actual or []))
    if set_op == "ForAnyValue":
        return any(one(v) for v in (actual or []))
    if not actual:
        return if_exists
    return all(one(v) for v in actual)


def _conditions_hold(statement: dict, context: dict[str, list[str]]) -> bool:
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, values in pairs.items():
            if not _condition_holds(operator, key, values, context):
                return False
    return True


def _statements(policy: dict) -> list[dict]:
    return _as_list(policy.get("Statement"))


def evaluate(policies: list[dict], request: AuthzRequest) -> Decision:
    """Evaluate identity policies for one authorization request."""
    allow = None
    for policy in policies:
        for i, st in enumerate(_statements(policy)):
            if not _matches_element(st, "Action", "NotAction", request.action, True):
                continue
            if not _matches_element(st, "Resource", "NotResource", request.resource, False):
                continue
            if not _conditions_hold(st, request.context):
                continue
            name = st.get("Sid") or f"statement {i}"
            if st.get("Effect") == "Deny":
                return Decision(False, f"explicit deny by {name}")
            if st.get("Effect") == "Allow" and allow is None:
                allow = name
    if allow is not None:
        return Decision(True, f"allowed by {allow}")
    return Decision(False, "no identity-based policy allows it")


# ---------------------------------------------------------------------------------------
# Requests -> authorization requests
# ---------------------------------------------------------------------------------------

def _attr_string(value: dict) -> str:
    """A DynamoDB AttributeValue as the string IAM compares (`dynamodb:LeadingKeys`)."""
    if not isinstance(value, dict) or len(value) != 1:
        return ""
    (kind, v), = value.items()
    if kind == "B":
        return v if isinstance(v, str) else base64.b64encode(v).decode()
    return str(v)


def _query_leading_keys(body: dict, hash_key: str | None) -> list[str]:
    if not hash_key:
        return []
    names = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    expr = body.get("KeyConditionExpression")
    if expr:
        for m in re.finditer(r"([#\w]+)\s*=\s*(:\w+)", expr):
            name = names.get(m.group(1), m.group(1))
            if name == hash_key and m.group(2) in values:
                return [_attr_string(values[m.group(2)])]
        return []
    cond = (body.get("KeyConditions") or {}).get(hash_key) or {}
    return [_attr_string(v) for v in cond.get("AttributeValueList") or []]


def dynamodb_requests(operation: str, body: dict, table_arn, hash_key) -> list[AuthzRequest]:
    """The authorization requests of one DynamoDB call.

    `table_arn(name)` gives a table's ARN, `hash_key(name)` its partition-key attribute
    name (None when the table does not exist).
    """

    def item_request(action: str, table: str, key_or_item: dict | None) -> AuthzRequest:
        hk = hash_key(table)
        leading = [] if not hk or not key_or_item or hk not in key_or_item else [_attr_string(key_or_item[hk])]
        return AuthzRequest(f"dynamodb:{action}", table_arn(table), {"dynamodb:LeadingKeys": leading} if leading else {})

    if operation in ("GetItem", "DeleteItem", "UpdateItem"):
        return [item_request(operation, body.get("TableName", ""), body.get("Key"))]
    if operation == "PutItem":
        return [item_request(operation, body.get("TableName", ""), body.get("Item"))]
    if operation == "Query":
        table = body.get("TableName", "")
        resource = table_arn(table) + (f"/index/{body['IndexName']}" if body.get("IndexName") else "")
        leading = _query_leading_keys(body, hash_key(table))
        return [AuthzRequest("dynamodb:Query", resource, {"dynamodb:LeadingKeys": leading} if leading else {})]
    if operation == "BatchGetItem":
        out = []
        for table, spec in (body.get("RequestItems") or {}).items():
            hk = hash_key(table)
            leading = [_attr_string(k[hk]) for k in spec.get("Keys") or [] if hk and hk in k]
            out.append(AuthzRequest("dynamodb:BatchGetItem", table_arn(table), {"dynamodb:LeadingKeys": leading}))
        return out
    if operation == "BatchWriteItem":
        out = []
        for table, writes in (body.get("RequestItems") or {}).items():
            hk = hash_key(table)
            leading = []
            for w in writes:
                item = (w.get("PutRequest") or {}).get("Item") or (w.get("DeleteRequest") or {}).get("Key") or {}
                if hk and hk in item:
                    leading.append(_attr_string(item[hk]))
            out.append(AuthzRequest("dynamodb:BatchWriteItem", table_arn(table), {"dynamodb:LeadingKeys": leading}))
        return out
    if operation == "TransactWriteItems":
        out = []
        kinds = {"Put": ("PutItem", "Item"), "Update": ("UpdateItem", "Key"), "Delete": ("DeleteItem", "Key"),
                 "ConditionCheck": ("ConditionCheckItem", "Key")}
        for entry in body.get("TransactItems") or []:
            for kind, (action, field_name) in kinds.items():
                if kind in entry:
                    spec = entry[kind]
                    out.append(item_request(action, spec.get("TableName", ""), spec.get(field_name)))
        return out
    if operation == "TransactGetItems":
        return [item_request("GetItem", e["Get"].get("TableName", ""), e["Get"].get("Key"))
                for e in body.get("TransactItems") or [] if "Get" in e]
    table = body.get("TableName")
    return [AuthzRequest(f"dynamodb:{operation}", table_arn(table) if table else "*")]


def secretsmanager_requests(operation: str, body: dict, secret_arn, region: str, account: str) -> list[AuthzRequest]:
    """The authorization requests of one Secrets Manager call (`secret_arn(id)` resolves a
    name or ARN to the secret's ARN, or None when it does not exist)."""
    action = f"secretsmanager:{operation}"
    if operation in ("GetRandomPassword", "ListSecrets", "BatchGetSecretValue"):
        return [AuthzRequest(action, "*")]
    if operation == "CreateSecret":
        return [AuthzRequest(action, f"arn:aws:secretsmanager:{region}:{account}:secret:{body.get('Name', '')}")]
    secret_id = body.get("SecretId", "")
    arn = secret_arn(secret_id) or (
        secret_id if secret_id.startswith("arn:") else f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"
    )
    context = {"secretsmanager:SecretId": [arn]}
    if operation == "GetSecretValue" and body.get("VersionStage"):
        context["secretsmanager:VersionStage"] = [body["VersionStage"]]
    return [AuthzRequest(action, arn, context)]
