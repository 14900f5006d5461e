"""`lms-bridge backup` / `lms-bridge restore`: a consistent copy of a running install, put back on a stopped one.

The store is copied first: SQLite with its online backup API (one read snapshot, writers carry on),
PostgreSQL with `pg_dump --format=custom` (one snapshot too; the institution's own database backups remain
the main ones). The data directory's files (uploads, signing keys, secret key) are copied after it, so every
file the snapshot refers to is already there. `manifest.json`, written last, lists every file with its SHA-256.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import glob
import shutil
import sqlite3
import subprocess
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..config import database_path, is_postgres

MANIFEST = "manifest.json"
DATABASE = "database.sqlite3"
PG_DUMP = "database.pgdump"
FILES = "data"
LOCK = ".lms_bridge.lock"
FORMAT = 1


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why and what to do."""


# --- the install lock: `serve` and `worker` hold it shared, `restore` needs it alone ---------
_held: list = []


def hold_running_lock(data_dir: str) -> None:
    """Mark this process (and the gunicorn workers it forks) as running on `data_dir` until it exits."""
    fh = open(Path(data_dir) / LOCK, "a")  # noqa: SIM115  (kept open for the life of the process)
    fcntl.flock(fh, fcntl.LOCK_SH)
    _held.append(fh)


def _exclusive(data_dir: str):
    fh = open(Path(data_dir) / LOCK, "a")  # noqa: SIM115
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise BackupError("the install is running (serve or worker holds it): stop it first, e.g. "
                          "`systemctl stop lms-bridge lms-bridge-worker`") from None
    return fh


# --- helpers -----------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _db_files(db_path: Path) -> set[Path]:
    return {db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm", "-journal"))}


def _tool_version() -> str:
    try:
        return version("lms-bridge")
    except PackageNotFoundError:
        return "unknown"


def _applied(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [f"{s}:{n}" for s, n in conn.execute("SELECT migration_set, name FROM _sqlite_migrations ORDER BY rowid")]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


# --- the store's copy: SQLite's backup API or pg_dump ------------------------------------
def _sqlite_backup(db_path: Path, target: Path) -> dict:
    src, dst = sqlite3.connect(db_path, timeout=30), sqlite3.connect(target)
    try:
        src.backup(dst)  # all pages in one step: one consistent snapshot
    finally:
        dst.close()
        src.close()
    if _integrity(target) != "ok":
        raise BackupError("the copied database fails its integrity check; the original may be damaged")
    os.chmod(target, 0o600)
    return {"path": target.name, "store": "sqlite", "sha256": _sha256(target), "size": target.stat().st_size,
            "migrations": _applied(target)}


def _pg_tool(name: str) -> str:
    """pg_dump/pg_restore: on PATH (Debian's wrapper picks the right version), else the newest server's."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   key=lambda p: int(Path(p).parts[-3]), reverse=True)), None)
    if not found:
        raise BackupError(f"{name} is not installed: install PostgreSQL's client tools (Debian: apt install "
                          "postgresql-client), or back the database up with the institution's own tools")
    return found


def _pg_connection(url: str) -> tuple[str, dict]:
    """libpq's connection string without the password, which goes to the child's environment instead
    (never on a command line that `ps` shows)."""
    import psycopg

    from ..db.pg import dsn

    params = psycopg.conninfo.conninfo_to_dict(dsn(url))
    env = dict(os.environ)
    if params.get("password"):
        env["PGPASSWORD"] = str(params.pop("password"))
    return psycopg.conninfo.make_conninfo(**params), env


def _run(cmd: list[str], env: dict, what: str) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise BackupError(f"{what} failed: {lines[-1] if lines else f'exit status {done.returncode}'}")


def _pg_migrations(url: str) -> list[str]:
    from ..db import connect
    from ..db.ops import applied_migrations

    db = connect(url)
    try:
        return applied_migrations(db)
    finally:
        db.close()


def _pg_restore(url: str, dump: Path) -> None:
    """Replace what the dump holds, in one transaction (a failed restore changes nothing)."""
    conninfo, env = _pg_connection(url)
    _run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
          "--exit-on-error", f"--dbname={conninfo}", str(dump)], env, "pg_restore")


def _pg_dump(tool: str, url: str, target: Path, migrations: list[str]) -> dict:
    conninfo, env = _pg_connection(url)
    _run([tool, "--format=custom", "--no-owner", "--no-privileges", f"--file={target}", f"--dbname={conninfo}"],
         env, "pg_dump")
    os.chmod(target, 0o600)
    _run([_pg_tool("pg_restore"), "--list", str(target)], env, "reading the dump back (pg_restore --list)")
    return {"path": target.name, "store": "postgresql", "format": "pg_dump custom", "sha256": _sha256(target),
            "size": target.stat().st_size, "migrations": migrations}


# --- backup ------------------------------------------------------------------------------
def backup(config: dict, out: str | Path) -> dict:
    """Write a backup of the install into `out` (new or empty); returns the manifest."""
    out = Path(out).resolve()
    data_dir = Path(config["DATA_DIR"]).resolve()
    postgres = is_postgres(config["DATABASE_URL"])
    db_path = None if postgres else Path(database_path(config["DATABASE_URL"])).resolve()
    if db_path is not None and not db_path.exists():
        raise BackupError(f"no database at {db_path}: nothing to back up")
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: back up into a new directory")
    if postgres:  # before anything is written: the tool is there and the server answers
        tool, migrations = _pg_tool("pg_dump"), _pg_migrations(config["DATABASE_URL"])
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)  # it holds the private keys

    if postgres:
        database = _pg_dump(tool, config["DATABASE_URL"], out / PG_DUMP, migrations)
    else:
        database = _sqlite_backup(db_path, out / DATABASE)

    skip = (_db_files(db_path) if db_path else set()) | {data_dir / LOCK}
    # Earlier backups kept inside the data directory are not copied again (each would grow the next).
    nested = {m.parent for m in data_dir.rglob(MANIFEST) if m.parent != data_dir} | {out}
    files = []
    for path in sorted(data_dir.rglob("*")):
        if path in skip or not path.is_file() or path.is_symlink() or nested & set(path.parents):
            continue
        rel = path.relative_to(data_dir)
        if rel.name.startswith((".doctor-", ".secret_key.")):
            continue  # in-flight temporary files
        target = out / FILES / rel
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            shutil.copy2(path, target)
        except FileNotFoundError:
            continue  # removed while we walked (a replaced upload): the snapshot does not need it
        files.append({"path": rel.as_posix(), "sha256": _sha256(target), "size": target.stat().st_size,
                      "mode": f"{path.stat().st_mode & 0o777:o}"})

    manifest = {"format": FORMAT, "tool": "lms_bridge", "version": _tool_version(),
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "database": database, "files": files}
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, out / MANIFEST)  # last: a backup without its manifest is incomplete
    return manifest


# --- restore -----------------------------------------------------------------------------
def verify(source: str | Path) -> dict:
    """The manifest of a complete backup whose every file matches its checksum, or BackupError."""
    source = Path(source)
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} has no {MANIFEST}: not a complete lms-bridge backup") from None
    except ValueError:
        raise BackupError(f"{source / MANIFEST} is not valid JSON") from None
    if manifest.get("tool") != "lms_bridge" or manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is not an lms-bridge backup of format {FORMAT}")
    expected = [(manifest["database"]["path"], manifest["database"]["sha256"])]
    expected += [(f"{FILES}/{f['path']}", f["sha256"]) for f in manifest["files"]]
    bad = []
    for rel, digest in expected:
        path = source / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            bad.append(f"{rel} (unsafe path)")
        elif not path.is_file():
            bad.append(f"{rel} (missing)")
        elif _sha256(path) != digest:
            bad.append(f"{rel} (checksum mismatch)")
    if bad:
        raise BackupError("the backup is damaged: " + ", ".join(bad))
    return manifest


def restore(config: dict, source: str | Path, *, force: bool = False) -> list[str]:
    """Put a verified backup onto this (stopped) install; returns what was done, line by line."""
    from ..db import connect, pending_migrations

    source = Path(source).resolve()
    manifest = verify(source)
    data_dir = Path(config["DATA_DIR"]).resolve()
    store = manifest["database"].get("store", "sqlite")
    postgres = is_postgres(config["DATABASE_URL"])
    if (store == "postgresql") != postgres:
        raise BackupError(f"this backup holds a {store} store and this install uses "
                          f"{'postgresql' if postgres else 'sqlite'}: restore it into a {store} install, then move "
                          "it with `lms-bridge db copy`")
    if postgres:
        _pg_tool("pg_restore")  # before anything is changed
    db_path = None if postgres else Path(database_path(config["DATABASE_URL"])).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = _exclusive(str(data_dir))
    try:
        if postgres:
            if _pg_migrations(config["DATABASE_URL"]) and not force:
                raise BackupError("the PostgreSQL database already holds an install: restore into a new, empty "
                                  "database, or pass --force to replace it")
            _pg_restore(config["DATABASE_URL"], source / manifest["database"]["path"])
        else:
            if db_path.exists() and _applied(db_path) and not force:
                raise BackupError(f"{db_path} already holds an install: restore into a fresh data directory, or pass "
                                  "--force to replace it")
            db_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = db_path.with_name(f".{db_path.name}.restore")
            shutil.copyfile(source / manifest["database"]["path"], tmp)
            os.chmod(tmp, 0o600)
            for stale in _db_files(db_path) - {db_path}:
                stale.unlink(missing_ok=True)  # an old WAL beside the restored file would be replayed into it
            os.replace(tmp, db_path)
        for f in manifest["files"]:
            target = data_dir / f["path"]
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            part = target.with_name(f".{target.name}.restore")
            shutil.copyfile(source / FILES / f["path"], part)
            os.chmod(part, int(f["mode"], 8))
            os.replace(part, target)
        keys = data_dir / "keys"
        if keys.is_dir():
            os.chmod(keys, 0o700)
        if db_path is not None and _integrity(db_path) != "ok":
            raise BackupError(f"the restored database {db_path} fails its integrity check")
        db = connect(config["DATABASE_URL"] if postgres else str(db_path))
        try:
            pending = pending_migrations(db)
        finally:
            db.close()
    finally:
        lock.close()
    done = [f"restored the database ({len(manifest['database']['migrations'])} migrations) and "
            f"{len(manifest['files'])} files from the backup of {manifest['created_at']} into {data_dir}"]
    if pending:
        done.append(f"{len(pending)} migrations are newer than the backup: run `lms-bridge init` before `serve`")
    return done
