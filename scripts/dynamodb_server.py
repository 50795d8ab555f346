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

Last, moto makes every transaction ready to roll back by deep-copying the whole table, once
per item of the transaction. The cost grows with the table until transactions outlast the
SDK's timeouts (a benchmark's table holds thousands of items). Here a transaction keeps a
copy of only the items it touches and puts those back when it is cancelled.

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
import copy

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.exceptions import (
    MockValidationException,
    MultipleTransactionsException,
    TransactionCanceledException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class _CopyAllButTables:
    """moto's `copy` module inside its DynamoDB backend, without whole-table copies."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _transact_write_items(original):
    def transact_write_items(backend, transact_items):
        touched = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key")
            if key is None and "Item" in op:
                key = {name: op["Item"][name]
                       for name in (table.hash_key_attr, table.range_key_attr)
                       if name is not None and name in op["Item"]}
            if not key:
                continue
            try:
                current = backend.get_item(table.name, key)
            except Exception:  # a malformed key: moto refuses the transaction itself
                continue
            old = copy.deepcopy(current.to_json()["Attributes"]) if current else None
            touched.append((table.name, key, old))
        try:
            return original(backend, transact_items)
        except (TransactionCanceledException, MultipleTransactionsException,
                MockValidationException):
            for table_name, key, old in reversed(touched):
                if old is None:
                    if backend.get_item(table_name, key) is not None:
                        backend.delete_item(table_name, key)
                else:
                    backend.put_item(table_name, old)
            raise

    return transact_write_items


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(0))

    dynamodb_models.copy = _CopyAllButTables
    DynamoDBBackend.transact_write_items = _transact_write_items(
        DynamoDBBackend.transact_write_items)
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
