"""A small HTTPS server of client metadata documents (CIMD) for scripts/mcp-test.sh.

Serves https://localhost:PORT/NAME/client.json for each `NAME=JSON` argument: the JSON object
is the document without `client_id`, which is added as that exact URL. TLS with the test
fixture certificate (tests/fixtures/cimd/server.pem, for localhost, 127.0.0.1 and ::1; its CA is
what oauth-local trusts with CIMD_TEST_LOOPBACK_CA_FILE). Listens on a free port of 127.0.0.1
(and the same port of ::1 when it can, since `localhost` may resolve there too), prints
`listening on https://localhost:PORT` once ready, and logs one line per request to stderr
(`GET /ts/client.json 200 accept=...`). Python standard library only.

Usage: python3 docserver.py --cert server.pem --key server.key NAME=JSON [NAME=JSON ...]
"""

import argparse
import json
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("docs", nargs="+", metavar="NAME=JSON")
    args = p.parse_args()
    templates = {}
    for spec in args.docs:
        name, _, body = spec.partition("=")
        doc = json.loads(body)
        if not name or "/" in name or not isinstance(doc, dict):
            p.error(f"bad document {spec!r}: NAME=JSON object")
        templates[name] = doc

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    documents: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "mcp-test-docserver"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = documents.get(self.path)
            status = 200 if body is not None else 404
            if body is None:
                body = b'{"error":"not_found"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=60")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            print(f"{self.command} {self.path} {status} accept={self.headers.get('accept', '')}", file=sys.stderr, flush=True)

        def log_message(self, format: str, *a: object) -> None:  # noqa: A002 - the base class's name
            pass

        def setup(self) -> None:
            # The TLS handshake here, in the request's thread (not in accept()), and bounded.
            self.request.settimeout(10)
            super().setup()

    def serve(server: ThreadingHTTPServer) -> None:
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.serve_forever()

    v4 = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = v4.server_address[1]
    servers = [v4]
    try:
        servers.append(V6Server(("::1", port), Handler))
    except OSError:
        pass  # no IPv6 loopback, or the port is taken there: 127.0.0.1 only
    for name, doc in templates.items():
        url = f"https://localhost:{port}/{name}/client.json"
        documents[f"/{name}/client.json"] = json.dumps({"client_id": url, **doc}).encode()
    for s in servers[1:]:
        threading.Thread(target=serve, args=(s,), daemon=True).start()
    print(f"listening on https://localhost:{port}", flush=True)
    try:
        serve(v4)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
