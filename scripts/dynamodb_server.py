"""The local DynamoDB-compatible server: moto, with every request handled atomically.

moto's own server runs requests on threads against models that take no locks, so a
condition check and the write it guards can interleave with another request's. DynamoDB
never lets that happen: a conditional write is atomic and transactions are serializable,
and the race tests of this project count on exactly that. One lock around each request
restores the guarantee; connections are still accepted concurrently, so requests really
do arrive at the same time.

moto also ignores `ClientRequestToken`, which the AWS SDK fills in for every
`TransactWriteItems` and keeps across its retries. On DynamoDB, a retry of a transaction
that did commit (its answer lost to a timeout) succeeds again without applying anything
(for ten minutes); on plain moto it is applied again, its conditions fail, and an exchange
that did win looks like it lost. The server remembers each successful transaction's token
for ten minutes, as DynamoDB does, and answers a repeat with the same success (or
`IdempotentParameterMismatchException` when the token comes back with another request).

usage: dynamodb_server.py HOST PORT
"""

import hashlib
import io
import json
import os
import signal
import sys
import threading
import time

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
    # ClientRequestToken -> (when, digest of the request, status, headers, body)
    committed = {}

    def transaction_token(environ):
        """The body and ClientRequestToken of a TransactWriteItems request, else None."""
        if not environ.get("HTTP_X_AMZ_TARGET", "").endswith(".TransactWriteItems"):
            return None, None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            token = json.loads(body).get("ClientRequestToken")
        except ValueError:
            token = None
        return body, token

    def atomic(environ, start_response):
        with lock:
            body, token = transaction_token(environ)
            if token is None:
                # Materialise the whole response inside the lock.
                return list(moto(environ, start_response))
            now = time.monotonic()
            for old in [t for t, entry in committed.items() if now - entry[0] > 600]:
                del committed[old]
            request = json.loads(body)
            request.pop("ClientRequestToken", None)
            digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
            if token in committed:
                _, seen, status, headers, answer = committed[token]
                if seen != digest:
                    error = json.dumps({
                        "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                        "message": "the ClientRequestToken was used with another request",
                    }).encode()
                    start_response("400 Bad Request", [
                        ("Content-Type", "application/x-amz-json-1.0"),
                        ("Content-Length", str(len(error)))])
                    return [error]
                start_response(status, headers)
                return answer
            answered = {}

            def remember(status, headers, exc_info=None):
                answered["status"], answered["headers"] = status, list(headers)
                return start_response(status, headers, exc_info)

            answer = list(moto(environ, remember))
            if answered.get("status", "").startswith("200"):
                committed[token] = (now, digest, answered["status"], answered["headers"], answer)
            return answer

    run_simple(host, port, atomic, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
