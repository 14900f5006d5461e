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

from conftest import LtiActions, make_app

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


def test_backup_while_writing_then_restore_into_a_fresh_directory_launches_with_the_data(used, tmp_path,
                                                                                       monkeypatch):
    data = Path(used.config["DATA_DIR"])
    stop, written = threading.Event(), []

    def keep_writing():  # the running install keeps committing while the backup copies
        db = connect(used.config["DATABASE_URL"])
        while not stop.is_set():
            with write_transaction(db):
                db.execute("INSERT INTO worker_heartbeats (worker_id, started_at, beat_at) VALUES (?,?,?)",
                           [f"w{len(written)}", "2026-01-01", "2026-01-01"])
            written.append(1)
        db.close()

    writer = threading.Thread(target=keep_writing)
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
    target = {"DATA_DIR": str(tmp_path / "fresh"), "DATABASE_URL": str(tmp_path / "fresh" / "lms_bridge.sqlite3")}
    with pytest.raises(bk.BackupError, match=f"uploads/{used.storage_name} \\(checksum mismatch\\)"):
        bk.restore(target, out)
    assert not Path(target["DATABASE_URL"]).exists()
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
    fresh = {"DATA_DIR": str(tmp_path / "f"), "DATABASE_URL": str(tmp_path / "f" / "lms_bridge.sqlite3")}
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
