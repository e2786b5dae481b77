"""A minimal Lambda runtime client for Python functions (`InlineCode` in the example stack):
import HANDLER ("module.function") from CODE_DIR, then loop on the Runtime API.

    python python_runtime.py CODE_DIR HANDLER
"""
import importlib
import json
import os
import sys
import traceback
import urllib.request

code_dir, handler_name = sys.argv[1], sys.argv[2]
api = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


def post(path, payload):
    req = urllib.request.Request(f"{api}{path}", data=json.dumps(payload).encode(), method="POST")
    urllib.request.urlopen(req).read()


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")


try:
    sys.path.insert(0, code_dir)
    module_name, function_name = handler_name.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
except Exception as e:  # reported as Lambda reports an init failure
    post("/init/error", {"errorType": type(e).__name__, "errorMessage": str(e)})
    sys.exit(1)

while True:
    with urllib.request.urlopen(f"{api}/invocation/next") as resp:
        event = json.loads(resp.read())
        headers = dict(resp.headers)
    request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
    try:
        result = handler(event, Context(headers))
        post(f"/invocation/{request_id}/response", result)
    except Exception as e:
        traceback.print_exc()
        post(f"/invocation/{request_id}/error", {"errorType": type(e).__name__, "errorMessage": str(e)})
