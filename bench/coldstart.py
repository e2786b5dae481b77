"""Cold-start benchmark: runs each release Lambda binary under a minimal Lambda Runtime API
served on 127.0.0.1 (the documented /2018-06-01/runtime/invocation/next and /response
endpoints), with its AWS calls pointed at the local emulator, and measures

  init  = process start -> first `next` poll
  first = the first invocation: `next` answered -> `/response` received

N starts per function; prints medians, the ratio to the reference function measured in the
same run, and each binary's stripped size. Usage (bench/coldstart.sh sets everything up):

  python3 bench/coldstart.py --bin-dir target/lambda --starts 20 --env-file ENV --events-dir events
"""
import argparse
import json
import os
import statistics
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    """The held second poll is cut when the function is killed: not an error worth a traceback."""

    def handle_error(self, request, client_address):
        pass


class Run:
    """One start of one binary: the event to serve and the timestamps seen."""

    def __init__(self, event: bytes):
        self.event = event
        self.request_id = str(uuid.uuid4())
        self.first_poll = None
        self.served_at = None
        self.responded_at = None
        self.response = None
        self.error = None
        self.done = threading.Event()
        self.polls = 0


def make_handler(run: Run):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path != "/2018-06-01/runtime/invocation/next":
                self.send_error(404)
                return
            now = time.perf_counter()
            run.polls += 1
            if run.polls > 1:
                # Second poll: the first invocation is over; hold the function idle.
                run.done.wait(5)
                try:
                    self.send_error(410)
                except OSError:
                    pass
                return
            run.first_poll = now
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", run.request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(run.event)))
            self.end_headers()
            self.wfile.write(run.event)
            self.wfile.flush()
            run.served_at = time.perf_counter()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.perf_counter()
            if self.path.endswith("/response"):
                run.responded_at, run.response = now, body
            elif self.path.endswith("/error"):
                run.error = body.decode(errors="replace")
                run.responded_at = now
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            run.done.set()

    return Handler


def start_once(binary: str, event: bytes, env: dict) -> Run:
    run = Run(event)
    server = QuietServer(("127.0.0.1", 0), make_handler(run))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    proc_env = dict(env)
    proc_env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(os.path.dirname(binary)),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "RUST_LOG": "warn",
    })
    started = time.perf_counter()
    proc = subprocess.Popen([binary], env=proc_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Wait for the response, but stop as soon as the process dies (an init failure).
    deadline = time.perf_counter() + 5
    finished = False
    while time.perf_counter() < deadline:
        if run.done.wait(0.01):
            finished = True
            break
        if proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate()
    server.shutdown()
    server.server_close()
    run.started = started
    if not finished:
        run.error = run.error or f"no response; stderr: {err.decode(errors='replace')[-500:]}"
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--env-file", required=True, help="JSON: {'common': {...}, '<function>': {...}}")
    ap.add_argument("--events", required=True, help="JSON: {'<function>': 'event json text'}")
    args = ap.parse_args()
    env_cfg = json.load(open(args.env_file))
    events = json.load(open(args.events))
    # Lambda sets no SSL_CERT_DIR; a developer machine may (a directory scan costs ~20 ms).
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_LAMBDA") and k != "SSL_CERT_DIR"}
    base_env.update(env_cfg.get("common", {}))
    results = {}
    order = ["reference"] + [f for f in events if f != "reference"]
    for i in range(args.starts):
        # Interleave the functions so machine noise hits every function alike.
        for name in order:
            binary = os.path.join(args.bin_dir, name, "bootstrap")
            env = dict(base_env)
            env.update(env_cfg.get(name, {}))
            run = start_once(binary, events[name].encode(), env)
            r = results.setdefault(name, {"init": [], "first": [], "errors": []})
            if run.error or run.first_poll is None or run.responded_at is None:
                r["errors"].append(run.error or "no poll")
                continue
            r["init"].append((run.first_poll - run.started) * 1000)
            r["first"].append((run.responded_at - run.served_at) * 1000)
    ref_init = statistics.median(results["reference"]["init"]) if results["reference"]["init"] else float("nan")
    print(f"{'function':<12} {'init ms (median)':>17} {'x reference':>12} {'first invocation ms':>20} {'size MiB':>9} {'errors':>7}")
    worst = 0.0
    for name in order:
        r = results[name]
        size = os.path.getsize(os.path.join(args.bin_dir, name, "bootstrap")) / (1024 * 1024)
        if not r["init"]:
            print(f"{name:<12} {'-':>17} {'-':>12} {'-':>20} {size:>9.1f} {len(r['errors']):>7}   {r['errors'][:1]}")
            worst = float("inf")
            continue
        init = statistics.median(r["init"])
        first = statistics.median(r["first"])
        ratio = init / ref_init
        if name != "reference":
            worst = max(worst, ratio)
        print(f"{name:<12} {init:>17.1f} {ratio:>12.2f} {first:>20.2f} {size:>9.1f} {len(r['errors']):>7}")
    print(f"starts per function: {args.starts}; worst init ratio to the reference: {worst:.2f} (target <= 1.30)")


if __name__ == "__main__":
    main()
