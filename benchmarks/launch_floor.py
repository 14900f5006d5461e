"""The launch benchmark against a bare Flask app that does only a launch's irreducible work.

A reference for `benchmarks/launch.py`: the same client, platform, rounds and server (gunicorn gthread,
2 workers, 4 threads) against a few dozen lines of Flask and sqlite3 that keep nothing but what any
LTI 1.3 launch must do: at login one platform lookup, one state row written and a redirect with the
state cookie; at launch one state lookup, the id_token parsed and its RS256 signature verified, the
nonce compared and one transaction (state used, nonce burnt, launch stored). No claim checks, roles,
key-set cache, error pages or launch token. What it reaches is the ceiling of launches/trivial for this
stack on this machine; lms_bridge cannot do better than it.

    .venv/bin/python benchmarks/launch_floor.py [--seconds 5] [--rounds 3] [--concurrency 8]
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization

from launch import Platform, arguments, free_port, summary, warm_up_and_measure

GUNICORN = Path(sys.executable).parent / "gunicorn"
APP = textwrap.dedent('''
    import base64, json, os, secrets, sqlite3, threading, time
    from urllib.parse import urlencode
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from flask import Flask, redirect, request
    from flask.sessions import SessionInterface

    KEY = load_pem_public_key(open(os.environ["FLOOR_KEY"], "rb").read())
    local = threading.local()

    def db():
        if not hasattr(local, "db"):
            local.db = sqlite3.connect(os.environ["FLOOR_DB"], timeout=30, isolation_level=None)
            local.db.execute("PRAGMA synchronous = NORMAL")
        return local.db

    def transaction(*statements):
        c = db()
        c.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                c.execute(sql, params)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def b64(text):
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    class NoSessions(SessionInterface):
        def open_session(self, app, request):
            return self.make_null_session(app)

        def save_session(self, *args):
            return None

    def create():
        app = Flask(__name__)
        app.session_interface = NoSessions()
        page = app.jinja_env.from_string("<!doctype html><title>lms_bridge</title><h1>{{ name }}</h1>")

        @app.get("/")
        def index():
            return page.render(name="lms_bridge")

        @app.post("/lti/login")
        def login():
            f = request.form
            platform_id, client_id = db().execute("SELECT id, client_id FROM platforms WHERE issuer = ?"
                                                  " AND client_id = ?", (f["iss"], f["client_id"])).fetchone()
            state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            transaction(("INSERT INTO states VALUES (?, ?, ?, ?, NULL)", (state, nonce, platform_id, time.time() + 600)))
            resp = redirect("http://platform/auth?" + urlencode({"state": state, "nonce": nonce, "client_id": client_id,
                                                                 "login_hint": f["login_hint"]}), 302)
            resp.set_cookie("state_" + state[:12], state, httponly=True, path="/lti/")
            return resp

        @app.post("/lti/launch")
        def launch():
            f = request.form
            nonce = db().execute("SELECT nonce FROM states WHERE state = ? AND used IS NULL", (f["state"],)).fetchone()[0]
            header, payload, signature = f["id_token"].split(".")
            claims = json.loads(b64(payload))
            KEY.verify(b64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
            if claims["nonce"] != nonce:
                return "nonce mismatch", 400
            launch_id = secrets.token_urlsafe(24)
            transaction(("UPDATE states SET used = 1 WHERE state = ?", (f["state"],)),
                        ("INSERT INTO nonces VALUES (?, ?)", (claims["iss"], nonce)),
                        ("INSERT INTO launches VALUES (?, ?, ?)", (launch_id, json.dumps(claims), time.time())))
            return redirect("/app/landing?lt=" + launch_id, 303)

        return app
''')


def measure_floor(args, platform) -> float:
    """Run the floor app and measure it like launch.py does; prints its lines, returns its CPU multiple."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "floor_app.py").write_text(APP)
        Path(tmp, "key.pem").write_bytes(platform.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        db = sqlite3.connect(Path(tmp, "floor.db"))
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript("""
            CREATE TABLE platforms (id INTEGER PRIMARY KEY, issuer TEXT, client_id TEXT);
            CREATE TABLE states (state TEXT PRIMARY KEY, nonce TEXT, platform_id INTEGER, expires REAL, used INTEGER);
            CREATE TABLE nonces (issuer TEXT, nonce TEXT, PRIMARY KEY (issuer, nonce));
            CREATE TABLE launches (id TEXT PRIMARY KEY, claims TEXT, created REAL);
        """)
        db.execute("INSERT INTO platforms VALUES (1, ?, 'bench-client')", [platform.issuer])
        db.commit()
        db.close()
        env = dict(os.environ, PYTHONPATH=tmp, FLOOR_DB=str(Path(tmp, "floor.db")), FLOOR_KEY=str(Path(tmp, "key.pem")))
        proc = subprocess.Popen([str(GUNICORN), "--workers", "2", "--threads", "4", "--worker-class", "gthread",
                                 "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "floor_app:create()"],
                                env=env, stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                requests.get(url + "/", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        _, trivial_rounds, launch_rounds = warm_up_and_measure(url, platform, args, proc)
    print(f"bare Flask floor, gunicorn gthread --workers 2 --threads 4; client concurrency {args.concurrency}; "
          f"{args.rounds} rounds of {args.seconds:g}s; medians")
    sentence, multiple = summary(trivial_rounds, launch_rounds)
    print(sentence)
    return multiple


def main():
    measure_floor(arguments(), Platform())
