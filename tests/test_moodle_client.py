"""MoodleClient against the real Moodle 4.5.6 recordings in tests/fixtures/moodle/ws."""
import json
import logging
import re
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from responses import matchers

from lms_bridge.clients.moodle import MoodleClient, MoodleError, classify, flatten_params

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "moodle" / "ws"
BASE = "http://127.0.0.1:8080"
ENDPOINT = f"{BASE}/webservice/rest/server.php"
TOKEN = "9f2b1c0e5d4a3b2c1d0e9f8a7b6c5d4e"


def load(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def unflatten(params):
    """Rebuild the structured input a caller would pass from recorded `a[0][b]` form fields."""
    root = {}
    for key, value in params.items():
        parts = re.findall(r"^[^\[]+|\[([^\]]*)\]", key)
        parts[0] = key.split("[", 1)[0]
        node = root
        for part, nxt in zip(parts, parts[1:] + [None]):
            if nxt is None:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    def lists(node):
        if not isinstance(node, dict):
            return node
        if node and all(k.isdigit() for k in node):
            return [lists(node[k]) for k in sorted(node, key=int)]
        return {k: lists(v) for k, v in node.items()}
    return lists(root)


def replay(rsps, name, token=TOKEN):
    """Expect exactly the recorded form fields (plus token and function) and answer the recorded body."""
    fixture = load(name)
    request = fixture["request"]
    form = {"wstoken": token, "wsfunction": request["wsfunction"], **request["params"]}
    kwargs = {"body": fixture["response"]} if isinstance(fixture["response"], str) else {"json": fixture["response"]}
    rsps.add(responses.POST, ENDPOINT, status=fixture["status"],
             match=[matchers.urlencoded_params_matcher(form),
                    matchers.query_param_matcher({"moodlewsrestformat": "json"})], **kwargs)
    return fixture


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def client():
    return MoodleClient(requests.Session(), BASE + "/", TOKEN)


def sent_fields(call):
    return parse_qsl(call.request.body, keep_blank_values=True)


WS_FIXTURES = sorted(p.stem for p in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("name", WS_FIXTURES)
def test_flatten_params_reproduces_every_recorded_request(name):
    params = load(name)["request"]["params"]
    assert flatten_params(unflatten(params)) == list(params.items())


def test_flatten_params_types_and_nesting():
    assert flatten_params({"events": [{"name": "A", "visible": True, "repeat": False, "groupid": None,
                                       "timestart": 1796030007}],
                           "options": {"ids": [4, 5]}, "grade": 7.5}) == [
        ("events[0][name]", "A"), ("events[0][visible]", "1"), ("events[0][repeat]", "0"),
        ("events[0][timestart]", "1796030007"), ("options[ids][0]", "4"), ("options[ids][1]", "5"),
        ("grade", "7.5")]


def test_call_posts_token_function_and_json_format(rsps, client):
    fixture = replay(rsps, "core_webservice_get_site_info")
    assert client.call("core_webservice_get_site_info") == fixture["response"]
    request = rsps.calls[0].request
    assert request.url == ENDPOINT + "?moodlewsrestformat=json"
    assert sent_fields(rsps.calls[0])[:2] == [("wstoken", TOKEN), ("wsfunction", "core_webservice_get_site_info")]


def test_missing_functions_uses_site_info(rsps, client):
    replay(rsps, "core_webservice_get_site_info")
    assert client.missing_functions(["core_grades_update_grades", "core_calendar_delete_calendar_events",
                                     "core_message_send_instant_messages"]) == [
        "core_calendar_delete_calendar_events"]


def test_course_module_by_instance(rsps, client):
    replay(rsps, "core_course_get_course_module_by_instance__lti")
    cm = client.course_module_by_instance("lti", 1)
    assert (cm["id"], cm["instance"], cm["modname"]) == (5, 1, "lti")


def test_update_grades_matches_recording(rsps, client):
    replay(rsps, "core_grades_update_grades__lti_activity_by_cmid")
    assert client.update_grades(2, 5, [(7, 77, "Set through core_grades_update_grades")], source="mod/lti") is None
    assert sent_fields(rsps.calls[0])[2:] == list(
        load("core_grades_update_grades__lti_activity_by_cmid")["request"]["params"].items())


def test_update_grades_with_instance_id_is_not_found(rsps, client):
    replay(rsps, "core_grades_update_grades__lti_activity_by_instanceid")
    with pytest.raises(MoodleError) as err:
        client.update_grades(2, 1, [(7, 66)], source="mod/lti")
    assert (err.value.kind, err.value.errorcode, err.value.permanent) == ("not_found", "invalidcoursemodule", False)


def test_update_grades_failed_status_raises(rsps, client):
    rsps.add(responses.POST, ENDPOINT, json=4)
    with pytest.raises(MoodleError) as err:
        client.update_grades(2, 5, [(7, 10)])
    assert err.value.errorcode == "gradeitemlocked"
    assert ("source", "lms_bridge") in sent_fields(rsps.calls[0])


@pytest.mark.parametrize("name,completed", [
    ("core_completion_override_activity_completion_status__manual_page_complete", True),
    ("core_completion_override_activity_completion_status__manual_page_incomplete", False),
])
def test_override_completion_matches_recording(rsps, client, name, completed):
    fixture = replay(rsps, name)
    assert client.override_completion(6, 2, completed) == fixture["response"]


def test_override_completion_without_tracking_raises(rsps, client):
    replay(rsps, "core_completion_override_activity_completion_status__no_completion_tracking")
    with pytest.raises(MoodleError) as err:
        client.override_completion(6, 4, True)
    assert err.value.errorcode == "nocompletiontracking"
    assert err.value.item == {"userid": 6, "cmid": 4}


def test_create_calendar_events_matches_recordings(rsps, client):
    course = replay(rsps, "core_calendar_create_calendar_events__course_event")
    group = replay(rsps, "core_calendar_create_calendar_events__group_event")
    first = client.create_calendar_events([{
        "name": "BLC live session 1", "description": "Zoom session on SDG localisation", "format": 1,
        "courseid": 2, "eventtype": "course", "timestart": 1796030007, "timeduration": 5400, "visible": True}])
    second = client.create_calendar_events([{"name": "Jakarta cohort check-in", "courseid": 2, "groupid": 1,
                                             "eventtype": "group", "timestart": 1796116407, "timeduration": 3600}])
    assert first.ok and first.done == course["response"]["events"]
    assert second.ok and second.done[0]["id"] == group["response"]["events"][0]["id"] == 2


def test_create_calendar_events_warnings_become_failures(rsps, client):
    rsps.add(responses.POST, ENDPOINT, json={"events": [], "warnings": [
        {"item": "Private", "warningcode": "nopermissions",
         "message": "you do not have permissions to create this event"}]})
    result = client.create_calendar_events([{"name": "Private", "eventtype": "user", "timestart": 1}])
    assert not result.ok and result.done == []
    assert (result.failed[0].kind, result.failed[0].item["item"]) == ("missing_capability", "Private")


def test_create_calendar_events_nonexistent_course(rsps, client):
    replay(rsps, "core_calendar_create_calendar_events__nonexistent_course")
    with pytest.raises(MoodleError) as err:
        client.create_calendar_events([{"name": "Bad", "courseid": 9999, "eventtype": "course",
                                        "timestart": 1795511607}])
    assert err.value.kind == "not_found"


def test_delete_calendar_events_sends_eventid_and_repeat(rsps, client):
    rsps.add(responses.POST, ENDPOINT, body="null", content_type="application/json")
    client.delete_calendar_events([1, 2])
    assert sent_fields(rsps.calls[0])[2:] == [("events[0][eventid]", "1"), ("events[0][repeat]", "0"),
                                              ("events[1][eventid]", "2"), ("events[1][repeat]", "0")]


def test_send_instant_messages(rsps, client):
    ok = replay(rsps, "core_message_send_instant_messages__to_learner1")
    replay(rsps, "core_message_send_instant_messages__to_learner1_no_shared_course")
    replay(rsps, "core_message_send_instant_messages__to_nonexistent_user")
    sent = client.send_instant_messages([(5, "Reminder: submit your project report", "blc-msg-1")])
    assert sent.ok and sent.done == ok["response"]
    blocked = client.send_instant_messages([(5, "Reminder: submit your project report", "blc-msg-1")])
    assert blocked.done == [] and blocked.failed[0].kind == "missing_capability"
    assert blocked.failed[0].item == {"touserid": 5, "clientmsgid": "blc-msg-1"}
    assert "message preferences" in blocked.failed[0].message
    missing = client.send_instant_messages([(9999, "Hello")])
    assert missing.failed[0].kind == "not_found" and missing.failed[0].item["touserid"] == 9999


def test_get_grade_items(rsps, client):
    every = replay(rsps, "gradereport_user_get_grade_items__all_users")
    one = replay(rsps, "gradereport_user_get_grade_items__learner1")
    assert client.get_grade_items(2) == every["response"]["usergrades"]
    items = client.get_grade_items(2, userid=5)[0]["gradeitems"]
    assert items == one["response"]["usergrades"][0]["gradeitems"]
    assert next(i for i in items if i["cmid"] == 5)["graderaw"] == 85


ERROR_KINDS = {
    "core_webservice_get_site_info__invalid_token": "invalid_token",
    "core_user_create_users__function_not_in_service": "function_not_in_service",
    "core_does_not_exist__unknown_function": "function_not_in_service",
    "core_course_get_contents__missing_required_param": "invalid_parameter",
    "core_course_get_contents__invalid_param_type": "invalid_parameter",
    "core_completion_get_activities_completion_status__missing_capability": "missing_capability",
    "core_group_get_course_groups__missing_capability": "missing_capability",
    "mod_lti_get_tool_types_and_proxies__missing_capability": "missing_capability",
    "core_completion_override_activity_completion_status__capability_failure_learner1": "missing_capability",
    "core_webservice_get_site_info__learner1_without_rest_use": "missing_capability",
    "core_course_get_contents__nonexistent_course": "not_found",
    "core_enrol_get_enrolled_users__nonexistent_course": "not_found",
    "core_calendar_create_calendar_events__nonexistent_course": "not_found",
    "core_grades_update_grades__nonexistent_course": "not_found",
    "gradereport_user_get_grade_items__nonexistent_course": "not_found",
    "core_course_get_course_module__nonexistent_cm": "not_found",
    "core_completion_override_activity_completion_status__nonexistent_cm": "not_found",
    "core_grades_update_grades__lti_activity_by_instanceid": "not_found",
    "core_completion_update_activity_completion_status_manually__learner1_automatic_page": "other",
    "core_completion_update_activity_completion_status_manually__learner1_no_completion_tracking": "other",
    "core_completion_get_course_completion_status__no_criteria": "other",
    "core_completion_override_activity_completion_status__invalid_newstate": "other",
}


def test_error_table_covers_every_recorded_exception():
    recorded = {n for n in WS_FIXTURES if isinstance(load(n)["response"], dict) and "exception" in load(n)["response"]}
    assert recorded == set(ERROR_KINDS)


@pytest.mark.parametrize("name", sorted(ERROR_KINDS))
def test_recorded_errors_are_classified(rsps, client, name):
    fixture = replay(rsps, name)
    if name == "core_user_create_users__function_not_in_service":
        replay(rsps, "core_webservice_get_site_info")  # accessexception is told apart by the function list
    with pytest.raises(MoodleError) as err:
        client.call(fixture["request"]["wsfunction"], unflatten(fixture["request"]["params"]))
    e = err.value
    assert e.kind == ERROR_KINDS[name]
    assert (e.errorcode, e.message, e.status) == (fixture["response"]["errorcode"], fixture["response"]["message"], 200)
    assert e.permanent == (e.kind in {"invalid_token", "missing_capability", "function_not_in_service",
                                      "invalid_parameter"})
    assert e.url == ENDPOINT and e.wsfunction == fixture["request"]["wsfunction"]
    assert e.body and json.loads(e.body) == fixture["response"]
    assert e.errorcode in str(e) and e.wsfunction in str(e)


def test_accessexception_for_a_function_in_the_service_is_a_capability_problem(rsps, client):
    replay(rsps, "core_webservice_get_site_info")
    rsps.add(responses.POST, ENDPOINT, json=load("core_user_create_users__function_not_in_service")["response"],
             match=[matchers.urlencoded_params_matcher({"wstoken": TOKEN, "wsfunction": "core_group_get_course_groups",
                                                        "courseid": "2"})])
    with pytest.raises(MoodleError) as err:
        client.call("core_group_get_course_groups", {"courseid": 2})
    assert err.value.kind == "missing_capability"


def test_classify_falls_back_to_exception_class():
    assert classify("somethingnew", "core\\exception\\required_capability_exception") == "missing_capability"
    assert classify("sitemaintenance", "moodle_exception") == "transient"
    assert classify("whatever", "moodle_exception") == "other"


@pytest.mark.parametrize("status,body,headers", [
    (500, "<html><body>Internal Server Error</body></html>", {}),
    (502, "<html><head><title>502 Bad Gateway</title></head></html>", {}),
    (503, json.dumps({"exception": "moodle_exception", "errorcode": "sitemaintenance", "message": "down"}), {}),
])
def test_server_failures_are_transient(rsps, client, status, body, headers):
    rsps.add(responses.POST, ENDPOINT, status=status, body=body, headers=headers)
    with pytest.raises(MoodleError) as err:
        client.call("core_webservice_get_site_info")
    assert (err.value.kind, err.value.status, err.value.permanent) == ("transient", status, False)
    assert err.value.transient


def test_retry_after_seconds_and_date(rsps, client):
    rsps.add(responses.POST, ENDPOINT, status=429, body="slow down", headers={"Retry-After": "120"})
    rsps.add(responses.POST, ENDPOINT, status=503, body="maintenance",
             headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    with pytest.raises(MoodleError) as err:
        client.call("core_webservice_get_site_info")
    assert (err.value.kind, err.value.retry_after) == ("transient", 120.0)
    with pytest.raises(MoodleError) as err:
        client.call("core_webservice_get_site_info")
    assert err.value.retry_after == 0.0


@pytest.mark.parametrize("exc", [requests.ConnectTimeout("connect timed out"), requests.ReadTimeout("read"),
                                 requests.ConnectionError("refused")])
def test_network_failures_are_transient(rsps, client, exc):
    rsps.add(responses.POST, ENDPOINT, body=exc)
    with pytest.raises(MoodleError) as err:
        client.call("core_webservice_get_site_info")
    assert (err.value.kind, err.value.status, err.value.url) == ("transient", None, ENDPOINT)
    assert type(exc).__name__ in err.value.message


def test_xml_answer_is_a_clear_error(rsps, client):
    xml = load("core_webservice_get_site_info__xml_format")["response"]
    rsps.add(responses.POST, ENDPOINT, body=xml, content_type="application/xml; charset=utf-8")
    with pytest.raises(MoodleError) as err:
        client.call("core_webservice_get_site_info")
    assert (err.value.kind, err.value.errorcode) == ("other", "xmlresponse")
    assert "moodlewsrestformat=json" in str(err.value)


def test_token_never_leaks(rsps, client, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="lms_bridge")  # create_app elsewhere sets INFO on it
    replay(rsps, "core_webservice_get_site_info__invalid_token")
    rsps.add(responses.POST, ENDPOINT, json={"exception": "moodle_exception", "errorcode": "x",
                                             "message": f"bad wstoken={TOKEN}", "debuginfo": f"token {TOKEN}"})
    rsps.add(responses.POST, ENDPOINT, body=requests.ConnectTimeout(f"{ENDPOINT}?wstoken={TOKEN}"))
    rsps.add(responses.POST, ENDPOINT, status=500, body=f"<pre>{TOKEN}</pre>")
    errors = []
    for _ in range(4):
        with pytest.raises(MoodleError) as err:
            client.call("core_webservice_get_site_info")
        errors.append(err.value)
    assert errors[0].kind == "invalid_token"
    for e in errors:
        for text in (str(e), repr(e), e.url, e.body or "", e.message, e.debuginfo or "", str(e.args)):
            assert TOKEN not in text
    assert TOKEN not in repr(client) and TOKEN not in caplog.text
    assert "core_webservice_get_site_info" in caplog.text


def test_call_chunked_respects_max_input_vars(rsps, client):
    def echo(request):
        fields = parse_qsl(request.body)
        assert len(fields) <= 1000
        return 200, {}, json.dumps([{"msgid": int(v), "text": ""} for k, v in fields if k.endswith("[touserid]")])
    rsps.add_callback(responses.POST, ENDPOINT, callback=echo)
    result = client.send_instant_messages([(uid, "hi", f"m{uid}") for uid in range(1, 2501)])
    assert [m["msgid"] for m in result.done] == list(range(1, 2501))
    assert len(rsps.calls) == 11
    assert sent_fields(rsps.calls[1])[2] == ("messages[0][touserid]", "250")


def test_call_chunked_merges_dict_answers(rsps, client):
    rsps.add(responses.POST, ENDPOINT, json={"events": [{"id": 1}], "warnings": []})
    rsps.add(responses.POST, ENDPOINT, json={"events": [{"id": 2}], "warnings": [{"item": "b", "warningcode": "x",
                                                                                   "message": "m"}]})
    merged = client.call_chunked("core_calendar_create_calendar_events", "events",
                                 [{"name": "a"}, {"name": "b"}], chunk_size=1)
    assert merged == {"events": [{"id": 1}, {"id": 2}], "warnings": [{"item": "b", "warningcode": "x", "message": "m"}]}
    assert sent_fields(rsps.calls[1])[2] == ("events[0][name]", "b")
