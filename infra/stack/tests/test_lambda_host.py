"""The local Lambda host: the Runtime API contract, crashes, timeouts and scale-out."""
import json
import sys
import threading
import time

import pytest

from lambda_host import Function, InvokeError

RUNTIME = r'''
import json, os, sys, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
mode = sys.argv[1]
if mode == "crash-at-init":
    sys.exit(3)
if mode == "init-error":
    urllib.request.urlopen(urllib.request.Request(api + "/init/error", data=b'{"errorType":"Boom","errorMessage":"no config"}', method="POST"))
    time.sleep(30)
while True:
    with urllib.request.urlopen(api + "/invocation/next") as r:
        event, rid = json.loads(r.read()), r.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(r.headers["Lambda-Runtime-Deadline-Ms"])
    if mode == "sleep":
        time.sleep(event.get("sleep", 0))
    if mode == "crash":
        os._exit(1)
    if mode == "error":
        body, kind = b'{"errorType":"Handled","errorMessage":"bad event"}', "error"
    else:
        body, kind = json.dumps({"event": event, "pid": os.getpid(), "env": os.environ.get("GREETING"),
                                 "key": os.environ.get("AWS_ACCESS_KEY_ID"), "deadline": deadline}).encode(), "response"
    urllib.request.urlopen(urllib.request.Request(f"{api}/invocation/{rid}/{kind}", data=body, method="POST"))
'''


@pytest.fixture
def make(tmp_path):
    script = tmp_path / "runtime.py"
    script.write_text(RUNTIME)
    made = []

    def make(mode, timeout=5, max_containers=4):
        fn = Function(f"fn-{mode}", f"arn:aws:lambda:us-east-1:123456789012:function:fn-{mode}",
                      [sys.executable, str(script), mode], {"GREETING": "hi"}, timeout, 128, str(tmp_path),
                      str(tmp_path), "http://127.0.0.1:1",
                      lambda: {"AccessKeyId": "AKIA1", "SecretAccessKey": "s", "SessionToken": "t"},
                      max_containers=max_containers)
        made.append(fn)
        return fn

    yield make
    for fn in made:
        fn.stop()


def test_an_event_goes_through_the_runtime_api_with_the_functions_environment(make):
    out = json.loads(make("echo").invoke(b'{"a": 1}'))
    assert out["event"] == {"a": 1} and out["env"] == "hi" and out["key"] == "AKIA1"
    assert out["deadline"] > time.time() * 1000


def test_a_container_is_reused_and_a_busy_one_makes_the_function_scale_out(make):
    fn = make("sleep", max_containers=2)
    first = json.loads(fn.invoke(b"{}"))["pid"]
    assert json.loads(fn.invoke(b"{}"))["pid"] == first, "warm container reused"
    pids = []
    threads = [threading.Thread(target=lambda: pids.append(json.loads(fn.invoke(b'{"sleep": 0.5}'))["pid"]))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(pids)) == 2


def test_errors_crashes_init_failures_and_timeouts_fail_the_invocation(make):
    with pytest.raises(InvokeError, match="Handled"):
        make("error").invoke(b"{}")
    crash = make("crash")
    with pytest.raises(InvokeError, match="Runtime.ExitError"):
        crash.invoke(b"{}")
    with pytest.raises(InvokeError, match="Runtime"):
        make("crash-at-init").invoke(b"{}")
    with pytest.raises(InvokeError, match="Runtime.InitError"):
        make("init-error").invoke(b"{}")
    slow = make("sleep", timeout=1)
    with pytest.raises(InvokeError, match="Sandbox.Timedout"):
        slow.invoke(b'{"sleep": 5}')
    # After a crash the next invocation gets a fresh container (a cold start).
    assert json.loads(make("echo").invoke(b"{}"))["event"] == {}
