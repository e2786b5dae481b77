"""The emulator with IAM enforced, as a client sees it: a role's temporary credentials, a
call its policy lacks refused as DynamoDB refuses it, the call allowed once granted. The
case is the register function's policy at c1d0720, which lacked dynamodb:UpdateItem (its
per-address counter), so every registration answered 503 on AWS."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def emulator():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "emulator.py"), "127.0.0.1", str(port), "--iam"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait()


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    return json.loads(urllib.request.urlopen(req).read())


def test_a_missing_update_item_permission_is_refused_and_granting_it_fixes_the_call(emulator):
    admin = post(emulator + "/_stack/admin", {})
    kw = dict(endpoint_url=emulator, region_name="us-east-1", aws_access_key_id=admin["AccessKeyId"],
              aws_secret_access_key=admin["SecretAccessKey"])
    with pytest.raises(ClientError, match="InvalidClientTokenId|UnrecognizedClient|403"):
        boto3.client("dynamodb", endpoint_url=emulator, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test").list_tables()
    ddb, iam = boto3.client("dynamodb", **kw), boto3.client("iam", **kw)
    arn = ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                           KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                           AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])["TableDescription"]["TableArn"]
    iam.create_role(RoleName="register", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    old = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": arn, "Action": [
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"]}]}
    iam.put_role_policy(RoleName="register", PolicyName="p", PolicyDocument=json.dumps(old))
    creds = post(emulator + "/_stack/assume-role", {"RoleArn": "arn:aws:iam::123456789012:role/register",
                                                     "RoleSessionName": "register"})
    fn = boto3.client("dynamodb", endpoint_url=emulator, region_name="us-east-1",
                      aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"])
    counter = dict(TableName="t", Key={"pk": {"S": "COUNTER#abuse#register#127.0.0.1"}},
                   UpdateExpression="ADD #c :one", ExpressionAttributeNames={"#c": "count"},
                   ExpressionAttributeValues={":one": {"N": "1"}})
    fn.put_item(TableName="t", Item={"pk": {"S": "USERNAME#alice"}})
    with pytest.raises(ClientError) as refused:
        fn.update_item(**counter)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "dynamodb:UpdateItem" in refused.value.response["Error"]["Message"]
    old["Statement"][0]["Action"].append("dynamodb:UpdateItem")
    iam.put_role_policy(RoleName="register", PolicyName="p", PolicyDocument=json.dumps(old))
    fn.update_item(**counter)
    decisions = json.loads(urllib.request.urlopen(emulator + "/_stack/iam").read())["decisions"]
    assert [d["allowed"] for d in decisions if d["principal"] == "register"] == [True, False, True]


def test_the_lambda_service_may_assume_only_roles_that_trust_it(emulator):
    admin = post(emulator + "/_stack/admin", {})
    iam = boto3.client("iam", endpoint_url=emulator, region_name="us-east-1", aws_access_key_id=admin["AccessKeyId"],
                       aws_secret_access_key=admin["SecretAccessKey"])
    iam.create_role(RoleName="ec2-only", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    req = urllib.request.Request(emulator + "/_stack/assume-role", method="POST", data=json.dumps(
        {"RoleArn": "arn:aws:iam::123456789012:role/ec2-only"}).encode())
    with pytest.raises(urllib.error.HTTPError, match="403"):
        urllib.request.urlopen(req)
