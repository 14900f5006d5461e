"""Shared fixtures: a fresh app per test with the sandbox LMS, and helpers that launch like an LMS."""
from __future__ import annotations

import itertools
import os
import re
import socket
import threading
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.serving import make_server

from lms_bridge import create_app
from lms_bridge.cli import prepare
from lms_bridge.db import connect
from lms_bridge.sandbox.inprocess import session_for

TOOL_URL = "http://localhost"
# Recordings of a real Moodle 4.5.6, copied into the project (see fixtures/moodle/README.md).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "moodle"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session", autouse=True)
def pseudo_locale():
    """The en_XA catalogue from a fresh extraction, so every page can be rendered in the pseudo-locale."""
    from lms_bridge import i18n, i18n_tools

    i18n_tools.extract()
    i18n_tools.write_pseudo()
    i18n.translations.cache_clear()


# The whole suite runs on SQLite, and again on PostgreSQL when LMS_BRIDGE_TEST_POSTGRES names a server
# (`make test-postgres` starts a throwaway cluster: tests/pg_cluster.py). Each app gets a database of its own,
# copied from a template migrated once per session, and dropped when its test ends.
TEST_POSTGRES = os.environ.get("LMS_BRIDGE_TEST_POSTGRES", "")
_pg_names = itertools.count(1)
_pg_created: list[str] = []


def _pg_admin(sql: str) -> None:
    import psycopg

    from lms_bridge.db.pg import dsn

    with psycopg.connect(dsn(TEST_POSTGRES), autocommit=True) as conn:
        conn.execute(sql)


def pg_database_url(name: str) -> str:
    return TEST_POSTGRES.rsplit("/", 1)[0] + "/" + name


# Run in each used database when its test ends: other sessions go, every row goes (triggers and foreign keys
# off while deleting), identities restart. Tens of milliseconds, where a new database costs a quarter second.
# The rows the migrations themselves insert (the sandbox's web-service token and activity line items) are
# kept in schema lb_seed when the template is made, and put back with their identities' positions.
SEED = """
CREATE SCHEMA lb_seed;
DO $$
DECLARE t text; n bigint;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_lms_bridge_migrations' LOOP
        EXECUTE format('SELECT count(*) FROM public.%I', t) INTO n;
        IF n > 0 THEN
            EXECUTE format('CREATE TABLE lb_seed.%I AS SELECT * FROM public.%I', t, t);
        END IF;
    END LOOP;
END $$;
CREATE TABLE lb_seed._sequences AS
    SELECT sequencename AS name, last_value FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL;
"""
RESET = """
CREATE FUNCTION lb_test_reset() RETURNS void LANGUAGE plpgsql AS $$
DECLARE t text; s record;
BEGIN
    PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid();
    SET LOCAL session_replication_role = replica;
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_lms_bridge_migrations' LOOP
        EXECUTE format('DELETE FROM %I', t);
    END LOOP;
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'lb_seed' AND tablename <> '_sequences' LOOP
        EXECUTE format('INSERT INTO public.%I OVERRIDING SYSTEM VALUE SELECT * FROM lb_seed.%I', t, t);
    END LOOP;
    FOR t IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
        EXECUTE format('ALTER SEQUENCE %I RESTART', t);
    END LOOP;
    FOR s IN SELECT name, last_value FROM lb_seed._sequences LOOP
        PERFORM setval(format('public.%I', s.name), s.last_value);
    END LOOP;
END $$;
"""


class _Databases:
    """Migrated databases for the tests' apps: made from a template once, then emptied and reused."""

    def __init__(self):
        from lms_bridge.db import migrate

        self.template = f"lb_template_{os.getpid()}"
        _pg_admin(f"DROP DATABASE IF EXISTS {self.template}")
        _pg_admin(f"CREATE DATABASE {self.template}")
        db = connect(pg_database_url(self.template))
        try:
            migrate(db)
            db.conn.raw.execute(SEED)
            db.conn.raw.execute(RESET)
        finally:
            db.close()
        self.free: list[str] = []

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        name = f"lb_test_{os.getpid()}_{next(_pg_names)}"
        _pg_admin(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        return name

    def give_back(self, name: str) -> None:
        import psycopg

        from lms_bridge.db.pg import dsn

        try:
            with psycopg.connect(dsn(pg_database_url(name)), autocommit=True) as conn:
                conn.execute("SELECT lb_test_reset()")
        except psycopg.Error:  # cannot be emptied: leave it, and use a new one next time
            return
        self.free.append(name)


_pg_databases: list[_Databases] = []


def fresh_database_url() -> str | None:
    """A new, migrated PostgreSQL database for one app (None on the SQLite run)."""
    if not TEST_POSTGRES:
        return None
    if not _pg_databases:
        _pg_databases.append(_Databases())
    name = _pg_databases[0].take()
    _pg_created.append(name)
    return pg_database_url(name)


@pytest.fixture(autouse=True)
def _drop_test_databases():
    """Each test's PostgreSQL databases are emptied when it ends, for the next test."""
    yield
    if _pg_created:
        from lms_bridge.db import pg

        pg.dispose_pools()
        while _pg_created:
            _pg_databases[0].give_back(_pg_created.pop())


def make_app(tmp_path, **overrides):
    holder = {}
    config = {"DATA_DIR": str(tmp_path / "data"), "TOOL_URL": TOOL_URL, "SANDBOX_ENABLED": True,
              "TESTING": True, "HTTP_SESSION": session_for(lambda: holder["app"], overrides.get("TOOL_URL", TOOL_URL))}
    if TEST_POSTGRES and "DATABASE_URL" not in overrides:
        config["DATABASE_URL"] = fresh_database_url()
    config.update(overrides)
    app = create_app(config)
    holder["app"] = app
    prepare(app)
    return app


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


@pytest.fixture
def db(app):
    """A connection to the test app's database, for asserting what a request stored."""
    conn = connect(app.config["DATABASE_URL"])
    yield conn
    conn.close()


@pytest.fixture
def client(app):
    return app.test_client()


def form_fields(html: str) -> tuple[str, dict]:
    """The action and hidden fields of an auto-posting form."""
    action = unescape(re.search(r'<form[^>]*action="([^"]*)"', html).group(1))
    fields = {unescape(n): unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)}
    return action, fields


class LtiActions:
    """Drives the browser's part of an LTI launch: platform initiation, login, auth, launch."""

    def __init__(self, client):
        self.client = client

    def login_and_auth(self, path: str) -> dict:
        """Platform initiation -> tool login -> platform auth; returns the id_token/state form to post."""
        _, init = form_fields(self.client.get(path).get_data(as_text=True))
        resp = self.client.post("/lti/login", data=init)
        assert resp.status_code == 302, resp.get_data(as_text=True)
        loc = urlsplit(resp.headers["Location"])
        auth = self.client.get(loc.path, query_string=loc.query)
        assert auth.status_code == 200, auth.get_data(as_text=True)
        return form_fields(auth.get_data(as_text=True))[1]

    def post_launch(self, fields: dict):
        return self.client.post("/lti/launch", data=fields)

    def launch(self, user: str = "5", activity_rl: str | None = None, activity: str = "project_plan",
               lang: str | None = None, course: str | None = None) -> str:
        """A signed launch; `lang` is the LMS language sent as `launch_presentation.locale`, `course` another
        course of the sandbox site (see sandbox.OTHER_COURSES)."""
        from urllib.parse import urlencode

        from lms_bridge.sandbox import LINKS

        rl = activity_rl or next(k for k, (a, _t) in LINKS.items() if a == activity)
        query = urlencode({k: v for k, v in (("lang", lang), ("course", course)) if v})
        path = f"/sandbox/launch/{user}/{rl}" + (f"?{query}" if query else "")
        resp = self.post_launch(self.login_and_auth(path))
        assert resp.status_code == 303, resp.get_data(as_text=True)
        return parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]

    def deep_link(self, user: str = "3") -> str:
        resp = self.post_launch(self.login_and_auth(f"/sandbox/deep-link/{user}"))
        assert resp.status_code == 303, resp.get_data(as_text=True)
        return parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]


@pytest.fixture
def lti(client):
    return LtiActions(client)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(tmp_path):
    """The app with the sandbox on 127.0.0.1 in a thread (threaded: the sandbox calls back into the tool)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = make_app(tmp_path, TOOL_URL=url)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.live_url = url
    yield app
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
