#!/usr/bin/env python3
"""The soak: whole logins, concurrently, for a long time, while the store fails and function
instances die, then proof from the table and from every answer that nothing was lost or
issued twice.

The release binaries of the functions run as Lambda runs them, through the benchmark's
Runtime API stand-in (scripts/bench.py), several instances per function, one request at a
time each. DynamoDB is the moto server behind a fault proxy that throttles, fails, cancels
transactions, answers too late for the SDK and drops connections, at a rate and in bursts.
Simulated actors, each with its own random generator drawn from one seed (printed; --seed
replays it), do what devices, people, a guesser and an administrator do:

- devices ask for a code (some with `openid`, whose every token answer must carry a matching
  ID token), poll at their interval (some too fast, to earn slow_down), get their token,
  refresh a few times, sometimes two polls or two refreshes at once, and
  sometimes sign out by revocation;
- people look codes up and approve or deny them (some never decide, so codes expire; some
  mistype), and list and sign out their devices: some through the verification API, some
  on the hosted page, where they sign in at the local OpenID provider first and post its
  forms with their session's cookie and CSRF token, as a browser does;
- a guesser tries random codes from one account and one address;
- an administrator lists pages, and deletes a client with live grants in the middle of it.

A killer stops random instances in the middle of requests (before or after their writes,
wherever the moment falls), and the pool starts a new one, as Lambda does.

At the end the run proves, and fails unless: every approved login that polled to the end got
exactly one access token and no other login got one; every refresh token was accepted at most
once; no token of a revoked grant or of the deleted client was accepted after that took effect
(the client cache's bound allowed); every grant the table holds was delivered, or lost to a
killed instance and then revoked by replay detection; every revoked grant is revoked in the
table; the guesser got no more answers than the look-up budget allows; every answer was a
documented one (no 500, a body in the endpoint's format, 503 only while faults were injected,
Retry-After where documented); and no long-lived instance's memory grew past the bound.

usage: scripts/soak.py --bin-dir DIR --dynamodb URL [--seconds N] [--seed S] [--quick]
       [--fault-rate P] [--json FILE]
"""

import argparse
import base64
import hashlib
import http.client
import http.server
import json
import os
import queue
import random
import re
import socket
import socketserver
import statistics
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the Runtime API stand-in and the API Gateway events)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
LOOKUP_ROUTE = "/v2/oidc/device_authorization/{user_code_or_id}"
# The configuration the functions run with: short lifetimes, so that codes expire within
# a run, and a short look-up window, so that the guesser meets several.
SETTINGS = {
    "DEVICE_CODE_LIFETIME_SECONDS": "60",
    "POLL_INTERVAL_SECONDS": "1",
    "CLIENT_CACHE_SECONDS": "2",
    "LOOKUP_FAILURES_PER_ACCOUNT": "5",
    "LOOKUP_FAILURES_PER_IP": "20",
    "LOOKUP_WINDOW_SECONDS": "60",
}
# How long after a client's deletion finished an instance may still act on it: the cache.
CACHE_BOUND_S = 2.5
# Growth of a long-lived instance's resident memory, from after warm-up to the end, that
# counts as a leak.
MEMORY_BOUND_KIB = 8 * 1024


# ------------------------------------------------------------------ the faulty store


class Faults:
    """What the proxy injects: a steady rate, and bursts. Remembers when it injected, so
    that a 503 can be told apart from one no fault explains."""

    KINDS = ["throttling", "internal", "conflict", "slow", "reset"]

    def __init__(self, rate, seed):
        self.rate = rate
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.burst_until = 0.0
        self.injected = {kind: 0 for kind in self.KINDS}
        self.times = []
        # Answers the server itself was too slow to give in the SDK's time (a loaded
        # machine): they explain a 503 as well as an injected fault does.
        self.slow_server = 0

    def server_was_slow(self):
        with self.lock:
            self.slow_server += 1
            self.times.append(time.monotonic())

    def burst(self, seconds):
        with self.lock:
            self.burst_until = time.monotonic() + seconds

    def draw(self, operation):
        with self.lock:
            rate = 0.5 if time.monotonic() < self.burst_until else self.rate
            if self.random.random() >= rate:
                return None
            kinds = self.KINDS if operation in ("UpdateItem", "TransactWriteItems", "PutItem") \
                else [k for k in self.KINDS if k != "conflict"]
            kind = self.random.choice(kinds)
            self.injected[kind] += 1
            self.times.append(time.monotonic())
            return kind

    def injected_between(self, start, end):
        with self.lock:
            return any(start - 0.1 <= t <= end + 0.1 for t in self.times)


class FaultyProxy(http.server.BaseHTTPRequestHandler):
    upstream = None
    faults = None
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def error(self, status, kind, extra=None):
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{kind}",
                           "message": "injected by the soak", **(extra or {})}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        operation = self.headers.get("X-Amz-Target", "?").split(".")[-1]
        fault = self.faults.draw(operation)
        try:
            if fault == "throttling":
                return self.error(400, "ThrottlingException")
            if fault == "internal":
                return self.error(500, "InternalServerError")
            if fault == "conflict":
                if operation == "TransactWriteItems":
                    items = len(json.loads(body).get("TransactItems", [])) or 1
                    return self.error(400, "TransactionCanceledException", {
                        "CancellationReasons": [{"Code": "TransactionConflict"}] * items})
                return self.error(400, "TransactionConflictException")
            if fault == "reset":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return None
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "content-length")}
            forwarded = time.monotonic()
            connection = http.client.HTTPConnection(*self.upstream, timeout=60)
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            connection.close()
            # The SDK gives an attempt 600 ms, of which the proxy and the function take some.
            if time.monotonic() - forwarded > 0.3:
                self.faults.server_was_slow()
            if fault == "slow":
                # The answer (and the write it may carry) arrives after the SDK gave up.
                time.sleep(0.8)
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection",
                                        "server", "date"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        return None


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A connection the proxy dropped on purpose, or a killed instance's: not news.
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


# ------------------------------------------------------------------ the functions


def at_once(times, request):
    """`request()` made `times` times at the same moment (a device's duplicate poll or
    refresh); their answers."""
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(request())) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def jwt_part(token, index):
    """A JWT's header (0) or claims (1), decoded without verifying."""
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def grant_of(access_token):
    """The grant an access token belongs to: its `sid` claim."""
    return jwt_part(access_token, 1)["sid"]


SERVICE_CLIENT = "demo-service"  # the confidential client, whose secret is rotated mid-run
# The error format of each function's answers (the endpoint's own): a field every error
# body has; the hosted page answers every outcome with a page.
ERROR_FIELD = {"device-authorization": "error", "token": "error", "introspection": "error",
               "verify": "code", "admin": "error", "discovery": "error"}
PAGE = "verification-page"


class Browser:
    """A person's browser on the hosted page: its address and cookies, and the CSRF token
    of its session's forms."""

    def __init__(self, ip):
        self.ip = ip
        self.cookies = {}
        self.csrf = None


def hidden(page, name):
    """The value of the page's hidden field `name`, if it has one."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page or "")
    return found.group(1) if found else None


class Killed(Exception):
    """The instance died before it answered."""


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Pool:
    """The instances of one function: a request takes a free one, as Lambda routes it."""

    def __init__(self, name, size, start):
        self.name = name
        self.start = start
        self.free = queue.Queue()
        self.lock = threading.Lock()
        self.busy = set()
        self.killed = 0
        for _ in range(size):
            self.free.put(start(name))

    def call(self, event):
        instance = self.free.get()
        with self.lock:
            self.busy.add(instance)
        try:
            instance.api.events.put((bench.uuid.uuid4().hex, event))
            while True:
                try:
                    kind, _, body = instance.api.responses.get(timeout=0.05)
                    break
                except queue.Empty:
                    if instance.process.poll() is not None:
                        raise Killed()
            if kind != "response":
                raise RuntimeError(f"{self.name} reported an invocation error: {body[:300]!r}")
            return json.loads(body)
        except Killed:
            instance.api.close()
            with self.lock:
                self.killed += 1
                self.busy.discard(instance)
            instance = self.start(self.name)
            raise
        finally:
            with self.lock:
                self.busy.discard(instance)
            self.free.put(instance)

    def kill_one(self, rng):
        """Kills an instance in the middle of a request, at a random moment of it (before
        or after its writes, wherever that falls). Waits up to a second for a busy one."""
        for _ in range(100):
            with self.lock:
                candidates = list(self.busy)
            if candidates:
                victim = rng.choice(candidates)
                time.sleep(rng.random() * 0.015)
                if victim.process.poll() is None:
                    victim.process.kill()
                    return True
            time.sleep(0.01)
        return False

    def instances(self):
        with self.lock:
            busy = list(self.busy)
        return busy + list(self.free.queue)


# ------------------------------------------------------------------ the record of answers


class Record:
    """Every answer every actor got, and what the invariants need."""

    def __init__(self, faults):
        self.faults = faults
        self.lock = threading.Lock()
        self.answers = {}  # (operation, status) -> count
        self.latency = {}  # operation -> [seconds]
        self.broken = []  # invariants broken, with what broke them
        self.killed_requests = 0
        self.counts = {"logins": 0, "polls": 0, "refreshes": 0, "lookups": 0, "admin": 0,
                       "page sign-ins": 0, "logins with openid": 0,
                       "revocations": 0, "approvals": 0, "denials": 0, "guesses": 0,
                       "slow_downs to polls that kept their interval": 0}
        self.tokens_by_code = {}  # device code -> access tokens received
        self.login_of = {}  # device code -> (user code, client id, expires at)
        self.approved_at = {}  # device code -> when a person's approval was answered
        self.approved_codes = set()
        self.denied_codes = set()
        self.final_codes = {}  # device code -> how its device stopped polling
        self.accepted_refresh = {}  # refresh token -> times accepted
        self.revoked_at = {}  # grant id -> when its revocation was answered
        self.delivered_sids = set()  # grants whose token reached their device
        self.narrowed_at = None  # when the doomed client lost the `read` scope
        self.deleted_client_at = None
        self.deleted_client = None
        self.guesser_not_found = 0
        self.delivered_grants = 0

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] += n

    def answer(self, function, operation, status, started, ended, body, headers,
               json_expected=True):
        with self.lock:
            self.answers[(operation, status)] = self.answers.get((operation, status), 0) + 1
            self.latency.setdefault(operation, []).append(ended - started)
        if status >= 500 and status != 503:
            self.fail(f"{operation}: {status} {str(body)[:200]}")
        if status == 503:
            if not self.faults.injected_between(started, ended):
                self.fail(f"{operation}: 503 while no fault was injected")
            if not any(k.lower() == "retry-after" for k in headers):
                self.fail(f"{operation}: 503 without Retry-After")
        if function == PAGE:
            content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
            if status != 303 and not content_type.startswith("text/html"):
                self.fail(f"{operation}: a {status} that is not a page: {content_type!r}")
        elif json_expected and status != 204 and not isinstance(body, dict):
            self.fail(f"{operation}: {status} with a body that is not a JSON object: {str(body)[:200]}")
        elif status >= 400 and body and not (isinstance(body, dict) and ERROR_FIELD[function] in body):
            self.fail(f"{operation}: a {status} not in the endpoint's error format: {str(body)[:200]}")

    def signed_out(self, grant, status):
        """A revocation of `grant` was answered `status`; a 200 takes effect now."""
        self.count("revocations")
        if status == 200:
            with self.lock:
                self.revoked_at.setdefault(grant, time.monotonic())

    def fail(self, what):
        with self.lock:
            if len(self.broken) < 50:
                self.broken.append(what)
            else:
                self.broken[-1] = f"... and more; last: {what}"


# ------------------------------------------------------------------ the soak


class Soak:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
        print(f"soak: seed {self.seed} (--seed {self.seed} replays it)", file=sys.stderr)
        master = random.Random(self.seed)
        self.faults = Faults(args.fault_rate, master.randrange(2**32))
        self.record = Record(self.faults)
        self.master = master
        upstream = urllib.parse.urlparse(args.dynamodb)
        FaultyProxy.upstream = (upstream.hostname, upstream.port)
        FaultyProxy.faults = self.faults
        self.proxy = ThreadingServer(("127.0.0.1", 0), FaultyProxy)
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "soak", "AWS_SECRET_ACCESS_KEY": "soak",
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{self.proxy.server_address[1]}",
            "RUST_LOG": "info", "METRICS": "off", **SETTINGS,
        }
        for name in ("TABLE_NAME", "ISSUER", "SIGNING_KEYS", "USER_TOKEN_ISSUER",
                     "USER_TOKEN_AUDIENCE", "USER_TOKEN_HS256_SECRET", "ADMIN_CURSOR_SECRET",
                     "OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "PAGE_SESSION_SECRET"):
            self.env[name] = os.environ[name]
        issuer = urllib.parse.urlsplit(os.environ["ISSUER"])
        self.origin = f"{issuer.scheme}://{issuer.netloc}"  # what a browser sends as Origin
        self.people = json.loads(os.environ["SOAK_PEOPLE"])  # account -> user token
        self.guesser = os.environ["SOAK_GUESSER_TOKEN"]
        self.admin_token = os.environ["SOAK_ADMIN_TOKEN"]
        self.codes = queue.Queue()  # (user code, device code) for people to decide
        self.service_secret = os.environ["SOAK_SERVICE_SECRET"]
        self.old_secrets = set()
        self.rotated_at = float("inf")
        self.stop_at = 0.0
        self.instance_count = 0

    def start_instance(self, name):
        self.instance_count += 1
        os.makedirs(".local/soak", exist_ok=True)
        return bench.Function(name, os.path.join(self.args.bin_dir, name), self.env,
                              log_path=f".local/soak/{name}-{self.instance_count}.log")

    # -- calls

    def call(self, pool, operation, event, json_expected=True):
        """One request; retries an instance killed under it, as API Gateway's client would
        after its 502. Returns (status, headers, body)."""
        for _ in range(5):
            started = time.monotonic()
            try:
                response = self.pools[pool].call(event)
            except Killed:
                with self.record.lock:
                    self.record.killed_requests += 1
                continue
            ended = time.monotonic()
            status = response.get("statusCode", 0)
            headers = dict(response.get("headers") or {})
            if response.get("cookies"):
                # API Gateway's payload 2.0 carries Set-Cookie values in a field of their own.
                headers["set-cookie"] = response["cookies"]
            raw = response.get("body") or ""
            if response.get("isBase64Encoded"):
                raw = base64.b64decode(raw).decode(errors="replace")
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            self.record.answer(pool, operation, status, started, ended, body, headers,
                               json_expected)
            return status, headers, body
        return None, {}, None

    def client_call(self, pool, operation, path, body, json_expected=True):
        """A request of a device's client: the confidential one sends its current secret
        (client_secret_post), and takes the new one when an administrator rotated it; an
        old secret accepted after the rotation and the cache's bound breaks a promise."""
        client_id = body["client_id"]
        for _ in range(2):
            secret = self.service_secret if client_id == SERVICE_CLIENT else None
            form = {**body, "client_secret": secret} if secret else body
            sent = time.monotonic()
            status, headers, answer = self.call(pool, operation, self.form(path, form),
                                                json_expected)
            if secret and secret in self.old_secrets and status == 200 \
                    and sent > self.rotated_at + CACHE_BOUND_S:
                self.record.fail(f"{operation}: an old client secret accepted "
                                 f"{sent - self.rotated_at:.1f}s after its rotation")
            if secret and status == 401 and secret != self.service_secret:
                continue
            return status, headers, answer
        return status, headers, answer

    def form(self, path, body, basic=None, ip="198.51.100.7"):
        event = bench.api_event("POST", path, path, body=body, form=True, basic=basic)
        event["requestContext"]["http"]["sourceIp"] = ip
        return event

    def verify_event(self, method, value, token, ip, body=None):
        event = bench.api_event(method, f"/v2/oidc/device_authorization/{urllib.parse.quote(value)}",
                                LOOKUP_ROUTE, token=token, body=body,
                                path_parameters={"user_code_or_id": value})
        event["requestContext"]["http"]["sourceIp"] = ip
        return event

    # -- actors

    def device(self, rng, client_id):
        record = self.record
        if rng.random() < 0.1:
            # A client library discovers the endpoints and the keys first.
            for path in ("/.well-known/openid-configuration", "/.well-known/jwks.json"):
                self.call("discovery", "discovery", bench.api_event("GET", path, path))
        # Some devices ask who signs in (OpenID Connect): an ID token with every token.
        openid = client_id != "soak-doomed" and rng.random() < 0.4
        scope = "openid profile read offline_access" if openid else "read offline_access"
        status, _, issued = self.client_call(
            "device-authorization", "device authorization", "/oauth2/v1/device",
            {"client_id": client_id, "scope": scope})
        if status != 200:
            return
        record.count("logins")
        if openid:
            record.count("logins with openid")
        device_code, user_code = issued["device_code"], issued["user_code"]
        interval = issued.get("interval", 1)
        with record.lock:
            record.tokens_by_code[device_code] = []
            record.login_of[device_code] = (user_code, client_id,
                                            time.monotonic() + issued["expires_in"])
        self.codes.put((user_code, device_code))
        too_fast = rng.random() < 0.2
        poll = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id}
        tokens = None
        # Since when a well-paced poll's slow_down must be explained by a fault or a kill.
        window_start, kills_then, paired_before = time.monotonic(), record.killed_requests, False
        while time.monotonic() < self.stop_at:
            time.sleep(interval * (0.5 if too_fast else 1.0) + rng.random() * 0.2)
            times = 2 if rng.random() < 0.15 else 1
            sent = time.monotonic()
            answers = at_once(times, lambda: self.client_call("token", "poll", "/oauth2/v1/token",
                                                               poll))
            record.count("polls", times)
            paced = not too_fast and times == 1 and not paired_before
            final = None
            for status, _, body in answers:
                if status == 200:
                    self.check_id_token("poll", body, client_id, openid)
                    with record.lock:
                        record.tokens_by_code[device_code].append(body["access_token"])
                        record.delivered_grants += 1
                        record.delivered_sids.add(grant_of(body["access_token"]))
                    tokens = body
                    final = "token"
                elif status == 400 and isinstance(body, dict):
                    error = body.get("error")
                    if error == "slow_down":
                        # The interval the service now asks for (RFC 8628 §3.5: 5 s more).
                        interval = body.get("interval", interval + 5)
                        explained = self.faults.injected_between(window_start, time.monotonic()) \
                            or record.killed_requests != kills_then
                        if paced:
                            record.count("slow_downs to polls that kept their interval")
                        if paced and not explained:
                            record.fail("a slow_down for a poll that kept its interval, with no "
                                        "fault or kill to explain it")
                    elif error in ("access_denied", "expired_token"):
                        final = final or error
                    elif error == "invalid_grant" and final is None:
                        # A duplicate poll lost, or an answer was lost with a killed instance.
                        final = "invalid_grant"
            if final:
                with record.lock:
                    record.final_codes[device_code] = final
                break
            window_start, kills_then, paired_before = sent, record.killed_requests, times == 2
        if not tokens or "refresh_token" not in tokens:
            return
        self.refreshes(rng, client_id, tokens["refresh_token"], grant_of(tokens["access_token"]),
                       openid)

    def check_id_token(self, operation, body, client_id, openid):
        """With `openid`, a token answer carries an ID token for the same person and grant as
        its access token, for this client, bound to it by `at_hash`; without, none."""
        id_token = body.get("id_token")
        if not openid:
            if id_token:
                self.record.fail(f"{operation}: an ID token without openid")
            return
        if not id_token:
            self.record.fail(f"{operation}: no ID token with openid")
            return
        access = jwt_part(body["access_token"], 1)
        header, claims = jwt_part(id_token, 0), jwt_part(id_token, 1)
        digest = hashlib.sha256(body["access_token"].encode()).digest()
        at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
        if header.get("typ") != "JWT" or claims.get("aud") != client_id \
                or claims.get("sub") != access["sub"] or claims.get("sid") != access["sid"] \
                or (header.get("alg") == "RS256" and claims.get("at_hash") != at_hash):
            self.record.fail(f"{operation}: an ID token that does not match its access token")

    def refreshes(self, rng, client_id, refresh_token, grant, openid=False):
        record = self.record
        for _ in range(rng.randint(1, 4)):
            if time.monotonic() >= self.stop_at:
                return
            time.sleep(rng.random() * 2)
            body = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                    "client_id": client_id}
            times = 2 if rng.random() < 0.15 else 1
            answers = at_once(times, lambda: (time.monotonic(), self.client_call(
                "token", "refresh", "/oauth2/v1/token", body)))
            record.count("refreshes", times)
            successor = None
            for sent, (status, _, answer) in answers:
                if status != 200:
                    continue
                with record.lock:
                    record.accepted_refresh[refresh_token] = \
                        record.accepted_refresh.get(refresh_token, 0) + 1
                    revoked = record.revoked_at.get(grant)
                    deleted = record.deleted_client == client_id and record.deleted_client_at
                    narrowed = record.narrowed_at if client_id == "soak-doomed" else None
                    if revoked is not None and sent > revoked:
                        record.fail(f"a refresh of a revoked grant was accepted {sent - revoked:.1f}s after")
                    if deleted and sent > deleted + CACHE_BOUND_S:
                        record.fail(f"a refresh of the deleted client was accepted {sent - deleted:.1f}s after")
                    if narrowed and sent > narrowed + CACHE_BOUND_S \
                            and "read" in answer.get("scope", "").split():
                        record.fail("a refresh after the client was narrowed still carried its old scope")
                self.check_id_token("refresh", answer, client_id, openid)
                successor = answer["refresh_token"]
            if successor is None:
                return
            refresh_token = successor
        if rng.random() < 0.4 and time.monotonic() < self.stop_at:
            status, _, _ = self.client_call(
                "introspection", "revoke", "/oauth2/v1/revoke",
                {"token": refresh_token, "client_id": client_id}, json_expected=False)
            record.signed_out(grant, status)
            if status == 200:
                # Signed out: the token must now be refused.
                time.sleep(0.2)
                sent = time.monotonic()
                status, _, _ = self.client_call(
                    "token", "refresh after revocation", "/oauth2/v1/token",
                    {"grant_type": "refresh_token", "refresh_token": refresh_token,
                     "client_id": client_id})
                if status == 200:
                    record.fail("a revoked refresh token was accepted")

    def person(self, rng, index):
        account = sorted(self.people)[index % len(self.people)]
        token = self.people[account]
        ip = f"203.0.113.{10 + index}"
        while time.monotonic() < self.stop_at:
            try:
                user_code, device_code = self.codes.get(timeout=0.5)
            except queue.Empty:
                continue
            time.sleep(rng.random() * 1.5)
            if rng.random() < 0.1:
                # A typo first: another code than the one shown.
                wrong = user_code[:-1] + ("B" if user_code[-1] != "B" else "C")
                self.call("verify", "look-up", self.verify_event("GET", wrong, token, ip))
                self.record.count("lookups")
            if rng.random() < 0.12:
                continue  # never decides: the code expires
            status, _, body = self.call("verify", "look-up", self.verify_event(
                "GET", user_code.lower().replace("-", " "), token, ip))
            self.record.count("lookups")
            if status != 200:
                continue
            record_id = body["deviceAuthorizationRequest"]["id"]
            approve = rng.random() < 0.85
            decision = {"session": {"sessionId": f"soak-{index}"}} if approve else {"deny": {}}
            status, _, _ = self.call("verify", "decide", self.verify_event(
                "POST", record_id, token, ip, body=decision))
            if status == 200:
                self.decided(device_code, approve)
            if rng.random() < 0.15:
                self.sign_out_a_device(rng, token)

    def decided(self, device_code, approve):
        """A person's decision was answered: approved or denied."""
        with self.record.lock:
            (self.record.approved_codes if approve else self.record.denied_codes).add(device_code)
            self.record.approved_at[device_code] = time.monotonic()
        self.record.count("approvals" if approve else "denials")

    def sign_out_a_device(self, rng, token):
        """A person lists their devices and signs one out."""
        event = bench.api_event("GET", "/v2/oidc/device_grants", "/v2/oidc/device_grants",
                                token=token)
        status, _, body = self.call("verify", "my devices", event)
        if status != 200 or not body.get("deviceGrants"):
            return
        grant = rng.choice(body["deviceGrants"])["id"]
        route = "/v2/oidc/device_grants/{grant_id}"
        event = bench.api_event("DELETE", f"/v2/oidc/device_grants/{grant}", route, token=token,
                                path_parameters={"grant_id": grant})
        status, _, _ = self.call("verify", "sign a device out", event)
        self.record.signed_out(grant, status)

    # -- the hosted page, as a browser uses it

    def page_call(self, browser, operation, method, path, query=None, form=None):
        """One request of `browser` to the page: its cookies in the event's own field (as API
        Gateway hands them over), `Origin` on a form post; keeps the cookies it is given."""
        event = bench.api_event(method, path, path, body=form, form=form is not None,
                                query=query)
        event["requestContext"]["http"]["sourceIp"] = browser.ip
        if browser.cookies:
            event["cookies"] = [f"{name}={value}" for name, value in browser.cookies.items()]
        if method == "POST":
            event["headers"]["origin"] = self.origin
        status, headers, body = self.call(PAGE, operation, event, json_expected=False)
        for cookie in headers.get("set-cookie", []):
            pair, _, attributes = cookie.partition(";")
            name, _, value = pair.partition("=")
            if "max-age=0" in attributes.lower().replace(" ", ""):
                browser.cookies.pop(name, None)
            else:
                browser.cookies[name] = value
        location = next((v for k, v in headers.items() if k.lower() == "location"), None)
        return status, location, body if isinstance(body, str) else ""

    def page_sign_in(self, sub, ip):
        """Signs `sub` in on the page: off to the provider, its login form, back to the
        callback, then the code form. Returns the browser, with the form's CSRF token."""
        browser = Browser(ip)
        status, authorize, _ = self.page_call(browser, "page sign-in", "GET", "/device")
        if status != 303 or not authorize:
            return None
        # The provider's login form (oidc-provider-mock takes any subject).
        url = urllib.parse.urlsplit(authorize)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        connection.request("POST", f"{url.path}?{url.query}",
                           body=urllib.parse.urlencode({"sub": sub}),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        answer = connection.getresponse()
        answer.read()
        back = answer.getheader("Location") or ""
        connection.close()
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))
        if "code" not in query:
            self.record.fail(f"the provider's sign-in gave no code ({answer.status})")
            return None
        status, _, _ = self.page_call(browser, "page callback", "GET", "/device/callback",
                                      query=query)
        if status != 303:
            return None
        status, _, page = self.page_call(browser, "page code form", "GET", "/device")
        browser.csrf = hidden(page, "csrf")
        if status != 200 or not browser.csrf:
            return None
        self.record.count("page sign-ins")
        return browser

    def page_person(self, rng, index):
        """A person who decides on the hosted page: signs in once, and again now and then."""
        sub, ip = f"soak-page-{index}", f"203.0.113.{50 + index}"
        browser = None
        while time.monotonic() < self.stop_at:
            try:
                user_code, device_code = self.codes.get(timeout=0.5)
            except queue.Empty:
                continue
            time.sleep(rng.random() * 1.5)
            if browser is None or rng.random() < 0.1:
                browser = self.page_sign_in(sub, ip)
                if browser is None:
                    continue  # the code expires undecided
            if rng.random() < 0.1:
                wrong = user_code[:-1] + ("B" if user_code[-1] != "B" else "C")
                self.page_call(browser, "page look-up", "POST", "/device",
                               form={"user_code": wrong, "csrf": browser.csrf})
                self.record.count("lookups")
            if rng.random() < 0.12:
                continue  # never decides: the code expires
            status, _, page = self.page_call(browser, "page look-up", "POST", "/device", form={
                "user_code": user_code.lower().replace("-", " "), "csrf": browser.csrf})
            self.record.count("lookups")
            record_id = hidden(page, "id")
            if status != 200 or not record_id:
                if status == 401:
                    browser = None  # the session ended: sign in again
                continue
            approve = rng.random() < 0.85
            status, _, _ = self.page_call(browser, "page decide", "POST", "/device/decide", form={
                "decision": "approve" if approve else "deny", "id": record_id,
                "csrf": browser.csrf})
            if status == 200:
                self.decided(device_code, approve)
            if rng.random() < 0.15:
                self.page_sign_out_a_device(rng, browser)

    def page_sign_out_a_device(self, rng, browser):
        """The page's device list, and one device signed out from it."""
        status, _, page = self.page_call(browser, "page my devices", "GET", "/device/devices")
        grants = re.findall(r'name="grant" value="([^"]+)"', page)
        if status != 200 or not grants:
            return
        grant = rng.choice(grants)
        status, _, _ = self.page_call(browser, "page sign a device out", "POST", "/device/devices",
                                      form={"grant": grant, "csrf": browser.csrf})
        self.record.signed_out(grant, status)

    def guess(self, rng):
        alphabet = "BCDFGHJKLMNPQRSTVWXZ"
        while time.monotonic() < self.stop_at:
            code = "".join(rng.choice(alphabet) for _ in range(8))
            status, _, _ = self.call("verify", "guess", self.verify_event(
                "GET", code, self.guesser, "192.0.2.99"))
            self.record.count("guesses")
            if status == 404:
                with self.record.lock:
                    self.record.guesser_not_found += 1
            time.sleep(0.3 + rng.random() * 0.3)

    def administrator(self, rng, doomed):
        narrow_at = time.monotonic() + (self.stop_at - time.monotonic()) * 0.3
        rotate_at = time.monotonic() + (self.stop_at - time.monotonic()) * 0.45
        delete_at = time.monotonic() + (self.stop_at - time.monotonic()) * 0.6
        deleted = narrowed = rotated = False
        while time.monotonic() < self.stop_at:
            time.sleep(1 + rng.random() * 2)
            event = bench.api_event("GET", "/admin/oauth/device-authorizations",
                                    "/admin/oauth/device-authorizations", token=self.admin_token,
                                    query={"limit": "50"})
            self.call("admin", "admin list", event)
            self.record.count("admin")
            if not narrowed and time.monotonic() >= narrow_at:
                narrowed = self.narrow_client(doomed)
            if not rotated and time.monotonic() >= rotate_at:
                rotated = self.rotate_secret(SERVICE_CLIENT)
            if not deleted and time.monotonic() >= delete_at:
                deleted = self.delete_client(doomed)

    def rotate_secret(self, client_id):
        """Rotates the confidential client's secret; its devices take the new one."""
        path = f"/admin/oauth/clients/{client_id}"
        event = bench.api_event("PATCH", path, "/admin/oauth/clients/{client_id}",
                                token=self.admin_token, path_parameters={"client_id": client_id},
                                body={"rotate_secret": True})
        for _ in range(20):
            status, _, body = self.call("admin", "rotate secret", event)
            self.record.count("admin")
            if status == 200:
                self.old_secrets.add(self.service_secret)
                self.rotated_at = time.monotonic()
                self.service_secret = body["client_secret"]
                return True
            time.sleep(0.5)
        return False

    def narrow_client(self, client_id):
        """Takes `read` from the client: its refreshes must drop it (after the cache)."""
        path = f"/admin/oauth/clients/{client_id}"
        event = bench.api_event("PATCH", path, "/admin/oauth/clients/{client_id}",
                                token=self.admin_token, path_parameters={"client_id": client_id},
                                body={"allowed_scopes": ["offline_access", "write"]})
        for _ in range(20):
            status, _, _ = self.call("admin", "narrow client", event)
            self.record.count("admin")
            if status == 200:
                with self.record.lock:
                    self.record.narrowed_at = time.monotonic()
                return True
            time.sleep(0.5)
        return False

    def delete_client(self, client_id):
        path = f"/admin/oauth/clients/{client_id}"
        for _ in range(200):
            event = bench.api_event("DELETE", path, "/admin/oauth/clients/{client_id}",
                                    token=self.admin_token, path_parameters={"client_id": client_id})
            status, headers, _ = self.call("admin", "delete client", event, json_expected=False)
            self.record.count("admin")
            if status == 204:
                with self.record.lock:
                    self.record.deleted_client = client_id
                    # The deletion took effect at its first DELETE's mark; the last sweep at
                    # 204. Refreshes sent after that (and the cache) must all fail.
                    self.record.deleted_client_at = time.monotonic()
                return True
            if status in (202, 503):
                time.sleep(min(float(headers.get("retry-after", "1")), 3))
            elif status == 404:
                return True
        return False

    def killer(self, rng):
        names = ["token", "device-authorization", "verify", PAGE, "introspection", "admin"]
        while time.monotonic() < self.stop_at:
            time.sleep(self.args.kill_every * (0.5 + rng.random()))
            self.pools[rng.choice(names)].kill_one(rng)

    def bursts(self, rng):
        while time.monotonic() < self.stop_at:
            time.sleep(10 + rng.random() * 10)
            self.faults.burst(0.5 + rng.random())

    # -- the run

    def create_doomed_client(self):
        body = {"client_id": "soak-doomed", "name": "A client deleted mid-run", "type": "public",
                "allowed_grant_types": [DEVICE_GRANT, "refresh_token"],
                "allowed_scopes": ["read", "write", "offline_access"], "poll_interval_seconds": 1}
        event = bench.api_event("POST", "/admin/oauth/clients", "/admin/oauth/clients",
                                token=self.admin_token, body=body)
        for _ in range(20):
            status, _, _ = self.call("admin", "create client", event)
            if status in (201, 409):
                return "soak-doomed"
            time.sleep(0.5)
        sys.exit("soak: could not create the client it deletes")

    def run(self):
        seconds = self.args.seconds
        sizes = {"device-authorization": 2, "token": 3, "verify": 2, PAGE: 2, "introspection": 2,
                 "admin": 1, "discovery": 1}
        self.pools = {name: Pool(name, n, self.start_instance) for name, n in sizes.items()}
        self.stop_at = time.monotonic() + seconds + 120  # actors' own end is set below
        doomed = self.create_doomed_client()
        started = time.monotonic()
        self.stop_at = started + seconds
        rng = lambda: random.Random(self.master.randrange(2**32))  # noqa: E731
        actors = [threading.Thread(target=self.guess, args=(rng(),)),
                  threading.Thread(target=self.administrator, args=(rng(), doomed)),
                  threading.Thread(target=self.killer, args=(rng(),)),
                  threading.Thread(target=self.bursts, args=(rng(),))]
        actors += [threading.Thread(target=self.person, args=(rng(), i))
                   for i in range(self.args.people)]
        actors += [threading.Thread(target=self.page_person, args=(rng(), i))
                   for i in range(self.args.page_people)]
        for actor in actors:
            actor.start()
        devices = []
        memory_at = started + min(20.0, seconds / 3)
        warm_rss = None
        while time.monotonic() < self.stop_at:
            devices = [d for d in devices if d.is_alive()]
            while len(devices) < self.args.devices:
                draw = self.master.random()
                client = doomed if draw < 0.2 else SERVICE_CLIENT if draw < 0.4 else "demo-cli"
                d = threading.Thread(target=self.device, args=(rng(), client))
                d.start()
                devices.append(d)
            if warm_rss is None and time.monotonic() >= memory_at:
                warm_rss = self.memory()
            time.sleep(0.2)
        # Grants created in the last seconds may have lost their answer with no poll after.
        self.stopped_wall_ms = time.time() * 1000
        for t in actors + devices:
            t.join(timeout=120)
        end_rss = self.memory()
        self.elapsed = time.monotonic() - started
        self.check(warm_rss or {}, end_rss)
        for pool in self.pools.values():
            for instance in pool.instances():
                instance.process.kill()
        return self.report(warm_rss or {}, end_rss)

    def memory(self):
        return {(pool.name, instance.process.pid): rss_kib(instance.process.pid)
                for pool in self.pools.values() for instance in pool.instances()
                if instance.process.poll() is None}

    # -- the proof

    def scan(self, kind):
        """Every item of `kind` (`GRANT`, `DEVICE`), read from the server itself."""
        items, start = [], None
        upstream = FaultyProxy.upstream
        while True:
            request = {"TableName": self.env["TABLE_NAME"], "ConsistentRead": True,
                       "FilterExpression": "sk = :kind",
                       "ExpressionAttributeValues": {":kind": {"S": kind}}}
            if start:
                request["ExclusiveStartKey"] = start
            connection = http.client.HTTPConnection(*upstream, timeout=60)
            connection.request("POST", "/", body=json.dumps(request), headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.Scan",
                "Authorization": "AWS4-HMAC-SHA256 Credential=soak/20260101/us-east-1/dynamodb/"
                "aws4_request, SignedHeaders=host, Signature=0"})
            page = json.loads(connection.getresponse().read())
            connection.close()
            items += page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def check(self, warm_rss, end_rss):
        record = self.record
        # The table's word on each login: approved by whom, consumed or not. A decision whose
        # answer was lost (a 503, an instance killed, a write the SDK gave up on) is known
        # only there.
        devices = {d["user_code"]["S"]: d for d in self.scan("DEVICE") if "user_code" in d}
        people = {f"soak-{name}" for name in self.people} \
            | {f"soak-page-{i}" for i in range(self.args.page_people)}
        with record.lock:
            for code, tokens in record.tokens_by_code.items():
                user_code, client_id, expires_at = record.login_of[code]
                stored = devices.get(user_code.replace("-", ""), {})
                if len(tokens) > 1:
                    record.broken.append(f"a login got {len(tokens)} access tokens")
                if tokens and (stored.get("status", {}).get("S") != "consumed"
                               or stored.get("approved_by_account_id", {}).get("S") not in people):
                    record.broken.append("a token went to a code no person approved")
                if tokens and code in record.denied_codes:
                    record.broken.append("a token went to a denied code")
                final = record.final_codes.get(code)
                withdrawn = client_id == record.deleted_client
                late = record.approved_at.get(code, 0) > expires_at - 3
                if code in record.approved_codes and final in ("access_denied", "expired_token") \
                        and not withdrawn and not (final == "expired_token" and late):
                    record.broken.append(f"an approved login ended {final}")
            for token, times in record.accepted_refresh.items():
                if times > 1:
                    record.broken.append(f"a refresh token was accepted {times} times")
        grants = self.scan("GRANT")
        delivered = record.delivered_grants
        undelivered = len(grants) - delivered
        if undelivered < 0:
            record.fail(f"{delivered} tokens delivered but only {len(grants)} grants in the table")
        # A grant whose token never reached its device (the instance died after writing it,
        # or its answer came after the SDK gave up) must be dead: the device's next poll was
        # a replay, which revokes it. Only a device still polling at the end may leave one.
        # When the device came back within the race grace (5 s: a concurrent poll of its own
        # may have won), the grant is left live; nobody holds its tokens, so it must never
        # have been used, and it expires unused.
        unheld = 0
        for g in grants:
            if g["grant_id"]["S"] in record.delivered_sids or "revoked_at" in g:
                continue
            unheld += 1
            if g["last_used_at"]["N"] != g["created_at"]["N"]:
                record.fail(f"a grant of {g['client_id']['S']} whose token never reached its "
                            f"device was used")
        # A grant whose token died with its instance (or whose answer came after the SDK
        # gave up): the device's next poll is a replay, which revokes it.
        reasons = {}
        for g in grants:
            reason = g.get("revoked_reason", {}).get("S", "live")
            reasons[reason] = reasons.get(reason, 0) + 1
        by_id = {g["grant_id"]["S"]: g for g in grants}
        for grant in record.revoked_at:
            if "revoked_at" not in by_id.get(grant, {}):
                record.fail("a grant the run signed out is not revoked in the table")
        if record.deleted_client:
            live = [g for g in grants if g.get("client_id", {}).get("S") == record.deleted_client
                    and "revoked_at" not in g]
            if live:
                record.fail(f"{len(live)} grants of the deleted client are not revoked")
        windows = int(self.elapsed // int(SETTINGS["LOOKUP_WINDOW_SECONDS"])) + 2
        budget = int(SETTINGS["LOOKUP_FAILURES_PER_ACCOUNT"]) * windows
        if record.guesser_not_found > budget:
            record.fail(f"the guesser got {record.guesser_not_found} answers, the budget allows {budget}")
        for key, rss in end_rss.items():
            if key in warm_rss and rss - warm_rss[key] > MEMORY_BOUND_KIB:
                record.fail(f"{key[0]} grew {rss - warm_rss[key]} KiB after warm-up")
        self.table = {"grants": len(grants), "undelivered_grants": max(undelivered, 0),
                      "undelivered_left_live_unused": unheld, "grants_by_state": reasons}

    def report(self, warm_rss, end_rss):
        record = self.record
        latency = {op: {"p50_ms": statistics.median(v) * 1000,
                        "p99_ms": sorted(v)[max(0, -(-len(v) * 99 // 100) - 1)] * 1000,
                        "requests": len(v)}
                   for op, v in sorted(record.latency.items())}
        peak = {}
        for (name, _), rss in end_rss.items():
            peak[name] = max(peak.get(name, 0), rss)
        result = {
            "seed": self.seed, "seconds": round(self.elapsed, 1), "counts": record.counts,
            "faults_injected": dict(self.faults.injected),
            "instances_killed": {name: pool.killed for name, pool in self.pools.items()},
            "server_answers_too_slow": self.faults.slow_server,
            "requests_cut_by_kills": record.killed_requests,
            "answers": {f"{op} {status}": n for (op, status), n in sorted(record.answers.items())},
            "latency": latency, "peak_rss_kib": peak, "table": self.table,
            "broken": record.broken,
        }
        if self.args.json:
            os.makedirs(os.path.dirname(self.args.json) or ".", exist_ok=True)
            with open(self.args.json, "w") as f:
                json.dump(result, f, indent=2)
        out = [f"soak: seed {self.seed}, {result['seconds']} s"]
        out.append("done: " + ", ".join(f"{n} {what}" for what, n in record.counts.items()))
        out.append("faults injected: " + ", ".join(f"{n} {k}" for k, n in self.faults.injected.items())
                   + f"; instances killed: {sum(result['instances_killed'].values())}"
                   + f" ({record.killed_requests} requests cut); answers the server itself gave"
                   + f" too late for the SDK: {self.faults.slow_server}")
        out.append("answers: " + ", ".join(f"{k}: {n}" for k, n in result["answers"].items()))
        out.append("| operation | requests | p50 | p99 |")
        out.append("|---|---:|---:|---:|")
        for op, l in latency.items():
            out.append(f"| {op} | {l['requests']} | {l['p50_ms']:.1f} ms | {l['p99_ms']:.1f} ms |")
        out.append("peak memory: " + ", ".join(f"{n} {kib / 1024:.1f} MiB" for n, kib in sorted(peak.items())))
        out.append(f"table: {self.table['grants']} grants ("
                   + ", ".join(f"{n} {k}" for k, n in sorted(self.table["grants_by_state"].items()))
                   + f"), {self.table['undelivered_grants']} never delivered, of which "
                   + f"{self.table['undelivered_left_live_unused']} left live and unused")
        for broken in record.broken:
            out.append(f"BROKEN: {broken}")
        faults = sum(self.faults.injected.values()) + sum(result["instances_killed"].values())
        out.append(f"soak: {record.counts['logins']} logins, {faults} faults injected, "
                   f"{len(record.broken)} invariants broken")
        print("\n".join(out))
        return not record.broken


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--dynamodb", required=True)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--fault-rate", type=float, default=0.03,
                        help="share of store requests that fail outside bursts")
    parser.add_argument("--kill-every", type=float, default=3.0,
                        help="seconds between instance kills, on average")
    parser.add_argument("--devices", type=int, default=12, help="devices signing in at once")
    parser.add_argument("--people", type=int, default=4, help="people on the verification API")
    parser.add_argument("--page-people", type=int, default=2, help="people on the hosted page")
    parser.add_argument("--json")
    args = parser.parse_args()
    ok = Soak(args).run()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
