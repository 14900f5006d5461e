"""PostgreSQL behind the same small database interface the query modules use with SQLite.

The query modules write one SQL text for both stores, in the subset SQLite (3.35+) and PostgreSQL (13+)
share: `INSERT ... ON CONFLICT`, `RETURNING`, `count(*) FILTER (WHERE ...)`, CTEs, window functions.
This module supplies what differs underneath, and nothing else:

- placeholders: `?` and `:name` (sqlite3's styles) become psycopg's `%s` and `%(name)s`;
- parameters are sent untyped, as SQLite takes them, so `text_column = 5` compares as text and
  `integer_column = '5'` as an integer, instead of failing on PostgreSQL's strict operator types;
- `numeric` results (sum, avg) come back as Python int or float, as they do from SQLite;
- a failed write inside a transaction rolls back that statement only (a savepoint), as in SQLite, so
  `try: INSERT ... except IntegrityError:` keeps working inside `write_transaction`;
- connections come from a SQLAlchemy pool per process (gunicorn forks workers: each builds its own),
  checked with a ping, with connect and statement timeouts.

Connections run in autocommit: a statement outside `write_transaction` (or an explicit BEGIN) is its
own transaction, like sqlite3's reads; `write_transaction` opens one and takes the store's write lock.
"""
from __future__ import annotations

import functools
import os
import re
import threading
import time
from contextlib import contextmanager

import psycopg
from psycopg.adapt import Dumper, Loader
from psycopg.pq import TransactionStatus

DIALECT = "postgresql"
WRITE_LOCK = 0x4C4D5342  # "LMSB": the advisory lock `write_transaction` holds, as SQLite's BEGIN IMMEDIATE
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WRITES = ("INSERT", "UPDATE", "DELETE", "WITH")


@functools.lru_cache(maxsize=8192)
def translate(sql: str) -> str:
    """sqlite3 placeholders to psycopg's; quoted text and `::` casts are left alone, literal `%` doubled."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = i + 1
            while j < n and not (sql[j] == c and not (j + 1 < n and sql[j + 1] == c)):
                j += 2 if sql[j] == c else 1
            out.append(sql[i:j + 1].replace("%", "%%"))
            i = j + 1
            continue
        if c == "?":
            out.append("%s")
        elif c == "%":
            out.append("%%")
        elif c == ":" and i + 1 < n and sql[i + 1] == ":":
            out.append("::")
            i += 2
            continue
        elif c == ":" and (m := _WORD.match(sql, i + 1)):
            out.append(f"%({m.group()})s")
            i = m.end()
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


class _Untyped(Dumper):
    """Send a Python value as an untyped literal: PostgreSQL infers its type from where it is used."""

    oid = 0

    def dump(self, obj):
        return str(obj).encode()


class _BoolUntyped(Dumper):
    oid = 0

    def dump(self, obj):
        return b"1" if obj else b"0"


class _Number(Loader):
    """numeric to int when whole, float otherwise (sum() and avg() of integers are numeric here)."""

    def load(self, data):
        text = bytes(data).decode()
        if text.lstrip("-").isdigit():
            return int(text)
        return float(text)


def _configure(raw: psycopg.Connection) -> None:
    raw.adapters.register_dumper(int, _Untyped)
    raw.adapters.register_dumper(float, _Untyped)
    raw.adapters.register_dumper(bool, _BoolUntyped)
    raw.adapters.register_loader("numeric", _Number)


def is_write(sql: str) -> bool:
    return sql.lstrip(" \n(").upper().startswith(_WRITES)


class Cursor:
    """A DB-API cursor with sqlite3's `lastrowid` for statements that end in `RETURNING id`."""

    _NOTHING = object()

    def __init__(self, cur: psycopg.Cursor):
        self._cur = cur
        self._held = self._NOTHING  # the first row, once `lastrowid` has read it

    @property
    def description(self):
        return self._cur.description

    @property
    def rowcount(self):
        return self._cur.rowcount

    @property
    def lastrowid(self):
        """The id a `... RETURNING id` statement gave back (fetchone() still returns that row after)."""
        if self._held is self._NOTHING:
            self._held = self._cur.fetchone() if self._cur.description else None
        return None if self._held is None else self._held[0]

    def _take_held(self) -> list:
        held, self._held = self._held, self._NOTHING
        return [] if held is self._NOTHING or held is None else [held]

    def fetchone(self):
        held = self._take_held()
        if held:
            return held[0]
        return self._cur.fetchone() if self._cur.description else None

    def fetchall(self):
        return self._take_held() + (self._cur.fetchall() if self._cur.description else [])

    def __iter__(self):
        return iter(self.fetchall())

    def close(self):
        self._cur.close()


class Connection:
    """The part of sqlite3.Connection the query modules use: execute, executemany, commit, in_transaction."""

    def __init__(self, raw: psycopg.Connection):
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)

    def execute(self, sql: str, params=()) -> Cursor:
        query = translate(sql)
        args = params if isinstance(params, dict) else list(params or ())
        cur = self.raw.cursor()
        if self.in_transaction and is_write(sql):
            self.raw.execute("SAVEPOINT lb_statement")
            try:
                cur.execute(query, args)
            except BaseException:
                if self.raw.info.transaction_status == TransactionStatus.INERROR:
                    self.raw.execute("ROLLBACK TO SAVEPOINT lb_statement")
                raise
            finally:
                if self.in_transaction and self.raw.info.transaction_status != TransactionStatus.INERROR:
                    self.raw.execute("RELEASE SAVEPOINT lb_statement")
        else:
            cur.execute(query, args)
        return Cursor(cur)

    def executemany(self, sql: str, seq) -> Cursor:
        cur = self.raw.cursor()
        cur.executemany(translate(sql), [p if isinstance(p, dict) else list(p) for p in seq])
        return Cursor(cur)

    def commit(self) -> None:
        if self.in_transaction:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.raw.execute("ROLLBACK")


class Database:
    """What `lms_bridge.db.connect` returns for `postgresql://` URLs; `sqlite_utils.Database` for SQLite."""

    dialect = DIALECT

    def __init__(self, raw: psycopg.Connection, release=None):
        self.conn = Connection(raw)
        self._release = release

    def execute(self, sql: str, params=()) -> Cursor:
        return self.conn.execute(sql, params)

    def query(self, sql: str, params=()):
        cur = self.conn.execute(sql, params)
        if cur.description is None:
            return
        names = [c.name for c in cur.description]
        for row in cur:
            yield dict(zip(names, row))

    def rollback(self) -> None:
        self.conn.rollback()

    @contextmanager
    def atomic(self):
        """A transaction, or a savepoint inside one (as sqlite-utils' `atomic`)."""
        raw = self.conn.raw
        if self.conn.in_transaction:
            raw.execute("SAVEPOINT lb_atomic")
            try:
                yield self
            except BaseException:
                raw.execute("ROLLBACK TO SAVEPOINT lb_atomic")
                raise
            raw.execute("RELEASE SAVEPOINT lb_atomic")
            return
        raw.execute("BEGIN")
        try:
            yield self
        except BaseException:
            self.conn.rollback()
            raise
        raw.execute("COMMIT")

    def begin_write(self) -> None:
        """BEGIN and the store-wide write lock: read-then-write decisions stay true until COMMIT."""
        self.conn.raw.execute("BEGIN")
        self.conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])

    def table_names(self) -> list[str]:
        return [r[0] for r in self.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename").fetchall()]

    def __del__(self):
        """Dropped without close(): close it, as sqlite3 does, instead of leaving a server session behind."""
        try:
            if not self.conn.raw.closed:
                self.close()
        except Exception:  # pragma: no cover - interpreter shutdown, or the server went away
            pass

    def close(self) -> None:
        if self.conn.raw.closed:
            return
        self.conn.rollback()
        if self._release is not None:
            release, self._release = self._release, None
            release()
        else:
            self.conn.raw.close()


# -- connections ---------------------------------------------------------------------------------

CONNECT_TIMEOUT = int(os.environ.get("LMS_BRIDGE_DB_CONNECT_TIMEOUT", "10"))
STATEMENT_TIMEOUT_MS = int(os.environ.get("LMS_BRIDGE_DB_STATEMENT_TIMEOUT", "30")) * 1000
PING_AFTER_IDLE = 5.0  # seconds a pooled connection may sit unused before checkout pings the server
POOL_SIZE = int(os.environ.get("LMS_BRIDGE_DB_POOL_SIZE", "5"))


class Unreachable(Exception):
    """The PostgreSQL server did not answer: a one-line reason, never a traceback."""


def dsn(url: str) -> str:
    """`postgresql://` or `postgres://` (also with `+psycopg`) to a libpq connection string."""
    from sqlalchemy.engine import make_url

    u = make_url(url.replace("postgres://", "postgresql://", 1))
    parts = {"host": u.host, "port": u.port, "user": u.username, "password": u.password, "dbname": u.database,
             **{k: v for k, v in u.query.items() if isinstance(v, str)}}
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in parts.items() if v is not None})


def open_raw(url: str) -> psycopg.Connection:
    try:
        raw = psycopg.connect(dsn(url), autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                              options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c timezone=UTC",
                              application_name="lms-bridge")
    except psycopg.OperationalError as e:
        raise Unreachable(describe(url, e)) from None
    _configure(raw)
    return raw


def describe(url: str, error: Exception) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url.replace("postgres://", "postgresql://", 1))
    # libpq: 'connection failed: connection to server at "h", port p failed: <why>' then a hint line
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    reason = " ".join(lines[0].rsplit("failed: ", 1)[-1].split()) if lines else type(error).__name__
    return f"PostgreSQL at {u.host or 'localhost'}:{u.port or 5432}/{u.database or ''} is unreachable: {reason}"


_pools: dict[tuple[int, str], object] = {}
_pools_lock = threading.Lock()


def _pool(url: str):
    """One SQLAlchemy QueuePool per process and URL (a pool must not cross a gunicorn fork)."""
    from sqlalchemy import event, exc
    from sqlalchemy.pool import QueuePool

    key = (os.getpid(), url)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = QueuePool(lambda: open_raw(url), pool_size=POOL_SIZE, max_overflow=POOL_SIZE * 2,
                             timeout=CONNECT_TIMEOUT, reset_on_return="rollback")

            @event.listens_for(pool, "checkout")
            def ping(raw, record, _proxy):
                """A connection the server dropped (restart, failover, idle timeout) is replaced, not handed out.
                One that was in use moments ago is trusted without a round trip; an idle one is pinged."""
                if raw.closed or raw.broken:
                    raise exc.DisconnectionError()
                if time.monotonic() - record.info.get("checked_in", 0.0) > PING_AFTER_IDLE:
                    try:
                        raw.execute("SELECT 1")
                    except psycopg.Error:
                        raise exc.DisconnectionError() from None

            @event.listens_for(pool, "checkin")
            def note_idle(_raw, record):
                if record is not None:
                    record.info["checked_in"] = time.monotonic()

            _pools[key] = pool
    return pool


def pooled(url: str) -> Database:
    try:
        fairy = _pool(url).connect()
    except Unreachable:
        raise
    except Exception as e:  # pool timeout, or a ping that failed to reconnect
        raise Unreachable(describe(url, e)) from None
    return Database(fairy.dbapi_connection, release=fairy.close)


def connect(url: str) -> Database:
    return Database(open_raw(url))


def dispose_pools() -> None:
    with _pools_lock:
        for pool in _pools.values():
            pool.dispose()
        _pools.clear()
