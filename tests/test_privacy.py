"""Personal data: export of one person, erasure without a trace, retention of finished courses, the data map."""
from __future__ import annotations

import json
import re
import zipfile
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest
from click.testing import CliRunner

from lms_bridge.cli import main
from lms_bridge.db import booking as bq
from lms_bridge.db import connect, privacy as pdb, ts, utcnow, write_transaction
from lms_bridge.db import outbox as oq
from lms_bridge.db import projects as q
from lms_bridge.privacy import service
from tests.test_practices import REPORT, curate_and_publish, graded_project
from tests.test_projects_flow import PLAN, SCOPE, post_stage

ROOT = Path(__file__).resolve().parents[1]
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LINA = ("Lina", "Santoso", "learner1")  # sandbox user 5
# Columns that hold an LMS user id; after erasure none may hold the erased id.
USER_ID_COLUMNS = {"user_id", "owner_id", "participant_id", "author_id", "actor_id", "submitted_by", "uploaded_by",
                   "updated_by", "granted_by", "created_by", "subject"}


def db_of(app):
    return connect(app.config["DATABASE_URL"])


def issuer_of(app) -> str:
    return db_of(app).execute("SELECT issuer FROM platforms WHERE id = 1").fetchone()[0]


def seed_person(app, client, lti, user="5"):
    """The person's data in every area: launch, project with an upload, consent, booking, notice, outbox job."""
    from tests.test_projects_refusals import post_report

    token = lti.launch(user=user)
    assert post_stage(client, token, data=PLAN).status_code == 303
    assert post_report(client, token, PDF, "report.pdf").status_code == 303
    db = db_of(app)
    with write_transaction(db):
        expert = bq.upsert_expert(db, SCOPE, "4", name="Eun-ji Expert", email="expert1@example.org", timezone="Asia/Seoul")
        start = utcnow() + timedelta(days=3)
        bq.insert_slot(db, expert, ts(start), ts(start + timedelta(hours=1)), 1)
        slot = db.execute("SELECT id FROM booking_slots WHERE expert_id = ?", [expert]).fetchone()[0]
        bq.take_seat(db, slot)
        bq.insert_booking(db, SCOPE, {"slot_id": slot, "expert_id": expert, "participant_id": user,
                                      "participant_name": "Lina Santoso", "participant_email": "lina@example.org",
                                      "participant_tz": "Asia/Jakarta", "start_utc": ts(start),
                                      "end_utc": ts(start + timedelta(hours=1)), "topic": "Gender equality",
                                      "question": "How do we audit water points?", "project": "", "status": "booked"})
        bq.add_notice(db, SCOPE, user, "Your booking is confirmed.")
        oq.enqueue(db, platform_id=1, kind="ws_message", payload={"user_id": user, "text": "Hello Lina Santoso"})
    return token


def cli_env(app) -> dict:
    """The command line on the app's own store (its data folder, and its PostgreSQL database on that run)."""
    return {"LMS_BRIDGE_DATA": app.config["DATA_DIR"], "LMS_BRIDGE_DATABASE_URL": app.config["DATABASE_URL"]}


def tool_tables(db) -> dict[str, list[str]]:
    """The tool's tables and their columns, on either store (the sandbox LMS's own left out: it plays Moodle)."""
    return {t: cols for t, cols in pdb.table_columns(db).items() if not t.startswith("sb_")}


def all_text(db) -> str:
    """Every value of every table except the sandbox LMS's own (it plays Moodle, not the tool)."""
    out = []
    for table in tool_tables(db):
        for row in db.execute(f"SELECT * FROM {table}"):
            out.append(" ".join(str(v) for v in row))
    return "\n".join(out)


# --- export ------------------------------------------------------------------------------------

def test_export_holds_every_area_of_one_person_and_nothing_of_another(app, client, lti, tmp_path):
    seed_person(app, client, lti, user="5")
    other = lti.launch(user="6")
    post_stage(client, other, data=dict(PLAN, title="Teuea's seawall plan"))
    result = CliRunner().invoke(main, ["privacy", "export", "--issuer", issuer_of(app), "--user", "5",
                                       "--out", str(tmp_path / "out")], env=cli_env(app))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    names = {p.name for p in out.iterdir()}
    assert {"launches.json", "courses.json", "projects.json", "consultations.json", "notices.json",
            "messages_queued.json", "summary.html", "files"} <= names
    projects = json.loads((out / "projects.json").read_text())
    assert projects[0]["project"]["title"] == PLAN["title"]
    assert {s["stage"] for s in projects[0]["submissions"]} == {"project_plan", "project_report"}
    assert [f.read_bytes() for f in (out / "files").iterdir()] == [PDF]
    assert "How do we audit water points?" in (out / "consultations.json").read_text()
    everything = "".join(p.read_text() for p in out.glob("*.json")) + (out / "summary.html").read_text()
    assert "Teuea" not in everything and "seawall" not in everything and "learner2" not in everything
    assert "record of truth" in (out / "summary.html").read_text()


# --- erase -------------------------------------------------------------------------------------

def test_erase_leaves_no_trace_of_the_person_and_keeps_the_group_members_work(app, client, lti):
    seed_person(app, client, lti, user="5")
    db = db_of(app)
    pid = q.project_of(db, SCOPE, "5")["id"]
    with write_transaction(db):  # a group of two, whatever the plan's state allows in the form
        db.execute("INSERT INTO project_members VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING", [pid, *SCOPE, "6", "coauthor"])
    lti.launch(user="6")
    uploads = Path(app.config["DATA_DIR"]) / "uploads"
    files_before = sorted(uploads.iterdir())

    result = CliRunner().invoke(main, ["privacy", "erase", "--issuer", issuer_of(app), "--user", "5", "--yes"],
                                env=cli_env(app))
    assert result.exit_code == 0, result.output
    assert "group_projects_left: 1" in result.output and "record of truth" in result.output

    db = db_of(app)
    text = all_text(db)
    for word in LINA + ("lina@example.org",):
        assert word not in text, word
    for table, cols in tool_tables(db).items():
        for col in USER_ID_COLUMNS & set(cols):
            hits = db.execute(f"SELECT count(*) FROM {table} WHERE {col} IN ('5', 'user:5')").fetchone()[0]
            assert hits == 0, (table, col)
    assert not [r for r in db.query("SELECT payload FROM outbox") if json.loads(r["payload"]).get("user_id") == "5"]
    project = q.project_of(db, SCOPE, "6")
    assert project["id"] == pid and project["owner_id"] == "6"  # the co-author keeps the work
    assert q.submission(db, pid, "project_plan")["data"]["title"] == PLAN["title"]
    assert sorted(uploads.iterdir()) == files_before  # the group's file stays with the group


def test_erase_deletes_a_project_written_alone_with_its_files(app, client, lti):
    seed_person(app, client, lti, user="7")
    uploads = Path(app.config["DATA_DIR"]) / "uploads"
    assert list(uploads.iterdir())
    report = service.erase(db_of(app), issuer_of(app), "7", app.config["DATA_DIR"])
    assert report["done"]["projects_deleted"] == 1 and report["done"]["files_removed"] == 1
    assert list(uploads.iterdir()) == []
    assert db_of(app).execute("SELECT count(*) FROM projects").fetchone()[0] == 0


def test_erasing_a_group_member_who_withheld_nothing_keeps_the_library_consistent(app, client, lti):
    pid = graded_project(app, client, lti, consent="named")
    entry_id = curate_and_publish(client, lti, pid)
    service.erase(db_of(app), issuer_of(app), "5", app.config["DATA_DIR"])
    db = db_of(app)
    assert db.execute("SELECT count(*) FROM practices WHERE id = ?", [entry_id]).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM practices_fts").fetchone()[0] == 0


def test_unknown_site_is_a_one_line_error(app):
    result = CliRunner().invoke(main, ["privacy", "erase", "--issuer", "https://nowhere.example", "--user", "5",
                                       "--yes"], env=cli_env(app))
    assert result.exit_code != 0 and "No LMS with issuer" in result.output


# --- retention ---------------------------------------------------------------------------------

def age_course(db, context_id: str, days: int) -> None:
    old = ts(utcnow() - timedelta(days=days))
    with write_transaction(db):
        for table, col in (("launches", "created_at"), ("roster", "updated_at"), ("audit", "created_at"),
                           ("bookings", "updated_at")):
            db.execute(f"UPDATE {table} SET {col} = ? WHERE context_id = ?", [old, context_id])
        db.execute("UPDATE submissions SET updated_at = ? WHERE project_id IN (SELECT id FROM projects"
                   " WHERE context_id = ?)", [old, context_id])


def test_retention_removes_expired_courses_only_and_keeps_published_practices_anonymised(app, client, lti):
    pid = graded_project(app, client, lti, consent="named")
    entry_id = curate_and_publish(client, lti, pid)
    other_course = lti.launch(user="6", activity="home", course="3")
    assert other_course
    db = db_of(app)
    age_course(db, "2", days=800)
    plan = service.retention_plan(db, 730)
    assert [c["context_id"] for c in plan] == ["2"]

    service.apply_retention(db, 730, app.config["DATA_DIR"])
    db = db_of(app)
    assert db.execute("SELECT count(*) FROM roster WHERE context_id = '2'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM submissions").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM launches WHERE context_id = '3'").fetchone()[0] == 1  # the live course
    entry = db.execute("SELECT state, retained_at FROM practices WHERE id = ?", [entry_id]).fetchone()
    assert entry[0] == "published" and entry[1]
    page = client.get("/library/", query_string={"lt": lti.launch(user="6", activity="home", course="3")})
    html = page.get_data(as_text=True)
    assert "Ramps for every water point" in html
    public_id = db.execute("SELECT public_id FROM practices WHERE id = ?", [entry_id]).fetchone()[0]
    entry_page = client.get(f"/library/e/{public_id}", query_string={"lt": lti.launch(user="6", activity="home",
                                                                                          course="3")})
    assert "Shared anonymously" in entry_page.get_data(as_text=True) and "Lina" not in entry_page.get_data(as_text=True)
    assert service.retention_due(db) is False  # once a day


def test_retention_command_reports_before_it_removes(app, client, lti):
    lti.launch(user="5")
    age_course(db_of(app), "2", days=800)
    env = cli_env(app)
    report = CliRunner().invoke(main, ["privacy", "retention"], env=env)
    assert report.exit_code == 0 and "to remove" in report.output
    assert db_of(app).execute("SELECT count(*) FROM launches").fetchone()[0] == 1
    applied = CliRunner().invoke(main, ["privacy", "retention", "--apply"], env=env)
    assert applied.exit_code == 0 and "removed" in applied.output
    assert db_of(app).execute("SELECT count(*) FROM launches").fetchone()[0] == 0


# --- who may -----------------------------------------------------------------------------------

@pytest.mark.parametrize("user, status", [("5", 403), ("3", 403), ("2", 200)])
def test_privacy_page_is_for_administrators_only(client, lti, user, status):
    token = lti.launch(user=user, activity="home")
    assert client.get("/admin/privacy/", query_string={"lt": token}).status_code == status
    assert client.post("/admin/privacy/erase", data={"lt": token, "user": "6", "confirm": "6"}).status_code == (
        200 if status == 200 else 403)


def test_admin_page_exports_a_zip_and_erases_after_confirmation(app, client, lti):
    seed_person(app, client, lti, user="5")
    admin = lti.launch(user="2", activity="home")
    assert 'id="privacy-link"' in client.get("/app/home", query_string={"lt": admin}).get_data(as_text=True)
    resp = client.post("/admin/privacy/export", data={"lt": admin, "user": "5"})
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    names = zipfile.ZipFile(BytesIO(resp.data)).namelist()
    assert "summary.html" in names and "projects.json" in names and any(n.startswith("files/") for n in names)
    unconfirmed = client.post("/admin/privacy/erase", data={"lt": admin, "user": "5", "confirm": "6"})
    assert unconfirmed.status_code == 400 and q.project_of(db_of(app), SCOPE, "5") is not None
    done = client.post("/admin/privacy/erase", data={"lt": admin, "user": "5", "confirm": "5"})
    assert done.status_code == 200 and 'id="erase-report"' in done.get_data(as_text=True)
    assert q.project_of(db_of(app), SCOPE, "5") is None


# --- the data map ------------------------------------------------------------------------------

PERSONAL_HINT = re.compile(r"(^|_)(user_id|owner_id|participant_id|author_id|actor_id|submitted_by|uploaded_by|"
                           r"updated_by|granted_by|created_by|name|email|claims|question)$")
NOT_PERSONAL = {  # tables whose matching columns hold no person's data, with the reason
    "platforms": "an LMS site's name", "tool_keys": "keys", "sync_lineitems": "gradebook columns",
    "worker_heartbeats": "worker ids", "privacy_runs": "task runs", "_sqlite_migrations": "migration names",
    "_lms_bridge_migrations": "migration names (PostgreSQL's record)",
    "demo_seeds": "names of demo seed functions",
}


def test_data_map_covers_every_table_with_personal_columns(app):
    db = db_of(app)
    covered = {p.table for p in pdb.PERSONAL}
    readme = (ROOT / "README.md").read_text()
    data_map = readme[readme.index("## Personal data"):]
    data_map = data_map[:data_map.index("\n## ", 5)]
    missing_code, missing_doc = [], []
    for table, cols in tool_tables(db).items():
        if table in NOT_PERSONAL or not any(PERSONAL_HINT.search(c) for c in cols):
            continue
        if table not in covered:
            missing_code.append(table)
        if f"`{table}`" not in data_map:
            missing_doc.append(table)
    assert not missing_code, f"tables with personal columns that export/erase do not handle: {missing_code}"
    assert not missing_doc, f"tables with personal columns missing from the README data map: {missing_doc}"
