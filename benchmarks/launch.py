"""Full OIDC login + launch round trips against `lms-bridge serve --workers 2`.

This script plays the platform: it serves its JWKS on 127.0.0.1 (counting fetches), registers itself
with the tool, signs id_tokens, and drives login + launch like a browser. It prints launches/s and
p50/p95/p99 next to a trivial endpoint of the same server (GET /), their ratio, and the number of
key-set fetches.

The client shares the machine's cores with the server, so it is kept lean for both measurements: one
keep-alive connection per client thread, no ~/.netrc or proxy lookups per request and no Python cookie
jar (the launch sends its state cookie back itself, as a browser does). The two measurements alternate
for `--rounds` rounds and the medians are reported. The server's own CPU time per request and per launch
(from /proc, master and workers) is printed too: it is the part of the cost that is the tool's.

    .venv/bin/python benchmarks/launch.py [--seconds 5] [--rounds 3] [--concurrency 8]
"""
from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "lms-bridge"
C = "https://purl.imsglobal.org/spec/lti/claim/"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Platform:
    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.jwks_fetches = 0
        nums = self.key.public_key().public_numbers()
        b64 = lambda n: jwt.utils.base64url_encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode()  # noqa
        self.jwks = {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "bench", "n": b64(nums.n),
                               "e": b64(nums.e)}]}
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                platform.jwks_fetches += 1
                body = json.dumps(platform.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def id_token(self, tool_url, nonce, user):
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": "bench-client", "iat": now, "exp": now + 60, "nonce": nonce,
                  "sub": str(user), C + "deployment_id": "1", C + "version": "1.3.0",
                  C + "message_type": "LtiResourceLinkRequest",
                  C + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
                  C + "context": {"id": "2", "title": "Benchmark course"},
                  C + "resource_link": {"id": "1"}, C + "target_link_uri": tool_url + "/lti/launch?activity=home",
                  "name": f"Learner {user}"}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "bench"})


def run_server(data_dir, port, workers):
    env = dict(os.environ, LMS_BRIDGE_DATA=str(data_dir), LMS_BRIDGE_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.Popen([str(BIN), "serve", "--migrate", "--port", str(port), "--workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return proc, env
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


_local = threading.local()


class _NoCookieJar(http.cookiejar.CookiePolicy):
    """requests' cookie jar is pure Python and costs the client more than the request; the launch sends
    its state cookie itself instead."""
    netscape, rfc2965, hide_cookie2 = True, False, False

    def set_ok(self, cookie, request):
        return False

    def return_ok(self, cookie, request):
        return False

    def domain_return_ok(self, domain, request):
        return False

    def path_return_ok(self, path, request):
        return False


def session() -> requests.Session:
    """One keep-alive session per client thread, as lean as a browser's network stack."""
    if not hasattr(_local, "s"):
        _local.s = requests.Session()
        _local.s.trust_env = False  # no ~/.netrc and proxy lookups on every request
        _local.s.cookies.set_policy(_NoCookieJar())
    return _local.s


def one_launch(tool_url, platform, user):
    """A browser's two requests: login, then the id_token the platform signed for the login's nonce."""
    s = session()
    t0 = time.perf_counter()
    login = s.post(tool_url + "/lti/login", allow_redirects=False,
                   data={"iss": platform.issuer, "login_hint": str(user), "client_id": "bench-client",
                         "target_link_uri": tool_url + "/lti/launch", "lti_deployment_id": "1"})
    if login.status_code != 302:
        raise RuntimeError(f"login failed: {login.status_code}")
    q = parse_qs(urlsplit(login.headers["Location"]).query)
    state_cookie = login.headers["Set-Cookie"].split(";", 1)[0]
    launch = s.post(tool_url + "/lti/launch", allow_redirects=False, headers={"Cookie": state_cookie},
                    data={"id_token": platform.id_token(tool_url, q["nonce"][0], user), "state": q["state"][0]})
    if launch.status_code != 303:
        raise RuntimeError(f"launch failed: {launch.status_code}")
    return time.perf_counter() - t0


def trivial(tool_url):
    t0 = time.perf_counter()
    session().get(tool_url + "/").raise_for_status()
    return time.perf_counter() - t0


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the server's master and worker processes."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split()]
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure(fn, seconds, concurrency, pid):
    latencies, stop = [], time.perf_counter() + seconds

    def loop(i):
        out = []
        n = 0
        while time.perf_counter() < stop:
            out.append(fn(i * 100000 + n))
            n += 1
        return out

    start, cpu0 = time.perf_counter(), server_cpu(pid)
    with ThreadPoolExecutor(concurrency) as pool:
        for part in pool.map(loop, range(concurrency)):
            latencies += part
    elapsed, cpu = time.perf_counter() - start, server_cpu(pid) - cpu0
    return len(latencies) / elapsed, latencies, cpu / len(latencies)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def report(name, unit, rounds):
    """Median rate and server CPU over the rounds; latency percentiles over all of them."""
    rate = statistics.median(r[0] for r in rounds)
    cpu = statistics.median(r[2] for r in rounds)
    lat = [x for r in rounds for x in r[1]]
    print(f"{name:21s}: {rate:8.1f} {unit:10s} p50 {pct(lat, 50):6.1f} ms  p95 {pct(lat, 95):6.1f} ms  "
          f"p99 {pct(lat, 99):6.1f} ms  server CPU {cpu * 1000:5.2f} ms each  (n={len(lat)})")
    return rate, cpu


def arguments(**extra) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5, help="length of each measurement")
    ap.add_argument("--rounds", type=int, default=3, help="trivial/launch measurements, alternating")
    ap.add_argument("--concurrency", type=int, default=8)
    for name, default in extra.items():
        ap.add_argument(f"--{name}", type=type(default), default=default)
    return ap.parse_args()


def alternate(url, platform, args, pid) -> tuple[list, list]:
    """`args.rounds` trivial and login+launch measurements, one after the other."""
    trivial_rounds, launch_rounds = [], []
    for r in range(args.rounds):
        trivial_rounds.append(measure(lambda i: trivial(url), args.seconds, args.concurrency, pid))
        launch_rounds.append(measure(lambda i: one_launch(url, platform, (r + 1) * 10**7 + i), args.seconds,
                                     args.concurrency, pid))
    return trivial_rounds, launch_rounds


def warm_up_and_measure(url, platform, args, proc) -> tuple[int, list, list]:
    """One launch (it fetches the key set), then the alternating rounds; the server is stopped after.
    Returns the key-set fetches the warm-up made and both measurements."""
    try:
        one_launch(url, platform, 0)
        fetches = platform.jwks_fetches
        return (fetches, *alternate(url, platform, args, proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def summary(trivial_rounds, launch_rounds) -> str:
    """Prints both lines; returns the ratio sentence."""
    triv_rate, triv_cpu = report("trivial GET /", "req/s", trivial_rounds)
    launch_rate, launch_cpu = report("login+launch", "launches/s", launch_rounds)
    ratio = launch_rate / triv_rate
    return (f"ratio launches/trivial: {ratio:.2f} (target >= 0.33: {'met' if ratio >= 1 / 3 else 'NOT met'}); "
            f"server CPU alone: a launch costs {launch_cpu / triv_cpu:.1f} trivial requests")


def main():
    args = arguments(workers=2)
    platform = Platform()
    port = free_port()
    tool_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, LMS_BRIDGE_DATA=data, LMS_BRIDGE_URL=tool_url)
        subprocess.run([str(BIN), "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([str(BIN), "platforms", "add", "--issuer", platform.issuer, "--client-id", "bench-client",
                        "--auth-login-url", platform.issuer + "/auth", "--auth-token-url", platform.issuer + "/token",
                        "--key-set-url", platform.issuer + "/jwks", "--deployment-id", "1"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        proc, _ = run_server(data, port, args.workers)
        fetches_after_first, trivial_rounds, launch_rounds = warm_up_and_measure(tool_url, platform, args, proc)
    print(f"server: lms-bridge serve --workers {args.workers}; client concurrency {args.concurrency}; "
          f"{args.rounds} rounds of {args.seconds:g}s per measurement; medians")
    print(summary(trivial_rounds, launch_rounds))
    extra = platform.jwks_fetches - fetches_after_first
    print(f"key-set fetches: {fetches_after_first} for the first launch, {extra} after it (target 0)")


if __name__ == "__main__":
    main()
