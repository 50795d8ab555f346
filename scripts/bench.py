#!/usr/bin/env python3
"""The benchmark harness behind `make bench`: every function's real release binary, driven
the way Lambda drives it, on the local DynamoDB-compatible server.

- A Runtime API stand-in (the HTTP API a Lambda function polls for events) hands each
  binary real API Gateway HTTP API (payload 2.0) events, one at a time, and takes its
  responses, so event parsing and response building are measured with the rest.
- A DynamoDB proxy between the functions and the server counts every request per
  operation, times how long each one waits on the server (the local server is a slow
  emulator: that wait says nothing about DynamoDB and is reported apart), and computes the
  capacity units each request would consume on DynamoDB from the item sizes (the
  emulator's own ConsumedCapacity figures are not DynamoDB's).
- Per function: binary size; init time (process start to its first Runtime API `next`) over
  many starts; per operation the CPU time of the function process (user + system, from the
  kernel's per-thread scheduler accounting) per request, the latency of a request as the
  stand-in sees it, the part of it spent waiting on DynamoDB, and the DynamoDB requests;
  and the peak RSS after the load.
- One complete login (issue, look-up, approve, pending polls, token) with its DynamoDB
  requests and capacity.
- Instructions per request under valgrind's callgrind (a count, not a time: the same for
  the same binary and inputs whatever else the machine does), for the pending poll and the
  device authorization: counters zeroed after the warm-up, dumped after the measured
  requests, divided by their number. The run's callgrind files are kept under .local/ for
  `callgrind_annotate`.

usage: scripts/bench.py --bin-dir DIR --dynamodb URL [--quick] [--json FILE]
The environment carries the local configuration (TABLE_NAME, SIGNING_KEYS, USER_TOKEN_*,
ADMIN_CURSOR_SECRET) and BENCH_USER_TOKEN / BENCH_ADMIN_TOKEN (development user tokens).
"""

import argparse
import base64
import http.client
import http.server
import json
import math
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

FUNCTIONS = ["device-authorization", "token", "verify", "admin", "discovery", "introspection",
             "verification-page"]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CLIENT_ID = "bench-cli"

# ------------------------------------------------------------------ DynamoDB capacity


def value_size(value):
    """Bytes DynamoDB counts for one attribute value."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(base64.b64decode(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(value_size({"N": n}) for n in inner)
    if kind == "BS":
        return sum(len(base64.b64decode(b)) for b in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    return 0


def item_size(item):
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def write_units(size):
    return max(1, math.ceil(size / 1024))


def read_units(size, consistent):
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


# ------------------------------------------------------------------ the DynamoDB proxy


class Ledger:
    """What the functions asked of DynamoDB since the last reset."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = []  # (operation, seconds waited)
            self.rcu = 0.0
            self.wcu = 0.0

    def snapshot(self):
        with self.lock:
            return list(self.requests), self.rcu, self.wcu


class DynamoProxy(http.server.BaseHTTPRequestHandler):
    upstream = None  # (host, port)
    ledger = None
    index_keys = (("gsi1pk", "gsi1sk"), ("gsi2pk", "gsi2sk"))
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and
    # delayed ACKs add tens of milliseconds to every exchange.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def forward(self, body, headers):
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        result = (response.status, response.getheaders(), data)
        connection.close()
        return result

    def get_item(self, table, key):
        """The stored item (for sizing an update), outside the ledger."""
        body = json.dumps({"TableName": table, "Key": key, "ConsistentRead": True}).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.GetItem",
            "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/dynamodb/"
            "aws4_request, SignedHeaders=host, Signature=0",
        }
        status, _, data = self.forward(body, headers)
        return json.loads(data).get("Item") if status == 200 else None

    def do_POST(self):
        # Everything from here to the response counts as waiting on DynamoDB, the proxy's
        # own bookkeeping included, so that what remains of a request's latency is the
        # function's.
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        target = self.headers.get("X-Amz-Target", "?").split(".")[-1]
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        request = json.loads(body or b"{}")
        # Items an update will change, before it (for the write size: the larger of the two).
        before = []
        if target == "UpdateItem":
            before.append(self.get_item(request["TableName"], request["Key"]))
        elif target == "TransactWriteItems":
            for entry in request.get("TransactItems", []):
                if "Update" in entry:
                    u = entry["Update"]
                    before.append(self.get_item(u["TableName"], u["Key"]))
        status, response_headers, data = self.forward(body, headers)
        rcu, wcu = self.capacity(target, request, json.loads(data or b"{}"), before, status)
        # Booked before answering: the harness reads the ledger once the function is done.
        with self.ledger.lock:
            self.ledger.requests.append((target, time.perf_counter() - started))
            self.ledger.rcu += rcu
            self.ledger.wcu += wcu
        self.send_response(status)
        for name, value in response_headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        try:
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The function was stopped mid-request: the init measurement stops each instance
            # as soon as it asks for its first invocation, and the token function's key
            # publication may still be on its way then.
            pass

    @classmethod
    def index_entry(cls, item, keys):
        """What a keys-only index holds of `item`: the table's and the index's keys."""
        if not item or not all(k in item for k in keys):
            return None
        return {k: item[k] for k in ("pk", "sk") + keys}

    def write_cost(self, old, new, transactional):
        """WCU of writing one item: the table (twice in a transaction), plus each index
        whose entry the write adds, removes or changes. The indexes project keys only,
        so a write that changes no index key does not touch them."""
        units = write_units(max(item_size(old), item_size(new))) * (2 if transactional else 1)
        for keys in self.index_keys:
            before, after = self.index_entry(old, keys), self.index_entry(new, keys)
            if before != after:
                units += sum(write_units(item_size(e)) for e in (before, after) if e)
        return units

    def capacity(self, target, request, response, before, status):
        """(RCU, WCU) DynamoDB would charge, computed from item sizes."""
        if target == "GetItem":
            return read_units(item_size(response.get("Item")), request.get("ConsistentRead", False)), 0
        if target == "BatchGetItem":
            rcu = 0.0
            for table, items in response.get("Responses", {}).items():
                consistent = request["RequestItems"][table].get("ConsistentRead", False)
                # Each key is read (and charged) even when absent.
                keys = len(request["RequestItems"][table]["Keys"])
                rcu += sum(read_units(item_size(i), consistent) for i in items)
                rcu += (keys - len(items)) * read_units(0, consistent)
            return rcu, 0
        if target == "Query":
            size = sum(item_size(i) for i in response.get("Items", []))
            return read_units(size, request.get("ConsistentRead", False)), 0
        if target == "PutItem":
            return 0, self.write_cost(None, request["Item"], False)
        if target == "DeleteItem":
            return 0, 1
        if target == "UpdateItem":
            after = self.get_item(request["TableName"], request["Key"])
            return 0, self.write_cost(before[0], after, False)
        if target == "TransactWriteItems":
            wcu = 0
            updates = iter(before)
            for entry in request.get("TransactItems", []):
                if "Put" in entry:
                    wcu += self.write_cost(None, entry["Put"]["Item"], True)
                elif "Update" in entry:
                    u = entry["Update"]
                    old = next(updates)
                    new = self.get_item(u["TableName"], u["Key"]) if status == 200 else old
                    wcu += self.write_cost(old, new, True)
                elif "ConditionCheck" in entry:
                    wcu += 2  # a condition check is charged as a transactional write
                elif "Delete" in entry:
                    wcu += 2
            return 0, wcu
        return 0, 0


# ------------------------------------------------------------------ the Runtime API stand-in


class Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server that stays quiet when a function it serves is stopped
    mid-request (the harness stops instances as soon as it has what it measures)."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def trace_id_of(request_id):
    """The X-Ray trace id the Runtime API stand-in sends with the invocation `request_id`."""
    return f"Root=1-{int(time.time()) & 0xffffffff:08x}-{request_id.replace('-', '')[:24]}"


class RuntimeApi:
    """One function's Lambda Runtime API: hands out queued events, collects responses."""

    def __init__(self):
        self.events = queue.Queue()
        self.responses = queue.Queue()
        self.first_next = threading.Event()
        self.first_next_ns = 0
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                if not api.first_next.is_set():
                    api.first_next_ns = time.perf_counter_ns()
                    api.first_next.set()
                event = api.events.get()
                if event is None:  # the harness stops the process instead
                    return
                request_id, payload = event
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:123456789012:function:bench")
                # Lambda's X-Ray trace header, one trace per invocation as with active tracing.
                self.send_header("Lambda-Runtime-Trace-Id", trace_id_of(request_id))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                done = time.perf_counter_ns()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                kind = "error" if self.path.endswith("/error") else "response"
                api.responses.put((kind, done, body))

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, payload):
        """Sends one event; returns (decoded response, latency in seconds)."""
        started = time.perf_counter_ns()
        self.events.put((str(uuid.uuid4()), payload))
        kind, done, body = self.responses.get(timeout=60)
        if kind != "response":
            raise RuntimeError(f"the function reported an invocation error: {body[:200]!r}")
        return json.loads(body), (done - started) / 1e9

    def close(self):
        self.server.shutdown()


def api_event(method, path, route, *, body=None, form=False, token=None, query=None,
              path_parameters=None, basic=None):
    """An API Gateway HTTP API (payload format 2.0) event, as API Gateway sends it."""
    headers = {"host": "bench.execute-api.us-east-1.amazonaws.com", "user-agent": "bench/1.0",
               "x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if basic:
        headers["authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    raw_query = urllib.parse.urlencode(query or {})
    event = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": headers["host"],
            "domainPrefix": "bench",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "198.51.100.7", "userAgent": "bench/1.0"},
            "requestId": str(uuid.uuid4()), "routeKey": f"{method} {route}", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body is not None:
        if form:
            headers["content-type"] = "application/x-www-form-urlencoded"
            # HTTP APIs hand form bodies to Lambda base64-encoded.
            event["body"] = base64.b64encode(urllib.parse.urlencode(body).encode()).decode()
            event["isBase64Encoded"] = True
        else:
            headers["content-type"] = "application/json"
            event["body"] = json.dumps(body)
    return event


# ------------------------------------------------------------------ processes


def cpu_ns(pid):
    """CPU time of every thread of `pid` so far (the scheduler's own accounting, in ns)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def user_and_kernel_ns(pid):
    """User and kernel CPU time of `pid` so far, in ns (the kernel counts them in clock
    ticks, 10 ms, so a figure per request is only as fine as 10 ms / requests)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = 1e9 / os.sysconf("SC_CLK_TCK")
    return int(fields[11]) * tick, int(fields[12]) * tick


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Function:
    """One function's binary running against its own Runtime API stand-in (under callgrind,
    with `callgrind=True`)."""

    def __init__(self, name, binary, env, callgrind=False, launcher=(), log_path=None):
        self.name = name
        self.api = RuntimeApi()
        environment = dict(env)
        environment.update({
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        })
        self.started_ns = time.perf_counter_ns()
        os.makedirs(".local", exist_ok=True)
        self.log_path = log_path or f".local/bench-{name}.log"
        command = [*launcher, binary]
        self.callgrind_out = None
        if callgrind:
            self.callgrind_out = os.path.abspath(f".local/callgrind-{name}.out")
            for old in os.listdir(".local"):
                if old.startswith(f"callgrind-{name}.out"):
                    os.remove(os.path.join(".local", old))
            command = ["valgrind", "--tool=callgrind", "--quiet",
                       f"--callgrind-out-file={self.callgrind_out}", binary]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, env=environment, stdout=log, stderr=log)
        if not self.api.first_next.wait(timeout=120 if callgrind or launcher else 30):
            self.process.kill()
            sys.exit(f"{name} never asked for an invocation; see {self.log_path}")
        self.init_ms = (self.api.first_next_ns - self.started_ns) / 1e6

    def invoke(self, event):
        return self.api.invoke(event)

    def callgrind(self, command):
        """`callgrind_control --zero` or `--dump` of this process; returns the instructions
        counted since the last zero (for a dump)."""
        before = set(os.listdir(".local"))
        subprocess.run(["callgrind_control", command, str(self.process.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if command != "--dump":
            return None
        for _ in range(200):
            new = [f for f in set(os.listdir(".local")) - before
                   if f.startswith(os.path.basename(self.callgrind_out))]
            if new:
                path = os.path.join(".local", new[0])
                time.sleep(0.2)  # the dump is written in one go, but let it finish
                with open(path) as f:
                    for line in f:
                        if line.startswith(("summary:", "totals:")):
                            return int(line.split()[1])
            time.sleep(0.05)
        sys.exit(f"callgrind wrote no dump for {self.name}")

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.api.close()


def body_of(response):
    raw = response.get("body") or ""
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return json.loads(raw) if raw else {}


# ------------------------------------------------------------------ the benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.bin_dir = args.bin_dir
        # A command line each binary runs under: qemu-user for the arm64 build.
        self.launcher = tuple(args.launcher.split()) if args.launcher else ()
        self.ledger = Ledger()
        upstream = urllib.parse.urlparse(args.dynamodb)
        DynamoProxy.upstream = (upstream.hostname, upstream.port)
        DynamoProxy.ledger = self.ledger
        self.proxy = Server(("127.0.0.1", 0), DynamoProxy)
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{self.proxy.server_address[1]}",
            # Quick mode (make test) runs everything at TRACE and then searches the functions'
            # output for every secret of the login: the check that no layer (the Lambda
            # runtime's own event logging included) ever writes one.
            "RUST_LOG": "trace" if self.quick else "info",
        }
        if self.quick:
            # As in Lambda, where the role's session token signs every request.
            self.env["AWS_SESSION_TOKEN"] = "bench-session-token-" + uuid.uuid4().hex
        for name in ("TABLE_NAME", "ISSUER", "SIGNING_KEYS", "USER_TOKEN_ISSUER",
                     "USER_TOKEN_AUDIENCE", "USER_TOKEN_HS256_SECRET", "ADMIN_CURSOR_SECRET",
                     # The verification page's: its provider is only asked when a person signs in.
                     "OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "PAGE_SESSION_SECRET",
                     "VERIFICATION_URI"):
            self.env[name] = os.environ[name]
        self.user_token = os.environ["BENCH_USER_TOKEN"]
        self.client_secret = os.environ.get("BENCH_CLIENT_SECRET", "")
        self.admin_token = os.environ["BENCH_ADMIN_TOKEN"]
        self.results = {"functions": {}, "operations": {}, "login": {}}

    def binary(self, name):
        return os.path.join(self.bin_dir, name)

    def start(self, name, callgrind=False, env=None):
        return Function(name, self.binary(name), {**self.env, **(env or {})}, callgrind,
                        self.launcher)

    def concurrent_instance(self):
        """Lambda Managed Instances (and `cargo lambda watch`) set AWS_LAMBDA_MAX_CONCURRENCY:
        a function still answers every invocation, one at a time, and says nothing about it."""
        function = self.start("discovery", env={"AWS_LAMBDA_MAX_CONCURRENCY": "4"})
        try:
            for _ in range(8):
                function.api.events.put((str(uuid.uuid4()), api_event(
                    "GET", "/.well-known/jwks.json", "/.well-known/jwks.json")))
            answers = [function.api.responses.get(timeout=30) for _ in range(8)]
        finally:
            function.stop()
        if any(kind != "response" or json.loads(body).get("statusCode") != 200
               for kind, _, body in answers):
            sys.exit(f"concurrent instance: {answers}")
        with open(function.log_path) as log:
            if "MAX_CONCURRENCY" in log.read():
                sys.exit(f"concurrent instance: a warning about its concurrency; see {function.log_path}")

    # -- sizes and init

    def sizes_and_init(self):
        starts = 3 if self.quick else 30
        for name in FUNCTIONS:
            samples = []
            for _ in range(starts):
                function = self.start(name)
                samples.append(function.init_ms)
                function.stop()
            samples.sort()
            self.results["functions"][name] = {
                "size_bytes": os.path.getsize(self.binary(name)),
                "init_ms": {"median": statistics.median(samples), "min": samples[0],
                            "max": samples[-1], "p90": samples[math.ceil(len(samples) * 0.9) - 1],
                            "starts": starts},
            }

    # -- warm cost per operation

    def measure(self, function, operation, events, expect):
        """Sends `events` one by one (after the warm-up the caller did); records CPU,
        latency, DynamoDB wait and requests per request for `operation`."""
        latencies, waits, counts = [], [], {}
        cpu_before = cpu_ns(function.process.pid)
        user_before, kernel_before = user_and_kernel_ns(function.process.pid)
        responses = []
        for event in events:
            self.ledger.reset()
            response, latency = function.invoke(event)
            status = response.get("statusCode")
            if status not in expect:
                sys.exit(f"{operation}: unexpected {status}: {response.get('body', '')[:300]}")
            requests, _, _ = self.ledger.snapshot()
            latencies.append(latency)
            waits.append(sum(w for _, w in requests))
            for target, _ in requests:
                counts[target] = counts.get(target, 0) + 1
            responses.append(response)
        cpu = (cpu_ns(function.process.pid) - cpu_before) / len(events)
        user_after, kernel_after = user_and_kernel_ns(function.process.pid)
        n = len(events)
        own = [max(0.0, l - w) for l, w in zip(latencies, waits)]
        self.results["operations"][operation] = {
            "function": function.name,
            "requests": n,
            "cpu_us": cpu / 1e3,
            "user_us": (user_after - user_before) / n / 1e3,
            "kernel_us": (kernel_after - kernel_before) / n / 1e3,
            "latency_ms_median": statistics.median(latencies) * 1e3,
            "dynamodb_wait_ms_median": statistics.median(waits) * 1e3,
            "latency_without_dynamodb_ms_median": statistics.median(own) * 1e3,
            "dynamodb_requests": {k: v / n for k, v in sorted(counts.items())},
        }
        return responses

    def device_event(self):
        return api_event("POST", "/oauth2/v1/device", "/oauth2/v1/device",
                         body={"client_id": CLIENT_ID, "scope": "read write"}, form=True)

    def token_event(self, device_code):
        return api_event("POST", "/oauth2/v1/token", "/oauth2/v1/token", form=True,
                         body={"grant_type": DEVICE_GRANT, "device_code": device_code,
                               "client_id": CLIENT_ID})

    def lookup_event(self, user_code):
        route = "/v2/oidc/device_authorization/{user_code_or_id}"
        return api_event("GET", f"/v2/oidc/device_authorization/{user_code}", route,
                         token=self.user_token, path_parameters={"user_code_or_id": user_code})

    def approve_event(self, record_id):
        route = "/v2/oidc/device_authorization/{user_code_or_id}"
        return api_event("POST", f"/v2/oidc/device_authorization/{record_id}", route,
                         token=self.user_token, body={"session": {"sessionId": "bench"}},
                         path_parameters={"user_code_or_id": record_id})

    def warm(self):
        n = 5 if self.quick else 200
        warmup = 2 if self.quick else 20
        functions = {name: self.start(name) for name in FUNCTIONS}
        try:
            admin, device, token, verify, discovery = (functions[f] for f in
                                                       ("admin", "device-authorization", "token", "verify", "discovery"))
            # Warm-ups: each function's first requests (connections, lazy state).
            warm_codes = [body_of(r) for r in (device.invoke(self.device_event())[0] for _ in range(warmup))]
            for code in warm_codes:
                token.invoke(self.token_event(code["device_code"]))
                verify.invoke(self.lookup_event(code["user_code"]))
            for _ in range(warmup):
                admin.invoke(api_event("GET", "/admin/oauth/device-authorizations",
                                       "/admin/oauth/device-authorizations", token=self.admin_token,
                                       query={"limit": "50"}))
                discovery.invoke(api_event("GET", "/.well-known/jwks.json", "/.well-known/jwks.json"))

            issued = self.measure(device, "device authorization", [self.device_event() for _ in range(n)], {200})
            codes = [body_of(r) for r in issued]
            polled_at = time.monotonic()
            self.measure(token, "pending poll", [self.token_event(c["device_code"]) for c in codes], {400})
            looked_up = self.measure(verify, "look-up", [self.lookup_event(c["user_code"]) for c in codes], {200})
            ids = [body_of(r)["deviceAuthorizationRequest"]["id"] for r in looked_up]
            self.measure(verify, "approve", [self.approve_event(i) for i in ids], {200})
            # The next poll of each code is on time one interval (1 s) after the last.
            time.sleep(max(0.0, 1.2 - (time.monotonic() - polled_at)))
            self.measure(token, "consuming poll", [self.token_event(c["device_code"]) for c in codes], {200})
            self.measure(admin, "admin list page (50)", [
                api_event("GET", "/admin/oauth/device-authorizations", "/admin/oauth/device-authorizations",
                          token=self.admin_token, query={"limit": "50"}) for _ in range(n)], {200})
            self.measure(discovery, "JWKS", [
                api_event("GET", "/.well-known/jwks.json", "/.well-known/jwks.json") for _ in range(n)], {200})
            # The two commonest requests once more, five times as many (last: the admin page
            # above would time out on the emulator with their records in the table), so
            # that their user and kernel split, counted in 10 ms ticks, means something.
            issued = self.measure(device, f"device authorization ({5 * n} more)",
                                  [self.device_event() for _ in range(5 * n)], {200})
            self.measure(token, f"pending poll ({5 * n} more)",
                         [self.token_event(body_of(r)["device_code"]) for r in issued], {400})
            for name, function in functions.items():
                self.results["functions"][name]["peak_rss_kib"] = peak_rss_kib(function.process.pid)
        finally:
            for function in functions.values():
                function.stop()

    def create_client(self):
        """The benchmark's client, through the admin API. It polls every second, so that a
        code can be polled again one second after its last poll."""
        admin = self.start("admin")
        try:
            created, _ = admin.invoke(api_event(
                "POST", "/admin/oauth/clients", "/admin/oauth/clients", token=self.admin_token,
                body={"client_id": CLIENT_ID, "name": "Benchmark", "type": "public",
                      "allowed_grant_types": [DEVICE_GRANT], "allowed_scopes": ["read", "write"],
                      "poll_interval_seconds": 1}))
        finally:
            admin.stop()
        if created["statusCode"] not in (201, 409):
            sys.exit(f"creating the benchmark client: {created}")

    # -- instructions per request (callgrind)

    def instructions(self):
        """Instructions per pending poll and per device authorization, under callgrind."""
        n = 3 if self.quick else 50
        device = self.start("device-authorization", callgrind=True)
        token = self.start("token", callgrind=True)
        counted = {}
        try:
            for _ in range(3):  # warm-up: connections, lazy state
                device.invoke(self.device_event())
            device.callgrind("--zero")
            codes = []
            for _ in range(n):
                response, _ = device.invoke(self.device_event())
                codes.append(body_of(response))
            counted["device authorization"] = ("device-authorization", device.callgrind("--dump") / n)
            warm = [body_of(device.invoke(self.device_event())[0]) for _ in range(3)]
            for code in warm:
                token.invoke(self.token_event(code["device_code"]))
            token.callgrind("--zero")
            for code in codes:
                response, _ = token.invoke(self.token_event(code["device_code"]))
                if response.get("statusCode") != 400:
                    sys.exit(f"pending poll under callgrind: {response.get('body')}")
            counted["pending poll"] = ("token", token.callgrind("--dump") / n)
        finally:
            device.stop()
            token.stop()
        self.results["instructions"] = {
            op: {"function": f, "instructions": round(i), "requests": n} for op, (f, i) in counted.items()}

    # -- one complete login

    def login(self, pending_polls):
        functions = {name: self.start(name) for name in ("device-authorization", "token", "verify")}
        steps = []
        sent = []
        try:
            def step(name, function, event, expect, record=True):
                self.ledger.reset()
                sent.append(event)
                response, _ = functions[function].invoke(event)
                if response.get("statusCode") != expect:
                    sys.exit(f"login {name}: unexpected {response.get('statusCode')}: {response.get('body')}")
                requests, rcu, wcu = self.ledger.snapshot()
                if record:
                    steps.append({"step": name, "requests": [t for t, _ in requests], "rcu": rcu, "wcu": wcu})
                return body_of(response)

            code = step("device authorization", "device-authorization", self.device_event(), 200)
            for i in range(pending_polls):
                if i:
                    time.sleep(1.05)
                step("pending poll", "token", self.token_event(code["device_code"]), 400)
            if self.quick and self.client_secret:
                # A confidential client's credentials through the runtime, both ways (the
                # code is another client's: invalid_grant).
                for event in self.confidential_token_events(code["device_code"]):
                    step("confidential poll", "token", event, 400, record=False)
            record = step("look-up", "verify", self.lookup_event(code["user_code"]), 200)
            step("approve", "verify", self.approve_event(record["deviceAuthorizationRequest"]["id"]), 200)
            time.sleep(1.05)
            token = step("token (consuming poll)", "token", self.token_event(code["device_code"]), 200)
        finally:
            for function in functions.values():
                function.stop()
        self.results["login"] = {"pending_polls": pending_polls, "steps": steps}
        if self.quick:
            self.check_logs(functions.values(), code, token, sent)

    def confidential_token_events(self, device_code):
        basic = api_event("POST", "/oauth2/v1/token", "/oauth2/v1/token", form=True,
                          body={"grant_type": DEVICE_GRANT, "device_code": device_code},
                          basic=("demo-service", self.client_secret))
        post = api_event("POST", "/oauth2/v1/token", "/oauth2/v1/token", form=True,
                         body={"grant_type": DEVICE_GRANT, "device_code": device_code,
                               "client_id": "demo-service", "client_secret": self.client_secret})
        return [basic, post]

    def check_logs(self, functions, code, token, sent):
        """Searches everything the functions wrote, at TRACE, for every secret of the login,
        in the forms it travelled in (raw, base64 bodies, the Basic header)."""
        forbidden = {
            "device code": code["device_code"],
            "user code": code["user_code"],
            "user code, compact": code["user_code"].replace("-", ""),
            "access token": token["access_token"],
            "access token signature": token["access_token"].rsplit(".", 1)[-1],
            "user token": self.user_token,
            "user token signature": self.user_token.rsplit(".", 1)[-1],
            "signing key": self.env["SIGNING_KEYS"].split("-----")[4][40:100]
            if "-----" in self.env["SIGNING_KEYS"] else "",
        }
        if self.client_secret:
            forbidden["client secret"] = self.client_secret
        forbidden["AWS session token"] = self.env.get("AWS_SESSION_TOKEN", "")
        for i, event in enumerate(sent):
            if event.get("body"):
                forbidden[f"request body {i}"] = event["body"]
            authorization = event["headers"].get("authorization", "")
            if authorization.startswith("Basic "):
                forbidden["Basic credentials"] = authorization[len("Basic "):]
        leaks = []
        for function in functions:
            with open(function.log_path, encoding="utf-8", errors="replace") as log:
                text = log.read()
            if "TRACE" not in text and "trace" not in text.lower():
                sys.exit(f"{function.name} logged nothing at TRACE: the check would prove nothing")
            leaks += [f"{function.name}: {what}" for what, secret in forbidden.items()
                      if secret and secret in text]
        if leaks:
            sys.exit("secrets reached the logs at TRACE: " + ", ".join(leaks))
        # The runtime's span of each invocation carries its X-Ray trace id, and the use cases'
        # spans sit inside it, so a use case's log lines name the trace they belong to.
        with open(next(f for f in functions if f.name == "token").log_path, encoding="utf-8") as log:
            traced = [line for line in log if ":poll{" in line]
        if not traced or not all('xrayTraceId="Root=1-' in line for line in traced):
            sys.exit("the token function's poll lines do not carry the invocation's X-Ray trace id")
        # Every use case counts its outcome in CloudWatch's embedded metric format.
        with open(next(f for f in functions if f.name == "token").log_path, encoding="utf-8") as log:
            metrics = [json.loads(line) for line in log if line.startswith('{') and '"_aws"' in line]
        counted = {(m["UseCase"], m["Outcome"]) for m in metrics}
        for expected in [("poll", "authorization_pending"), ("poll", "ok")]:
            if expected not in counted:
                sys.exit(f"no embedded metric for {expected} in the token function's output: {counted}")
        print(f"logs at TRACE hold none of {len(forbidden)} secrets", file=sys.stderr)

    def run(self):
        if self.args.instructions_only:
            self.create_client()
            self.instructions()
            self.proxy.shutdown()
            return self.results
        self.sizes_and_init()
        self.concurrent_instance()
        self.create_client()
        # First, while the table is small: the emulator copies the whole table for every
        # transaction, and under callgrind the functions' own SDK timeouts come closer.
        if self.launcher:
            print(f"instructions per request: skipped, callgrind cannot run under "
                  f"{self.launcher[0]}", file=sys.stderr)
        else:
            self.instructions()
        self.warm()
        self.login(pending_polls=2 if self.quick else 6)
        self.proxy.shutdown()
        return self.results


# ------------------------------------------------------------------ report


def instructions_report(results):
    out = ["## Instructions per request (callgrind)\n",
           "| operation | function | instructions per request | requests counted |",
           "|---|---|---:|---:|"]
    for name, i in results.get("instructions", {}).items():
        out.append(f"| {name} | {i['function']} | {i['instructions']:,} | {i['requests']} |")
    return "\n".join(out)


def report(results):
    out = []
    if not results["functions"]:
        return instructions_report(results)
    out.append("## Functions\n")
    out.append("| function | binary | init median | init min / p90 / max | peak RSS |")
    out.append("|---|---:|---:|---:|---:|")
    for name, f in results["functions"].items():
        i = f["init_ms"]
        out.append(f"| {name} | {f['size_bytes'] / 1e6:.2f} MB | {i['median']:.2f} ms | "
                   f"{i['min']:.2f} / {i['p90']:.2f} / {i['max']:.2f} ms ({i['starts']} starts) | "
                   f"{f.get('peak_rss_kib', 0) / 1024:.1f} MiB |")
    out.append("\n## Warm requests\n")
    out.append("| operation | function | CPU per request | user / kernel | latency (median) | "
               "of which DynamoDB (emulator) | without DynamoDB | DynamoDB requests per request |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|")
    for name, o in results["operations"].items():
        requests = ", ".join(f"{v:g} {k}" for k, v in o["dynamodb_requests"].items()) or "none"
        out.append(f"| {name} | {o['function']} | {o['cpu_us']:.0f} µs | "
                   f"{o['user_us']:.0f} / {o['kernel_us']:.0f} µs | {o['latency_ms_median']:.2f} ms | "
                   f"{o['dynamodb_wait_ms_median']:.2f} ms | {o['latency_without_dynamodb_ms_median']:.2f} ms | "
                   f"{requests} |")
    out.append("")
    out.append(instructions_report(results))
    login = results["login"]
    out.append(f"\n## One complete login ({login['pending_polls']} pending polls)\n")
    out.append("| step | DynamoDB requests | RCU | WCU |")
    out.append("|---|---|---:|---:|")
    total_requests = total_rcu = total_wcu = 0
    for s in login["steps"]:
        out.append(f"| {s['step']} | {', '.join(s['requests'])} | {s['rcu']:g} | {s['wcu']:g} |")
        total_requests += len(s["requests"])
        total_rcu += s["rcu"]
        total_wcu += s["wcu"]
    out.append(f"| **total** | **{total_requests} requests** | **{total_rcu:g}** | **{total_wcu:g}** |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--dynamodb", required=True)
    parser.add_argument("--quick", action="store_true", help="a few iterations: checks the harness")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--launcher", default="",
                        help="run each binary under this command line (qemu-user for an arm64 "
                             "build); skips the callgrind counts, which cannot run under it")
    parser.add_argument("--instructions-only", action="store_true",
                        help="only the callgrind counts (for profiling a symbolised build)")
    args = parser.parse_args()
    results = Bench(args).run()
    print(report(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
