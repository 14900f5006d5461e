"""`lms-bridge backup` of a used, running install and `lms-bridge restore` into a fresh data directory:
the restored install launches and has the learner's plan and attachment; damaged backups are refused."""
from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import lms_bridge.cli as cli
from lms_bridge.db import connect, write_transaction
from lms_bridge.db import projects as q
from lms_bridge.ops import backup as bk

from conftest import TEST_POSTGRES, LtiActions, free_port, make_app
from test_db_copy import drop_empty_databases, empty_pg_url  # noqa: F401  (the fixture drops them)

postgres_only = pytest.mark.skipif(not TEST_POSTGRES, reason="PostgreSQL only: needs LMS_BRIDGE_TEST_POSTGRES "
                                   "(run under tests/pg_cluster.py)")

PLAN = {"title": "Accessible water points in Jakarta", "city": "Jakarta", "country": "ID",
        "problem": "Water points are out of reach for wheelchair users.", "affected_groups": "People with disabilities",
        "hrba_principles": ["participation_inclusion"], "sdgs": ["6"], "sdg_targets": "6.1",
        "stakeholders": "City water office", "activities": "Audit, pilot", "indicators": "Share of accessible points",
        "risks": "Budget cuts"}
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n" + b"annex " * 100


def use(app) -> str:
    """A learner submits a plan with an annex; returns the stored attachment's storage name."""
    client = app.test_client()
    token = LtiActions(client).launch(user="5")
    resp = client.post("/app/projects/stage/project_plan", content_type="multipart/form-data",
                       data={"lt": token, "action": "submit", "confirm": "1", **PLAN, "annex": (io.BytesIO(PDF), "annex.pdf")})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    db = connect(app.config["DATABASE_URL"])
    try:
        return db.execute("SELECT storage_name FROM attachments").fetchone()[0]
    finally:
        db.close()


def cli_in(monkeypatch, data_dir: Path, *args):
    monkeypatch.setenv("LMS_BRIDGE_DATA", str(data_dir))
    monkeypatch.setenv("LMS_BRIDGE_URL", "http://localhost")
    monkeypatch.delenv("LMS_BRIDGE_DATABASE_URL", raising=False)
    return CliRunner().invoke(cli.main, list(args))


@pytest.fixture
def used(app):
    app.storage_name = use(app)
    return app


def fresh_target(tmp_path, name: str = "fresh") -> dict:
    """A new data directory and an empty store of the kind this run uses."""
    url = empty_pg_url() if TEST_POSTGRES else str(tmp_path / name / "lms_bridge.sqlite3")
    return {"DATA_DIR": str(tmp_path / name), "DATABASE_URL": url}


def holds_an_install(config: dict) -> bool:
    from lms_bridge.db.ops import applied_migrations

    if not TEST_POSTGRES and not Path(config["DATABASE_URL"]).exists():
        return False
    db = connect(config["DATABASE_URL"])
    try:
        return bool(applied_migrations(db))
    finally:
        db.close()


def keep_writing(url: str, stop: threading.Event, written: list) -> None:
    """The running install keeps committing (a heartbeat row per transaction) while a backup copies."""
    db = connect(url)
    while not stop.is_set():
        with write_transaction(db):
            db.execute("INSERT INTO worker_heartbeats (worker_id, started_at, beat_at) VALUES (?,?,?)",
                       [f"w{len(written)}", "2026-01-01", "2026-01-01"])
        written.append(1)
    db.close()


@pytest.mark.skipif(bool(TEST_POSTGRES), reason="SQLite only: the SQLite snapshot and the key files (PostgreSQL: "
                    "test_postgresql_backup_while_writing_then_restore_into_an_empty_database_keeps_every_row)")
def test_backup_while_writing_then_restore_into_a_fresh_directory_launches_with_the_data(used, tmp_path,
                                                                                       monkeypatch):
    data = Path(used.config["DATA_DIR"])
    stop, written = threading.Event(), []
    writer = threading.Thread(target=keep_writing, args=(used.config["DATABASE_URL"], stop, written))
    writer.start()
    try:
        out = tmp_path / "backup"
        result = cli_in(monkeypatch, data, "backup", "--out", str(out))
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    assert written, "the writer ran during the backup"
    manifest = json.loads((out / "manifest.json").read_text())
    paths = {f["path"] for f in manifest["files"]}
    assert f"uploads/{used.storage_name}" in paths and "secret_key" in paths
    assert any(p.startswith("keys/") and p.endswith(".pem") for p in paths)
    for f in manifest["files"]:
        assert hashlib.sha256((out / "data" / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert (out / "data" / "keys").stat().st_mode & 0o077 == 0 and out.stat().st_mode & 0o777 == 0o700
    snapshot = sqlite3.connect(out / "database.sqlite3")
    assert snapshot.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    snapshot.close()

    fresh = tmp_path / "fresh"
    restored = cli_in(monkeypatch, fresh / "data", "restore", str(out))
    assert restored.exit_code == 0, restored.output
    assert "restored the database" in restored.output
    assert (fresh / "data" / "uploads" / used.storage_name).read_bytes() == PDF
    pem = next((fresh / "data" / "keys").glob("*.pem"))
    assert pem.stat().st_mode & 0o777 == 0o600

    again = make_app(fresh)  # same URL, restored data directory
    client = again.test_client()
    token = LtiActions(client).launch(user="5")
    page = client.get("/app/projects/stage/project_plan", query_string={"lt": token}).get_data(as_text=True)
    assert "Accessible water points in Jakarta" in page and "annex.pdf" in page
    db = connect(again.config["DATABASE_URL"])
    att = db.execute("SELECT id FROM attachments").fetchone()[0]
    db.close()
    download = client.get(f"/app/projects/file/{att}", query_string={"lt": token})
    assert download.status_code == 200 and download.data == PDF
    download.close()
    jwks = client.get("/.well-known/jwks.json").get_json()
    assert pem.stem in {k["kid"] for k in jwks["keys"]}


def test_restore_refuses_a_damaged_backup_and_changes_nothing(used, tmp_path):
    out = tmp_path / "backup"
    bk.backup(used.config, out)
    upload = out / "data" / "uploads" / used.storage_name
    upload.write_bytes(upload.read_bytes() + b"tampered")
    target = fresh_target(tmp_path)
    with pytest.raises(bk.BackupError, match=f"uploads/{used.storage_name} \\(checksum mismatch\\)"):
        bk.restore(target, out)
    assert not holds_an_install(target)
    (out / "manifest.json").unlink()
    with pytest.raises(bk.BackupError, match="no manifest.json"):
        bk.restore(target, out)


def test_restore_refuses_a_running_install_and_an_existing_one_without_force(used, tmp_path):
    out = tmp_path / "backup"
    bk.backup(used.config, out)
    bk.hold_running_lock(used.config["DATA_DIR"])
    try:
        with pytest.raises(bk.BackupError, match="the install is running"):
            bk.restore(used.config, out, force=True)
    finally:
        bk._held.pop().close()
    with pytest.raises(bk.BackupError, match="already holds an install"):
        bk.restore(used.config, out)
    db = connect(used.config["DATABASE_URL"])
    with write_transaction(db):
        db.execute("DELETE FROM attachments")
    db.close()
    assert bk.restore(used.config, out, force=True)[0].startswith("restored the database")
    db = connect(used.config["DATABASE_URL"])
    assert db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0] == 1
    db.close()


def test_backup_refuses_a_non_empty_target(used, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(bk.BackupError, match="not empty"):
        bk.backup(used.config, tmp_path / "busy")


def test_projects_queries_still_see_the_plan_after_restore(used, tmp_path):
    out = tmp_path / "backup"
    bk.backup(used.config, out)
    fresh = fresh_target(tmp_path, "f")
    bk.restore(fresh, out)
    db = connect(fresh["DATABASE_URL"])
    assert q.project_of(db, (1, "1", "2"), "5")["title"] == PLAN["title"]
    db.close()


def test_backups_kept_inside_the_data_directory_are_not_copied_again(used):
    data = Path(used.config["DATA_DIR"])
    first = bk.backup(used.config, data / "backups" / "one")
    second = bk.backup(used.config, data / "backups" / "two")
    assert not [f for f in second["files"] if f["path"].startswith("backups/")]
    assert {f["path"] for f in first["files"]} == {f["path"] for f in second["files"]}


# --- PostgreSQL: pg_dump and pg_restore beside the data directory's files ---------------------------
@pytest.fixture
def pg_used(app):
    """A PostgreSQL install that launched once and holds an uploaded file."""
    LtiActions(app.test_client()).launch(user="5")
    uploads = Path(app.config["DATA_DIR"]) / "uploads"
    uploads.mkdir()
    (uploads / "a1b2c3.pdf").write_bytes(PDF)
    return app


def pg_cli(monkeypatch, config: dict, *args):
    monkeypatch.setenv("LMS_BRIDGE_DATABASE_URL", config["DATABASE_URL"])
    monkeypatch.setenv("LMS_BRIDGE_DATA", config["DATA_DIR"])
    monkeypatch.setenv("LMS_BRIDGE_URL", "http://localhost")
    return CliRunner().invoke(cli.main, list(args))


@postgres_only
def test_postgresql_backup_while_writing_then_restore_into_an_empty_database_keeps_every_row(pg_used, tmp_path,
                                                                                            monkeypatch):
    from lms_bridge.db.copy import compare
    from lti_config import keys

    stop, written = threading.Event(), []
    writer = threading.Thread(target=keep_writing, args=(pg_used.config["DATABASE_URL"], stop, written))
    writer.start()
    try:
        out = tmp_path / "backup"
        result = pg_cli(monkeypatch, pg_used.config, "backup", "--out", str(out))
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["database"]["path"] == "database.pgdump" and manifest["database"]["store"] == "postgresql"
    assert "keystore:m001_sealed_private_keys" in manifest["database"]["migrations"]
    paths = {f["path"] for f in manifest["files"]}
    assert {"uploads/a1b2c3.pdf", "secret_key"} <= paths and not any(p.startswith("keys/") for p in paths)
    assert (out / "database.pgdump").read_bytes()[:5] == b"PGDMP" and out.stat().st_mode & 0o777 == 0o700

    target = fresh_target(tmp_path)
    restored = pg_cli(monkeypatch, target, "restore", str(out))
    assert restored.exit_code == 0, restored.output
    assert (Path(target["DATA_DIR"]) / "uploads" / "a1b2c3.pdf").read_bytes() == PDF
    differing = {t.table: (t.source_rows, t.target_rows) for t in compare(pg_used.config["DATABASE_URL"],
                                                                           target["DATABASE_URL"]) if not t.ok}
    assert set(differing) <= {"worker_heartbeats"}  # rows the writer added after the dump's snapshot
    assert all(restored_rows < original for original, restored_rows in differing.values())

    monkeypatch.delenv("LMS_BRIDGE_DATABASE_URL")
    again = make_app(Path(target["DATA_DIR"]).parent, DATA_DIR=target["DATA_DIR"], DATABASE_URL=target["DATABASE_URL"])
    client = again.test_client()
    LtiActions(client).launch(user="5")
    db = connect(target["DATABASE_URL"])
    try:
        kid, _key = keys.active_signing_key(db, target["DATA_DIR"])  # the sealed key opens with the restored secret
    finally:
        db.close()
    assert kid in {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}


@postgres_only
def test_postgresql_restore_refuses_an_existing_install_unless_forced_then_replaces_it(pg_used, tmp_path):
    out = tmp_path / "backup"
    bk.backup(pg_used.config, out)
    db = connect(pg_used.config["DATABASE_URL"])
    try:
        before = db.execute("SELECT count(*) FROM launches").fetchone()[0]
        with write_transaction(db):
            db.execute("DELETE FROM launches")
    finally:
        db.close()
    assert before
    with pytest.raises(bk.BackupError, match="already holds an install"):
        bk.restore(pg_used.config, out)
    assert bk.restore(pg_used.config, out, force=True)[0].startswith("restored the database")
    db = connect(pg_used.config["DATABASE_URL"])
    try:
        assert db.execute("SELECT count(*) FROM launches").fetchone()[0] == before
    finally:
        db.close()


@postgres_only
def test_a_postgresql_backup_is_not_restored_into_a_sqlite_install(pg_used, tmp_path):
    out = tmp_path / "backup"
    bk.backup(pg_used.config, out)
    target = {"DATA_DIR": str(tmp_path / "s"), "DATABASE_URL": str(tmp_path / "s" / "lms_bridge.sqlite3")}
    with pytest.raises(bk.BackupError, match="holds a postgresql store .* `lms-bridge db copy`"):
        bk.restore(target, out)
    assert not Path(target["DATABASE_URL"]).exists()


def test_postgresql_backup_without_pg_dump_says_so_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(bk.shutil, "which", lambda name: None)
    monkeypatch.setattr(bk.glob, "glob", lambda pattern: [])
    config = {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": f"postgresql://lms@127.0.0.1:{free_port()}/lms"}
    with pytest.raises(bk.BackupError, match="pg_dump is not installed: install PostgreSQL's client tools"):
        bk.backup(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
