"""Login on one server process, launch on another: state and nonces live in the shared database
(SQLite's file, or on the PostgreSQL run one PostgreSQL database)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import requests

from conftest import form_fields, free_port, fresh_database_url

SERVER = """
import sys
from werkzeug.serving import make_server
from lms_bridge import create_app
from lms_bridge.cli import prepare
app = create_app({"DATA_DIR": sys.argv[1], "TOOL_URL": sys.argv[2], "SANDBOX_ENABLED": True})
prepare(app)
make_server("127.0.0.1", int(sys.argv[3]), app, threaded=True).serve_forever()
"""


def start(data_dir, tool_url, port, database_url=None):
    env = dict(os.environ, **({"LMS_BRIDGE_DATABASE_URL": database_url} if database_url else {}))
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(data_dir), tool_url, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(proc.stderr.read().decode())


def test_login_on_one_worker_launch_on_another(tmp_path):
    port_a, port_b = free_port(), free_port()
    tool_url = f"http://127.0.0.1:{port_a}"
    database_url = fresh_database_url()  # None on the SQLite run: both use the data directory's file
    a = start(tmp_path / "data", tool_url, port_a, database_url)
    b = None
    try:
        b = start(tmp_path / "data", tool_url, port_b, database_url)
        browser = requests.Session()
        _, init = form_fields(browser.get(f"{tool_url}/sandbox/launch/5/4").text)
        login = browser.post(f"{tool_url}/lti/login", data=init, allow_redirects=False)
        assert login.status_code == 302
        _, auth = form_fields(browser.get(login.headers["Location"]).text)
        # The id_token arrives at the second process, which never saw the login.
        launch = requests.post(f"http://127.0.0.1:{port_b}/lti/launch", data=auth, allow_redirects=False)
        assert launch.status_code == 303, launch.text
        token = parse_qs(urlsplit(launch.headers["Location"]).query)["lt"][0]
        # ...and the launch token works on the first process too.
        home = requests.get(f"{tool_url}/app/home", params={"lt": token})
        assert home.status_code == 200 and "Your course project" in home.text
        # A replay to the first process is refused: the nonce is shared as well.
        replay = requests.post(f"{tool_url}/lti/launch", data=auth, allow_redirects=False)
        assert replay.status_code == 400 and 'data-error="replayed"' in replay.text
    finally:
        for proc in (a, b):
            if proc:
                proc.terminate()
                proc.wait(timeout=10)
                proc.stderr.close()
