"""Start moto's server with one request at a time.

moto_server serves requests on parallel threads and does not check a transaction's
conditions atomically against concurrent requests; DynamoDB does. Serving requests one at
a time gives the emulator DynamoDB's atomicity for conditional writes and transactions, so
the race tests test our code, not the emulator's thread scheduling.
Usage: python moto_serial.py HOST PORT
"""
import os
import signal
import sys

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
app = DomainDispatcherApplication(create_backend_app)
run_simple(host, port, app, threaded=False, processes=1, request_handler=MotoRequestHandler)
