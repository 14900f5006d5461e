"""PostgreSQL beside SQLite on the same machine, in one run: launch throughput and outbox sync throughput.

Launches: full signed LTI 1.3 login + launch round trips (the platform and client of launch.py) against
`lms-bridge serve --workers 2`, `--launches` of them per size with `--concurrency` client threads, once with
the store in SQLite and once in a PostgreSQL database of a throwaway cluster on 127.0.0.1 (tests/pg_cluster.py,
started and stopped by this run). Printed: launches/s, the server's CPU per launch (master and workers, from
/proc as launch.py reads it) and, on PostgreSQL, the database server's CPU per launch as well (its backends
and what exited of them), since on SQLite that work is inside the server's processes.

Sync: `--jobs` released grades delivered by the outbox worker (this process, as sync.py) to the sandbox LMS
running in its own gunicorn process, without added latency or failures unless asked, so the figure is the
tool's and the store's cost. The sandbox keeps its gradebook in the same store (as in every sandbox run), so
each delivery is the worker's claim and outcome plus the sandbox's writes. Printed: jobs/s and worker CPU per job.

Each figure is printed for both stores with the ratio PG/SQLite, at each size, and the time of the larger size
over the time of the smaller one (10 for 200 and 2,000 when the cost grows linearly).

    .venv/bin/python benchmarks/pg_vs_sqlite.py [--sizes 200,2000] [--concurrency 8] [--worker-concurrency 8]
                                                [--latency-ms 0] [--fail-ratio 0]
"""
from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.launch import BIN, Platform, free_port, one_launch, server_cpu  # noqa: E402
from pg_cluster import cluster  # noqa: E402

SANDBOX = textwrap.dedent("""
    import sys
    from lms_bridge import create_app
    from lms_bridge.server import run
    config = {"DATA_DIR": sys.argv[1], "TOOL_URL": sys.argv[2], "SANDBOX_ENABLED": True, "DATABASE_URL": sys.argv[4]}
    run(lambda: create_app(config), host="127.0.0.1", port=int(sys.argv[3]), workers=1, threads=64)
""")
_databases = itertools.count(1)


def new_database(admin_url: str) -> str:
    import psycopg

    from lms_bridge.db.pg import dsn

    name = f"lms_bridge_bench_{next(_databases)}"
    with psycopg.connect(dsn(admin_url), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _ticks(pid: int, children: bool) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)


def database_cpu(postmaster: int | None) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster with its exited children, and its live backends."""
    if postmaster is None:
        return 0.0
    live = [int(p) for p in subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                           text=True).stdout.split()]
    return (_ticks(postmaster, True) + sum(_ticks(p, False) for p in live)) / os.sysconf("SC_CLK_TCK")


def postmaster_of(url: str) -> int:
    from lms_bridge.db import connect

    db = connect(url)
    try:
        backend = db.execute("SELECT pg_backend_pid()").fetchone()[0]
        return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent
    finally:
        db.close()


def start(cmd: list[str], env: dict, url: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=fh, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[0]} exited: " + log.read_text()[-2000:])
        try:
            if requests.get(url + "/healthz", timeout=5).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.1)
    stop(proc)
    raise SystemExit(f"{url} did not start within 60 s")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
    except ProcessLookupError:
        pass


# --- launches ---------------------------------------------------------------------------------------------
def launches(database: str | None, n: int, platform: Platform, args, postmaster: int | None) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, LMS_BRIDGE_DATA=data, LMS_BRIDGE_URL=url)
        if database:
            env["LMS_BRIDGE_DATABASE_URL"] = database
        subprocess.run([str(BIN), "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([str(BIN), "platforms", "add", "--issuer", platform.issuer, "--client-id", "bench-client",
                        "--auth-login-url", platform.issuer + "/auth", "--auth-token-url", platform.issuer + "/token",
                        "--key-set-url", platform.issuer + "/jwks", "--deployment-id", "1"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        proc = start([str(BIN), "serve", "--port", str(port), "--workers", str(args.workers)], env, url,
                     Path(data) / "serve.log")
        try:
            one_launch(url, platform, 0)  # the key-set fetch and the first connections, not measured
            users = itertools.count(1)
            lock = threading.Lock()

            def loop(_):
                done = 0
                while True:
                    with lock:
                        user = next(users)
                    if user > n:
                        return done
                    one_launch(url, platform, user)
                    done += 1

            cpu0, db0, t0 = server_cpu(proc.pid), database_cpu(postmaster), time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                made = sum(pool.map(loop, range(args.concurrency)))
            elapsed = time.perf_counter() - t0
            cpu, db_cpu = server_cpu(proc.pid) - cpu0, database_cpu(postmaster) - db0
        finally:
            stop(proc)
    assert made == n
    return {"seconds": elapsed, "rate": n / elapsed, "cpu": cpu / n, "db_cpu": db_cpu / n}


# --- outbox sync --------------------------------------------------------------------------------------------
def sync(database: str | None, n: int, args, postmaster: int | None) -> dict:
    from lms_bridge import create_app
    from lms_bridge.cli import prepare
    from lms_bridge.db import connect, write_transaction
    from lms_bridge.db import outbox as ob
    from lms_bridge.db import sandbox as sq
    from lms_bridge.sandbox import issuer
    from lms_bridge.sandbox.platform import ensure_registered
    from lms_bridge.sandbox.webservice import link_tool
    from lms_bridge.sync.worker import deliver_due

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        database = database or str(Path(data) / "lms_bridge.sqlite3")
        app = create_app({"DATA_DIR": data, "TOOL_URL": url, "SANDBOX_ENABLED": True, "DATABASE_URL": database,
                          "OUTBOX_CONCURRENCY": args.worker_concurrency, "OUTBOX_BACKOFF_SECONDS": 0.05,
                          "OUTBOX_MAX_ATTEMPTS": 30})
        prepare(app)
        pid = ensure_registered(app)
        db = connect(database)
        link_tool(db, url)
        users = sq.seed_roster(db, n)
        lineitems = f"{issuer(url)}/mod/lti/services.php/2/lineitems?type_id=1"
        with write_transaction(db):
            for k, user in enumerate(users):
                ob.enqueue(db, platform_id=pid, kind="ags_score", order_key=f"score:{pid}:2:final_presentation:{user}",
                           payload={"lineitems_url": lineitems, "resource_id": "final_presentation", "tag": "grade",
                                    "label": "Final presentation", "score_maximum": 100, "user_id": user,
                                    "score_given": float(k % 101), "comment": None,
                                    "timestamp": "2026-11-23T12:00:00.000001+00:00",
                                    "grading_progress": "FullyGraded", "activity_progress": "Completed"})
        for target in ("/sandbox/mod/lti/services.php", "/sandbox/mod/lti/token.php"):
            if args.latency_ms:
                sq.set_fault(db, target, "latency_ms", ms=args.latency_ms)
            if args.fail_ratio:
                sq.set_fault(db, target, "fail_ratio", ratio=args.fail_ratio)
        server = start([sys.executable, "-c", SANDBOX, data, url, str(port), database], dict(os.environ), url,
                       Path(data) / "sandbox.log")
        try:
            db0, lms0 = database_cpu(postmaster), server_cpu(server.pid)
            t0, cpu0 = time.perf_counter(), time.process_time()
            while ob.backlog(db)["outbox_pending"] and time.perf_counter() - t0 < 600:
                deliver_due(app)
                time.sleep(0.005)
            elapsed, worker = time.perf_counter() - t0, time.process_time() - cpu0
            db_cpu, lms_cpu = database_cpu(postmaster) - db0, server_cpu(server.pid) - lms0
        finally:
            stop(server)
        graded = sum(1 for r in sq.gradebook(db) if r["resource_id"] == "final_presentation")
        left = ob.backlog(db)
        db.close()
        if database.startswith("postgresql"):
            from lms_bridge.db import pg

            pg.dispose_pools()
    if graded != n or left["outbox_pending"] or left["outbox_failed"]:
        raise SystemExit(f"sync on {database.split(':')[0]}: {graded} of {n} grades arrived; backlog {left}")
    return {"seconds": elapsed, "rate": n / elapsed, "cpu": worker / n, "db_cpu": db_cpu / n, "lms_cpu": lms_cpu / n}


# --- report ---------------------------------------------------------------------------------------------------
def show(title: str, unit: str, one: str, cpu_label: str, sizes: list[int], results: dict) -> None:
    sandbox = "lms_cpu" in results["sqlite"][sizes[0]]
    print(f"\n{title}")
    print(f"  {'size':>6}  {'store':10}  {'seconds':>8}  {unit + '/s':>12}  {cpu_label:>17}"
          + (f"  {'sandbox LMS CPU':>17}" if sandbox else "") + f"  {'PostgreSQL CPU':>17}")
    for n in sizes:
        for store in ("sqlite", "postgresql"):
            r = results[store][n]
            db = f"{r['db_cpu'] * 1000:9.2f} ms each" if store == "postgresql" else f"{'(in-process)':>17}"
            print(f"  {n:>6}  {store:10}  {r['seconds']:8.2f}  {r['rate']:12.1f}  {r['cpu'] * 1000:9.2f} ms each"
                  + (f"  {r['lms_cpu'] * 1000:9.2f} ms each" if sandbox else "") + f"  {db}")
        s, p = results["sqlite"][n], results["postgresql"][n]
        every = (lambda r: r["cpu"] + r["db_cpu"] + r.get("lms_cpu", 0))
        print(f"  {n:>6}  ratio PG/SQLite: {unit}/s {p['rate'] / s['rate']:.2f}; {cpu_label} per {one} "
              f"{p['cpu'] / s['cpu']:.2f}; all CPU per {one} (with the PostgreSQL server's"
              f"{' and the sandbox LMS' if sandbox else ''}) {every(p) / every(s):.2f}")
    small, large = sizes[0], sizes[-1]
    if large != small:
        grow = {store: results[store][large]["seconds"] / results[store][small]["seconds"]
                for store in ("sqlite", "postgresql")}
        print(f"  time for {large} over time for {small} ({large / small:g} if linear): "
              f"SQLite {grow['sqlite']:.2f}, PostgreSQL {grow['postgresql']:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200,2000", help="launches and jobs per measurement, comma-separated")
    ap.add_argument("--concurrency", type=int, default=8, help="client threads for the launches")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers of the tool's server")
    ap.add_argument("--worker-concurrency", type=int, default=8, help="the outbox worker's OUTBOX_CONCURRENCY")
    ap.add_argument("--latency-ms", type=float, default=0, help="added to every sandbox AGS/token call")
    ap.add_argument("--fail-ratio", type=float, default=0, help="share of sandbox AGS/token calls answering 500")
    ap.add_argument("--skip", choices=("launch", "sync"), help="leave one of the two measurements out")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"machine: {os.cpu_count()} cores; sizes {', '.join(map(str, sizes))}; each size on SQLite, then on a fresh "
          "PostgreSQL database, in one run")
    with cluster() as admin_url:
        postmaster = postmaster_of(admin_url)
        platform = Platform()
        launch_results = {"sqlite": {}, "postgresql": {}}
        sync_results = {"sqlite": {}, "postgresql": {}}
        for n in sizes:
            if args.skip != "launch":
                launch_results["sqlite"][n] = launches(None, n, platform, args, None)
                launch_results["postgresql"][n] = launches(new_database(admin_url), n, platform, args, postmaster)
            if args.skip != "sync":
                sync_results["sqlite"][n] = sync(None, n, args, None)
                sync_results["postgresql"][n] = sync(new_database(admin_url), n, args, postmaster)
        platform.server.shutdown()
    if args.skip != "launch":
        show(f"login + launch: lms-bridge serve --workers {args.workers}, {args.concurrency} client threads",
             "launches", "launch", "server CPU", sizes, launch_results)
    if args.skip != "sync":
        show(f"outbox sync to the sandbox LMS: worker concurrency {args.worker_concurrency}, latency "
             f"{args.latency_ms:g} ms, failures {args.fail_ratio:.0%}", "jobs", "job", "worker CPU", sizes,
             sync_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
