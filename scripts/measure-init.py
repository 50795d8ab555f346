#!/usr/bin/env python3
"""Init time of a Lambda binary: process start to its first Runtime API request.

A minimal stand-in for the Lambda Runtime API listens on loopback; the binary is started
with AWS_LAMBDA_RUNTIME_API pointing at it, and the time from just before the process is
spawned to the moment its first `GET /2018-06-01/runtime/invocation/next` arrives is its
init time. Repeated STARTS times; prints median, spread and each sample. No network beyond
127.0.0.1 (the SDK reads static credentials and region from the environment).

TABLE_NAME, ISSUER, SIGNING_KEYS, AWS_ENDPOINT_URL_DYNAMODB and the USER_TOKEN_* settings
are taken from the caller's environment when set: the token function publishes its JWKS to
the table at cold start, so measuring it needs a reachable table (`make run`'s, for
example), and the verify function needs a user-token issuer.

usage: scripts/measure-init.py BINARY [STARTS]
"""

import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

arrived = threading.Event()
arrival_ns = 0


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global arrival_ns
        if self.path.endswith("/runtime/invocation/next") and not arrived.is_set():
            arrival_ns = time.perf_counter_ns()
            arrived.set()
        # No invocation is ever handed out: the process is stopped next.
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    starts = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "measure",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "measure",
        "AWS_SECRET_ACCESS_KEY": "measure",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9",
        "TABLE_NAME": "measure",
        "ISSUER": "https://auth.example.test",
        "RUST_LOG": "off",
    }
    for name in ("TABLE_NAME", "ISSUER", "SIGNING_KEYS", "AWS_ENDPOINT_URL_DYNAMODB",
                 "USER_TOKEN_ISSUER", "USER_TOKEN_AUDIENCE", "USER_TOKEN_HS256_SECRET"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    samples = []
    for _ in range(starts):
        arrived.clear()
        start_ns = time.perf_counter_ns()
        process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = arrived.wait(timeout=10)
        process.kill()
        process.wait()
        if not ok:
            sys.exit("the binary never asked the Runtime API for an invocation")
        samples.append((arrival_ns - start_ns) / 1e6)
    server.shutdown()
    samples.sort()
    print(f"init (process start to first Runtime API request), {starts} starts:")
    print(f"  median {statistics.median(samples):.2f} ms, min {samples[0]:.2f} ms, "
          f"max {samples[-1]:.2f} ms, stdev {statistics.stdev(samples):.2f} ms")
    print("  samples: " + " ".join(f"{s:.2f}" for s in samples))


if __name__ == "__main__":
    main()
