"""Lambda functions on this machine: each container is one process of the function's real
code under its own Lambda Runtime API (the documented /2018-06-01/runtime endpoints), with
the environment Lambda gives it: the template's variables, the reserved AWS_LAMBDA_* ones,
and the temporary credentials of the function's execution role. Nothing else of the
developer's environment leaks in; the one addition is AWS_ENDPOINT_URL (the emulator).

A function gets a new container when every existing one is busy (up to `max_containers`;
beyond, invocations wait), as Lambda scales out. An invocation that errors, crashes the
process or exceeds the function's timeout fails like on Lambda; a process that dies (init
failure, panic, abort) is discarded and the next invocation starts a fresh one (a cold
start). Each container's output goes to logs/<function>.log with START/END lines carrying
the request id.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RUNTIME_PREFIX = "/2018-06-01/runtime"


class InvokeError(Exception):
    """An invocation failed (function error, crash, timeout, init failure)."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass
class Invocation:
    """One event on its way through a container."""

    event: bytes
    deadline_ms: int
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    done: threading.Event = field(default_factory=threading.Event)
    response: bytes | None = None
    error: InvokeError | None = None

    def finish(self, response: bytes | None = None, error: InvokeError | None = None) -> None:
        if self.done.is_set():
            return
        self.response, self.error = response, error
        self.done.set()


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class Container:
    """One process of a function and its Runtime API."""

    def __init__(self, function: "Function", index: int):
        self.function = function
        self.index = index
        self.inbox: queue.Queue[Invocation] = queue.Queue()
        self.current: Invocation | None = None
        self.busy = False
        self.alive = True
        self.init_error: str | None = None
        self.server = _Quiet(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        env = function.environment(f"127.0.0.1:{port}", index)
        self.log = open(function.log_path, "ab", buffering=0)
        self.log.write(f"INIT container {index} of {function.name}\n".encode())
        self.proc = subprocess.Popen(function.command, env=env, cwd=function.task_root, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        code = self.proc.wait()
        self.alive = False
        reason = self.init_error or f"the runtime exited with code {code}"
        self.log.write(f"EXIT container {self.index}: {reason}\n".encode())
        kind = "Runtime.InitError" if self.init_error else "Runtime.ExitError"
        inv = self.current
        if inv is not None:
            inv.finish(error=InvokeError(kind, reason))
        while True:
            try:
                self.inbox.get_nowait().finish(error=InvokeError(kind, reason))
            except queue.Empty:
                break
        self.server.shutdown()
        self.server.server_close()

    def kill(self) -> None:
        self.alive = False
        try:
            self.proc.kill()
        except OSError:
            pass

    def _handler(self):
        container = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{RUNTIME_PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorMessage":"not found"}')
                container.current = None
                inv = container.inbox.get()
                container.current = inv
                container.log.write(f"START RequestId: {inv.request_id}\n".encode())
                fn = container.function
                self._reply(200, inv.event, {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": fn.arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
                })

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inv = container.current
                if self.path == f"{RUNTIME_PREFIX}/init/error":
                    container.init_error = body.decode(errors="replace")[:2000]
                    container.log.write(f"INIT ERROR {container.init_error}\n".encode())
                    self._reply(202, b'{"status":"OK"}')
                    container.kill()
                    return
                parts = self.path[len(RUNTIME_PREFIX):].split("/")
                # /invocation/<id>/response or /invocation/<id>/error
                if len(parts) != 4 or parts[1] != "invocation" or inv is None or parts[2] != inv.request_id:
                    return self._reply(400, b'{"errorMessage":"unknown request id"}')
                self._reply(202, b'{"status":"OK"}')
                container.log.write(f"END RequestId: {inv.request_id}\n".encode())
                if parts[3] == "response":
                    inv.finish(response=body)
                else:
                    try:
                        err = json.loads(body)
                    except ValueError:
                        err = {"errorType": "Unhandled", "errorMessage": body.decode(errors="replace")}
                    inv.finish(error=InvokeError(err.get("errorType", "Unhandled"), err.get("errorMessage", "")))

        return Handler


class Function:
    """A deployed function: its code, configuration and containers."""

    def __init__(self, name: str, arn: str, command: list[str], env: dict[str, str], timeout: int,
                 memory: int, task_root: str, log_dir: str, endpoint_url: str, credentials, max_containers: int = 4):
        self.name, self.arn, self.command = name, arn, command
        self.env, self.timeout, self.memory = env, timeout, memory
        self.task_root = task_root
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.endpoint_url = endpoint_url
        self.credentials = credentials  # () -> {"AccessKeyId", "SecretAccessKey", "SessionToken"}
        self.max_containers = max_containers
        self.containers: list[Container] = []
        self.started = 0
        self.lock = threading.Condition()
        self.invocations = 0

    def environment(self, runtime_api: str, index: int) -> dict[str, str]:
        creds = self.credentials()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": self.task_root,
            "LAMBDA_RUNTIME_DIR": self.task_root,
            "_HANDLER": "bootstrap",
            "AWS_EXECUTION_ENV": "AWS_Lambda_local_stack",
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
            # The one thing Lambda does not set: every AWS call goes to the emulator.
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }
        env.update(self.env)
        return env

    def invoke(self, event: bytes) -> bytes:
        """Run one event to completion; InvokeError when it fails."""
        with self.lock:
            self.invocations += 1
            while True:
                self.containers = [c for c in self.containers if c.alive]
                idle = next((c for c in self.containers if not c.busy), None)
                if idle is not None:
                    break
                if len(self.containers) < self.max_containers:
                    self.started += 1
                    idle = Container(self, self.started)
                    self.containers.append(idle)
                    break
                self.lock.wait(1)
            idle.busy = True
        inv = Invocation(event, int((time.time() + self.timeout) * 1000))
        try:
            idle.inbox.put(inv)
            if not idle.alive and not inv.done.is_set():
                kind = "Runtime.InitError" if idle.init_error else "Runtime.ExitError"
                inv.finish(error=InvokeError(kind, idle.init_error or "the runtime exited"))
            if not inv.done.wait(self.timeout):
                # Lambda stops a function at its timeout and discards the environment.
                idle.log.write(f"TIMEOUT RequestId: {inv.request_id} after {self.timeout} s\n".encode())
                idle.kill()
                raise InvokeError("Sandbox.Timedout", f"Task timed out after {self.timeout} seconds")
            if inv.error:
                raise inv.error
            return inv.response or b""
        finally:
            with self.lock:
                idle.busy = False
                self.lock.notify_all()

    def stop(self) -> None:
        for c in self.containers:
            c.kill()


def python_command(handler: str, code_dir: str) -> list[str]:
    """The command of a Python function (InlineCode): a minimal runtime client."""
    return [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_runtime.py"),
            code_dir, handler]
