"""`lms-bridge doctor`: check an install end to end, each check OK, WARN or FAIL with a one-line fix.

Plain functions over the configuration, a `requests.Session` and the store: the command prints them,
`--json` hands them to monitoring, the tests break one condition at a time against the sandbox LMS.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import sqlite3
import stat
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests

from ..config import ConfigError, database_path, is_postgres
from ..db import connect, pending_migrations
from ..db import lti as q
from ..db import ops as opsq
from ..db import outbox as ob
from .checks import FAIL, OK, WARN, Check, check, lines, report  # noqa: F401  (the command's API)
from .probes import PlatformChecks

MIN_FREE_BYTES = 100 * 1024 ** 2  # below this: FAIL (uploads and the WAL need room)
LOW_FREE_BYTES = 1024 ** 3  # below this: WARN
OUTBOX_STALE_SECONDS = 900
MIN_POSTGRES = 130000  # PostgreSQL 13


class Doctor:
    """Runs every check; `config` is the app's settings, `session` the outbound HTTP session."""

    def __init__(self, config: dict, session: requests.Session, *, min_free_bytes: int = MIN_FREE_BYTES,
                 low_free_bytes: int = LOW_FREE_BYTES):
        self.config, self.session = config, session
        self.url = config["TOOL_URL"].rstrip("/")
        self.timeout = float(config.get("HTTP_TIMEOUT", 15))
        self.min_free_bytes, self.low_free_bytes = min_free_bytes, low_free_bytes
        self.db = None

    def run(self) -> list[Check]:
        checks = self.store()
        if self.db is None:
            return checks + self.data_dir()
        try:
            checks += self.signing_keys() + self.data_dir() + self.public_url() + self.tool_urls()
            checks += self.worker() + self.outbox()
            platforms = PlatformChecks(self.db, self.session, self.timeout)
            for platform in q.list_platforms(self.db):
                checks += platforms.platform(platform)
        finally:
            self.db.close()
        return checks

    # --- the store -------------------------------------------------------------------------
    def store(self) -> list[Check]:
        if is_postgres(self.config["DATABASE_URL"]):
            return self.postgres()
        try:
            path = database_path(self.config["DATABASE_URL"])
        except ConfigError as e:
            return [check("database", FAIL, str(e), "set LMS_BRIDGE_DATABASE_URL to sqlite:///PATH or "
                          "postgresql://USER:PASS@HOST:PORT/DB")]
        if not Path(path).exists():
            return [check("database", FAIL, f"no database at {path}", "run `lms-bridge init`")]
        try:
            # A plain connection first: the tool's own connect() would switch WAL on and hide the problem.
            raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                raw.execute("SELECT 1").fetchone()
                journal = raw.execute("PRAGMA journal_mode").fetchone()[0]
            finally:
                raw.close()
            self.db = connect(self.config["DATABASE_URL"])
        except sqlite3.Error as e:
            return [check("database", FAIL, f"{path}: {e}", "check the file's owner and mode (the service user "
                           "must read and write it and its directory)")]
        checks = [check("database", OK, f"reachable at {path}"), self.migrations()]
        checks.append(check("WAL", OK if journal == "wal" else FAIL, f"journal_mode={journal}",
                             "keep the database on a local filesystem and run `lms-bridge init` to turn WAL on"))
        return checks

    def postgres(self) -> list[Check]:
        from ..db import pg

        url = self.config["DATABASE_URL"]
        try:
            self.db = connect(url)
            facts = opsq.postgres_facts(self.db)
        except pg.Unreachable as e:
            self.db = None
            return [check("database", FAIL, str(e), "start PostgreSQL, or correct LMS_BRIDGE_DATABASE_URL (host, "
                          "port, user, password, database) and the server's pg_hba.conf for this host")]
        checks = [check("database", OK, f"reachable at {_pg_where(url)}")]
        checks.append(check("PostgreSQL version", OK if facts["version_num"] >= MIN_POSTGRES else FAIL,
                            facts["version"], "upgrade the server to PostgreSQL 13 or newer"))
        checks.append(self.migrations())
        checks.append(check("btree_gist", OK if facts["btree_gist"] else FAIL,
                            f"extension {facts['btree_gist']}" if facts["btree_gist"] else "extension missing (the "
                            "booking overlap constraints need it)", "as a superuser, in this database: CREATE "
                            "EXTENSION btree_gist; then `lms-bridge init`"))
        env_secret = bool(os.environ.get("LMS_BRIDGE_SECRET_KEY"))
        checks.append(check("secret", OK if env_secret else WARN,
                            "LMS_BRIDGE_SECRET_KEY is set" if env_secret else "from this server's data directory",
                            "several servers must share one secret (launch tokens, sealed signing keys): set the "
                            "same LMS_BRIDGE_SECRET_KEY on every server"))
        return checks

    def migrations(self) -> Check:
        pending = pending_migrations(self.db)
        return check("migrations", FAIL if pending else OK,
                     f"{len(pending)} pending: {', '.join(pending)}" if pending else "current",
                     "run `lms-bridge init` (the service refuses to start until you do)")

    # --- signing keys ----------------------------------------------------------------------
    def signing_keys(self) -> list[Check]:
        from lti_config.keys import NoSigningKey, active_signing_key, in_database, key_dir

        active = opsq.active_key_count(self.db)
        if active != 1:
            fix = "run `lms-bridge init`" if active == 0 else "run `lms-bridge keys rotate` to leave one active key"
            return [check("signing keys", FAIL, f"{active} active keys (exactly one expected)", fix)]
        kid = q.active_tool_key(self.db)["kid"]
        if in_database(self.db):
            from ..db import keystore

            sealed = keystore.sealed(self.db, kid) is not None
            try:
                active_signing_key(self.db, self.config["DATA_DIR"])
            except NoSigningKey as e:
                fix = ("set the same LMS_BRIDGE_SECRET_KEY on every server" if sealed else
                       "run `lms-bridge init` on the server that holds the key file, or `lms-bridge keys rotate`")
                return [check("signing keys", FAIL, str(e), fix)]
            if not sealed:
                return [check("signing keys", WARN, f"active key {kid} is only a file in {key_dir(self.config['DATA_DIR'])}"
                              ": the other servers cannot sign", "run `lms-bridge init` here to seal it into the database")]
            return [check("signing keys", OK, f"one active key {kid}, sealed in the database")]
        folder = key_dir(self.config["DATA_DIR"])
        pem = folder / f"{kid}.pem"
        if not pem.exists():
            return [check("signing keys", FAIL, f"active key {kid} has no private key file {pem}",
                           "restore the keys directory from a backup, or `lms-bridge keys rotate`")]
        problems = []
        for path, allowed in ((folder, 0o700), (pem, 0o600)):
            info = path.stat()
            if stat.S_IMODE(info.st_mode) & 0o077:
                problems.append((f"{path} is mode {stat.S_IMODE(info.st_mode):o}, readable by others",
                                 f"chmod {allowed:o} {path}"))
            elif info.st_uid != os.geteuid():
                problems.append((f"{path} belongs to uid {info.st_uid}, not to uid {os.geteuid()} running doctor",
                                 "chown the data directory to the service user and run doctor as that user"))
        if problems:
            return [check("signing keys", FAIL, "; ".join(p for p, _ in problems), problems[0][1])]
        return [check("signing keys", OK, f"one active key {kid}, private key file mode 600")]

    # --- data directory --------------------------------------------------------------------
    def data_dir(self) -> list[Check]:
        folder = Path(self.config["DATA_DIR"])
        probe = folder / f".doctor-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            return [check("data directory", FAIL, f"{folder} is not writable ({e.strerror or e})",
                           f"chown -R the service user {folder}")]
        free = shutil.disk_usage(folder).free
        status = FAIL if free < self.min_free_bytes else WARN if free < self.low_free_bytes else OK
        return [check("data directory", status, f"{folder} writable, {free / 1024 ** 3:.1f} GiB free",
                       f"free space on the filesystem of {folder} (uploads, "
                       f"{'' if is_postgres(self.config['DATABASE_URL']) else 'the WAL, '}backups need room)")]

    # --- public URL ------------------------------------------------------------------------
    def _get(self, url: str, **kwargs) -> requests.Response:
        return self.session.get(url, timeout=self.timeout, allow_redirects=False, **kwargs)

    def public_url(self) -> list[Check]:
        checks = []
        parts = urlsplit(self.url)
        health = f"{self.url}/healthz"
        if parts.scheme == "https":
            checks.append(check("HTTPS", OK, f"LMS_BRIDGE_URL is {self.url}"))
        elif _loopback(parts.hostname or ""):
            checks.append(check("HTTPS", WARN, f"{self.url} is plain HTTP on loopback: a test site only",
                                 "put the tool behind HTTPS (see `lms-bridge install-service`) and set "
                                 "LMS_BRIDGE_URL=https://..."))
        else:
            checks.append(check("HTTPS", FAIL, f"{self.url} is plain HTTP on a public host",
                                 "put the tool behind HTTPS (see `lms-bridge install-service`) and set "
                                 "LMS_BRIDGE_URL=https://..."))
        try:
            resp = self._get(health)
            body = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else {}
        except (requests.RequestException, ValueError) as e:
            return checks + [check("public URL", FAIL, f"{health} does not answer ({type(e).__name__})",
                                    "start `lms-bridge serve` and check the reverse proxy and DNS for LMS_BRIDGE_URL")]
        if body.get("tool") != "lms_bridge":
            return checks + [check("public URL", FAIL, f"{health} answers HTTP {resp.status_code}, but not as "
                                    "lms_bridge", "point the reverse proxy for LMS_BRIDGE_URL at `lms-bridge serve`")]
        kid = (q.active_tool_key(self.db) or {}).get("kid")
        try:
            published = {k.get("kid") for k in self._get(f"{self.url}/.well-known/jwks.json").json().get("keys", [])}
        except (requests.RequestException, ValueError, AttributeError):
            published = set()
        if kid not in published:
            return checks + [check("public URL", FAIL, f"{self.url} serves another install's keys (no kid {kid})",
                                    "LMS_BRIDGE_URL and LMS_BRIDGE_DATA must belong to the install you serve")]
        if parts.scheme == "https" and body.get("scheme") != "https":
            return checks + [check("public URL", WARN, f"{health} answers, but the tool sees scheme "
                                    f"{body.get('scheme')!r}", "send X-Forwarded-Proto from the proxy and set "
                                    "LMS_BRIDGE_TRUSTED_PROXIES=1")]
        return checks + [check("public URL", OK, f"{health} answers with this install (HTTP {resp.status_code})")]

    def tool_urls(self) -> list[Check]:
        """What Moodle is given and will call: the login URL must answer (400 without parameters), not 404."""
        from lti_config.tool import urls

        u = urls(self.url)
        shown = f"login {u['login_url']}, redirect {u['redirect_uri']}, keys {u['jwks_url']}"
        try:
            # A request id that says who asked: the tool logs the refused login it provokes.
            status = self._get(u["login_url"], headers={"X-Request-ID": f"doctor-{uuid.uuid4().hex[:12]}"}).status_code
        except requests.RequestException as e:
            return [check("tool URLs", FAIL, f"{shown}: {type(e).__name__}", "make LMS_BRIDGE_URL reach the tool")]
        if status == 404 or status >= 500:
            return [check("tool URLs", FAIL, f"{shown}: login answers HTTP {status}",
                           "the proxy must pass every path under LMS_BRIDGE_URL unchanged (no prefix stripping)")]
        return [check("tool URLs", OK, shown)]

    # --- worker and outbox -----------------------------------------------------------------
    def worker(self) -> list[Check]:
        beat = opsq.latest_beat(self.db)
        stale = max(60.0, 10 * float(self.config.get("OUTBOX_POLL_SECONDS", 2.0)))
        fix = "start it: `systemctl enable --now lms-bridge-worker` (or run `lms-bridge worker`)"
        if beat is None:
            return [check("worker", FAIL, "no worker has ever run against this store", fix)]
        detail = f"last heartbeat {beat['age_seconds']:.0f} s ago from {beat['worker_id']}"
        return [check("worker", FAIL if beat["age_seconds"] > stale else OK, detail, fix)]

    def outbox(self) -> list[Check]:
        b = ob.backlog(self.db)
        detail = (f"{b['outbox_pending']} pending (oldest {b['outbox_oldest_pending_age_seconds']:.0f} s), "
                  f"{b['outbox_failed']} failed")
        if b["outbox_failed"]:
            return [check("outbox", WARN, detail, "see `lms-bridge outbox --failed`, fix the cause, then "
                           "`lms-bridge outbox retry ID`")]
        if b["outbox_oldest_pending_age_seconds"] > OUTBOX_STALE_SECONDS:
            return [check("outbox", WARN, detail, "the worker falls behind or waits on the platform: see "
                           "`lms-bridge outbox`")]
        return [check("outbox", OK, detail)]

def _pg_where(url: str) -> str:
    """host:port/database of a PostgreSQL URL, never its password."""
    from sqlalchemy.engine import make_url

    u = make_url(url.replace("postgres://", "postgresql://", 1))
    return f"{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
