"""The tool installed in a real Moodle 4.5 as the README tells an admin, driven in headless Chromium as
learners, teachers and an admin would; every result is read back from Moodle itself (its database).

The flows run in order and share `state`; a flow whose prerequisite failed is skipped, not failed twice.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from moodle_site import ADMIN_PASSWORD, PASSWORD, WWWROOT

TITLES = {"project_plan": "Course project: project plan", "project_report": "Course project: project report",
          "final_presentation": "Course project: final presentation", "consultations": "Expert consultations"}
CRITERIA = ("hrba_principles", "sdg_linkage", "participation", "feasibility", "indicators")
TINY_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
T = 30_000  # ms: Moodle pages on a shared 2-core machine


def need(state: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        pytest.skip(f"an earlier flow did not leave {', '.join(missing)}")


def wait_for(check, timeout: float = 60, every: float = 1.0, what: str = "condition"):
    """Poll Moodle until `check()` returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    return last


def login(browser, state: dict, username: str, tz: str = "Asia/Jakarta"):
    """A browser of one's own (own cookies), logged in to Moodle with its login form."""
    context = browser.new_context(timezone_id=tz, locale="en-GB", accept_downloads=True)
    context.set_default_timeout(T)
    page = context.new_page()
    page.goto(f"{WWWROOT}/login/index.php")
    page.fill("#username", username)
    page.fill("#password", ADMIN_PASSWORD if username == "admin" else PASSWORD)
    page.click("#loginbtn")
    page.wait_for_url(lambda u: "login/index.php" not in u)
    state["_last_page"] = page
    return page


def tool_frame(page, cmid: int, extra: str = ""):
    """Open an activity in Moodle and return the tool's frame inside Moodle's page."""
    page.goto(f"{WWWROOT}/mod/lti/view.php?id={cmid}{extra}")
    return page.frame_locator("#contentframe")


# ---------------------------------------------------------------------------------------------------
def register_in_moodle(admin, tool) -> None:
    """Manage tools › Tool URL › Add LTI Advantage; the tool registers in Moodle's frame; Close."""
    if tool.has_command("platforms", "invite"):
        out = tool.cli("platforms", "invite").stdout
        url = re.search(r"https?://\S+/lti/register/\S+", out).group(0)
    else:
        url = f"{tool.url}/lti/register"
    admin.goto(f"{WWWROOT}/mod/lti/toolconfigure.php")
    admin.fill("#tool-url", url)
    admin.click("#tool-create-button")
    frame = admin.frame_locator("#external-registration-container iframe, #external-registration-page-container iframe, iframe")
    frame.locator("#registered").wait_for()
    frame.locator("#close").click()


def tool_types(moodle) -> list[tuple]:
    return moodle.sql("SELECT id, state, coursevisible, clientid FROM mdl_lti_types WHERE baseurl LIKE %s ORDER BY id",
                      "http://localhost:%")


def test_a_registration_and_activation(moodle, tool, browser, state):
    """(a) dynamic registration in Moodle's admin pages, re-registration after a deleted pending tool, activation, activity chooser"""
    admin = login(browser, state, "admin")
    register_in_moodle(admin, tool)
    first = wait_for(lambda: tool_types(moodle), 30)
    assert first and first[0][1] == "2", f"a registered tool is Pending (state 2) in Moodle: {first}"
    # The admin deletes the pending registration and registers again (Moodle gives a new client id).
    admin.goto(f"{WWWROOT}/mod/lti/toolconfigure.php")
    card = admin.locator(f".tool-card[data-type-id='{first[0][0]}']")
    card.locator("a.delete").click()
    admin.locator(".modal-dialog button:has-text('Delete')").click()
    assert wait_for(lambda: not tool_types(moodle), 30), "the pending tool is deleted in Moodle"
    register_in_moodle(admin, tool)
    types = wait_for(lambda: tool_types(moodle), 30)
    assert len(types) == 1 and types[0][1] == "2"
    type_id = int(types[0][0])
    # Activate it in Manage tools.
    admin.goto(f"{WWWROOT}/mod/lti/toolconfigure.php")
    admin.locator(f".tool-card[data-type-id='{type_id}'] a.activate").click()
    assert wait_for(lambda: tool_types(moodle)[0][1] == "1", 30), "Activate makes the tool configured (state 1)"
    # "Show in activity chooser": the admin edits the tool (Manage tools › the tool's cog).
    admin.goto(f"{WWWROOT}/mod/lti/toolconfigure.php")
    admin.locator(f".tool-card[data-type-id='{type_id}'] a.edit").click()
    admin.select_option("#id_lti_coursevisible", "2")
    admin.click("#id_submitbutton")
    admin.wait_for_url("**/toolconfigure.php**")
    types = tool_types(moodle)
    assert types == [(str(type_id), "1", "2", types[0][3])], types
    config = dict(moodle.sql("SELECT name, value FROM mdl_lti_types_config WHERE typeid = %s", type_id))
    assert config.get("ltiservice_gradesynchronization") == "2" and config.get("contentitem") == "1", config
    state.update(type_id=type_id, client_id=types[0][3])
    admin.context.close()


# ---------------------------------------------------------------------------------------------------
def lti_activities(moodle, course: int) -> dict[str, dict]:
    rows = moodle.sql(
        "SELECT l.id, cm.id, l.name, l.toolurl, l.typeid, l.instructorchoiceacceptgrades, cm.completion "
        "FROM mdl_lti l JOIN mdl_course_modules cm ON cm.instance = l.id "
        "AND cm.module = (SELECT id FROM mdl_modules WHERE name = 'lti') WHERE l.course = %s AND cm.deletioninprogress = 0 "
        "ORDER BY l.id", course)
    found = {}
    for lti_id, cmid, name, url, typeid, accept, completion in rows:
        m = re.search(r"activity=(\w+)", url)
        found.setdefault(m.group(1) if m else url, []).append(
            {"lti": int(lti_id), "cmid": int(cmid), "name": name, "typeid": typeid, "accept": accept,
             "completion": completion})
    return found


def own_grade_items(moodle, course: int, lti_id: int) -> list[tuple]:
    return moodle.sql("SELECT id, itemname, grademax FROM mdl_grade_items WHERE courseid = %s AND itemtype = 'mod' "
                      "AND itemmodule = 'lti' AND iteminstance = %s", course, lti_id)


def open_chooser_and_pick_tool(page, course: int, section: int) -> None:
    """Course page › Edit mode › Add an activity or resource › the tool (shown in the activity chooser)."""
    page.goto(f"{WWWROOT}/course/view.php?id={course}")
    if not page.locator("input[name=setmode]").is_checked():
        with page.expect_navigation():
            page.locator("input[name=setmode]").click()
    page.locator(f"#section-{section} button[data-action=open-chooser]").first.click()
    option = page.locator("[data-region=chooser-option-container]", has_text="lms_bridge").first
    option.locator("a[data-action=add-chooser-option]").click()
    page.wait_for_url("**/course/modedit.php**")


def select_content(page, activities: list[str]) -> None:
    """'Select content' opens the tool's deep linking page in Moodle's dialogue; the teacher ticks activities."""
    page.click("#id_selectcontent")
    picker = page.frame_locator("#contentitem-page-iframe")
    for key in activities:
        picker.locator(f"input[name=activity][value={key}]").check()
    picker.locator("button[type=submit]").click()
    page.locator("#contentitem-page-iframe").wait_for(state="detached")


def deep_link(page, course: int, section: int, activities: list[str], *, completion_on_grade: bool) -> None:
    open_chooser_and_pick_tool(page, course, section)
    select_content(page, activities)
    if len(activities) == 1:
        page.wait_for_function("document.querySelector('#id_name').value.length > 0")
        page.locator("a.collapseexpand").first.click()
        accept = page.locator("#id_instructorchoiceacceptgrades")
        if not accept.is_checked():
            accept.check()
        if completion_on_grade:
            page.locator("input[name=completion][value='2']").check()
            page.locator("#id_completionusegrade").check()
    with page.expect_navigation(url=re.compile(r"course/view\.php")):
        page.click("#id_submitbutton2")


def test_b_teacher_adds_activities_by_deep_linking(moodle, tool, browser, state):
    """(b) an editing teacher adds plan, report, presentation and consultations by deep linking, accepting grades"""
    need(state, "type_id")
    course = moodle.info["course"]
    teacher = login(browser, state, "facilitator1", tz="Asia/Seoul")
    deep_link(teacher, course, 1, ["project_plan"], completion_on_grade=True)
    deep_link(teacher, course, 2, ["project_report", "final_presentation", "consultations"], completion_on_grade=False)
    found = wait_for(lambda: len(lti_activities(moodle, course)) == 4 and lti_activities(moodle, course), 30)
    assert found and set(found) == set(TITLES), found
    for key, [act] in found.items():
        assert act["name"] == TITLES[key] and act["typeid"] == str(state["type_id"]), act
        items = own_grade_items(moodle, course, act["lti"])
        if key == "consultations":
            assert items == [], f"an ungraded activity has no grade column: {items}"
        else:
            assert act["accept"] == "1" and len(items) == 1 and float(items[0][2]) == 100, (act, items)
    assert found["project_plan"][0]["completion"] == "2", "plan completes on receiving a grade"
    state["acts"] = {k: v[0] for k, v in found.items()}
    state["teacher"] = teacher
