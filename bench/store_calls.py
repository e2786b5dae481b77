"""Latency of single AWS calls against the emulator the cold-start benchmark uses, so a
function's first invocation can be split into store calls and everything else.
Usage (bench/coldstart.sh runs it): python bench/store_calls.py TABLE SECRET_ID [N]"""
import statistics
import sys
import time

import boto3

table, secret, n = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 50
ddb = boto3.client("dynamodb")
sm = boto3.client("secretsmanager")
calls = {
    "DynamoDB GetItem": lambda: ddb.get_item(TableName=table, Key={"pk": {"S": "bench#x"}, "sk": {"S": "x"}}, ConsistentRead=True),
    "DynamoDB PutItem": lambda: ddb.put_item(TableName=table, Item={"pk": {"S": "bench#x"}, "sk": {"S": "x"}}),
    "DynamoDB Query": lambda: ddb.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "bench#x"}}),
    "Secrets Manager GetSecretValue": lambda: sm.get_secret_value(SecretId=secret),
}
for name, call in calls.items():
    call()  # connection set-up outside the timing
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t) * 1000)
    print(f"{name:32s} median {statistics.median(samples):5.2f} ms  (boto3 client, {n} calls)")
