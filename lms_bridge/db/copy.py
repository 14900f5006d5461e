"""`lms-bridge db copy`: move an install between stores (SQLite <-> PostgreSQL, or to another of the same kind).

The target is migrated by this version's migrations, must hold nothing yet, and receives every table in
foreign-key order, in batches, inside one transaction: a copy that fails or does not verify leaves it empty.
What the stores keep differently is handled here:
- migration records (`_sqlite_migrations`, `_lms_bridge_migrations`) are the target's own migrate's;
- SQLite's internal tables and the FTS5 shadow tables (`practices_fts_*`) are not data; the library index
  `practices_fts` is copied as its rowid and text columns (PostgreSQL's tsvector columns are generated);
- the dashboard's `dash_facets`/`dash_counts` are not copied: the target rebuilds them (`dashboard.bulk_load`:
  SQLite's triggers as the roster, projects and submissions arrive; on PostgreSQL the triggers' statements once
  per course), then they are compared with the source's;
- ids keep counting after the highest id the source ever gave (PostgreSQL identity sequences, sqlite_sequence).
Each table is compared afterwards: row count and a checksum of its normalised rows (see `RowDigest`).
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

from ..config import database_path, is_postgres
from . import PG_MIGRATIONS, connect, dashboard, dialect, migrate, pending_migrations

BATCH = 1000
FTS = "practices_fts"
DERIVED = {"dash_facets": "", "dash_counts": "WHERE n <> 0"}  # a count that went back to 0 is not data
FIRST = ("dash_stages",)  # the triggers that rebuild DERIVED read it: it must be there before the roster
_NOT_DATA = {"_sqlite_migrations", PG_MIGRATIONS, "sqlite_sequence", "sqlite_stat1", "sqlite_stat2",
             "sqlite_stat3", "sqlite_stat4"}


class CopyError(Exception):
    """The copy cannot start or did not go through; the message says why and what to do."""


@dataclass
class TableReport:
    table: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


@dataclass
class CopyReport:
    tables: list[TableReport]
    committed: bool

    @property
    def ok(self) -> bool:
        return self.committed and all(t.ok for t in self.tables)

    def lines(self) -> list[str]:
        width = max([len(t.table) for t in self.tables] + [5])
        out = [f"{'table':<{width}}  {'source':>8}  {'target':>8}  {'checksum':<16}  status"]
        for t in sorted(self.tables, key=lambda t: (t.table in DERIVED, t.table)):
            same = t.source_sum == t.target_sum
            shown = t.source_sum[:16] if same else f"{t.source_sum[:7]}!={t.target_sum[:7]}"
            status = "ok" if t.ok else "DIFFERS"
            out.append(f"{t.table:<{width}}  {t.source_rows:>8}  {t.target_rows:>8}  {shown:<16}  {status}"
                       + (f"  ({t.note})" if t.note else ""))
        return out


class RowDigest:
    """A checksum of a table's rows that does not depend on their order: the sum (mod 2^256) of each row's
    SHA-256. Order-free because the stores sort text differently (PostgreSQL by its collation); values are
    normalised so that an int is an int and text is text on both stores."""

    MOD = 1 << 256

    def __init__(self):
        self.total, self.rows = 0, 0

    def add(self, row) -> None:
        self.total = (self.total + int.from_bytes(hashlib.sha256(_canonical(row)).digest(), "big")) % self.MOD
        self.rows += 1

    def hexdigest(self) -> str:
        return f"{self.total:064x}"


def _canonical(row) -> bytes:
    parts = []
    for v in row:
        if v is None:
            parts.append("N")
        elif isinstance(v, bool):
            parts.append(f"i{int(v)}")
        elif isinstance(v, int):
            parts.append(f"i{v}")
        elif isinstance(v, float):
            parts.append(f"f{v!r}")
        elif isinstance(v, (bytes, bytearray, memoryview)):
            parts.append("b" + bytes(v).hex())
        else:
            text = str(v)
            parts.append(f"t{len(text)}:{text}")
    return "\x1f".join(parts).encode("utf-8", "surrogatepass")


# --- what each store holds --------------------------------------------------------------------------
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def data_tables(db) -> list[str]:
    """The tables that hold the install's data (derived tables included, store internals left out)."""
    if dialect(db) == "postgresql":
        names = db.table_names()
    else:
        shadows = {f"{r[0]}_{s}" for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND"
                                                       " sql LIKE 'CREATE VIRTUAL TABLE%'").fetchall()
                   for s in ("data", "idx", "content", "docsize", "config")}
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                 if r[0] not in shadows]
    return [n for n in names if n not in _NOT_DATA and not n.startswith("sqlite_")]


def columns(db, table: str) -> list[str]:
    """The columns a copy writes: never generated ones; the FTS index by its rowid and text columns."""
    if dialect(db) == "postgresql":
        return [r[0] for r in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ? AND is_generated = 'NEVER' ORDER BY ordinal_position", [table]).fetchall()]
    cols = [r[1] for r in db.execute(f"PRAGMA table_xinfo({_quote(table)})").fetchall() if r[6] == 0]
    return ["rowid", *cols] if table == FTS else cols


def foreign_keys(db) -> dict[str, set[str]]:
    """table -> the tables it references."""
    refs: dict[str, set[str]] = {}
    if dialect(db) == "postgresql":
        for child, parent in db.execute(
                "SELECT c.relname, p.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
                " JOIN pg_class p ON p.oid = k.confrelid WHERE k.contype = 'f'"
                " AND k.connamespace = current_schema()::regnamespace").fetchall():
            refs.setdefault(child, set()).add(parent)
        return refs
    for table in data_tables(db):
        for fk in db.execute(f"PRAGMA foreign_key_list({_quote(table)})").fetchall():
            refs.setdefault(table, set()).add(fk[2])
    return refs


def copy_order(tables: list[str], refs: dict[str, set[str]]) -> list[str]:
    """Parents before children (a table's references to itself are satisfied by the order of its ids)."""
    left = {t: {p for p in refs.get(t, ()) if p != t and p in tables} for t in tables}
    order = [t for t in FIRST if t in left]
    for t in order:
        left.pop(t)
    while left:
        ready = sorted(t for t, parents in left.items() if not parents - set(order))
        if not ready:
            raise CopyError(f"the tables {', '.join(sorted(left))} reference each other in a cycle")
        order += ready
        for t in ready:
            left.pop(t)
    return order


def identity_columns(db) -> dict[str, str]:
    """table -> its id column that the store numbers itself (identity on PostgreSQL, AUTOINCREMENT on SQLite)."""
    if dialect(db) == "postgresql":
        return dict(db.execute("SELECT table_name, column_name FROM information_schema.columns"
                               " WHERE table_schema = current_schema() AND is_identity = 'YES'").fetchall())
    out = {}
    for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall():
        if sql and "AUTOINCREMENT" in sql.upper():
            pk = [r[1] for r in db.execute(f"PRAGMA table_info({_quote(name)})").fetchall() if r[5]]
            if len(pk) == 1:
                out[name] = pk[0]
    return out


def issued_ids(db) -> dict[str, int]:
    """table -> the highest id its sequence has handed out (deleted rows included)."""
    if dialect(db) == "postgresql":
        out = {}
        for table, column in identity_columns(db).items():
            seq = db.execute("SELECT pg_get_serial_sequence(?, ?)", [_quote(table), column]).fetchone()[0]
            last, called = db.execute(f"SELECT last_value, is_called FROM {seq}").fetchone()
            out[table] = last if called else 0
        return out
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        return {}
    return dict(db.execute("SELECT name, seq FROM sqlite_sequence").fetchall())


def _seeded_tables() -> set[str]:
    """Tables this version's migrations write rows into (the sandbox's fixtures): a fresh target has those."""
    scratch = connect(":memory:")
    try:
        migrate(scratch)
        return {t for t in data_tables(scratch)
                if scratch.execute(f"SELECT count(*) FROM {_quote(t)}").fetchone()[0]}
    finally:
        scratch.close()


# --- reading and writing in batches -----------------------------------------------------------------
def _select(table: str, cols: list[str], where: str = "") -> str:
    return f"SELECT {', '.join(_quote(c) if c != 'rowid' else c for c in cols)} FROM {_quote(table)} {where}"


def _batches(db, sql: str, batch: int):
    """Rows of `sql` a batch at a time (a server-side cursor on PostgreSQL: memory stays bounded)."""
    if dialect(db) == "postgresql":  # inside the copy's transaction (a plain DECLARE: the parameters are untyped)
        name = f"lb_copy_{next(_cursor_ids)}"
        with db.conn.raw.cursor() as cur:
            cur.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}")
            try:
                while True:
                    cur.execute(f"FETCH FORWARD {int(batch)} FROM {name}")
                    rows = cur.fetchall()
                    if not rows:
                        break
                    yield rows
            finally:
                if db.conn.in_transaction and not _failed(db):
                    cur.execute(f"CLOSE {name}")
        return
    cur = db.conn.execute(sql)
    try:
        while rows := cur.fetchmany(batch):
            yield rows
    finally:
        cur.close()


_cursor_ids = itertools.count(1)


def _failed(db) -> bool:
    from psycopg.pq import TransactionStatus

    return db.conn.raw.info.transaction_status == TransactionStatus.INERROR


def _digest(db, table: str, cols: list[str], where: str, batch: int) -> RowDigest:
    d = RowDigest()
    for rows in _batches(db, _select(table, cols, where), batch):
        for row in rows:
            d.add(row)
    return d


def _copy_table(src, dst, table: str, cols: list[str], batch: int) -> RowDigest:
    """Stream the source's rows into the target; the digest of what was read comes back."""
    d = RowDigest()
    names = ", ".join(_quote(c) if c != "rowid" else c for c in cols)
    if dialect(dst) == "postgresql":
        with dst.conn.raw.cursor() as cur, cur.copy(f"COPY {_quote(table)} ({names}) FROM STDIN") as copy:
            for rows in _batches(src, _select(table, cols), batch):
                for row in rows:
                    d.add(row)
                    copy.write_row(row)
        return d
    insert = f"INSERT INTO {_quote(table)} ({names}) VALUES ({', '.join('?' * len(cols))})"
    for rows in _batches(src, _select(table, cols), batch):
        for row in rows:
            d.add(row)
        dst.conn.executemany(insert, rows)
    return d


def _continue_ids(dst, source_ids: dict[str, int]) -> None:
    """New rows on the target get ids above every id the source used."""
    for table, column in identity_columns(dst).items():
        highest = dst.execute(f"SELECT max({_quote(column)}) FROM {_quote(table)}").fetchone()[0] or 0
        after = max(int(highest), int(source_ids.get(table, 0) or 0))
        if dialect(dst) == "postgresql":
            seq = dst.execute("SELECT pg_get_serial_sequence(?, ?)", [_quote(table), column]).fetchone()[0]
            dst.execute("SELECT setval(?, ?, ?)", [seq, max(after, 1), after > 0])
        elif after > 0:
            if dst.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?",
                           [after, table, after]).rowcount == 0 and not dst.execute(
                    "SELECT 1 FROM sqlite_sequence WHERE name = ?", [table]).fetchone():
                dst.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", [table, after])


# --- the copy ---------------------------------------------------------------------------------------
def _store_errors() -> tuple:
    import sqlite3

    import psycopg

    return (sqlite3.Error, psycopg.Error)


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _open(url: str, role: str):
    if not is_postgres(url):
        path = Path(database_path(url))
        if role == "source" and not path.is_file():
            raise CopyError(f"no SQLite database at {path}")
        return connect(url)
    db = connect(url)
    db.execute("SET statement_timeout = 0")  # one COPY of a large table is a long statement, legitimately
    return db


def _begin_snapshot(src) -> None:
    """One consistent view of the source for the whole copy, while its servers may keep writing."""
    if dialect(src) == "postgresql":
        src.conn.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        src.conn.execute("BEGIN")


def _begin_write(dst) -> None:
    if dialect(dst) == "postgresql":
        dst.begin_write()
    else:
        dst.execute("BEGIN IMMEDIATE")


def _holding(dst, tables: list[str], seeded: set[str]) -> list[str]:
    have = set(data_tables(dst))
    out = []
    for t in tables:
        if t in have and t not in seeded:
            n = dst.execute(f"SELECT count(*) FROM {_quote(t)}").fetchone()[0]
            if n:
                out.append(f"{t}: {n} rows")
    return out


def copy(source_url: str, target_url: str, *, batch: int = BATCH) -> CopyReport:
    """Copy the install at `source_url` into the empty store at `target_url` and compare every table."""
    if str(source_url) == str(target_url):
        raise CopyError("the source and the target are the same store")
    src = _open(source_url, "source")
    try:
        pending = pending_migrations(src)
        if pending:
            raise CopyError(f"the source has {len(pending)} pending migrations: run `lms-bridge init` on it first "
                            "(with LMS_BRIDGE_DATABASE_URL set to the source)")
        dst = _open(target_url, "target")
        try:
            return _copy(src, dst, batch)
        finally:
            dst.close()
    finally:
        src.close()


def _copy(src, dst, batch: int) -> CopyReport:
    tables = data_tables(src)
    seeded = _seeded_tables()
    holding = _holding(dst, tables, seeded)
    if holding:
        raise CopyError(f"the target already holds data ({', '.join(holding[:3])}"
                        f"{', ...' if len(holding) > 3 else ''}): copy into a new, empty database")
    try:
        migrate(dst)
    except _store_errors() as e:
        raise CopyError(f"migrating the target failed: {_first_line(e)}") from None
    if sorted(data_tables(dst)) != sorted(tables):
        only_src = sorted(set(tables) - set(data_tables(dst)))
        only_dst = sorted(set(data_tables(dst)) - set(tables))
        raise CopyError(f"the stores' tables differ after migrating (source only: {', '.join(only_src) or '-'};"
                        f" target only: {', '.join(only_dst) or '-'})")
    plan = {}
    for t in tables:
        cols = columns(dst, t)
        if sorted(columns(src, t)) != sorted(cols):
            raise CopyError(f"table {t} has other columns on the source than on the target")
        plan[t] = cols
    order = [t for t in copy_order(tables, foreign_keys(dst)) if t not in DERIVED]

    _begin_snapshot(src)
    try:
        source_ids = issued_ids(src)
        derived_src = {t: _digest(src, t, plan[t], where, batch) for t, where in DERIVED.items() if t in plan}
        _begin_write(dst)
        try:
            for t in seeded & set(order):
                dst.execute(f"DELETE FROM {_quote(t)}")  # the migration's fixtures: the source has its own
            read = {}
            with dashboard.bulk_load(dst):
                for t in order:
                    try:
                        read[t] = _copy_table(src, dst, t, plan[t], batch)
                    except _store_errors() as e:  # e.g. a value the target's column type refuses
                        raise CopyError(f"copying {t} failed: {_first_line(e)}; the target was left empty") from None
            reports = []
            for t in order:
                wrote = _digest(dst, t, plan[t], "", batch)
                reports.append(TableReport(t, read[t].rows, wrote.rows, read[t].hexdigest(), wrote.hexdigest()))
            for t, where in DERIVED.items():
                if t in derived_src:
                    rebuilt = _digest(dst, t, plan[t], where, batch)
                    reports.append(TableReport(t, derived_src[t].rows, rebuilt.rows, derived_src[t].hexdigest(),
                                               rebuilt.hexdigest(), "rebuilt by the target"))
            _continue_ids(dst, source_ids)
        except BaseException:
            dst.rollback()
            raise
        committed = all(r.ok for r in reports)
        dst.execute("COMMIT") if committed else dst.rollback()
    finally:
        src.rollback()
    if committed:
        from .upkeep import analyze

        analyze(dst)  # statistics for the planner over the new rows
    return CopyReport(reports, committed)


def compare(source_url: str, target_url: str, *, batch: int = BATCH) -> list[TableReport]:
    """Counts and checksums of two installs, table by table (what `copy` checks, for installs that exist)."""
    a, b = connect(source_url), connect(target_url)
    try:
        _begin_snapshot(a)
        _begin_snapshot(b)
        tables = sorted(set(data_tables(a)) | set(data_tables(b)))
        out = []
        for t in tables:
            cols = columns(b, t) if t in data_tables(b) else columns(a, t)
            where = DERIVED.get(t, "")
            da = _digest(a, t, cols, where, batch) if t in data_tables(a) else RowDigest()
            db_ = _digest(b, t, cols, where, batch) if t in data_tables(b) else RowDigest()
            out.append(TableReport(t, da.rows, db_.rows, da.hexdigest(), db_.hexdigest()))
        return out
    finally:
        a.rollback()
        b.rollback()
        a.close()
        b.close()

