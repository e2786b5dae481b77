"""The emulator's IAM evaluation: the cases the template's policies rely on."""
import iam

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/oauth-DataTable-X"


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions, resource=TABLE, condition=None):
    st = {"Effect": "Allow", "Action": actions, "Resource": resource}
    if condition:
        st["Condition"] = condition
    return st


def req(action, keys=None, resource=TABLE):
    return iam.AuthzRequest(action, resource, {"dynamodb:LeadingKeys": keys} if keys else {})


def test_an_action_the_policy_lacks_is_denied():
    p = [policy(allow(["dynamodb:GetItem", "dynamodb:PutItem"]))]
    assert iam.evaluate(p, req("dynamodb:GetItem")).allowed
    assert not iam.evaluate(p, req("dynamodb:UpdateItem")).allowed


def test_actions_match_case_insensitively_with_wildcards_and_resources_exactly():
    p = [policy(allow("DynamoDB:Get*"))]
    assert iam.evaluate(p, req("dynamodb:GetItem")).allowed
    assert not iam.evaluate(p, req("dynamodb:GetItem", resource=TABLE + "-other")).allowed
    assert not iam.evaluate(p, req("dynamodb:GetItem", resource=TABLE.upper())).allowed


def test_an_explicit_deny_wins_over_an_allow():
    p = [policy(allow("dynamodb:*"), {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"})]
    assert iam.evaluate(p, req("dynamodb:PutItem")).allowed
    d = iam.evaluate(p, req("dynamodb:DeleteItem"))
    assert not d.allowed and "explicit deny" in d.reason


def test_leading_keys_limit_an_allow_to_its_prefixes():
    cond = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["CODE#*", "RT#*"]}}
    p = [policy(allow("dynamodb:PutItem", condition=cond))]
    assert iam.evaluate(p, req("dynamodb:PutItem", ["CODE#abc"])).allowed
    assert iam.evaluate(p, req("dynamodb:PutItem", ["CODE#a", "RT#b"])).allowed
    assert not iam.evaluate(p, req("dynamodb:PutItem", ["USERNAME#alice"])).allowed
    assert not iam.evaluate(p, req("dynamodb:PutItem", ["CODE#a", "CLIENT#b"])).allowed, "every key must match"


def test_negated_and_single_valued_operators():
    p = [policy(allow("dynamodb:GetItem", condition={"StringNotLike": {"dynamodb:LeadingKeys": ["USERNAME#*"]}}))]
    assert iam.evaluate(p, req("dynamodb:GetItem", ["SUB#1"])).allowed
    assert not iam.evaluate(p, req("dynamodb:GetItem", ["USERNAME#a"])).allowed
    assert not iam.evaluate(p, req("dynamodb:GetItem")).allowed, "a missing key fails a plain operator"
    p = [policy(allow("dynamodb:GetItem", condition={"StringLikeIfExists": {"dynamodb:LeadingKeys": ["SUB#*"]}}))]
    assert iam.evaluate(p, req("dynamodb:GetItem")).allowed, "IfExists holds when the key is absent"


def test_an_unknown_condition_operator_fails_closed():
    p = [policy(allow("dynamodb:GetItem", condition={"NumericMagic": {"dynamodb:LeadingKeys": ["1"]}}))]
    assert not iam.evaluate(p, req("dynamodb:GetItem", ["1"])).allowed


def _arn(t):
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{t}"


def test_a_transaction_is_authorised_item_by_item():
    body = {"TransactItems": [
        {"Update": {"TableName": "t", "Key": {"pk": {"S": "CODE#1"}, "sk": {"S": "CODE"}}}},
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "RT#2"}, "sk": {"S": "RT"}}}},
        {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "SUB#3"}, "sk": {"S": "USER"}}}},
        {"Delete": {"TableName": "t", "Key": {"pk": {"S": "X#4"}, "sk": {"S": "X"}}}},
    ]}
    got = iam.dynamodb_requests("TransactWriteItems", body, _arn, lambda t: "pk")
    assert [(r.action, r.context["dynamodb:LeadingKeys"]) for r in got] == [
        ("dynamodb:UpdateItem", ["CODE#1"]), ("dynamodb:PutItem", ["RT#2"]),
        ("dynamodb:ConditionCheckItem", ["SUB#3"]), ("dynamodb:DeleteItem", ["X#4"])]
    assert all(r.resource == _arn("t") for r in got)


def test_batch_get_and_query_carry_their_partition_keys():
    body = {"RequestItems": {"t": {"Keys": [{"pk": {"S": "REVOKED#jti#1"}}, {"pk": {"S": "REVOKED#fam#2"}}]}}}
    (r,) = iam.dynamodb_requests("BatchGetItem", body, _arn, lambda t: "pk")
    assert r.action == "dynamodb:BatchGetItem" and r.context["dynamodb:LeadingKeys"] == ["REVOKED#jti#1", "REVOKED#fam#2"]
    q = {"TableName": "t", "KeyConditionExpression": "#p = :p AND begins_with(sk, :s)",
         "ExpressionAttributeNames": {"#p": "pk"}, "ExpressionAttributeValues": {":p": {"S": "DATA#u"}, ":s": {"S": "ITEM#"}}}
    (r,) = iam.dynamodb_requests("Query", q, _arn, lambda t: "pk")
    assert r.context["dynamodb:LeadingKeys"] == ["DATA#u"]


def test_secrets_are_authorised_on_their_full_arn():
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:SigningKeysSecret-X-AbCdEf"
    (r,) = iam.secretsmanager_requests("GetSecretValue", {"SecretId": "SigningKeysSecret-X", "VersionStage": "AWSPREVIOUS"},
                                       lambda s: arn, "us-east-1", "123456789012")
    assert r.resource == arn and r.context["secretsmanager:VersionStage"] == ["AWSPREVIOUS"]
    p = [policy(allow("secretsmanager:GetSecretValue", resource=arn))]
    assert iam.evaluate(p, r).allowed
    other = iam.AuthzRequest("secretsmanager:GetSecretValue", arn.replace("Signing", "Public"))
    assert not iam.evaluate(p, other).allowed
