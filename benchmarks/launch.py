"""Full OIDC login + launch round trips against `lms-bridge serve --workers 2`.

This script plays the platform: it serves its JWKS on 127.0.0.1 (counting fetches), registers itself
with the tool, signs id_tokens, and drives login + launch like a browser. It prints launches/s and
p50/p95/p99 next to a trivial endpoint of the same server (GET /), the server CPU per launch as a
multiple of a trivial request (the target: at most 4.0), and the number of key-set fetches. With
`--with-floor` it then measures `launch_floor.py`'s bare Flask app the same way and prints both
multiples side by side.

Then the stored launch data: the store is filled with `--stored` launches' rows (states, nonces,
launches, a token per platform), spread evenly over the last `--days` days as real launches would have
left them, and one `lms-bridge worker --once` pass runs. Printed: rows, expired rows and the bytes the
store uses per launch, before and after the pass; expired rows after it must be below one day's worth.

The client shares the machine's cores with the server, so it is kept lean for both measurements: one
keep-alive connection per client thread, no ~/.netrc or proxy lookups per request and no Python cookie
jar (the launch sends its state cookie back itself, as a browser does). The two measurements alternate
for `--rounds` rounds and the medians are reported. The server's own CPU time per request and per launch
(from /proc, master and workers) is printed too: it is the part of the cost that is the tool's.

    .venv/bin/python benchmarks/launch.py [--seconds 5] [--rounds 3] [--concurrency 8] [--with-floor]
                                          [--stored 100000] [--days 10]
"""
from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import socket
import sqlite3
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
        if isinstance(default, bool):
            ap.add_argument(f"--{name}", action="store_true")
        else:
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


CPU_TARGET = 4.0  # server CPU of a login + launch, in trivial requests of the same server


def summary(trivial_rounds, launch_rounds) -> tuple[str, float]:
    """Prints both lines; returns the sentence and the CPU multiple (a launch in trivial requests)."""
    triv_rate, triv_cpu = report("trivial GET /", "req/s", trivial_rounds)
    launch_rate, launch_cpu = report("login+launch", "launches/s", launch_rounds)
    multiple = launch_cpu / triv_cpu
    return (f"server CPU per launch: {multiple:.2f} trivial requests (target <= {CPU_TARGET}: "
            f"{'met' if multiple <= CPU_TARGET else 'NOT met'}, {multiple / CPU_TARGET:.2f} of it); "
            f"launches/trivial requests per second {launch_rate / triv_rate:.2f} (not a target: the client "
            f"shares the cores)"), multiple


def store_report(db_path: str, launches: int) -> dict:
    """Rows, expired rows and used bytes of what launches leave in the store."""
    db = sqlite3.connect(db_path)
    now = db.execute("SELECT strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')").fetchone()[0]
    out = {"rows": 0, "expired": 0}
    for table in ("oidc_states", "used_nonces", "launches", "access_tokens"):
        out["rows"] += db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        out["expired"] += db.execute(f"SELECT COUNT(*) FROM {table} WHERE expires_at < ?", [now]).fetchone()[0]
    page, pages, free = (db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count",
                                                                           "freelist_count"))
    out["bytes"] = (pages - free) * page
    out["per_launch"] = out["bytes"] / max(1, launches)
    db.close()
    return out


def fill_store(db_path: str, n: int, days: float) -> None:
    """n launches' rows, copied from a real one, created evenly over the last `days` days with the
    lifetimes the tool gives them (login state, nonce, launch)."""
    from datetime import datetime, timedelta, timezone

    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    state = dict(db.execute("SELECT * FROM oidc_states ORDER BY created_at DESC LIMIT 1").fetchone())
    launch = dict(db.execute("SELECT * FROM launches ORDER BY created_at DESC LIMIT 1").fetchone())
    state_ttl = (datetime.fromisoformat(state["expires_at"]) - datetime.fromisoformat(state["created_at"]))
    launch_ttl = (datetime.fromisoformat(launch["expires_at"]) - datetime.fromisoformat(launch["created_at"]))
    now = datetime.now(timezone.utc)
    step = timedelta(days=days) / n
    states, nonces, launches = [], [], []
    for i in range(n):
        at = now - timedelta(days=days) + i * step
        key = f"seeded-{i:08d}-" + state["state"][:20]
        states.append({**state, "state": key, "nonce": key, "created_at": at.isoformat(),
                       "expires_at": (at + state_ttl).isoformat(), "used_at": at.isoformat()})
        nonces.append((launch["platform_id"], key, (at + timedelta(seconds=65)).isoformat()))
        launches.append({**launch, "id": key, "created_at": at.isoformat(), "expires_at": (at + launch_ttl).isoformat()})
    cols = list(states[0])
    db.executemany(f"INSERT INTO oidc_states ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                   [[r[c] for c in cols] for r in states])
    db.executemany("INSERT INTO used_nonces (issuer, nonce, expires_at) SELECT issuer, ?, ? FROM platforms"
                   " WHERE id = ?", [(k, e, p) for p, k, e in nonces])
    cols = list(launches[0])
    db.executemany(f"INSERT INTO launches ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                   [[r[c] for c in cols] for r in launches])
    db.commit()
    db.close()


def stored_data(data: str, env: dict, args) -> None:
    db_path = str(Path(data) / "lms_bridge.sqlite3")
    fill_store(db_path, args.stored, args.days)
    total = args.stored + store_report(db_path, 1)["rows"] // 3  # the benchmark's own launches too
    before = store_report(db_path, total)
    started = time.perf_counter()
    subprocess.run([str(BIN), "worker", "--once"], env=env, check=True, stdout=subprocess.DEVNULL)
    took = time.perf_counter() - started
    after = store_report(db_path, total)
    per_day = args.stored / args.days
    print(f"stored launch data: {args.stored} launches over {args.days:g} days ({per_day:.0f} a day) plus the "
          f"benchmark's own")
    print(f"  before the worker pass: {before['rows']} rows, {before['expired']} expired, "
          f"{before['bytes'] / 1e6:.1f} MB used = {before['per_launch']:.0f} bytes per launch")
    print(f"  after one pass ({took:.1f} s): {after['rows']} rows, {after['expired']} expired, "
          f"{after['bytes'] / 1e6:.1f} MB used = {after['per_launch']:.0f} bytes per launch")
    print(f"  expired rows after the pass: {after['expired']} (target below one day's worth, {per_day:.0f}: "
          f"{'met' if after['expired'] < per_day else 'NOT met'})")


def main():
    args = arguments(workers=2, stored=100000, days=10.0, **{"with-floor": False})
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
        sentence, multiple = summary(trivial_rounds, launch_rounds)
        print(sentence)
        extra = platform.jwks_fetches - fetches_after_first
        print(f"key-set fetches: {fetches_after_first} for the first launch, {extra} after it (target 0)")
        if args.with_floor:
            from launch_floor import measure_floor

            floor = measure_floor(args, platform)
            print(f"side by side, server CPU per login+launch in trivial requests of the same server: "
                  f"lms_bridge {multiple:.2f}, bare Flask floor {floor:.2f} (target <= {CPU_TARGET})")
        if args.stored:
            stored_data(data, env, args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
