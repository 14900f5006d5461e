"""The database: one connection per request, named migrations, and every SQL statement of the tool.

Domain modules call the query functions in this package (`db.lti`, `db.outbox`, ...), never SQL.
Two stores: SQLite through sqlite-utils (the default) and PostgreSQL through psycopg (`pg.py`), chosen
by the URL. The query modules write one SQL text for both; `dialect(db)` names the store where a
feature genuinely differs (full-text search, JSON, exclusion constraints and triggers).
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from ..config import database_path, is_postgres

MIGRATION_SETS: list[Migrations] = []


def migration_set(name: str) -> Migrations:
    """Register a named, ordered migration set; sets are applied in registration order."""
    m = Migrations(name)
    MIGRATION_SETS.append(m)
    return m


def _integrity_errors() -> tuple:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite-only installs still work
        return (sqlite3.IntegrityError,)
    return (sqlite3.IntegrityError, psycopg.errors.IntegrityError)


# A constraint said no (unique, check, foreign key, exclusion, or a trigger that aborted), on either store.
IntegrityError = _integrity_errors()


def dialect(db) -> str:
    """'sqlite' or 'postgresql'."""
    return getattr(db, "dialect", "sqlite")


def returning_id(db) -> str:
    """Append to an INSERT whose new id the caller reads with `cursor.lastrowid`: PostgreSQL's cursors have no
    lastrowid, so there the statement returns the id (pg.Cursor.lastrowid reads it); SQLite's stays as it was."""
    return " RETURNING id" if dialect(db) == "postgresql" else ""


def connect(url: str):
    """A connection of its own (closed by the caller): PostgreSQL for postgresql:// URLs, else SQLite."""
    if is_postgres(url):
        from . import pg

        return pg.connect(url)
    return connect_sqlite(url)


def connect_sqlite(url: str) -> sqlite_utils.Database:
    """WAL and a busy timeout so several workers share the file without 'database is locked'."""
    path = database_path(url)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    db = sqlite_utils.Database(conn, execute_plugins=False)
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA synchronous = NORMAL")
    with db.ensure_autocommit_on():
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
    db.dialect = "sqlite"
    return db


def _load_sets() -> None:
    import importlib
    import pkgutil

    from . import schema  # noqa: F401  (core first: other sets reference its tables)

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}")  # each module registers its own set


PG_MIGRATIONS = "_lms_bridge_migrations"


def _pending(db, m: Migrations) -> list:
    """A set's migrations not yet applied. SQLite keeps sqlite-utils' record; PostgreSQL a table of the same shape."""
    if dialect(db) == "sqlite":
        return m.pending(db)
    exists = one(db, "SELECT to_regclass(?) AS t", [PG_MIGRATIONS])["t"]
    done = set() if not exists else {r["name"] for r in db.query(
        f"SELECT name FROM {PG_MIGRATIONS} WHERE migration_set = ?", [m.name])}
    return [p for p in m._migrations if p.name not in done]


def _apply(db, m: Migrations) -> None:
    if dialect(db) == "sqlite":
        m.apply(db)
        return
    db.execute(f"CREATE TABLE IF NOT EXISTS {PG_MIGRATIONS} (migration_set TEXT NOT NULL, name TEXT NOT NULL,"
               " applied_at TEXT NOT NULL, PRIMARY KEY (migration_set, name))")
    for p in _pending(db, m):
        p.fn(db)  # inside migrate()'s transaction: PostgreSQL's DDL is transactional
        db.execute(f"INSERT INTO {PG_MIGRATIONS} (migration_set, name, applied_at) VALUES (?,?,?)",
                   [m.name, p.name, ts()])


def pending_migrations(db) -> list[str]:
    """Migrations not yet applied (read-only): `serve` refuses to start while there are any."""
    _load_sets()
    return [f"{m.name}:{p.name}" for m in MIGRATION_SETS for p in _pending(db, m)]


def migrate(db) -> list[str]:
    """Apply pending migrations of every set; safe to run again. Returns what was applied."""
    _load_sets()

    applied = []
    # One write lock around everything: two workers starting together must not both migrate.
    with write_transaction(db):
        for m in MIGRATION_SETS:
            pending = [p.name for p in _pending(db, m)]
            _apply(db, m)
            applied += [f"{m.name}:{n}" for n in pending]
        if applied:  # new tables or indexes: give the planner statistics to choose among them
            from .upkeep import analyze

            analyze(db)
    return applied


@contextlib.contextmanager
def write_transaction(db: sqlite_utils.Database):
    """BEGIN IMMEDIATE: take the write lock up front so read-then-write decisions stay true.

    On PostgreSQL the same: BEGIN and a transaction-scoped advisory lock that every write transaction
    takes, on every server. The hot paths need no such lock (seats are a conditional UPDATE, overlaps are
    exclusion constraints, the outbox is claimed with SKIP LOCKED); this one keeps the rarer
    read-then-write decisions (registration, settings, workflow steps) as safe as they are on SQLite.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    if dialect(db) == "postgresql":
        db.begin_write()
    else:
        db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    else:
        db.execute("COMMIT")


@contextlib.contextmanager
def row_transaction(db):
    """A write transaction whose correctness rests on row locks and constraints alone: conditional UPDATEs,
    `ON CONFLICT` claims, leases checked in the WHERE clause. SQLite has one writer: `write_transaction`.
    PostgreSQL: a plain transaction without the store-wide lock, so outbox workers (and the requests they
    share the store with) never wait for each other there."""
    if dialect(db) == "sqlite":
        with write_transaction(db):
            yield db
        return
    with db.atomic():
        yield db


def one(db: sqlite_utils.Database, sql: str, params=()) -> dict | None:
    """The first row as a dict, or None. A plain read: no savepoint around it, unlike `db.query`."""
    cur = db.conn.execute(sql, params)
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row))


def execute_write(db: sqlite_utils.Database, sql: str, params=()):
    """One write statement: part of the open transaction, else its own `BEGIN IMMEDIATE` transaction."""
    if db.conn.in_transaction:
        return db.execute(sql, params)  # a single statement is atomic by itself
    with write_transaction(db):
        return db.execute(sql, params)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def ts(dt: datetime | None = None) -> str:
    """UTC timestamps stored as sortable ISO strings."""
    return (dt or utcnow()).astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# Flask glue: one connection per request on g. Opening and closing a WAL database costs more than
# a whole request, so each thread keeps its connections and hands them to one request at a time.
_local = threading.local()
_POOL_SIZE = 4


def _pooled(url: str):
    if is_postgres(url):
        from . import pg

        return pg.pooled(url)  # a connection from the process's pool, returned by close_db
    pool = _local.__dict__.setdefault("pool", {})
    db = pool.pop(url, None)
    if db is None:
        db = connect(url)
    pool[url] = db  # most recently used last
    while len(pool) > _POOL_SIZE:
        pool.pop(next(iter(pool))).close()
    return db


def get_db():
    from flask import current_app, g

    if "db" not in g:
        g.db = _pooled(current_app.config["DATABASE_URL"])
    return g.db


def close_db(_exc=None):
    from flask import g

    db = g.pop("db", None)
    if db is not None and db.conn.in_transaction:
        db.rollback()  # never hand an open transaction to the next request
    if db is not None and dialect(db) == "postgresql":
        db.close()  # back to the pool


def init_app(app):
    app.teardown_appcontext(close_db)
