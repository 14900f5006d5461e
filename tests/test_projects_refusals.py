"""Bad input gets a clear refusal and changes nothing: files, cut-offs, other people's projects, forged posts."""
from __future__ import annotations

import os
from html import unescape
from pathlib import Path

from urllib3 import encode_multipart_formdata

from lms_bridge.db import connect
from lms_bridge.db import projects as q
from lms_bridge.projects.rubric import DEFAULT_RUBRIC

SCOPE = (1, "1", "2")
REPORT = {"what_was_done": "Audit", "results": "Good", "lessons_learned": "Many", "next_steps": "More",
          "action_plan": "Scale up", "library_consent": "none"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def db_of(app):
    return connect(app.config["DATABASE_URL"])


def uploads_dir(app) -> Path:
    return Path(app.config["DATA_DIR"]) / "uploads"


def stored_files(app) -> list:
    d = uploads_dir(app)
    return sorted(os.listdir(d)) if d.exists() else []


def post_report(client, token, blob, name, action="submit"):
    """A multipart body built in memory (the test client would spool a large one to an unclosed temp file)."""
    confirm = {"confirm": "1"} if action == "submit" else {}
    body, content_type = encode_multipart_formdata({"lt": token, "action": action, **confirm, **REPORT,
                                                    "attachment": (name, blob, "application/octet-stream")})
    return client.post("/app/projects/stage/project_report", data=body, content_type=content_type)


def test_attachment_is_stored_outside_the_web_root_and_served_only_to_the_group_and_staff(app, client, lti):
    token = lti.launch(user="5", activity="project_report")
    assert post_report(client, token, PDF, "../../report.pdf").status_code == 303
    [att] = [dict(r) for r in db_of(app).query("SELECT * FROM attachments")]
    assert att["display_name"] == "report.pdf" and att["storage_name"].endswith(".pdf")
    assert stored_files(app) == [att["storage_name"]]
    assert not str(uploads_dir(app)).startswith(str(Path(app.static_folder)))
    own = client.get(f"/app/projects/file/{att['id']}", query_string={"lt": token})
    assert own.status_code == 200 and own.data == PDF and "attachment" in own.headers["Content-Disposition"]
    own.close()
    other = client.get(f"/app/projects/file/{att['id']}", query_string={"lt": lti.launch(user="6")})
    assert other.status_code == 403 and b"another learner" in other.data
    staff = client.get(f"/app/projects/file/{att['id']}", query_string={"lt": lti.launch(user="3")})
    assert staff.status_code == 200
    staff.close()
    assert client.get(f"/app/projects/file/{att['id']}").status_code == 401


def test_disguised_and_oversized_files_are_refused_and_nothing_is_saved(app, client, lti):
    token = lti.launch(user="5", activity="project_report")
    resp = post_report(client, token, b"MZ\x90\x00" + b"\x00" * 64, "report.pdf")
    assert resp.status_code == 400 and "report.pdf is not a PDF document (its content is a Windows executable)" in \
        resp.get_data(as_text=True)
    assert "Scale up" in resp.get_data(as_text=True)  # what was typed comes back
    big = PDF + b"0" * (app.config["MAX_UPLOAD_MB"] * 1024 * 1024)
    resp = post_report(client, token, big, "big.pdf")
    assert resp.status_code in (400, 413) and "limit" in resp.get_data(as_text=True)
    assert stored_files(app) == []
    assert q.project_of(db_of(app), SCOPE, "5") is None
    assert list(db_of(app).query("SELECT * FROM attachments")) == []


def test_submission_after_cut_off_is_refused_unless_extended(app, client, lti):
    fac = lti.launch(user="3")
    client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_report", "due": "2020-01-01T12:00",
                                                 "cutoff": "2020-01-02T12:00"})
    token = lti.launch(user="5", activity="project_report")
    post_report(client, token, PDF, "r.pdf", action="save_draft")
    before = q.submission(db_of(app), q.project_of(db_of(app), SCOPE, "5")["id"], "project_report")
    files_before = stored_files(app)
    resp = post_report(client, token, PDF, "r.pdf")
    assert resp.status_code == 403 and "Submissions closed at 2020-01-02 12:00 Asia/Jakarta" not in resp.get_data(as_text=True)
    assert ("Submissions closed at Thu, Jan 2, 2020, 18:00 (Asia/Jakarta, UTC+07:00) (the cut-off date)"
            in unescape(resp.get_data(as_text=True)))
    after = q.submission(db_of(app), before["project_id"], "project_report")
    assert after["status"] == "draft" and after["updated_at"] == before["updated_at"]
    assert stored_files(app) == files_before
    client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_report", "subject": "user:5",
                                                 "until": "2099-01-01T12:00"})
    assert post_report(client, token, PDF, "r.pdf").status_code == 303
    assert q.submission(db_of(app), before["project_id"], "project_report")["status"] == "submitted"


def test_learner_cannot_reach_facilitator_pages_or_act_on_reviews(app, client, lti):
    token = lti.launch(user="5")
    for path in ("/app/projects/dashboard", "/app/projects/export.csv", "/app/projects/deadlines",
                 "/app/projects/rubric", "/app/projects/audit", "/app/projects/review/1/project_plan"):
        assert client.get(path, query_string={"lt": token}).status_code == 403, path
    client.post("/app/projects/stage/project_plan", data={"lt": token, "action": "save_draft", "title": "Mine"})
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    other = lti.launch(user="6")
    resp = client.post(f"/app/projects/review/{pid}/project_plan", data={"lt": other, "action": "grade"})
    assert resp.status_code == 403
    page = client.get("/app/projects/stage/project_plan", query_string={"lt": other}).get_data(as_text=True)
    assert "Mine" not in page


def test_forged_posts_without_a_valid_launch_token_change_nothing(app, client, lti):
    token = lti.launch(user="5")
    client.post("/app/projects/stage/project_plan", data={"lt": token, "action": "save_draft", "title": "Real"})
    forged = client.post("/app/projects/stage/project_plan", data={"action": "save_draft", "title": "Forged"})
    assert forged.status_code == 401
    tampered = client.post("/app/projects/stage/project_plan",
                           data={"lt": token[:-2] + "xx", "action": "save_draft", "title": "Forged"})
    assert tampered.status_code == 403
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    assert q.submission(db_of(app), pid, "project_plan")["data"]["title"] == "Real"
    fac_forged = client.post(f"/app/projects/review/{pid}/project_plan", data={"action": "approve"})
    assert fac_forged.status_code == 401


def test_invalid_facilitator_input_is_explained(app, client, lti):
    fac = lti.launch(user="3")
    bad = client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "due": "2026-12-08T10:00",
                                                       "cutoff": "2026-12-01T10:00"})
    assert bad.status_code == 400 and "is before the due date" in bad.get_data(as_text=True)
    assert q.deadlines(db_of(app), SCOPE) == {}
    # every criterion ticked for removal: refused, and the form comes back with the ticks as typed
    removed = {"lt": fac, "action": "save", "title": "Emptied"}
    for i, criterion in enumerate(DEFAULT_RUBRIC.criteria):
        removed.update({f"c{i}_id": criterion.id, f"c{i}_title": criterion.title, f"c{i}_remove": "1"})
    rubric = client.post("/app/projects/rubric", data=removed)
    html = rubric.get_data(as_text=True)
    assert rubric.status_code == 400 and "at least one criterion" in html
    assert 'value="Emptied"' in html and html.count("checked") == len(DEFAULT_RUBRIC.criteria)
    bad_points = {"lt": fac, "action": "save", "title": "R", "c0_title": "Local ownership",
                  "c0_l0_title": "Weak", "c0_l0_points": "none", "c0_l1_title": "Strong", "c0_l1_points": "3"}
    rubric = client.post("/app/projects/rubric", data=bad_points)
    html = rubric.get_data(as_text=True)
    assert rubric.status_code == 400 and "points must be a number" in html
    assert 'value="Local ownership"' in html and 'value="none"' in html  # nothing typed is lost
    assert q.rubric_data(db_of(app), SCOPE) is None
