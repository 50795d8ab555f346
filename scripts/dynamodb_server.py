"""The local DynamoDB-compatible server: moto, with every request handled atomically.

moto's own server runs requests on threads against models that take no locks, so a
condition check and the write it guards can interleave with another request's. DynamoDB
never lets that happen: a conditional write is atomic and transactions are serializable,
and the race tests of this project count on exactly that. One lock around each request
restores the guarantee; connections are still accepted concurrently, so requests really
do arrive at the same time.

usage: dynamodb_server.py HOST PORT
"""

import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(0))

    moto = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def atomic(environ, start_response):
        with lock:
            # Materialise the whole response inside the lock.
            return list(moto(environ, start_response))

    run_simple(host, port, atomic, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
