"""A throwaway PostgreSQL cluster on 127.0.0.1 for the tests and benchmarks: started, used, stopped.

`with cluster() as url:` gives `postgresql://lms@127.0.0.1:PORT/postgres`; the data directory lives in a
temporary directory that is removed afterwards. Durability is switched off (fsync, synchronous commit):
the cluster is thrown away, and the tests measure behaviour, not the disk.

As a command, `python tests/pg_cluster.py -- CMD ...` runs CMD with `LMS_BRIDGE_TEST_POSTGRES` set to the
cluster's URL and stops the cluster however CMD ends. Debian's `postgresql` package provides the server
(`make postgres` installs it when missing and root); initdb refuses to run as root, so as root the
cluster runs as the `postgres` system user.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

USER = "lms"


def pg_bin(name: str) -> str:
    """The newest installed server's binary (Debian keeps them out of PATH, in /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path:
        return path
    raise SystemExit(f"PostgreSQL's {name} is not installed: run `make postgres` (Debian's postgresql package)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def cluster(max_connections: int = 300):
    base = Path(tempfile.mkdtemp(prefix="lms-bridge-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    port = free_port()
    subprocess.run(_as_server_user([pg_bin("initdb"), "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8",
                                    "--locale=C.UTF-8", "--no-sync"]), check=True, stdout=subprocess.DEVNULL)
    settings = {"listen_addresses": "'127.0.0.1'", "port": port, "unix_socket_directories": f"'{base}'",
                "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                "max_connections": max_connections, "shared_buffers": "'128MB'", "log_min_messages": "fatal",
                "timezone": "'UTC'"}
    with open(data / "postgresql.conf", "a") as conf:
        conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
    server = subprocess.Popen(_as_server_user([pg_bin("postgres"), "-D", str(data)]), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"postgresql://{USER}@127.0.0.1:{port}/postgres"
    try:
        _wait(port, server)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGINT)  # fast shutdown: open sessions are disconnected
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        shutil.rmtree(base, ignore_errors=True)


def _wait(port: int, server: subprocess.Popen) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise RuntimeError("the PostgreSQL server stopped while starting")
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user={USER} dbname=postgres", connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print("usage: python tests/pg_cluster.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with cluster() as url:
        env = {**os.environ, "LMS_BRIDGE_TEST_POSTGRES": url}
        proc = subprocess.Popen(argv, env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
