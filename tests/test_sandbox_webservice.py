"""The sandbox's Moodle REST web services and its fault injection."""
from __future__ import annotations

import json


from lms_bridge.db import lti as lq
from lms_bridge.db import sandbox as sq
from lms_bridge.sandbox.webservice import link_tool

from conftest import FIXTURES, TOOL_URL

WS = "/sandbox/webservice/rest/server.php"


def call(client, fn, token="sandbox-ws-token", fmt="json", **params):
    data = {"wstoken": token, "wsfunction": fn, **params}
    resp = client.post(WS, query_string={"moodlewsrestformat": fmt} if fmt else {}, data=data)
    assert resp.status_code == 200
    return resp.get_json() if fmt else resp.get_data(as_text=True)


def recorded(name):
    return json.loads((FIXTURES / "ws" / name).read_text())["response"]


def test_errors_are_http_200_with_moodle_bodies(client):
    assert call(client, "core_webservice_get_site_info", token="wrong") == \
        recorded("core_webservice_get_site_info__invalid_token.json")
    assert call(client, "core_user_create_users") == recorded("core_user_create_users__function_not_in_service.json")
    assert call(client, "core_does_not_exist") == recorded("core_does_not_exist__unknown_function.json")
    assert call(client, "core_course_get_course_module_by_instance", module="lti", instance="abc") == \
        recorded("core_course_get_contents__invalid_param_type.json")
    assert call(client, "core_grades_update_grades", source="x", courseid="2", component="mod_lti",
                activityid="1", itemnumber="0", **{"grades[0][studentid]": "7", "grades[0][grade]": "66"}) == \
        recorded("core_grades_update_grades__lti_activity_by_instanceid.json")
    assert call(client, "gradereport_user_get_grade_items", courseid="9999") == \
        recorded("gradereport_user_get_grade_items__nonexistent_course.json")


def test_site_info_and_xml_without_format(client):
    info = call(client, "core_webservice_get_site_info")
    assert set(recorded("core_webservice_get_site_info.json")) >= set(info) - {"userprivateaccesskey"}
    assert info["siteurl"] == TOOL_URL + "/sandbox"
    assert "core_calendar_delete_calendar_events" in {f["name"] for f in info["functions"]}
    xml = call(client, "core_webservice_get_site_info", fmt=None)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>\n<SINGLE>\n<KEY name="sitename">')


def test_course_module_grades_and_completion(client, db):
    cm = call(client, "core_course_get_course_module_by_instance", module="lti", instance="2")["cm"]
    assert cm["id"] == 6 and set(cm) == set(recorded("core_course_get_course_module_by_instance__lti.json")["cm"])
    assert call(client, "core_grades_update_grades", source="lms_bridge", courseid="2", component="mod_lti",
                activityid="5", itemnumber="0", **{"grades[0][studentid]": "7", "grades[0][grade]": "77"}) == 0
    assert sq.ws_grades(db, "7")[0]["grade"] == 77
    items = call(client, "gradereport_user_get_grade_items", courseid="2", userid="7")["usergrades"][0]
    assert {i["cmid"]: i["graderaw"] for i in items["gradeitems"] if i.get("cmid")}[5] == 77
    done = call(client, "core_completion_override_activity_completion_status", userid="6", cmid="5", newstate="1")
    assert set(done) == set(recorded("core_completion_override_activity_completion_status__manual_page_complete.json"))
    assert done["state"] == 1 and done["overrideby"] == 8
    assert call(client, "core_completion_override_activity_completion_status", userid="6", cmid="4",
                newstate="1")["tracking"] == 0
    assert call(client, "core_completion_override_activity_completion_status", userid="6", cmid="9999",
                newstate="1") == recorded("core_completion_override_activity_completion_status__nonexistent_cm.json")
    statuses = call(client, "core_completion_get_activities_completion_status", courseid="2", userid="6")["statuses"]
    assert {s["cmid"]: s["state"] for s in statuses}[5] == 1
    assert sq.completion(db, "6")[0]["cmid"] == 5


def test_calendar_messages_and_enrolment(client, db):
    made = call(client, "core_calendar_create_calendar_events", **{
        "events[0][name]": "Deadline: project plan", "events[0][courseid]": "2", "events[0][eventtype]": "course",
        "events[0][timestart]": "1796030007", "events[0][timeduration]": "0"})
    shape = recorded("core_calendar_create_calendar_events__course_event.json")
    assert set(made) == set(shape) and set(made["events"][0]) == set(shape["events"][0])
    listed = call(client, "core_calendar_get_calendar_events", **{"events[courseids][0]": "2",
                                                                    "options[timestart]": "1796000000"})
    assert [e["name"] for e in listed["events"]] == ["Deadline: project plan"]
    assert call(client, "core_calendar_delete_calendar_events", **{
        "events[0][eventid]": str(made["events"][0]["id"]), "events[0][repeat]": "0"}) is None
    assert sq.events(db) == []
    sent = call(client, "core_message_send_instant_messages", **{
        "messages[0][touserid]": "5", "messages[0][text]": "Reminder", "messages[0][clientmsgid]": "m1",
        "messages[1][touserid]": "9999", "messages[1][text]": "Hello"})
    assert sent[0]["text"] == "<p>Reminder</p>" and sent[0]["msgid"] > 0
    assert sent[1] == recorded("core_message_send_instant_messages__to_nonexistent_user.json")[0]
    assert [m["touserid"] for m in sq.messages(db)] == ["5"]
    users = call(client, "core_enrol_get_enrolled_users", courseid="2")
    assert {u["id"]: u["roles"][0]["shortname"] for u in users} == {3: "editingteacher", 4: "teacher", 5: "student",
                                                                    6: "student", 7: "student"}


def test_link_tool_stores_the_ws_credentials(app, db):
    platform_id = link_tool(db, TOOL_URL, token="t0k")
    assert lq.get_moodle_ws(db, platform_id)["token"] == "t0k" and sq.ws_token_user(db, "t0k") == 8


def test_faults_status_count_bad_token_and_call_counts(client, db):
    sq.set_fault(db, "core_webservice_get_site_info", "status", code=503, retry_after=7, count=1)
    resp = client.post(WS, data={"wstoken": "sandbox-ws-token", "wsfunction": "core_webservice_get_site_info"})
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "7"
    assert call(client, "core_webservice_get_site_info")["username"] == "lmsbridge"  # count exhausted
    sq.set_fault(db, "/sandbox/webservice", "bad_token")
    assert call(client, "core_webservice_get_site_info")["errorcode"] == "invalidtoken"
    sq.clear_faults(db)
    sq.set_fault(db, "/sandbox/mod/lti/services.php", "timeout", seconds=0.01, count=1)
    assert client.get("/sandbox/mod/lti/services.php/2/lineitems").status_code == 504
    sq.set_fault(db, "/sandbox/mod/lti/services.php", "fail_ratio", ratio=1.0)
    assert client.get("/sandbox/mod/lti/services.php/2/lineitems").status_code == 500
    assert sq.call_counts(db) == {"lineitems": 2, "ws:core_webservice_get_site_info": 3}


def test_fault_control_over_http(client, db):
    resp = client.post("/sandbox/faults", json={"target": "/sandbox/mod/lti/services.php", "kind": "status",
                                                "code": 429, "retry_after": 2})
    assert resp.status_code == 200 and resp.get_json()["faults"][0]["code"] == 429
    hit = client.get("/sandbox/mod/lti/services.php/2/lineitems")
    assert hit.status_code == 429 and hit.headers["Retry-After"] == "2"
    assert client.post("/sandbox/faults", json={"target": "x", "kind": "explode"}).status_code == 400
    client.post("/sandbox/faults", json={"clear": True})
    assert sq.list_faults(db) == []
    assert client.get("/sandbox/calls").get_json() == {"lineitems": 1}
