"""The local stack: template.yaml served on 127.0.0.1 the way API Gateway and Lambda serve
it, each function under exactly its IAM policy, with the example protected API behind the
shipped Lambda authorizer. No Docker, no AWS account. Run it with scripts/stack.sh.

    python infra/stack [--dir DIR] [--port 3100] [--example-port 3101] [--param Name=Value ...]
                       [--example-param Name=Value ...] [--bin-dir target/lambda] [--no-example]

It writes DIR/stack.json (URLs, the emulator endpoint, the administrator's credentials,
every output and physical id, the log files) and runs until interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import template as tpl  # noqa: E402
from stack import LocalStack, control_server  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep:
            raise SystemExit(f"--param {v!r} is not Name=Value")
        out[name] = value
    return out


def start_emulator(workdir: str, control_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(os.path.join(workdir, "logs", "emulator.log"), "ab")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "emulator.py"), "127.0.0.1", str(port), "--iam",
                             "--control-url", control_url], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    raise SystemExit(f"the emulator did not start; see {workdir}/logs/emulator.log")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=os.path.join(ROOT, "target", "stack"), help="work folder (logs, state)")
    ap.add_argument("--port", type=int, default=3100, help="port of the OAuth server's HTTP API (0: any)")
    ap.add_argument("--example-port", type=int, default=3101, help="port of the example protected API (0: any)")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "lambda"), help="cargo lambda build output")
    ap.add_argument("--param", action="append", default=[], help="template.yaml parameter override")
    ap.add_argument("--example-param", action="append", default=[], help="example template parameter override")
    ap.add_argument("--stack-name", default="oauth")
    ap.add_argument("--template", default=os.path.join(ROOT, "template.yaml"))
    ap.add_argument("--example-template",
                    default=os.path.join(ROOT, "infra", "examples", "protected-api", "template.yaml"))
    ap.add_argument("--no-example", action="store_true", help="do not deploy the example protected API")
    args = ap.parse_args()

    os.makedirs(os.path.join(args.dir, "logs"), exist_ok=True)
    port = args.port or free_port()
    example_port = args.example_port or free_port()
    control_port = free_port()
    issuer = f"http://127.0.0.1:{port}"

    stack_holder = {}
    emulator, emulator_url = start_emulator(args.dir, f"http://127.0.0.1:{control_port}")

    def shutdown(*_):
        if "stack" in stack_holder:
            stack_holder["stack"].stop()
        emulator.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    try:
        req = urllib.request.Request(f"{emulator_url}/_stack/admin", data=b"{}", method="POST")
        admin = json.loads(urllib.request.urlopen(req).read())
        stack = LocalStack(args.dir, emulator_url, admin, args.bin_dir)
        stack_holder["stack"] = stack
        control_server(stack, control_port)

        params = {"PublicIssuerUrl": issuer}
        params.update(pairs(args.param))
        main_tpl = tpl.load(args.template, args.stack_name, params)
        main_dep = stack.deploy(main_tpl, {"HttpApi": port})
        deployments = [main_dep]
        if not args.no_example:
            ex_params = {"AuthorizerFunctionArn": main_dep.outputs["AuthorizerFunctionArn"],
                         "IssuerUrl": main_dep.outputs["IssuerUrl"]}
            ex_params.update(pairs(args.example_param))
            ex_tpl = tpl.load(args.example_template, f"{args.stack_name}-example", ex_params)
            deployments.append(stack.deploy(ex_tpl, {"ServiceApi": example_port}))
    except tpl.TemplateError as e:
        print(f"deploy failed: {e}", file=sys.stderr)
        shutdown()
        sys.exit(1)

    state = {
        "issuer": main_dep.outputs["IssuerUrl"],
        "base": f"http://127.0.0.1:{port}",
        "example": f"http://127.0.0.1:{example_port}" if not args.no_example else None,
        "emulator": emulator_url,
        "region": tpl.REGION,
        "admin": admin,
        "logs": os.path.join(args.dir, "logs"),
        "stacks": {d.name: {"outputs": d.outputs, "physical": d.physical, "skipped": d.skipped,
                            "parameters": d.template.parameters} for d in deployments},
        "functions": {name: {"log": fn.log_path, "role": fn.role, "logical_id": fn.logical_id}
                      for name, fn in stack.functions.items()},
    }
    with open(os.path.join(args.dir, "stack.json"), "w") as f:
        json.dump(state, f, indent=2)
    for d in deployments:
        print(f"stack {d.name}: {len(d.physical)} resources")
        for lid, why in d.skipped.items():
            print(f"  not emulated: {lid} ({why})")
        for k, v in d.outputs.items():
            print(f"  output {k} = {v}")
    print(f"OAuth server:        {state['base']}")
    if state["example"]:
        print(f"example API:         {state['example']} (Lambda authorizer)")
    print(f"emulator:            {emulator_url} (IAM enforced; admin credentials in {args.dir}/stack.json)")
    print(f"function logs:       {state['logs']}/")
    print("stack ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
