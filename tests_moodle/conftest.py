"""The real-Moodle harness: Moodle 4.5 on http://127.0.0.1, the tool served as in production on
http://localhost:<port> (another site for the browser), headless Chromium for what people click.

`make test-moodle` runs it; `MOODLE_TARBALL` names the Moodle source (default ../shared/moodle/moodle-4.5.6.tar.xz),
`MOODLE_BUILD_DIR` where the unpacked tree and the cached install live (default build/moodle-test).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from moodle_site import REPO, MoodleSite, log  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BIN = Path(sys.executable).parent
FLOWS: list[tuple[str, str, float]] = []
NOTES: list[str] = []  # facts a flow read from Moodle, printed with the results
STARTED = time.monotonic()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tool:
    """lms-bridge as an admin runs it: init, serve (gunicorn) and a worker, with their logs in the build folder."""

    def __init__(self, build: Path):
        self.port = int(os.environ.get("LMS_BRIDGE_TEST_PORT") or free_port())
        self.url = f"http://localhost:{self.port}"
        self.dir = build / "tool"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_BRIDGE_")}
        self.env.update(LMS_BRIDGE_URL=self.url, LMS_BRIDGE_DATA=str(self.dir / "instance"),
                        LMS_BRIDGE_OUTBOX_BACKOFF_SECONDS="1", LMS_BRIDGE_OUTBOX_BACKOFF_MAX_SECONDS="5",
                        LMS_BRIDGE_OUTBOX_POLL_SECONDS="1", LMS_BRIDGE_ACCESS_LOG="true")

    def cli(self, *args, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "lms-bridge"), *args], env=self.env, text=True, capture_output=True,
                                timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"lms-bridge {' '.join(args)} exited {result.returncode}: {result.stderr}{result.stdout}")
        return result

    def start(self, name: str, *args) -> None:
        with open(self.dir / f"{name}.log", "ab") as out:
            self.procs[name] = subprocess.Popen([str(BIN / "lms-bridge"), *args], env=self.env, stdout=out,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def up(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.cli("init")
        self.start("serve", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2")
        self.start("worker", "worker")
        for _ in range(150):
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code in (200, 503):
                    break
            except requests.RequestException:
                pass
            if self.procs["serve"].poll() is not None:
                raise RuntimeError(f"lms-bridge serve exited: {(self.dir / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
        log(f"tool up at {self.url}")

    def has_command(self, group: str, command: str) -> bool:
        return f" {command} " in self.cli(group, "--help", check=False).stdout.replace("\n", " ")

    def down(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


@pytest.fixture(scope="session")
def build_dir() -> Path:
    path = Path(os.environ.get("MOODLE_BUILD_DIR") or REPO / "build" / "moodle-test").resolve()
    path.mkdir(parents=True, exist_ok=True)
    (path / "shots").mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def moodle(build_dir):
    tarball = Path(os.environ.get("MOODLE_TARBALL") or REPO.parent / "shared" / "moodle" / "moodle-4.5.6.tar.xz")
    site = MoodleSite(tarball, build_dir)
    try:
        site.up()
        yield site
    finally:
        site.down()


@pytest.fixture(scope="session")
def tool(build_dir, moodle):
    t = Tool(build_dir)
    try:
        t.up()
        yield t
    finally:
        t.down()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def state() -> dict:
    """What one flow leaves for the next (ids read from Moodle)."""
    return {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        doc = (item.function.__doc__ or item.name).strip().splitlines()[0]
        result = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[report.outcome]
        FLOWS.append((doc, result, report.duration))
        if report.outcome == "failed":
            page = item.funcargs.get("state", {}).get("_last_page")
            shots = Path(os.environ.get("MOODLE_BUILD_DIR") or REPO / "build" / "moodle-test") / "shots"
            if page is not None:
                try:
                    page.screenshot(path=str(shots / f"{item.name}.png"), full_page=True)
                except Exception:  # noqa: BLE001 - a screenshot is a diagnostic only
                    pass


def pytest_terminal_summary(terminalreporter):
    if not FLOWS:
        return
    tr = terminalreporter
    tr.section("real Moodle 4.5 flows")
    for doc, result, seconds in FLOWS:
        tr.write_line(f"{result:4}  {seconds:6.1f} s  {doc}")
    for note in NOTES:
        tr.write_line(f"note: {note}")
    tr.write_line(f"total time {time.monotonic() - STARTED:.0f} s")
